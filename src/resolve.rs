//! URL path -> file under the served root.
//!
//! [`decode_path`] is pure: it percent-decodes the request path once, segment by segment, and
//! rejects what could change which file is meant: NUL, `..`, and encoded `/` or `\`. It returns
//! a relative path made of plain segments; file names are bytes on Unix, so UTF-8, spaces and
//! any other byte a name may hold work.
//!
//! [`locate`] is the IO edge: it joins that path to the canonical root, follows symlinks with
//! `canonicalize`, and refuses anything that ends up outside the root (a symlink pointing out
//! is reported as not found, so it cannot be used to probe the file system).

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a request path names no file we may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not an origin-form path, or it holds NUL, a `..` segment, a bad escape, or an encoded
    /// separator: `400 Bad Request`.
    Malformed,
    /// Nothing (we may show) is there: `404 Not Found`.
    NotFound,
    /// The file exists but the server may not read it: `403 Forbidden`.
    Forbidden,
}

/// A request path, decoded and checked: relative, with only normal segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPath {
    relative: PathBuf,
    trailing_slash: bool,
}

impl DecodedPath {
    /// The path relative to the root (empty for `/`).
    pub fn relative(&self) -> &Path {
        &self.relative
    }

    /// Whether the request path ended in `/` (directories are redirected to that form so
    /// relative links in listings work).
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }
}

/// Decodes a request path (the part of the target before `?`, which hyper splits off).
pub fn decode_path(raw: &str) -> Result<DecodedPath, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::Malformed)?;
    let mut relative = PathBuf::new();
    for segment in rest.split('/') {
        let decoded = percent_decode_segment(segment.as_bytes())?;
        match decoded.as_slice() {
            // Empty and "." segments name the same directory: skip them.
            b"" | b"." => continue,
            b".." => return Err(PathError::Malformed),
            bytes if bytes.iter().any(|&b| matches!(b, 0 | b'/' | b'\\')) => {
                return Err(PathError::Malformed)
            }
            bytes => relative.push(os_string_from_bytes(bytes.to_vec())),
        }
    }
    debug_assert!(relative
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    Ok(DecodedPath {
        relative,
        trailing_slash: raw.ends_with('/'),
    })
}

/// Percent-decodes one segment. A `%` not followed by two hex digits is malformed (RFC 3986
/// §2.1), not passed through, so one name has exactly one spelling... up to case of hex digits.
fn percent_decode_segment(segment: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|&h| (h as char).to_digit(16));
            let lo = bytes.next().and_then(|&l| (l as char).to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err(PathError::Malformed),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

#[cfg(unix)]
fn os_string_from_bytes(bytes: Vec<u8>) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes)
}

#[cfg(not(unix))]
fn os_string_from_bytes(bytes: Vec<u8>) -> OsString {
    OsString::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// Where a decoded path leads, on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// A regular file (canonical path).
    File(PathBuf),
    /// A directory (canonical path).
    Directory(PathBuf),
}

/// Finds the file a relative path (from [`DecodedPath::relative`], or a name read from a
/// directory) names under `canonical_root` (which must already be canonical). Follows symlinks, but only to places inside the root. Blocking: call from a
/// blocking-friendly context.
pub fn locate(canonical_root: &Path, relative: &Path) -> Result<Located, PathError> {
    debug_assert!(relative
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    let joined = canonical_root.join(relative);
    let canonical = joined.canonicalize().map_err(io_to_path_error)?;
    if !canonical.starts_with(canonical_root) {
        return Err(PathError::NotFound);
    }
    let metadata = std::fs::metadata(&canonical).map_err(io_to_path_error)?;
    if metadata.is_dir() {
        Ok(Located::Directory(canonical))
    } else if metadata.is_file() {
        Ok(Located::File(canonical))
    } else {
        // FIFOs, sockets, devices: opening one could block or stream forever.
        Err(PathError::NotFound)
    }
}

/// How an IO error while looking for a file becomes a status.
pub fn io_to_path_error(error: io::Error) -> PathError {
    match error.kind() {
        io::ErrorKind::PermissionDenied => PathError::Forbidden,
        _ => PathError::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decoded(raw: &str) -> Result<PathBuf, PathError> {
        decode_path(raw).map(|p| p.relative)
    }

    macro_rules! path_cases {
        ($($name:ident: $raw:expr => $expected:expr;)*) => {
            $(#[test] fn $name() { assert_eq!(decoded($raw), $expected, "{:?}", $raw); })*
        };
    }

    fn ok(p: &str) -> Result<PathBuf, PathError> {
        Ok(PathBuf::from(p))
    }
    const BAD: Result<PathBuf, PathError> = Err(PathError::Malformed);

    path_cases! {
        root_is_empty: "/" => ok("");
        plain_file: "/movie/big.mp4" => ok("movie/big.mp4");
        percent_encoded_space: "/my%20movie.mp4" => ok("my movie.mp4");
        utf8_name: "/movie/%C3%A9t%C3%A9.mp4" => ok("movie/été.mp4");
        raw_utf8_name: "/movie/été.mp4" => ok("movie/été.mp4");
        lowercase_hex: "/a%2eb" => ok("a.b");
        decoded_once_only: "/a%2520b" => ok("a%20b");
        plus_is_literal: "/a+b" => ok("a+b");
        empty_segments_skipped: "//movie///big.mp4" => ok("movie/big.mp4");
        dot_segments_skipped: "/./movie/./big.mp4" => ok("movie/big.mp4");
        dot_dot_rejected: "/../etc/passwd" => BAD;
        dot_dot_in_middle_rejected: "/movie/../../etc/passwd" => BAD;
        encoded_dot_dot_rejected: "/%2e%2e/etc/passwd" => BAD;
        mixed_encoded_dot_dot_rejected: "/.%2E/etc" => BAD;
        encoded_slash_rejected: "/movie%2fbig.mp4" => BAD;
        encoded_backslash_rejected: "/movie%5cbig.mp4" => BAD;
        raw_backslash_rejected: "/..\\etc" => BAD;
        nul_rejected: "/movie%00.mp4" => BAD;
        truncated_escape_rejected: "/movie%2" => BAD;
        bad_hex_rejected: "/movie%zz" => BAD;
        not_origin_form_rejected: "movie" => BAD;
        asterisk_rejected: "*" => BAD;
        dot_dot_lookalike_allowed: "/..movie/a..b" => ok("..movie/a..b");
    }

    #[test]
    fn trailing_slash_remembered() {
        assert!(decode_path("/movie/").unwrap().has_trailing_slash());
        assert!(!decode_path("/movie").unwrap().has_trailing_slash());
    }

    proptest! {
        /// Whatever the input, a decoded path is relative and made only of normal segments:
        /// it can never climb out of the root.
        #[test]
        fn decoded_paths_never_escape(raw in "/[a-z%./\\\\0-9A-F]{0,40}") {
            if let Ok(path) = decode_path(&raw) {
                prop_assert!(path.relative().components().all(|c| matches!(c, Component::Normal(_))));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(raw in ".{0,80}") {
            let _ = decode_path(&raw);
        }
    }

    #[cfg(unix)]
    #[test]
    fn locate_refuses_symlink_out_of_root() {
        let base = std::env::temp_dir().join(format!("reelserve-resolve-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(base.join("secret.txt"), b"secret").unwrap();
        std::fs::write(root.join("inside.txt"), b"ok").unwrap();
        let _ = std::fs::remove_file(root.join("escape"));
        let _ = std::fs::remove_file(root.join("alias"));
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("inside.txt"), root.join("alias")).unwrap();
        let root = root.canonicalize().unwrap();
        let at = |p: &str| locate(&root, decode_path(p).unwrap().relative());
        assert_eq!(at("/escape"), Err(PathError::NotFound));
        assert_eq!(at("/alias"), Ok(Located::File(root.join("inside.txt"))));
        assert_eq!(at("/missing"), Err(PathError::NotFound));
        assert_eq!(at("/"), Ok(Located::Directory(root.clone())));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
