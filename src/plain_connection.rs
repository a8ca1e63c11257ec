//! A plain HTTP/1.1 connection that lets go of hyper while it is idle.
//!
//! hyper's HTTP/1 connection keeps an 8 KiB read buffer and an 8 KiB write buffer for as long
//! as it lives, idle or not: two thirds of what an idle keep-alive connection costs. nginx frees
//! its request buffers as soon as a keep-alive connection goes idle. Here the connection is
//! *parked* once it has waited [`PARK_AFTER`] for a next request with not one byte of it
//! received: hyper's connection is ended without closing the socket (`poll_without_shutdown`,
//! then `into_parts`), and only the [`ZeroCopyStream`] (socket, timers, ~200 bytes) and the
//! service are kept. When the socket becomes readable a new hyper connection takes over the
//! same stream; bytes the old one had read but not used are replayed to it first. A new
//! connection starts parked: hyper is brought in by its first bytes, so a client that connects
//! and says nothing costs no parser either (nginx too allocates its header buffer only then).
//!
//! While parked the stream keeps every duty of a waiting connection: the header timeout (a new
//! connection) or the keep-alive idle timeout, eviction at `--max-connections`, letting go of a kept mapping, and a graceful
//! shutdown closes it at once (as hyper closes an idle connection).
//!
//! The delay is short next to a person (a page's requests come in bursts a few milliseconds
//! apart and never wait for it; a player's next range request may) and long next to a request
//! on a busy connection, so a loaded server never parks and never pays for a new parser.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;

use crate::service::ConnService;
use crate::stats::ServerStats;
use crate::zero_copy::{ConnShared, ZeroCopyStream};

/// How long a keep-alive connection waits for a next request before it is parked.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

pin_project_lite::pin_project! {
    /// One plain HTTP/1.1 connection's whole life, as its task.
    pub struct PlainConnection<Stop, Hold> {
        phase: Phase,
        builder: http1::Builder,
        service: ConnService,
        shared: Arc<ConnShared>,
        stats: Arc<ServerStats>,
        peer: SocketAddr,
        // Resolves when the server begins its graceful shutdown.
        #[pin]
        stop: Stop,
        stopping: bool,
        // Released with the connection (its `--max-connections` slot).
        hold: Hold,
    }
}

enum Phase {
    /// hyper serves; `ending` once it was asked to finish (to park, or to stop). Boxed, so that
    /// a parked connection's task is small: the task's size is its largest phase's.
    Serving {
        connection: Box<http1::Connection<ZeroCopyStream, ConnService>>,
        ending: bool,
    },
    /// Only the stream, waiting for bytes.
    Parked(ZeroCopyStream),
    /// hyper is done with the connection: the write side is shut down, as hyper would have.
    ShuttingDown(ZeroCopyStream),
    Done,
}

impl<Stop, Hold> PlainConnection<Stop, Hold>
where
    Stop: Future<Output = ()>,
{
    /// Serves `stream` with `builder`'s hyper settings until the client leaves, a limit closes
    /// the connection, or `stop` resolves (then the response in flight is finished first).
    pub fn new(
        mut stream: ZeroCopyStream,
        builder: &http1::Builder,
        service: ConnService,
        peer: SocketAddr,
        stop: Stop,
        hold: Hold,
    ) -> Self {
        stream.park_when_idle(PARK_AFTER);
        let (shared, stats) = (stream.shared(), stream.stats());
        PlainConnection {
            // A new connection starts parked: hyper's parser and buffers are made when the
            // first bytes arrive, so a client that connects and says nothing holds only the
            // socket until the header timeout (or until it is evicted for room), as with nginx.
            phase: Phase::Parked(stream),
            builder: builder.clone(),
            service,
            shared,
            stats,
            peer,
            stop,
            stopping: false,
            hold,
        }
    }
}

/// How a connection that ended with an error is told: a debug line (clients vanish).
pub(crate) fn ended_with_error(peer: &SocketAddr, error: impl fmt::Display) {
    tracing::debug!(%peer, %error, "connection ended with an error");
}

impl<Stop, Hold> Future for PlainConnection<Stop, Hold>
where
    Stop: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if !*this.stopping && this.stop.poll(cx).is_ready() {
            *this.stopping = true;
        }
        let stopping = *this.stopping;
        // The phase is taken out and put back: each arm owns what it moves on.
        loop {
            match std::mem::replace(this.phase, Phase::Done) {
                Phase::Serving {
                    mut connection,
                    mut ending,
                } => {
                    if !ending && (stopping || park_now(this.shared)) {
                        // Idle: hyper closes at once. Mid-response (stopping): after it.
                        Pin::new(&mut *connection).graceful_shutdown();
                        ending = true;
                    }
                    match connection.poll_without_shutdown(cx) {
                        // The stream may have asked to park during this very poll.
                        Poll::Pending if !ending && park_now(this.shared) => {
                            Pin::new(&mut *connection).graceful_shutdown();
                            *this.phase = Phase::Serving {
                                connection,
                                ending: true,
                            };
                        }
                        Poll::Pending => {
                            *this.phase = Phase::Serving { connection, ending };
                            return Poll::Pending;
                        }
                        Poll::Ready(Err(error)) => {
                            ended_with_error(this.peer, error);
                            return Poll::Ready(());
                        }
                        // Ended because we asked, to park: keep the stream.
                        Poll::Ready(Ok(())) if ending && !stopping => {
                            ServerStats::add(&this.stats.idle_connections_parked, 1);
                            let parts = connection.into_parts();
                            let mut stream = parts.io;
                            if !parts.read_buf.is_empty() {
                                stream.replay(parts.read_buf);
                            }
                            *this.phase = Phase::Parked(stream);
                        }
                        // Ended on its own (`Connection: close`, HTTP/1.0, the client's end)
                        // or for the graceful stop.
                        Poll::Ready(Ok(())) => {
                            *this.phase = Phase::ShuttingDown(connection.into_parts().io);
                        }
                    }
                }
                Phase::Parked(_) if stopping => return Poll::Ready(()),
                Phase::Parked(mut stream) => match stream.poll_parked(cx) {
                    Poll::Pending => {
                        *this.phase = Phase::Parked(stream);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(error)) => {
                        ended_with_error(this.peer, error);
                        return Poll::Ready(());
                    }
                    Poll::Ready(Ok(())) => {
                        stream.resume_from_parking();
                        let connection =
                            Box::new(this.builder.serve_connection(stream, this.service.clone()));
                        *this.phase = Phase::Serving {
                            connection,
                            ending: false,
                        };
                    }
                },
                Phase::ShuttingDown(mut stream) => {
                    match hyper::rt::Write::poll_shutdown(Pin::new(&mut stream), cx) {
                        Poll::Pending => {
                            *this.phase = Phase::ShuttingDown(stream);
                            return Poll::Pending;
                        }
                        Poll::Ready(Err(error)) => ended_with_error(this.peer, error),
                        Poll::Ready(Ok(())) => {}
                    }
                    return Poll::Ready(());
                }
                Phase::Done => return Poll::Ready(()),
            }
        }
    }
}

/// Whether the stream asked to park and the connection is still waiting for a request with not
/// one byte of it received (a request that arrived since the ask keeps the parser).
fn park_now(shared: &ConnShared) -> bool {
    shared.take_park_request() && shared.awaits_new_request()
}
