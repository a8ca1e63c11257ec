//! CORS for media players on other origins (`--cors-origin`, repeatable, `*` allowed): which
//! headers a response gets, and the answer to a preflight. Pure: header values in, header
//! values out.
//!
//! Without the flag there is no policy and nothing changes (an `OPTIONS` request stays a 405).
//!
//! - Every response to an allowed origin gets `Access-Control-Allow-Origin` (the origin itself,
//!   or `*` when `*` is allowed) and `Access-Control-Expose-Headers: Content-Range,
//!   Accept-Ranges, Content-Length, ETag`, so `fetch()`-based players can read them (by default
//!   a cross-origin script sees only the CORS-safelisted response headers).
//! - With a list of origins every response says `Vary: Origin`, allowed or not: the answer
//!   depends on the request's `Origin`, and a shared cache must not hand one origin's answer
//!   to another (Fetch standard, "CORS protocol and HTTP caches").
//! - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed
//!   origin gets 204 with the methods (GET, HEAD), the request headers a player sends (`Range`
//!   and the conditional ones) and `Access-Control-Max-Age`. One from another origin is
//!   answered as before, with a 405, which the browser takes as a refusal.
//!
//! Not here: credentials (`Access-Control-Allow-Credentials`). Signed links carry their
//! authority in the URL, so players need no cookies.

use http::header::{self, HeaderMap, HeaderValue};

/// The response headers a cross-origin script may read, beyond the safelisted ones.
pub const EXPOSE_HEADERS: &str = "Content-Range, Accept-Ranges, Content-Length, ETag";

/// The methods answered.
pub const ALLOW_METHODS: &str = "GET, HEAD";

/// The request headers a player may send across origins.
pub const ALLOW_HEADERS: &str = "Range, If-Range, If-None-Match, If-Modified-Since";

/// Seconds a browser may cache a preflight answer: 2 hours, Chromium's cap (Firefox allows 24).
pub const MAX_AGE_SECONDS: u32 = 7200;

/// Longest origin accepted on the command line (and compared).
const MAX_ORIGIN_BYTES: usize = 2048;

/// Which origins may read responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    any: bool,
    origins: Vec<String>,
}

impl CorsPolicy {
    /// The policy for the `--cors-origin` values; `None` without any (CORS off).
    ///
    /// # Errors
    /// An origin that is not `*` nor `scheme://host[:port]` (no path, no trailing slash).
    pub fn new(origins: &[String]) -> Result<Option<CorsPolicy>, String> {
        if origins.is_empty() {
            return Ok(None);
        }
        let mut policy = CorsPolicy {
            any: false,
            origins: Vec::new(),
        };
        for origin in origins {
            if origin == "*" {
                policy.any = true;
            } else if is_serialized_origin(origin) {
                policy.origins.push(origin.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "--cors-origin {origin:?} is not an origin: write it as the browser sends \
                     it, scheme://host[:port] with no path (e.g. https://player.example.com), or *"
                ));
            }
        }
        Ok(Some(policy))
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin?;
        let text = origin.to_str().ok()?;
        let allowed = text.len() <= MAX_ORIGIN_BYTES
            && self.origins.iter().any(|o| o.eq_ignore_ascii_case(text));
        allowed.then(|| origin.clone())
    }

    /// Adds the CORS fields for a response to a request with these headers.
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if !self.any {
            response.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(allow) = self.allow_origin(request.get(header::ORIGIN)) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            response.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }

    /// The header fields of a 204 answering a preflight, when the request is a preflight
    /// (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed origin.
    pub fn preflight(&self, method: &http::Method, request: &HeaderMap) -> Option<HeaderMap> {
        if method != http::Method::OPTIONS
            || !request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let allow = self.allow_origin(request.get(header::ORIGIN))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(MAX_AGE_SECONDS),
        );
        if !self.any {
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        Some(headers)
    }
}

/// `scheme://host[:port]`, as browsers send `Origin` (RFC 6454 §6.2): a scheme, `://`, then a
/// host with no `/`, `?`, `#`, `@` or whitespace.
fn is_serialized_origin(text: &str) -> bool {
    let Some((scheme, host)) = text.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let host_ok = !host.is_empty()
        && text.len() <= MAX_ORIGIN_BYTES
        && host
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#@".contains(&b));
    scheme_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn policy(origins: &[&str]) -> CorsPolicy {
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        CorsPolicy::new(&origins).unwrap().unwrap()
    }

    fn request(origin: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    fn preflight_request(origin: &'static str) -> HeaderMap {
        let mut headers = request(Some(origin));
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("GET"),
        );
        headers
    }

    #[test]
    fn no_flag_no_policy() {
        assert_eq!(CorsPolicy::new(&[]), Ok(None));
    }

    #[test]
    fn bad_origins_are_refused_at_startup() {
        for bad in [
            "example.com",
            "https://example.com/",
            "https://a.example/path",
            "https://",
            "://x",
            "https://u@x",
        ] {
            assert!(CorsPolicy::new(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_allowed_origin_is_echoed_with_vary_and_exposed_headers() {
        let cors = policy(&["https://player.example", "http://localhost:3000"]);
        let mut response = HeaderMap::new();
        cors.apply(&request(Some("http://localhost:3000")), &mut response);
        assert_eq!(
            response[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:3000"
        );
        assert_eq!(response[header::VARY], "Origin");
        assert_eq!(
            response[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            EXPOSE_HEADERS
        );
    }

    #[test]
    fn another_origin_gets_only_vary() {
        let cors = policy(&["https://player.example"]);
        let mut response = HeaderMap::new();
        cors.apply(&request(Some("https://evil.example")), &mut response);
        assert!(!response.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(response[header::VARY], "Origin");
        let mut response = HeaderMap::new();
        cors.apply(&request(None), &mut response);
        assert!(!response.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[test]
    fn star_allows_everyone_without_vary() {
        let cors = policy(&["*"]);
        let mut response = HeaderMap::new();
        cors.apply(&request(Some("https://anyone.example")), &mut response);
        assert_eq!(response[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!response.contains_key(header::VARY));
    }

    #[test]
    fn existing_vary_is_kept() {
        let cors = policy(&["https://a.example"]);
        let mut response = HeaderMap::new();
        response.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        cors.apply(&request(None), &mut response);
        let vary: Vec<_> = response.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    }

    #[test]
    fn preflight_from_an_allowed_origin() {
        let cors = policy(&["https://a.example"]);
        let headers = cors
            .preflight(&Method::OPTIONS, &preflight_request("https://a.example"))
            .unwrap();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://a.example"
        );
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, HEAD");
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "Range, If-Range, If-None-Match, If-Modified-Since"
        );
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "7200");
    }

    #[test]
    fn not_a_preflight_or_not_allowed() {
        let cors = policy(&["https://a.example"]);
        assert!(cors
            .preflight(&Method::OPTIONS, &preflight_request("https://b.example"))
            .is_none());
        assert!(cors
            .preflight(&Method::OPTIONS, &request(Some("https://a.example")))
            .is_none());
        assert!(cors
            .preflight(&Method::GET, &preflight_request("https://a.example"))
            .is_none());
    }

    #[test]
    fn origins_compare_case_insensitively() {
        let cors = policy(&["https://Player.Example"]);
        let mut response = HeaderMap::new();
        cors.apply(&request(Some("https://player.example")), &mut response);
        assert!(response.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }
}
