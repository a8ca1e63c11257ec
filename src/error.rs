//! Why a request could not be served, and the one place where that becomes a status code.

use std::fmt;
use std::io;

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::ResponseBody;
use crate::resolve::PathError;
use crate::signed_link::Refusal;

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
    /// A signed link was required and not valid (logged where it was checked, with the client).
    LinkRefused(Refusal),
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

    /// The status code the client gets.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            Kind::BadPath => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::LinkRefused(Refusal::Expired) => StatusCode::GONE,
            Kind::LinkRefused(_) => StatusCode::FORBIDDEN,
            Kind::Io(error) => match error.kind() {
                io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
                io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The response: a short plain-text explanation. Server-side failures are logged here, once.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        if status.is_server_error() {
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
            Kind::LinkRefused(refusal) => f.write_str(refusal.message()),
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
        ServeError {
            kind: Kind::Io(error),
        }
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
