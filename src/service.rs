//! The hyper service: one request walks down the layers once —
//! method check, [`route`](crate::route) (which resource), [`plan`](crate::plan) (what to send),
//! [`render`](crate::render) (the response and its body) — and the access log line is written
//! when the body is over.

use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};

use crate::access;
use crate::access_log::RequestSummary;
use crate::body::{BufferBudget, FileStrategy, ResponseBody};
use crate::conditional::MethodKind;
use crate::error::ServeError;
use crate::media;
use crate::pacing::{Pacer, PacingConfig};
use crate::plan;
use crate::render::{self, FileSending};
use crate::representation::{Content, Representation};
use crate::route::{self, Resource};
use crate::state::ServerState;
use crate::stats::{ConnectionStats, ServerStats};
use crate::zero_copy::ConnShared;

/// The service for one connection: hyper clones it for every request, so it is one `Arc`.
#[derive(Debug, Clone)]
pub struct ConnService(Arc<Connection>);

/// What the service knows of its connection.
#[derive(Debug)]
struct Connection {
    state: Arc<ServerState>,
    conn: Arc<ConnShared>,
    sending: FileSending,
    /// The client's address, for the access log.
    peer: SocketAddr,
}

impl ConnService {
    /// A service for a new connection from `peer` whose file bodies are produced by `strategy`.
    pub fn new(
        state: Arc<ServerState>,
        conn: Arc<ConnShared>,
        strategy: FileStrategy,
        peer: SocketAddr,
    ) -> Self {
        let sending = FileSending {
            strategy,
            registry: Arc::clone(&conn.registry),
            stats: ConnectionStats::new(Arc::clone(&state.stats)),
            budget: strategy
                .buffer_size()
                .map(|chunk| BufferBudget::for_connection(&state.buffer_budget, chunk)),
        };
        ConnService(Arc::new(Connection {
            state,
            conn,
            sending,
            peer,
        }))
    }
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        Box::pin(Arc::clone(&self.0).handle(request))
    }
}

impl Connection {
    /// The whole exchange for `request`. Not an `async fn`: an `async fn` keeps a second copy
    /// of its by-value arguments in its future, and this future is allocated, and its request
    /// moved, on every request.
    #[allow(clippy::manual_async_fn)] // see above: `async fn` would make the future larger
    fn handle<B: Send + Sync + 'static>(
        self: Arc<Self>,
        request: Request<B>,
    ) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> + Send {
        async move { Ok(self.exchange(&request).await) }
    }

    async fn exchange<B>(self: &Arc<Self>, request: &Request<B>) -> Response<ResponseBody> {
        // Held until the response body is over; dropped with this future if the client gives
        // up first (an HTTP/2 RST_STREAM while the handler awaits), so the connection's idle
        // clock always restarts.
        let in_flight = self.conn.start_request();
        ServerStats::add(&self.state.stats.requests, 1);
        // Taken now, before the request is handled; `None` when the access log is off.
        let access = RequestSummary::capture(self.peer, request);
        // Read only for someone: the metrics' time to first byte, the log's duration.
        let timed = self.state.metrics.times_responses();
        let started = (timed || access.is_some()).then(Instant::now);

        // Preflights and signed links are answered before routing (see `crate::access`).
        let (mut response, signed) = match access::admit(&self.state, request, Some(self.peer.ip()))
        {
            access::Gate::Answer(response) => (*response, false),
            access::Gate::Pass { signed } => match self.respond(request).await {
                Ok(response) => (response, signed),
                Err(error) => (error.into_response(), signed),
            },
        };
        access::finish(&self.state, request.headers(), signed, &mut response);
        if let (true, Some(started)) = (timed, started) {
            self.state
                .metrics
                .response(response.status(), started.elapsed());
        }
        // Already there in a file's fields (see `plan`): then this finds it and adds nothing.
        response
            .headers_mut()
            .entry(header::SERVER)
            .or_insert(HeaderValue::from_static(plan::SERVER));
        if response.status() == StatusCode::PARTIAL_CONTENT {
            ServerStats::add(&self.state.stats.responses_206, 1);
        }

        // The access log line is written when the body is done (or abandoned), so it can say
        // how many bytes went out and whether the response completed.
        let status = response.status().as_u16();
        // The connection, not the server's metrics: its reference count is its own, where the
        // server's is bumped from every core (see `stats::ConnectionStats`).
        let connection = Arc::clone(self);
        response
            .body_mut()
            .on_finished(Box::new(move |bytes, complete| {
                drop(in_flight);
                if !complete {
                    connection.state.metrics.cut_short();
                }
                if let (Some(access), Some(started)) = (access, started) {
                    access.record(status, bytes, complete, started.elapsed());
                }
            }));
        response
    }

    async fn respond<B>(&self, request: &Request<B>) -> Result<Response<ResponseBody>, ServeError> {
        let method = match *request.method() {
            Method::GET => MethodKind::Get,
            Method::HEAD => MethodKind::Head,
            _ => return Err(ServeError::method_not_allowed()),
        };
        // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without a Host field,
        // or with more than one. (HTTP/1.0 may omit it; HTTP/2 carries :authority instead.)
        if request.version() == Version::HTTP_11 {
            let mut hosts = request.headers().get_all(header::HOST).iter();
            if hosts.next().is_none() || hosts.next().is_some() {
                return Err(ServeError::bad_request(
                    "an HTTP/1.1 request needs exactly one Host field",
                ));
            }
        }
        let uri = request.uri();
        // Matched in a `let`: the resource's storage ends with the statement, so this future,
        // part of every request's, does not keep it beside the representation across the
        // awaits below.
        let representation = match route::route(&self.state, uri.path(), uri.query()).await? {
            Resource::Generated {
                content,
                content_type,
                policy,
            } => {
                return Ok(render::render_generated(
                    method,
                    content,
                    content_type,
                    policy,
                ))
            }
            Resource::Representation(representation) => representation,
        };
        let plan = plan::plan(
            method,
            request.headers(),
            &representation,
            &self.state.cache,
            SystemTime::now(),
            new_boundary,
        )?;
        let mut response = render::render(plan, &representation, &self.sending).await?;
        if !response.body().is_empty() {
            if let Some(pacing) = PacingConfig::from_config(&self.state.config) {
                // Boxed: most responses are not paced, and this future is allocated and moved
                // on every request.
                Box::pin(self.pace(pacing, response.body_mut(), &representation)).await;
            }
        }
        Ok(response)
    }
}

impl Connection {
    /// Paces `body` as `--limit-rate` or `--pace` asks (see [`crate::pacing`]); with `--pace` a
    /// movie's bitrate is probed once per version of the file, off the event loop.
    async fn pace(
        &self,
        pacing: PacingConfig,
        body: &mut ResponseBody,
        representation: &Representation,
    ) {
        let bitrate = match (&representation.content, representation.file_key) {
            (Content::File(file), Some(key)) if pacing.wants_bitrate() => {
                media::bitrate_of(
                    Arc::clone(file),
                    key,
                    representation.len,
                    &representation.content_type,
                )
                .await
            }
            _ => None,
        };
        if let Some(plan) = pacing.plan(bitrate) {
            let stats = Arc::clone(&self.state.stats);
            body.pace(Pacer::new(plan, Arc::clone(&self.conn), stats));
        }
    }
}

/// A boundary that will not occur in the file by chance: 64 random bits (std's hasher keys are
/// random per process and per `RandomState`).
fn new_boundary() -> String {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("reelserve-{random:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_differ() {
        assert_ne!(new_boundary(), new_boundary());
    }
}
