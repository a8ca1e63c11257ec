//! Why a request could not be served, and the one place where that becomes a status code.
//!
//! Statuses a client or cache may remember (404, 403) are kept for what is true of the file;
//! what is true only of the server right now (out of descriptors or memory, a read-all budget
//! in use, a disk error) is a `503` with `Retry-After` and `Cache-Control: no-store`, so no
//! cache remembers an existing movie as missing.

use std::fmt;
use std::io;

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::read_all::ReadAllRefused;
use crate::body::ResponseBody;
use crate::resolve::{self, PathError};

/// Seconds a client is asked to wait before retrying a `503`: long enough for connections to
/// close or read-all buffers to be released, short enough for a video player to retry.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// A request the server cannot answer with the resource.
#[derive(Debug)]
pub struct ServeError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    BadPath,
    NotFound,
    Forbidden,
    MethodNotAllowed,
    /// Opening the file failed for want of descriptors or memory, or the disk failed (errno).
    Unavailable(i32),
    /// `--mode read-all` would need more memory than its budget has free.
    ReadAllRefused(ReadAllRefused),
    /// Opening the file failed otherwise (errno, if any).
    Failed(Option<i32>),
    Io(io::Error),
}

impl ServeError {
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

    /// Whether this is a "no such resource" error.
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, Kind::NotFound)
    }

    /// Whether the server is short of a resource right now (`503`): worth a retry later.
    pub fn is_unavailable(&self) -> bool {
        self.status() == StatusCode::SERVICE_UNAVAILABLE
    }

    /// The status code the client gets.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            Kind::BadPath => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Unavailable(_) | Kind::ReadAllRefused(_) => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

    /// The response: a short plain-text explanation. Server-side failures are logged here, once:
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
        let mut response = Response::new(ResponseBody::bytes(format!("{self}\n")));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
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
        response
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::BadPath => f.write_str("400 Bad Request: malformed or unsafe path"),
            Kind::NotFound => f.write_str("404 Not Found"),
            Kind::Forbidden => f.write_str("403 Forbidden"),
            Kind::MethodNotAllowed => {
                f.write_str("405 Method Not Allowed: this server answers GET and HEAD")
            }
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
            Kind::Io(error) => write!(f, "{}: {error}", self.status()),
        }
    }
}

impl std::error::Error for ServeError {}

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

    #[test]
    fn statuses() {
        assert_eq!(ServeError::from(PathError::Malformed).status(), 400);
        assert_eq!(ServeError::from(PathError::Forbidden).status(), 403);
        assert_eq!(ServeError::not_found().status(), 404);
        assert_eq!(ServeError::method_not_allowed().status(), 405);
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
}
