//! The two steps every request goes through around the file-serving logic, for a server on the
//! open internet:
//!
//! 1. [`admit`], before routing: a CORS preflight is answered here (it needs no token: it
//!    carries no request and reveals nothing); with `--signing-key-file` a request without a
//!    valid signed link is refused here (403, or 410 when expired) and the reason logged.
//! 2. [`finish`], on every response: the CORS fields, and `Cache-Control: private` on answers to
//!    signed links, so a shared cache never hands one viewer's signed answer to another.
//!
//! The decisions themselves are made by the pure modules [`crate::signed_link`] and
//! [`crate::cors`]; this module only turns them into responses and counts them in
//! [`crate::metrics`].

use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::body::ResponseBody;
use crate::error::ServeError;
use crate::signed_link::Admission;
use crate::state::ServerState;

/// What to do with a request before routing it.
#[derive(Debug)]
pub enum Gate {
    /// Serve it. `signed`: it passed on a signed link (its answer is private).
    Pass {
        /// Whether a signed link admitted it.
        signed: bool,
    },
    /// Answer this instead (a preflight, or a refusal).
    Answer(Box<Response<ResponseBody>>),
}

/// Decides whether `request` from `client` goes on to routing.
pub fn admit<B>(state: &ServerState, request: &Request<B>, client: Option<IpAddr>) -> Gate {
    if let Some(cors) = &state.cors {
        if let Some(headers) = cors.preflight(request.method(), request.headers()) {
            let mut response = Response::new(ResponseBody::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            *response.headers_mut() = headers;
            return Gate::Answer(Box::new(response));
        }
    }
    let Some(keys) = &state.signing else {
        return Gate::Pass { signed: false };
    };
    let uri = request.uri();
    // A connection always has a peer; `None` only for services built without one (never by
    // the server), which then match no address-bound link.
    let client_ip = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match keys.admit(uri.path(), uri.query(), client_ip, SystemTime::now()) {
        Ok(Admission::Exempt) => Gate::Pass { signed: false },
        Ok(Admission::Signed(_)) => Gate::Pass { signed: true },
        Err(refusal) => {
            tracing::warn!(
                client = %client_ip,
                path = %uri.path(),
                reason = refusal.reason(),
                "signed link refused"
            );
            state.metrics.refused(refusal.status(), refusal.reason());
            Gate::Answer(Box::new(ServeError::from(refusal).into_response()))
        }
    }
}

/// The fields every response gets on its way out.
pub fn finish(
    state: &ServerState,
    request_headers: &HeaderMap,
    signed: bool,
    response: &mut Response<ResponseBody>,
) {
    let headers = response.headers_mut();
    if signed {
        make_private(headers);
    }
    if let Some(cors) = &state.cors {
        cors.apply(request_headers, headers);
    }
}

/// `Cache-Control: private` (RFC 9111 §5.2.2.7), keeping the other directives: the browser
/// may still cache and revalidate, a shared cache may not store it.
fn make_private(headers: &mut HeaderMap) {
    let value = match headers.get(header::CACHE_CONTROL).map(HeaderValue::to_str) {
        None => HeaderValue::from_static("private"),
        Some(Ok(existing)) => {
            let directives = existing.to_ascii_lowercase();
            if directives.contains("private") || directives.contains("no-store") {
                return;
            }
            HeaderValue::try_from(format!("private, {existing}"))
                .unwrap_or_else(|_| HeaderValue::from_static("private"))
        }
        Some(Err(_)) => HeaderValue::from_static("private"),
    };
    headers.insert(header::CACHE_CONTROL, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(existing: Option<&'static str>) -> String {
        let mut headers = HeaderMap::new();
        if let Some(value) = existing {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        }
        make_private(&mut headers);
        headers[header::CACHE_CONTROL].to_str().unwrap().to_string()
    }

    #[test]
    fn signed_answers_are_private_and_keep_their_other_directives() {
        assert_eq!(private(None), "private");
        assert_eq!(private(Some("max-age=3600")), "private, max-age=3600");
        assert_eq!(private(Some("no-cache")), "private, no-cache");
        assert_eq!(private(Some("no-store")), "no-store");
        assert_eq!(private(Some("private, max-age=1")), "private, max-age=1");
    }
}
