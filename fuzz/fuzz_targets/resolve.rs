//! Request path -> relative file path (src/resolve.rs): no path makes `decode_path` panic, and
//! a path it accepts can only name something under the root: plain segments, none of them
//! `.`, `..` or empty, none holding a separator (`/`, `\`) or NUL.
//!
//! Input: the request path (lossy UTF-8), e.g. `/movie/%C3%A9t%C3%A9.mp4`.
#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;
use reelserve::resolve::decode_path;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let Ok(path) = decode_path(&raw) else { return };
    assert!(
        raw.starts_with('/') && path.relative().is_relative(),
        "{raw:?} -> {path:?}"
    );
    assert_eq!(path.has_trailing_slash(), raw.ends_with('/'), "{raw:?}");
    for component in path.relative().components() {
        let Component::Normal(segment) = component else {
            panic!("{raw:?} -> {component:?}")
        };
        let bytes = segment.as_encoded_bytes();
        assert!(
            !matches!(bytes, b"" | b"." | b".."),
            "{raw:?} -> {segment:?}"
        );
        assert!(
            !bytes.iter().any(|&b| matches!(b, b'/' | b'\\' | 0)),
            "{raw:?} -> {segment:?}"
        );
    }
});
