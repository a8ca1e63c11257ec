//! Deciding what to send for a representation: a pure function from (method, request header
//! fields, representation, now) to a [`Plan`] (status, header fields, body segments), or to the
//! [`ServeError`] that answers instead (304, 412, 416). No IO: the file is neither read nor
//! touched here, so every outcome is unit-tested in-process below; [`crate::render`] turns a
//! plan into a hyper response.
//!
//! The order is RFC 9110's: preconditions first (§13.2.2, [`crate::conditional`]), then the
//! range (§14, [`crate::range`]), then the layout of the body (one range, or
//! `multipart/byteranges`).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use crate::body::Segment;
use crate::conditional::{
    self, MethodKind, OpaqueTag, Precondition, RequestPreconditions, Validators,
};
use crate::error::ServeError;
use crate::range::{self, ByteRange, Resolved};
use crate::representation::Representation;

/// What to send: the status, every header field about the content, and what the body is made
/// of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `200` or `206`.
    pub status: StatusCode,
    /// Representation fields, `Content-Length`, and for a 206 `Content-Range` or the multipart
    /// `Content-Type`.
    pub headers: HeaderMap,
    /// The body's pieces; `None` for HEAD, which gets the same fields and no content (§9.3.2).
    pub body: Option<VecDeque<Segment>>,
}

/// The `Server` field of every response.
pub const SERVER: &str = "reelserve";

/// How long clients may cache files (`--cache-max-age`); HTML pages always revalidate. Made
/// once per server: the field value is the same for every response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    /// `Cache-Control` for everything but HTML: `max-age=N`.
    files: HeaderValue,
}

impl CachePolicy {
    /// Files may be cached for `max_age` seconds.
    pub fn max_age(max_age: u64) -> CachePolicy {
        CachePolicy {
            files: header_value(format!("max-age={max_age}")),
        }
    }
}

/// Decides the response to `method` with `request` fields for `representation` at `now`.
/// `new_boundary` is asked for a multipart boundary only when one is needed.
pub fn plan(
    method: MethodKind,
    request: &HeaderMap,
    representation: &Representation,
    cache: &CachePolicy,
    now: SystemTime,
    new_boundary: impl FnOnce() -> String,
) -> Result<Plan, ServeError> {
    const PRECONDITIONS: [HeaderName; 5] = [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ];
    // Most requests carry none of these: one pass over the request's field names says so
    // (comparing well-known names is comparing two small numbers), where six lookups would
    // hash six names.
    let asks_for_part = request
        .keys()
        .any(|name| name == header::RANGE || PRECONDITIONS.contains(name));
    let (joined, range_header) = if asks_for_part {
        (
            PRECONDITIONS.map(|name| joined_header(request, &name)),
            request.get(header::RANGE),
        )
    } else {
        Default::default()
    };
    let preconditions = RequestPreconditions {
        if_match: joined[0].as_deref(),
        if_none_match: joined[1].as_deref(),
        if_modified_since: joined[2].as_deref(),
        if_unmodified_since: joined[3].as_deref(),
        if_range: joined[4].as_deref(),
        has_range: range_header.is_some(),
    };
    // Usually the file's own validators; a copy only for a modification time in the future.
    let clamped = not_later_than_now(representation.validators.last_modified, now);
    let clamped_copy;
    let validators = if clamped == representation.validators.last_modified {
        &representation.validators
    } else {
        clamped_copy = Validators {
            etag: representation.validators.etag,
            last_modified: clamped,
        };
        &clamped_copy
    };
    let mut headers = representation_headers(representation, validators, cache);
    let honor_range = match conditional::evaluate(method, &preconditions, validators, now) {
        Precondition::NotModified => {
            // §15.4.5: a 304 carries the validators and caching fields a 200 would have, and
            // no content, so neither its type nor its length.
            headers.remove(header::CONTENT_TYPE);
            headers.remove(header::CONTENT_LENGTH);
            return Err(ServeError::not_modified(headers));
        }
        Precondition::PreconditionFailed => return Err(ServeError::precondition_failed()),
        Precondition::Proceed { honor_range } => honor_range,
    };

    // §14.2: range handling is defined for GET only; HEAD and others ignore Range.
    let resolved = match range_header {
        Some(value) if honor_range && method == MethodKind::Get => {
            match range::parse(value.as_bytes()) {
                Ok(set) => set.resolve(representation.len),
                Err(ignored) => {
                    tracing::debug!(?ignored, "Range header ignored");
                    Resolved::WholeRepresentation
                }
            }
        }
        _ => Resolved::WholeRepresentation,
    };

    let (status, segments) = body_layout(resolved, representation, &mut headers, new_boundary)?;

    // The representation's fields already say its whole length.
    let len: u64 = segments.iter().map(Segment::len).sum();
    if len != representation.len {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(Plan {
        status,
        headers,
        body: (method == MethodKind::Get).then_some(segments),
    })
}

/// The status and body pieces for the resolved `Range` (§14, §15.3.7): the whole
/// representation, one range with its `Content-Range`, or `multipart/byteranges`; a 416 when
/// nothing is satisfiable. Adds the fields that go with the layout to `headers`.
fn body_layout(
    resolved: Resolved,
    representation: &Representation,
    headers: &mut HeaderMap,
    new_boundary: impl FnOnce() -> String,
) -> Result<(StatusCode, VecDeque<Segment>), ServeError> {
    let layout = match resolved {
        Resolved::WholeRepresentation => (
            StatusCode::OK,
            VecDeque::from([Segment::File {
                offset: 0,
                len: representation.len,
            }]),
        ),
        // §15.5.17: 416 with the current length in Content-Range (and its own content).
        Resolved::Unsatisfiable => {
            headers.remove(header::CONTENT_LENGTH);
            return Err(ServeError::range_not_satisfiable(
                representation.len,
                std::mem::take(headers),
            ));
        }
        Resolved::Satisfiable(ranges) if ranges.len() == 1 => {
            let range = ranges[0];
            headers.insert(
                header::CONTENT_RANGE,
                header_value(range.content_range(representation.len)),
            );
            (
                StatusCode::PARTIAL_CONTENT,
                VecDeque::from([Segment::File {
                    offset: range.first,
                    len: range.len(),
                }]),
            )
        }
        Resolved::Satisfiable(ranges) => {
            let boundary = new_boundary();
            let segments = multipart_segments(
                &ranges,
                &boundary,
                &representation.content_type,
                representation.len,
            );
            headers.insert(
                header::CONTENT_TYPE,
                header_value(format!("multipart/byteranges; boundary={boundary}")),
            );
            (StatusCode::PARTIAL_CONTENT, segments)
        }
    };

    Ok(layout)
}

/// The fields every response about this representation carries. They are the same for every
/// request for an unchanged file, so each thread keeps the last few sets it built
/// ([`RepresentationHeaderCache`]) and hands out a copy: a copy costs a third of building
/// them (no date or tag formatting, no validation of values, no hashing of names).
fn representation_headers(
    representation: &Representation,
    validators: &Validators,
    cache: &CachePolicy,
) -> HeaderMap {
    REPRESENTATION_HEADERS.with(|headers| {
        headers
            .borrow_mut()
            .get_or_build(representation, validators, cache)
    })
}

/// Builds [`representation_headers`]' fields.
fn build_representation_headers(
    representation: &Representation,
    validators: &Validators,
    cache: &CachePolicy,
) -> HeaderMap {
    // A copy of this map has room for exactly these fields: the ones every response about the
    // representation ends with are here too, so that setting them replaces in place instead of
    // growing the copy. `Content-Length` is the whole length, which a range or HEAD replaces;
    // `Server` is set again for every response, whatever made it.
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::SERVER, HeaderValue::from_static(SERVER));
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(representation.len),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let content_type = match &representation.content_type {
        Cow::Borrowed(known) => HeaderValue::from_static(known),
        Cow::Owned(guessed) => header_value(guessed.clone()),
    };
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::ETAG, header_value(validators.etag_header()));
    if let Some(modified) = validators.last_modified {
        headers.insert(header::LAST_MODIFIED, http_date(modified));
    }
    // No `public`: it only matters for responses to requests with Authorization (RFC 9111
    // §5.2.2.9), which this server never asks for; HTTP linters flag it as noise.
    let cache_control = if representation.is_html() {
        HeaderValue::from_static("no-cache")
    } else {
        cache.files.clone()
    };
    headers.insert(header::CACHE_CONTROL, cache_control);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(policy) = representation.content_security_policy {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    headers
}

thread_local! {
    static REPRESENTATION_HEADERS: std::cell::RefCell<RepresentationHeaderCache> =
        const { std::cell::RefCell::new(RepresentationHeaderCache::new()) };
}

/// The last few sets of [`representation_headers`] one thread built, each with everything it
/// was built from: a set is reused only when all of it is equal, so a file that changed (new
/// tag or date), another media type or another server's cache policy never gets stale fields.
/// Bounded: [`RepresentationHeaderCache::SLOTS`] sets per thread, replaced in turn.
struct RepresentationHeaderCache {
    slots: [Option<CachedHeaders>; RepresentationHeaderCache::SLOTS],
    next: usize,
}

struct CachedHeaders {
    len: u64,
    etag: OpaqueTag,
    last_modified: Option<SystemTime>,
    content_type: Cow<'static, str>,
    content_security_policy: Option<&'static str>,
    cache_control: HeaderValue,
    headers: HeaderMap,
}

impl RepresentationHeaderCache {
    const SLOTS: usize = 8;

    const fn new() -> Self {
        RepresentationHeaderCache {
            slots: [const { None }; RepresentationHeaderCache::SLOTS],
            next: 0,
        }
    }

    fn get_or_build(
        &mut self,
        representation: &Representation,
        validators: &Validators,
        cache: &CachePolicy,
    ) -> HeaderMap {
        let found = self.slots.iter().flatten().find(|cached| {
            cached.len == representation.len
                && cached.etag == validators.etag
                && cached.last_modified == validators.last_modified
                && cached.content_type == representation.content_type
                && cached.content_security_policy == representation.content_security_policy
                && cached.cache_control == cache.files
        });
        if let Some(cached) = found {
            return cached.headers.clone();
        }
        let headers = build_representation_headers(representation, validators, cache);
        self.slots[self.next] = Some(CachedHeaders {
            len: representation.len,
            etag: validators.etag,
            last_modified: validators.last_modified,
            content_type: representation.content_type.clone(),
            content_security_policy: representation.content_security_policy,
            cache_control: cache.files.clone(),
            headers: headers.clone(),
        });
        self.next = (self.next + 1) % Self::SLOTS;
        headers
    }
}

/// The `multipart/byteranges` body (RFC 9110 §14.6): each part with its own Content-Type and
/// Content-Range, file bytes as file segments (so they go out with sendfile too).
///
/// ```text
/// CRLF "--" boundary CRLF
/// Content-Type: video/mp4 CRLF
/// Content-Range: bytes 0-1/10 CRLF
/// CRLF
/// <file bytes 0..=1>          <- a file segment, not copied
/// CRLF "--" boundary CRLF ... (one block per range)
/// CRLF "--" boundary "--" CRLF
/// ```
fn multipart_segments(
    ranges: &[ByteRange],
    boundary: &str,
    content_type: &str,
    complete_len: u64,
) -> VecDeque<Segment> {
    let mut segments = VecDeque::with_capacity(ranges.len() * 2 + 1);
    for range in ranges {
        let part_head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(complete_len)
        );
        segments.push_back(Segment::Bytes(Bytes::from(part_head)));
        segments.push_back(Segment::File {
            offset: range.first,
            len: range.len(),
        });
    }
    segments.push_back(Segment::Bytes(Bytes::from(format!(
        "\r\n--{boundary}--\r\n"
    ))));
    segments
}

/// RFC 9110 §8.8.2.1: an origin server MUST NOT send a `Last-Modified` later than its `Date`;
/// a modification time in the future (clock skew, an archive unpacked with future stamps) MUST
/// be replaced by the message origination date. `now` is truncated to the second because hyper
/// renders `Date` (second resolution) after this runs, so the result is never after `Date`.
/// Conditionals are evaluated against the clamped value too, so they agree with what the client
/// saw; for `If-Range` it is a weak date (not a second old), which is what a future mtime is.
fn not_later_than_now(last_modified: Option<SystemTime>, now: SystemTime) -> Option<SystemTime> {
    last_modified.map(|modified| modified.min(conditional::truncate_to_seconds(now)))
}

/// An HTTP-date (RFC 9110 §5.6.7, IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`), written by
/// hand: every file response carries one, and formatting machinery costs several times the 29
/// bytes. Times before 1970 are written as 1970 (as `httpdate` does).
fn http_date(time: SystemTime) -> HeaderValue {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = crate::access_log::civil_from_days(days);
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let mut out = [0u8; 29];
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(day));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(of_day / 3600));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(of_day / 60 % 60));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(of_day % 60));
    out[25..].copy_from_slice(b" GMT");
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Header values we build are ASCII by construction (numbers, dates, quoted tags, MIME types).
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// All field lines of a header joined with ", " (RFC 9110 §5.3); non-UTF-8 lines are skipped,
/// which for these fields means "invalid, ignored".
fn joined_header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    let mut joined = first.to_string();
    for value in values {
        joined.push_str(", ");
        joined.push_str(value);
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const LEN: u64 = 10_000;
    const ETAG: &str = "\"tag-1\"";
    fn cache() -> CachePolicy {
        CachePolicy::max_age(3600)
    }

    fn modified() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn now() -> SystemTime {
        modified() + Duration::from_secs(3600)
    }

    fn movie() -> Representation {
        static BYTES: [u8; LEN as usize] = [7; LEN as usize];
        let mut representation = Representation::from_static(&BYTES, "video/mp4");
        representation.validators = Validators {
            etag: OpaqueTag::new("tag-1").unwrap(),
            last_modified: Some(modified()),
        };
        representation
    }

    fn request(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn plan_for(method: MethodKind, fields: &[(&'static str, &'static str)]) -> Plan {
        plan(method, &request(fields), &movie(), &cache(), now(), || {
            "B".into()
        })
        .unwrap_or_else(|e| panic!("expected a plan, got {e}"))
    }

    fn refusal(method: MethodKind, fields: &[(&'static str, &'static str)]) -> StatusCode {
        match plan(method, &request(fields), &movie(), &cache(), now(), || {
            "B".into()
        }) {
            Ok(plan) => panic!("expected a refusal, got {}", plan.status),
            Err(error) => error.status(),
        }
    }

    fn whole() -> VecDeque<Segment> {
        VecDeque::from([Segment::File {
            offset: 0,
            len: LEN,
        }])
    }

    #[test]
    fn get_without_conditions_is_200_with_the_whole_file() {
        let plan = plan_for(MethodKind::Get, &[]);
        assert_eq!(plan.status, StatusCode::OK);
        assert_eq!(plan.body, Some(whole()));
        assert_eq!(plan.headers[header::CONTENT_LENGTH], "10000");
        assert_eq!(plan.headers[header::ETAG], ETAG);
        assert_eq!(plan.headers[header::ACCEPT_RANGES], "bytes");
        assert_eq!(plan.headers[header::CONTENT_TYPE], "video/mp4");
        assert_eq!(plan.headers[header::CACHE_CONTROL], "max-age=3600");
        assert_eq!(plan.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            plan.headers[header::LAST_MODIFIED],
            httpdate::fmt_http_date(modified()).as_str()
        );
        assert!(plan.headers.get(header::CONTENT_RANGE).is_none());
    }

    #[test]
    fn head_gets_the_fields_of_get_and_no_body() {
        let get = plan_for(MethodKind::Get, &[]);
        let head = plan_for(MethodKind::Head, &[]);
        assert_eq!(head.status, get.status);
        assert_eq!(head.headers, get.headers);
        assert_eq!(head.body, None);
    }

    #[test]
    fn head_ignores_range() {
        let head = plan_for(MethodKind::Head, &[("range", "bytes=0-9")]);
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers[header::CONTENT_LENGTH], "10000");
    }

    #[test]
    fn one_range_is_206_with_content_range() {
        let plan = plan_for(MethodKind::Get, &[("range", "bytes=100-199")]);
        assert_eq!(plan.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(plan.headers[header::CONTENT_RANGE], "bytes 100-199/10000");
        assert_eq!(plan.headers[header::CONTENT_LENGTH], "100");
        assert_eq!(
            plan.body,
            Some(VecDeque::from([Segment::File {
                offset: 100,
                len: 100
            }]))
        );
    }

    #[test]
    fn several_ranges_are_a_multipart_206_with_exact_length() {
        let plan = plan_for(MethodKind::Get, &[("range", "bytes=0-1, 5-5")]);
        assert_eq!(plan.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            plan.headers[header::CONTENT_TYPE],
            "multipart/byteranges; boundary=B"
        );
        assert!(plan.headers.get(header::CONTENT_RANGE).is_none());
        let body = plan.body.unwrap_or_default();
        let len: u64 = body.iter().map(Segment::len).sum();
        assert_eq!(
            plan.headers[header::CONTENT_LENGTH],
            len.to_string().as_str()
        );
        assert_eq!(
            body[0],
            Segment::Bytes(Bytes::from_static(
                b"\r\n--B\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-1/10000\r\n\r\n"
            ))
        );
        assert_eq!(body[1], Segment::File { offset: 0, len: 2 });
        assert_eq!(body[3], Segment::File { offset: 5, len: 1 });
        assert_eq!(
            body[4],
            Segment::Bytes(Bytes::from_static(b"\r\n--B--\r\n"))
        );
    }

    #[test]
    fn boundary_is_made_only_for_multipart() {
        let mut asked = false;
        let _ = plan(
            MethodKind::Get,
            &request(&[("range", "bytes=0-1")]),
            &movie(),
            &cache(),
            now(),
            || {
                asked = true;
                "B".into()
            },
        );
        assert!(!asked);
    }

    #[test]
    fn unsatisfiable_range_is_416_with_the_length() {
        let error = plan(
            MethodKind::Get,
            &request(&[("range", "bytes=20000-")]),
            &movie(),
            &cache(),
            now(),
            || "B".into(),
        )
        .err()
        .map(ServeError::into_response);
        let Some(response) = error else {
            panic!("expected 416")
        };
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */10000");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(response.headers()[header::ETAG], ETAG);
        // Its length is its own text's (hyper's), never the file's.
        assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
    }

    #[test]
    fn invalid_or_unknown_range_is_ignored() {
        for range in ["bytes=oops", "items=0-1", "bytes=5-1"] {
            let plan = plan(
                MethodKind::Get,
                &HeaderMap::from_iter([(header::RANGE, HeaderValue::from_static(range))]),
                &movie(),
                &cache(),
                now(),
                || "B".into(),
            );
            assert_eq!(plan.map(|p| p.status).ok(), Some(StatusCode::OK), "{range}");
        }
    }

    #[test]
    fn matching_if_none_match_is_304_with_validators_and_no_content_type() {
        let error = plan(
            MethodKind::Get,
            &request(&[("if-none-match", "\"tag-1\"")]),
            &movie(),
            &cache(),
            now(),
            || "B".into(),
        )
        .err();
        let Some(response) = error.map(ServeError::into_response) else {
            panic!("expected 304")
        };
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], ETAG);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "max-age=3600");
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
        assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
        assert!(response.body().is_empty());
    }

    #[test]
    fn if_modified_since_not_older_is_304() {
        let status = refusal(
            MethodKind::Head,
            &[("if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT")],
        );
        assert_eq!(status, StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn failing_if_match_is_412() {
        assert_eq!(
            refusal(MethodKind::Get, &[("if-match", "\"other\"")]),
            StatusCode::PRECONDITION_FAILED
        );
    }

    #[test]
    fn failing_if_unmodified_since_is_412() {
        assert_eq!(
            refusal(
                MethodKind::Get,
                &[("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT")]
            ),
            StatusCode::PRECONDITION_FAILED
        );
    }

    #[test]
    fn if_range_with_the_current_etag_keeps_the_range() {
        let plan = plan_for(
            MethodKind::Get,
            &[("range", "bytes=0-9"), ("if-range", "\"tag-1\"")],
        );
        assert_eq!(plan.status, StatusCode::PARTIAL_CONTENT);
    }

    #[test]
    fn if_range_with_another_etag_drops_the_range() {
        let plan = plan_for(
            MethodKind::Get,
            &[("range", "bytes=0-9"), ("if-range", "\"tag-0\"")],
        );
        assert_eq!(plan.status, StatusCode::OK);
        assert_eq!(plan.body, Some(whole()));
    }

    #[test]
    fn if_range_with_the_exact_date_keeps_the_range_and_another_drops_it() {
        let exact = plan_for(
            MethodKind::Get,
            &[
                ("range", "bytes=0-9"),
                ("if-range", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ],
        );
        assert_eq!(exact.status, StatusCode::PARTIAL_CONTENT);
        let other = plan_for(
            MethodKind::Get,
            &[
                ("range", "bytes=0-9"),
                ("if-range", "Tue, 14 Nov 2023 22:13:21 GMT"),
            ],
        );
        assert_eq!(other.status, StatusCode::OK);
    }

    #[test]
    fn html_revalidates_on_every_use() {
        let page = Representation::from_static(b"<p>hi</p>", "text/html; charset=utf-8");
        let plan = plan(
            MethodKind::Get,
            &HeaderMap::new(),
            &page,
            &cache(),
            now(),
            || "B".into(),
        );
        assert_eq!(
            plan.ok().map(|p| p.headers[header::CACHE_CONTROL].clone()),
            Some(HeaderValue::from_static("no-cache"))
        );
    }

    #[test]
    fn future_last_modified_is_clamped_to_now() {
        let now = UNIX_EPOCH + Duration::from_millis(1_000_000_500);
        let past = UNIX_EPOCH + Duration::from_secs(5);
        let future = now + Duration::from_secs(3600);
        assert_eq!(not_later_than_now(Some(past), now), Some(past));
        assert_eq!(
            not_later_than_now(Some(future), now),
            Some(UNIX_EPOCH + Duration::from_secs(1_000_000))
        );
        assert_eq!(not_later_than_now(None, now), None);
    }

    proptest::proptest! {
        /// The hand-written HTTP-date is exactly `httpdate`'s (up to the year 9999, its range).
        #[test]
        fn http_date_is_imf_fixdate(secs in 0u64..253_402_300_800) {
            let time = UNIX_EPOCH + Duration::from_secs(secs);
            let ours = http_date(time);
            proptest::prop_assert_eq!(ours.to_str().unwrap_or_default(), httpdate::fmt_http_date(time));
        }
    }

    /// The per-thread copy of representation fields is reused only for equal inputs: a file
    /// rewritten in place (new tag, new date), another type or another cache policy gets its
    /// own fields, and a reused set is exactly what building it again gives.
    #[test]
    fn representation_fields_are_reused_only_for_the_same_inputs() {
        let fields = |representation: &Representation, cache: &CachePolicy| {
            let plan = plan(
                MethodKind::Get,
                &request(&[]),
                representation,
                cache,
                now(),
                || "B".into(),
            )
            .unwrap_or_else(|e| panic!("expected a plan, got {e}"));
            plan.headers
        };
        let first = fields(&movie(), &cache());
        assert_eq!(first, fields(&movie(), &cache()));
        assert_eq!(
            first,
            build_representation_headers(&movie(), &movie().validators, &cache())
        );
        assert_eq!(first[header::CONTENT_LENGTH], "10000");

        // The same tag for another length (a tag that does not encode it) is another set.
        let mut truncated = movie();
        truncated.len = 10;
        assert_eq!(fields(&truncated, &cache())[header::CONTENT_LENGTH], "10");
        assert_eq!(fields(&movie(), &cache())[header::CONTENT_LENGTH], "10000");

        let mut rewritten = movie();
        rewritten.validators = Validators {
            etag: OpaqueTag::new("tag-2").unwrap(),
            last_modified: Some(modified() + Duration::from_secs(1)),
        };
        let after = fields(&rewritten, &cache());
        assert_eq!(after[header::ETAG], "\"tag-2\"");
        assert_eq!(
            after[header::LAST_MODIFIED],
            "Tue, 14 Nov 2023 22:13:21 GMT"
        );
        assert_eq!(fields(&movie(), &cache())[header::ETAG], ETAG);

        let mut retyped = movie();
        retyped.content_type = Cow::Borrowed("video/webm");
        assert_eq!(
            fields(&retyped, &cache())[header::CONTENT_TYPE],
            "video/webm"
        );
        let shorter = CachePolicy::max_age(60);
        assert_eq!(
            fields(&movie(), &shorter)[header::CACHE_CONTROL],
            "max-age=60"
        );
        assert_eq!(
            fields(&movie(), &cache())[header::CACHE_CONTROL],
            "max-age=3600"
        );
    }

    #[test]
    fn http_date_examples() {
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }

    #[test]
    fn joined_header_combines_field_lines() {
        let mut headers = HeaderMap::new();
        headers.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\""));
        headers.append(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\""));
        assert_eq!(
            joined_header(&headers, &header::IF_NONE_MATCH).as_deref(),
            Some("\"a\", \"b\"")
        );
        assert_eq!(joined_header(&headers, &header::IF_MATCH), None);
    }
}
