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
/// directory) names under `canonical_root` (which must already be canonical), the portable
/// way: `canonicalize` (which follows symlinks), then a prefix check. Blocking.
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

/// The served directory: its canonical path and, on Linux, a directory descriptor that
/// [`open_beneath`] resolves request paths against with `openat2(RESOLVE_BENEATH)`.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    dir: Option<std::os::fd::OwnedFd>,
}

impl Root {
    /// Opens the root directory. Fails if it does not exist or cannot be resolved.
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = path.canonicalize()?;
        #[cfg(target_os = "linux")]
        let dir = linux::open_dir(&path);
        Ok(Root {
            path,
            #[cfg(target_os = "linux")]
            dir,
        })
    }

    /// The canonical path of the root.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A file or directory under the root, opened.
#[derive(Debug)]
pub enum Opened {
    /// A regular file, open for reading, with its `fstat`.
    File {
        /// The open file.
        file: std::fs::File,
        /// Its metadata, from the open descriptor.
        metadata: std::fs::Metadata,
        /// Where it is (for its media type: the requested name's extension).
        path: PathBuf,
    },
    /// A directory.
    Directory(PathBuf),
}

/// Opens what a relative path (from [`DecodedPath::relative`], or a name read from a
/// directory) names under the root, following symlinks only inside it. Blocking.
///
/// On Linux this is one `openat2(RESOLVE_BENEATH)` plus an `fstat`: the kernel refuses any
/// resolution that leaves the root, so no `realpath` walk (a `readlink` per component) is
/// needed. Absolute symlinks are refused by `RESOLVE_BENEATH` even when they point inside the
/// root; those (and kernels without `openat2`) take the portable path: [`locate`], then open.
pub fn open_beneath(root: &Root, relative: &Path) -> Result<Opened, PathError> {
    debug_assert!(relative
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    #[cfg(target_os = "linux")]
    if let Some(dir) = &root.dir {
        if let Some(opened) = linux::open_beneath(dir, &root.path, relative) {
            return opened;
        }
    }
    match locate(&root.path, relative)? {
        Located::Directory(path) => Ok(Opened::Directory(path)),
        Located::File(path) => {
            let file = std::fs::File::open(&path).map_err(io_to_path_error)?;
            let metadata = file.metadata().map_err(io_to_path_error)?;
            if !metadata.is_file() {
                return Err(PathError::NotFound);
            }
            Ok(Opened::File {
                file,
                metadata,
                path,
            })
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};

    use nix::errno::Errno;
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use nix::sys::stat::Mode;

    use super::{io_to_path_error, Opened, PathError};

    /// Cleared the first time the kernel says it has no `openat2` (Linux < 5.6).
    static HAS_OPENAT2: AtomicBool = AtomicBool::new(true);

    pub(super) fn open_dir(path: &Path) -> Option<OwnedFd> {
        nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
    }

    /// `None` means "cannot tell here, use the portable path".
    pub(super) fn open_beneath(
        dir: &OwnedFd,
        root: &Path,
        relative: &Path,
    ) -> Option<Result<Opened, PathError>> {
        if !HAS_OPENAT2.load(Ordering::Relaxed) {
            return None;
        }
        let target: &Path = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = match openat2(dir.as_fd(), target, how) {
            Ok(fd) => fd,
            Err(Errno::ENOSYS) => {
                HAS_OPENAT2.store(false, Ordering::Relaxed);
                return None;
            }
            // Leaving the root, or an absolute symlink (maybe pointing inside): let the
            // portable path decide.
            Err(Errno::EXDEV | Errno::ELOOP | Errno::EAGAIN) => return None,
            Err(errno) => return Some(Err(io_to_path_error(errno.into()))),
        };
        let file = std::fs::File::from(fd);
        let metadata = match file.metadata() {
            Ok(metadata) => metadata,
            Err(error) => return Some(Err(io_to_path_error(error))),
        };
        let path: PathBuf = root.join(relative);
        Some(if metadata.is_dir() {
            Ok(Opened::Directory(path))
        } else if metadata.is_file() {
            Ok(Opened::File {
                file,
                metadata,
                path,
            })
        } else {
            // FIFOs, sockets, devices: reading one could block or stream forever.
            Err(PathError::NotFound)
        })
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
        let _ = std::fs::remove_file(root.join("relative"));
        let _ = std::fs::remove_file(root.join("climb"));
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("inside.txt"), root.join("alias")).unwrap();
        let root = root.canonicalize().unwrap();
        let at = |p: &str| locate(&root, decode_path(p).unwrap().relative());
        assert_eq!(at("/escape"), Err(PathError::NotFound));
        assert_eq!(at("/alias"), Ok(Located::File(root.join("inside.txt"))));
        assert_eq!(at("/missing"), Err(PathError::NotFound));
        assert_eq!(at("/"), Ok(Located::Directory(root.clone())));

        // open_beneath agrees: the fast path for plain files and relative links, the portable
        // path for the absolute symlink that stays inside.
        std::os::unix::fs::symlink("inside.txt", root.join("relative")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("climb")).unwrap();
        let opened = Root::open(&root).unwrap();
        let open = |p: &str| match open_beneath(&opened, decode_path(p).unwrap().relative()) {
            Ok(Opened::File { metadata, .. }) => Ok(metadata.len()),
            Ok(Opened::Directory(_)) => Ok(u64::MAX),
            Err(e) => Err(e),
        };
        assert_eq!(open("/inside.txt"), Ok(2));
        assert_eq!(open("/relative"), Ok(2));
        assert_eq!(open("/alias"), Ok(2));
        assert_eq!(open("/escape"), Err(PathError::NotFound));
        assert_eq!(open("/climb"), Err(PathError::NotFound));
        assert_eq!(open("/missing"), Err(PathError::NotFound));
        assert_eq!(open("/"), Ok(u64::MAX));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
