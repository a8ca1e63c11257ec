//! Every response that is not the requested content: redirects, `304 Not Modified`, client and
//! server errors. The decision modules ([`crate::route`], [`crate::plan`]) return a
//! [`ServeError`] saying *why*; this is the one place where that becomes a status code, header
//! fields and a short body, so every such response carries the same safety fields
//! (`X-Content-Type-Options: nosniff` on every body it sends) and is logged once, here.
//!
//! Statuses a client or cache may remember (404, 403) are kept for what is true of the file;
//! what is true only of the server right now (out of descriptors or memory, a read-all budget
//! in use, a disk error) is a `503` with `Retry-After` and `Cache-Control: no-store`, so no
//! cache remembers an existing movie as missing.

use std::fmt;
use std::io;

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::read_all::ReadAllRefused;
use crate::body::ResponseBody;
use crate::resolve::{self, PathError};
use crate::signed_link::Refusal;

/// Seconds a client is asked to wait before retrying a `503`: long enough for connections to
/// close or read-all buffers to be released, short enough for a video player to retry.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The whole response written to a connection over its client's `--max-connections-per-ip`,
/// before it is closed: written as bytes, because the connection never reaches hyper (see
/// [`crate::admission`]), with the fields every other error carries. `Retry-After` is short: a
/// player's connections come and go with seeks.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
Retry-After: 2\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
X-Content-Type-Options: nosniff\r\n\
Content-Length: 62\r\n\
Connection: close\r\n\
\r\n\
429 Too Many Requests: too many connections from your address\n";

/// A request the server answers with something other than the resource's content.
#[derive(Debug)]
pub struct ServeError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A directory asked for without its trailing slash: `301` to the slash form.
    MovedPermanently(HeaderValue),
    /// `304`: the client's copy is current. Carries the fields a 200 would (§15.4.5).
    NotModified(Box<HeaderMap>),
    /// A request the server will not try to understand; the reason is for the client.
    BadRequest(&'static str),
    BadPath,
    NotFound,
    Forbidden,
    MethodNotAllowed,
    PreconditionFailed,
    /// `416`, with the representation's fields and its current length (§15.5.17).
    RangeNotSatisfiable {
        len: u64,
        fields: Box<HeaderMap>,
    },
    /// Opening the file failed for want of descriptors or memory, or the disk failed (errno).
    Unavailable(i32),
    /// `--mode read-all` would need more memory than its budget has free.
    ReadAllRefused(ReadAllRefused),
    /// Opening the file failed otherwise (errno, if any).
    Failed(Option<i32>),
    /// A signed link was required and not valid (logged where it was checked, with the client).
    LinkRefused(Refusal),
    Io(io::Error),
}

impl ServeError {
    /// `301 Moved Permanently` to `location`.
    pub fn moved_permanently(location: HeaderValue) -> ServeError {
        ServeError {
            kind: Kind::MovedPermanently(location),
        }
    }

    /// `304 Not Modified`, with the validator and caching fields a `200` would carry.
    pub fn not_modified(fields: HeaderMap) -> ServeError {
        ServeError {
            kind: Kind::NotModified(Box::new(fields)),
        }
    }

    /// `400 Bad Request`, saying `why` in a few words.
    pub fn bad_request(why: &'static str) -> ServeError {
        ServeError {
            kind: Kind::BadRequest(why),
        }
    }

    /// `404 Not Found`.
    pub fn not_found() -> ServeError {
        ServeError {
            kind: Kind::NotFound,
        }
    }

    /// `405 Method Not Allowed` (with `Allow: GET, HEAD`).
    pub fn method_not_allowed() -> ServeError {
        ServeError {
            kind: Kind::MethodNotAllowed,
        }
    }

    /// `412 Precondition Failed` (RFC 9110 §13.2.2 steps 1 and 2).
    pub fn precondition_failed() -> ServeError {
        ServeError {
            kind: Kind::PreconditionFailed,
        }
    }

    /// `416 Range Not Satisfiable` for a representation of `len` bytes, with its `fields`
    /// (validators, caching) and `Content-Range: bytes */len`.
    pub fn range_not_satisfiable(len: u64, fields: HeaderMap) -> ServeError {
        ServeError {
            kind: Kind::RangeNotSatisfiable {
                len,
                fields: Box::new(fields),
            },
        }
    }

    /// The status code the client gets.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            Kind::MovedPermanently(_) => StatusCode::MOVED_PERMANENTLY,
            Kind::NotModified(_) => StatusCode::NOT_MODIFIED,
            Kind::BadRequest(_) | Kind::BadPath => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Kind::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Kind::Unavailable(_) | Kind::ReadAllRefused(_) => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::LinkRefused(Refusal::Expired) => StatusCode::GONE,
            Kind::LinkRefused(_) => StatusCode::FORBIDDEN,
            Kind::Io(error) => match error.raw_os_error() {
                // The same rules as for opening a file (see `resolve::errno_to_path_error`).
                Some(errno) => match resolve::errno_to_path_error(errno) {
                    PathError::NotFound => StatusCode::NOT_FOUND,
                    PathError::Forbidden => StatusCode::FORBIDDEN,
                    PathError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    PathError::Malformed | PathError::Failed(_) => {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                },
                None => match error.kind() {
                    io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
                    io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                    // A failed allocation (`try_reserve`) passes, like a full budget.
                    io::ErrorKind::OutOfMemory => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                },
            },
        }
    }

    /// The response. Server-side failures are logged here, once:
    /// a `503` at warn (the server copes; an operator may want more descriptors or memory),
    /// anything else at error.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, "request refused for now");
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else if let Kind::Io(error) = &self.kind {
            tracing::warn!(%error, "file could not be opened");
        } else if let Kind::Forbidden = &self.kind {
            // Worth an operator's attention: a file the server was asked for but may not read.
            tracing::warn!("403: the server has no permission to read the requested file");
        }
        let (mut headers, body) = match self.kind {
            // No content at all (§15.4.5), so no Content-Type either.
            Kind::NotModified(fields) => (*fields, ResponseBody::empty()),
            Kind::MovedPermanently(location) => {
                let mut headers = HeaderMap::new();
                headers.insert(header::LOCATION, location);
                (headers, ResponseBody::empty())
            }
            Kind::RangeNotSatisfiable { len, fields } => {
                let mut headers = *fields;
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from(ContentRangeStar(len)),
                );
                (headers, ResponseBody::bytes(format!("{status}\n")))
            }
            _ => {
                let text = format!("{self}\n");
                (HeaderMap::new(), ResponseBody::bytes(text))
            }
        };
        if !body.is_empty() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if status.is_server_error() {
            // True of this moment only: no cache may keep it in place of the file.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// `bytes */LEN`, the `Content-Range` of a 416 (RFC 9110 §14.4).
struct ContentRangeStar(u64);

impl From<ContentRangeStar> for HeaderValue {
    fn from(range: ContentRangeStar) -> HeaderValue {
        // Digits and ASCII only: always a valid field value.
        HeaderValue::try_from(format!("bytes */{}", range.0))
            .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::MovedPermanently(_) => f.write_str("301 Moved Permanently"),
            Kind::NotModified(_) => f.write_str("304 Not Modified"),
            Kind::BadRequest(why) => write!(f, "400 Bad Request: {why}"),
            Kind::BadPath => f.write_str("400 Bad Request: malformed or unsafe path"),
            Kind::NotFound => f.write_str("404 Not Found"),
            Kind::Forbidden => f.write_str("403 Forbidden"),
            Kind::MethodNotAllowed => {
                f.write_str("405 Method Not Allowed: this server answers GET and HEAD")
            }
            Kind::PreconditionFailed => f.write_str("412 Precondition Failed"),
            Kind::RangeNotSatisfiable { .. } => f.write_str("416 Range Not Satisfiable"),
            Kind::Unavailable(errno) => write!(
                f,
                "503 Service Unavailable: the file could not be opened now ({}); retry later",
                io::Error::from_raw_os_error(*errno)
            ),
            Kind::ReadAllRefused(refused) => write!(f, "503 Service Unavailable: {refused}"),
            Kind::Failed(Some(errno)) => write!(
                f,
                "500 Internal Server Error: the file could not be opened ({})",
                io::Error::from_raw_os_error(*errno)
            ),
            Kind::Failed(None) => {
                f.write_str("500 Internal Server Error: the file could not be opened")
            }
            Kind::LinkRefused(refusal) => f.write_str(refusal.message()),
            Kind::Io(error) => write!(f, "{}: {error}", self.status()),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<PathError> for ServeError {
    fn from(error: PathError) -> ServeError {
        let kind = match error {
            PathError::Malformed => Kind::BadPath,
            PathError::NotFound => Kind::NotFound,
            PathError::Forbidden => Kind::Forbidden,
            PathError::Unavailable(errno) => Kind::Unavailable(errno),
            PathError::Failed(errno) => Kind::Failed(errno),
        };
        ServeError { kind }
    }
}

impl From<Refusal> for ServeError {
    fn from(refusal: Refusal) -> ServeError {
        ServeError {
            kind: Kind::LinkRefused(refusal),
        }
    }
}

impl From<io::Error> for ServeError {
    fn from(error: io::Error) -> ServeError {
        let refused = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ReadAllRefused>());
        let kind = match refused {
            Some(refused) => Kind::ReadAllRefused(*refused),
            None => Kind::Io(error),
        };
        ServeError { kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn statuses() {
        assert_eq!(ServeError::from(PathError::Malformed).status(), 400);
        assert_eq!(ServeError::from(PathError::Forbidden).status(), 403);
        assert_eq!(ServeError::not_found().status(), 404);
        assert_eq!(ServeError::method_not_allowed().status(), 405);
        assert_eq!(ServeError::precondition_failed().status(), 412);
        assert_eq!(
            ServeError::range_not_satisfiable(10, HeaderMap::new()).status(),
            416
        );
        assert_eq!(ServeError::not_modified(HeaderMap::new()).status(), 304);
        assert_eq!(ServeError::from(Refusal::Expired).status(), 410);
        assert_eq!(ServeError::from(Refusal::Tampered).status(), 403);
        for refusal in [Refusal::Expired, Refusal::Missing, Refusal::WrongIp] {
            assert_eq!(ServeError::from(refusal).status(), refusal.status());
        }
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(ServeError::from(denied).status(), 403);
        assert_eq!(
            ServeError::from(io::Error::other("disk on fire")).status(),
            500
        );
    }

    #[cfg(unix)]
    #[test]
    fn only_a_missing_file_is_404_and_want_of_descriptors_is_503() {
        let open_failed = |errno| ServeError::from(resolve::errno_to_path_error(errno)).status();
        assert_eq!(open_failed(libc::ENOENT), 404);
        assert_eq!(open_failed(libc::ENOTDIR), 404);
        assert_eq!(open_failed(libc::EACCES), 403);
        assert_eq!(open_failed(libc::EPERM), 403);
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EIO] {
            assert_eq!(open_failed(errno), 503, "errno {errno}");
            let read_failed = ServeError::from(io::Error::from_raw_os_error(errno)).status();
            assert_eq!(read_failed, 503, "errno {errno}");
        }
        assert_eq!(open_failed(libc::ELOOP), 500);
        assert_eq!(open_failed(libc::EINVAL), 500);
    }

    #[test]
    fn unavailable_is_retryable_and_never_stored() {
        let response = ServeError::from(PathError::Unavailable(24)).into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()[header::RETRY_AFTER],
            RETRY_AFTER_SECONDS.to_string()
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let response = ServeError::from(PathError::NotFound).into_response();
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        assert!(response.headers().get(header::CACHE_CONTROL).is_none());
    }

    #[test]
    fn error_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ServeError>();
    }

    #[test]
    fn method_not_allowed_names_allowed_methods() {
        let response = ServeError::method_not_allowed().into_response();
        assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
    }

    #[test]
    fn the_429_written_as_bytes_is_a_complete_response_with_the_safety_fields() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(head.contains("X-Content-Type-Options: nosniff"));
        assert!(head.contains("Retry-After: "));
    }

    #[test]
    fn every_error_body_is_plain_text_and_not_sniffed() {
        let errors = [
            ServeError::bad_request("no Host"),
            ServeError::from(PathError::Malformed),
            ServeError::not_found(),
            ServeError::from(PathError::Forbidden),
            ServeError::method_not_allowed(),
            ServeError::precondition_failed(),
            ServeError::range_not_satisfiable(10, HeaderMap::new()),
            ServeError::from(io::Error::other("disk on fire")),
        ];
        for error in errors {
            let status = error.status();
            let response = error.into_response();
            assert_eq!(response.status(), status);
            assert_eq!(
                response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff",
                "{status}"
            );
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8",
                "{status}"
            );
            assert!(!response.body().is_empty(), "{status}");
        }
    }

    #[test]
    fn range_not_satisfiable_names_the_current_length() {
        let mut fields = HeaderMap::new();
        fields.insert(header::ETAG, HeaderValue::from_static("\"t\""));
        let response = ServeError::range_not_satisfiable(1234, fields).into_response();
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */1234");
        assert_eq!(response.headers()[header::ETAG], "\"t\"");
    }

    #[test]
    fn not_modified_has_no_body_and_keeps_the_validators() {
        let mut fields = HeaderMap::new();
        fields.insert(header::ETAG, HeaderValue::from_static("\"t\""));
        let response = ServeError::not_modified(fields).into_response();
        assert!(response.body().is_empty());
        assert_eq!(response.headers()[header::ETAG], "\"t\"");
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
    }

    #[test]
    fn io_errors_keep_their_cause() {
        let error = ServeError::from(io::Error::other("disk on fire"));
        assert_eq!(
            error.source().map(|e| e.to_string()).as_deref(),
            Some("disk on fire")
        );
        assert!(ServeError::not_found().source().is_none());
    }
}
