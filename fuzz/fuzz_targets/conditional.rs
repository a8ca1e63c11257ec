//! Preconditions (src/conditional.rs): no header values make `evaluate` panic, and its answer
//! keeps the shape of RFC 9110 §13.2.2 whatever the values say.
//!
//! Input: a request head as text (lossy UTF-8), one field per line. The first line is the
//! method (`GET`, `HEAD`; anything else is another method); `If-Match:`, `If-None-Match:`,
//! `If-Modified-Since:`, `If-Unmodified-Since:` and `If-Range:` lines give the five values
//! (repeated lines are joined with ", ", as the service joins field lines) and a `Range:` line
//! sets `has_range`. Other lines are ignored. The validators are fixed.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use reelserve::conditional::{
    evaluate, MethodKind, Precondition, RequestPreconditions, Validators,
};
use MethodKind::{Get, Head, Other};
use Precondition::{NotModified, PreconditionFailed, Proceed};

fuzz_target!(|data: &[u8]| {
    let (method, values, has_range) = parse_head(&String::from_utf8_lossy(data));
    let [if_match, if_none_match, if_modified_since, if_unmodified_since, if_range] =
        values.each_ref().map(Option::as_deref);
    let request = RequestPreconditions {
        if_match,
        if_none_match,
        if_modified_since,
        if_unmodified_since,
        if_range,
        has_range,
    };
    check(method, &request);
});

fn check(method: MethodKind, request: &RequestPreconditions<'_>) {
    let (validators, now) = fixed_validators();
    let outcome = evaluate(method, request, &validators, now);
    let context = || format!("{method:?} {request:?} -> {outcome:?}");
    let r = request;
    let holds = match outcome {
        // Steps 3-4: only GET and HEAD get a 304, and only for If-None-Match or
        // If-Modified-Since.
        NotModified => {
            method != Other && (r.if_none_match.is_some() || r.if_modified_since.is_some())
        }
        // Steps 1-3: a 412 needs If-Match, If-Unmodified-Since, or If-None-Match on another
        // method.
        PreconditionFailed => {
            r.if_match.is_some()
                || r.if_unmodified_since.is_some()
                || method == Other && r.if_none_match.is_some()
        }
        // §13.1.5: the Range is only dropped for a GET with a Range and If-Range.
        Proceed { honor_range: false } => method == Get && r.has_range && r.if_range.is_some(),
        Proceed { honor_range: true } => true,
    };
    assert!(holds, "{}", context());
    // Without any precondition: perform the method, Range honoured.
    let fields = [
        r.if_match,
        r.if_none_match,
        r.if_modified_since,
        r.if_unmodified_since,
        r.if_range,
    ];
    if fields.iter().all(Option::is_none) {
        assert_eq!(outcome, Proceed { honor_range: true }, "{}", context());
    }
    // Step 5 decides nothing but honor_range: without If-Range the answer is otherwise the
    // same. And HEAD is GET without a body (§9.3.2): same answer, If-Range never applies.
    let without_if_range = RequestPreconditions {
        if_range: None,
        ..*r
    };
    let expected = match outcome {
        Proceed { .. } => Proceed { honor_range: true },
        decided => decided,
    };
    let as_get = if method == Head { Get } else { method };
    assert_eq!(
        evaluate(as_get, &without_if_range, &validators, now),
        expected,
        "{}",
        context()
    );
}

/// A file last modified at RFC 9110's example date, asked about in 2030.
fn fixed_validators() -> (Validators, SystemTime) {
    let validators = Validators {
        etag: "abc-123".to_string(),
        // Sun, 06 Nov 1994 08:49:37 GMT
        last_modified: Some(UNIX_EPOCH + Duration::from_secs(784_111_777)),
    };
    (validators, UNIX_EPOCH + Duration::from_secs(1_893_456_000))
}

const FIELDS: [&str; 5] = [
    "If-Match:",
    "If-None-Match:",
    "If-Modified-Since:",
    "If-Unmodified-Since:",
    "If-Range:",
];

fn parse_head(head: &str) -> (MethodKind, [Option<String>; 5], bool) {
    let mut lines = head.split('\n');
    let method = match lines.next() {
        Some("GET") => Get,
        Some("HEAD") => Head,
        _ => Other,
    };
    let mut values: [Option<String>; 5] = Default::default();
    let mut has_range = false;
    for line in lines {
        has_range |= line.starts_with("Range:");
        for (name, joined) in FIELDS.iter().zip(values.iter_mut()) {
            if let Some(value) = line.strip_prefix(name) {
                let value = value.trim_matches([' ', '\t', '\r']);
                *joined = Some(match joined.take() {
                    Some(earlier) => format!("{earlier}, {value}"),
                    None => value.to_string(),
                });
            }
        }
    }
    (method, values, has_range)
}
