//! URL path -> file under the served root.
//!
//! [`decode_path`] is pure: it percent-decodes the request path once, segment by segment, and
//! rejects what could change which file is meant: NUL, `..`, and encoded `/` or `\`. It returns
//! a relative path made of plain segments; file names are bytes on Unix, so UTF-8, spaces and
//! any other byte a name may hold work.
//!
//! [`open_beneath`] (and its portable half, [`locate`]) is the IO edge: it opens that path under
//! the root, following symlinks only inside it, and refuses anything that ends up outside the
//! root (a symlink pointing out is reported as not found, so it cannot be used to probe the file
//! system). Two rules hold for the requested path *and* for where its symlinks lead:
//! - no segment starts with `.`: hidden files (`.git/config`, `.env`) are never served, not even
//!   through `sub/cfg.txt -> ../.git/config`;
//! - a path that demands a directory (`/file.txt/`, `/file.txt/.`) never names a regular file.
//!
//! What this is not: the status line. [`PathError`] says why a path names nothing servable, and
//! [`crate::error`] renders it; only ENOENT and ENOTDIR mean "not found", while running out of
//! descriptors or memory is a retryable `503`, never a cacheable `404`.

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
    /// The server is short of descriptors or memory, or the disk failed to answer (EMFILE,
    /// ENFILE, ENOMEM, EIO; the errno is kept): `503 Service Unavailable`, worth a retry.
    Unavailable(i32),
    /// Any other failure to open or inspect the file (its errno when there is one):
    /// `500 Internal Server Error`.
    Failed(Option<i32>),
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
///
/// A path whose last segment is empty or `.` (`/movie/`, `/movie/.`) can only name a directory:
/// its relative path keeps a trailing separator (`movie/`), so opening it fails with ENOTDIR
/// when `movie` is a regular file, as `open(2)` does for `movie/`. [`Path`] comparisons and
/// `components()` ignore that separator.
pub fn decode_path(raw: &str) -> Result<DecodedPath, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::Malformed)?;
    // Segments are decoded straight into the path's bytes, '/'-separated (one allocation for
    // the whole path: this runs on every request).
    let mut relative: Vec<u8> = Vec::with_capacity(rest.len());
    let mut wants_directory = false;
    for segment in rest.split('/') {
        let end_before = relative.len();
        if end_before > 0 {
            relative.push(b'/');
        }
        let start = relative.len();
        percent_decode_segment(segment.as_bytes(), &mut relative)?;
        let decoded = &relative[start..];
        wants_directory = matches!(decoded, b"" | b".");
        match decoded {
            // Empty and "." segments name the same directory: skip them.
            b"" | b"." => relative.truncate(end_before),
            b".." => return Err(PathError::Malformed),
            bytes if bytes.iter().any(|&b| matches!(b, 0 | b'/' | b'\\')) => {
                return Err(PathError::Malformed)
            }
            _ => {}
        }
    }
    if wants_directory && !relative.is_empty() {
        // As `PathBuf::push("")` would: just the separator.
        relative.push(b'/');
    }
    let relative = PathBuf::from(os_string_from_bytes(relative));
    debug_assert!(relative
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    Ok(DecodedPath {
        relative,
        trailing_slash: raw.ends_with('/'),
    })
}

/// Percent-decodes one segment onto the end of `out`. A `%` not followed by two hex digits is
/// malformed (RFC 3986 §2.1), not passed through, so one name has exactly one spelling... up to
/// case of hex digits.
fn percent_decode_segment(segment: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    // The bytes between escapes are copied as runs: most paths have no escape at all.
    let mut rest = segment;
    while let Some(percent) = rest.iter().position(|&b| b == b'%') {
        out.extend_from_slice(&rest[..percent]);
        let digit = |at: usize| {
            rest.get(percent + at)
                .and_then(|&h| (h as char).to_digit(16))
        };
        match (digit(1), digit(2)) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => return Err(PathError::Malformed),
        }
        rest = &rest[percent + 3..];
    }
    out.extend_from_slice(rest);
    Ok(())
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
/// way: `canonicalize` (which follows symlinks), then a prefix check and the hidden-file rule
/// on the canonical path. Blocking.
pub fn locate(canonical_root: &Path, relative: &Path) -> Result<Located, PathError> {
    debug_assert!(relative
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    if has_hidden_segment(relative) {
        return Err(PathError::NotFound);
    }
    let joined = canonical_root.join(relative);
    let canonical = joined.canonicalize().map_err(io_to_path_error)?;
    match canonical.strip_prefix(canonical_root) {
        // Where the symlinks led must obey the same rule as the request.
        Ok(beneath) if !has_hidden_segment(beneath) => {}
        _ => return Err(PathError::NotFound),
    }
    let metadata = std::fs::metadata(&canonical).map_err(io_to_path_error)?;
    if metadata.is_dir() {
        Ok(Located::Directory(canonical))
    } else if metadata.is_file() && !demands_directory(relative) {
        Ok(Located::File(canonical))
    } else {
        // `file.txt/` (a file where a directory was demanded); FIFOs, sockets, devices:
        // opening one could block or stream forever.
        Err(PathError::NotFound)
    }
}

/// Whether a path relative to the root has a segment starting with `.` (`.git`, `.env`):
/// such files are never served, whether asked for or reached through a symlink.
/// Read from the bytes, not through `components()` (which costs a parse per segment, and this
/// runs on every request): a segment starts with `.` where the path does or where `/.` occurs.
/// That also refuses a `.` segment inside the path, which `components()` would skip and
/// [`decode_path`] never leaves.
pub fn has_hidden_segment(relative: &Path) -> bool {
    let bytes = relative.as_os_str().as_encoded_bytes();
    bytes.starts_with(b".") || bytes.windows(2).any(|pair| pair == b"/.")
}

/// Whether the request path ended in a directory form (`dir/`, `dir/.`): see [`decode_path`].
fn demands_directory(relative: &Path) -> bool {
    relative
        .as_os_str()
        .as_encoded_bytes()
        .last()
        .is_some_and(|&b| std::path::is_separator(char::from(b)))
}

/// The served directory: its canonical path and, on Linux, a directory descriptor that
/// [`open_beneath`] resolves request paths against with `openat2(RESOLVE_BENEATH)`.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    #[cfg(all(target_os = "linux", not(feature = "portable-only")))]
    dir: Option<std::os::fd::OwnedFd>,
}

impl Root {
    /// Opens the root directory. Fails if it does not exist or cannot be resolved.
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = path.canonicalize()?;
        #[cfg(all(target_os = "linux", not(feature = "portable-only")))]
        let dir = linux::open_dir(&path);
        Ok(Root {
            path,
            #[cfg(all(target_os = "linux", not(feature = "portable-only")))]
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
/// directory) names under the root, following symlinks only inside it and never to a hidden
/// file. Blocking.
///
/// On Linux a path without symlinks costs one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
/// plus an `fstat`: the kernel refuses any resolution that leaves the root, and the file is
/// exactly where the (already checked) request path says. Only when a symlink is on the way
/// (ELOOP) is it opened again following symlinks beneath the root, and the kernel's own record
/// of where the descriptor landed (`/proc/self/fd/N`) is checked for hidden segments; no
/// `realpath` walk (a `readlink` per component) is needed. Absolute symlinks are refused by
/// `RESOLVE_BENEATH` even when they point inside the root; those (and kernels without
/// `openat2`, and builds with `--features portable-only`) take the portable path: [`locate`],
/// then open.
pub fn open_beneath(root: &Root, relative: &Path) -> Result<Opened, PathError> {
    debug_assert!(relative
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    if has_hidden_segment(relative) {
        return Err(PathError::NotFound);
    }
    #[cfg(all(target_os = "linux", not(feature = "portable-only")))]
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

#[cfg(all(target_os = "linux", not(feature = "portable-only")))]
mod linux {
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};

    use nix::errno::Errno;
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use nix::sys::stat::Mode;

    use super::{demands_directory, errno_to_path_error, has_hidden_segment, Opened, PathError};

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
        let fd = match open(dir, target, ResolveFlag::RESOLVE_NO_SYMLINKS) {
            Ok(fd) => fd,
            // A symlink on the way: follow it (still beneath the root), then apply the
            // hidden-file rule to where it led.
            Err(Errno::ELOOP) => match open(dir, target, ResolveFlag::empty()) {
                Ok(fd) => match resolved_beneath(&fd, root) {
                    Some(resolved) if has_hidden_segment(&resolved) => {
                        return Some(Err(PathError::NotFound))
                    }
                    Some(_) => fd,
                    None => return None,
                },
                Err(errno) => return portable_or_error(errno),
            },
            Err(errno) => return portable_or_error(errno),
        };
        let file = std::fs::File::from(fd);
        let metadata = match file.metadata() {
            Ok(metadata) => metadata,
            Err(error) => return Some(Err(super::io_to_path_error(error))),
        };
        let path: PathBuf = root.join(relative);
        Some(if metadata.is_dir() {
            Ok(Opened::Directory(path))
        } else if metadata.is_file() && !demands_directory(relative) {
            Ok(Opened::File {
                file,
                metadata,
                path,
            })
        } else {
            // FIFOs, sockets, devices: reading one could block or stream forever. (A file
            // asked for as `file.txt/` already failed with ENOTDIR.)
            Err(PathError::NotFound)
        })
    }

    /// `openat2` beneath `dir`, never through `/proc` magic links, plus `extra` rules.
    fn open(dir: &OwnedFd, target: &Path, extra: ResolveFlag) -> nix::Result<OwnedFd> {
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused afterwards).
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS | extra);
        openat2(dir.as_fd(), target, how)
    }

    fn portable_or_error(errno: Errno) -> Option<Result<Opened, PathError>> {
        match errno {
            Errno::ENOSYS => {
                HAS_OPENAT2.store(false, Ordering::Relaxed);
                None
            }
            // Leaving the root, an absolute symlink (maybe pointing inside), or a rename
            // racing the lookup: let the portable path decide.
            Errno::EXDEV | Errno::ELOOP | Errno::EAGAIN => None,
            errno => Some(Err(errno_to_path_error(errno as i32))),
        }
    }

    /// Where an open descriptor really is, relative to the root, as the kernel recorded it
    /// (`/proc/self/fd/N`). `None` when `/proc` is not mounted or the answer is not spelled
    /// beneath the root (then the portable path decides).
    fn resolved_beneath(fd: &OwnedFd, root: &Path) -> Option<PathBuf> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        link.strip_prefix(root).ok().map(Path::to_path_buf)
    }
}

/// How an IO error while looking for a file becomes a [`PathError`]; see [`errno_to_path_error`].
pub fn io_to_path_error(error: io::Error) -> PathError {
    match error.raw_os_error() {
        Some(errno) => errno_to_path_error(errno),
        None => match error.kind() {
            io::ErrorKind::NotFound => PathError::NotFound,
            io::ErrorKind::PermissionDenied => PathError::Forbidden,
            _ => PathError::Failed(None),
        },
    }
}

/// How an errno from opening or inspecting a file becomes a [`PathError`]. Only "there is no
/// such file" is a 404, which clients and caches may remember: a server out of descriptors
/// must not tell them that an existing movie is gone.
#[cfg(unix)]
pub fn errno_to_path_error(errno: i32) -> PathError {
    match errno {
        // ENAMETOOLONG: no file has that name (the client chose a name no file can have).
        // ENXIO: a socket, or a device without a driver, is not a file we serve, as FIFOs are not.
        libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ENXIO => PathError::NotFound,
        libc::EACCES | libc::EPERM => PathError::Forbidden,
        libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EIO => PathError::Unavailable(errno),
        errno => PathError::Failed(Some(errno)),
    }
}

/// How an OS error code from opening or inspecting a file becomes a [`PathError`].
#[cfg(not(unix))]
pub fn errno_to_path_error(errno: i32) -> PathError {
    match io::Error::from_raw_os_error(errno).kind() {
        io::ErrorKind::NotFound => PathError::NotFound,
        io::ErrorKind::PermissionDenied => PathError::Forbidden,
        io::ErrorKind::OutOfMemory => PathError::Unavailable(errno),
        _ => PathError::Failed(Some(errno)),
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

    #[test]
    fn directory_forms_keep_a_trailing_separator() {
        let spelled = |raw: &str| {
            let decoded = decode_path(raw).unwrap();
            decoded.relative().as_os_str().to_str().unwrap().to_owned()
        };
        for raw in ["/a/", "/a/.", "/a/%2e", "/a//", "/a/./"] {
            assert_eq!(spelled(raw), "a/", "{raw}");
        }
        assert_eq!(spelled("/a"), "a");
        assert_eq!(spelled("/a/./b"), "a/b");
        assert_eq!(spelled("/"), "");
        assert_eq!(spelled("/."), "");
        // Comparisons ignore the separator.
        assert_eq!(decode_path("/a/").unwrap().relative(), Path::new("a"));
    }

    /// `root/` with `file.txt`, `sub/`, `.git/config`, and symlinks into `.git` (relative,
    /// absolute, and through a directory link).
    #[cfg(unix)]
    fn root_with_hidden_targets() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("file.txt"), b"file").unwrap();
        std::fs::write(root.join(".git/config"), b"[core]").unwrap();
        std::fs::write(root.join("sub/plain.txt"), b"plain").unwrap();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        };
        link(Path::new("../.git/config"), "sub/cfg.txt");
        link(&root.join(".git/config"), "sub/absolute.txt");
        link(Path::new(".git"), "visible");
        link(Path::new("plain.txt"), "sub/alias.txt");
        link(Path::new("file.txt"), "file-link.txt");
        (dir, root)
    }

    /// The hidden-file and directory-form rules, asked of `find` (a resolver under test).
    #[cfg(unix)]
    fn assert_hidden_and_directory_rules(find: impl Fn(&str) -> Result<&'static str, PathError>) {
        const NOT_FOUND: Result<&str, PathError> = Err(PathError::NotFound);
        assert_eq!(find("/file.txt"), Ok("file"));
        assert_eq!(find("/sub/plain.txt"), Ok("file"));
        assert_eq!(find("/sub/alias.txt"), Ok("file"));
        assert_eq!(find("/file-link.txt"), Ok("file"));
        assert_eq!(find("/sub/"), Ok("directory"));
        assert_eq!(find("/sub/."), Ok("directory"));
        assert_eq!(find("/"), Ok("directory"));
        // Hidden, asked for by name or reached through a symlink.
        assert_eq!(find("/.git/config"), NOT_FOUND);
        assert_eq!(find("/sub/cfg.txt"), NOT_FOUND);
        assert_eq!(find("/sub/absolute.txt"), NOT_FOUND);
        assert_eq!(find("/visible/config"), NOT_FOUND);
        assert_eq!(find("/visible/"), NOT_FOUND);
        // A regular file where a directory was demanded.
        assert_eq!(find("/file.txt/"), NOT_FOUND);
        assert_eq!(find("/file.txt/."), NOT_FOUND);
        assert_eq!(find("/sub/plain.txt/"), NOT_FOUND);
        assert_eq!(find("/file-link.txt/"), NOT_FOUND);
        assert_eq!(find("/file.txt/x"), NOT_FOUND);
    }

    #[cfg(unix)]
    #[test]
    fn open_beneath_applies_the_hidden_rule_to_where_symlinks_lead() {
        let (_dir, root) = root_with_hidden_targets();
        let opened = Root::open(&root).unwrap();
        assert_hidden_and_directory_rules(|raw| {
            match open_beneath(&opened, decode_path(raw).unwrap().relative())? {
                Opened::File { .. } => Ok("file"),
                Opened::Directory(_) => Ok("directory"),
            }
        });
    }

    #[cfg(unix)]
    #[test]
    fn locate_applies_the_hidden_rule_to_where_symlinks_lead() {
        let (_dir, root) = root_with_hidden_targets();
        assert_hidden_and_directory_rules(|raw| {
            match locate(&root, decode_path(raw).unwrap().relative())? {
                Located::File(_) => Ok("file"),
                Located::Directory(_) => Ok("directory"),
            }
        });
    }

    #[test]
    fn hidden_segments_are_found_anywhere_and_only_at_a_segment_start() {
        let by_components = |path: &Path| {
            path.components()
                .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
        };
        for path in [
            "",
            ".git",
            ".git/config",
            "a/.env",
            "a/b/.c",
            "movie/big.mp4",
            "a.b/c.d",
            "a/b.",
            "a..b/c",
            "movie/",
            ".",
            "..",
            "a/..b",
            "a/b/c",
        ] {
            let path = Path::new(path);
            assert_eq!(has_hidden_segment(path), by_components(path), "{path:?}");
        }
        // Never made by `decode_path`, and refused rather than skipped.
        assert!(has_hidden_segment(Path::new("a/./b")));
    }

    #[cfg(unix)]
    #[test]
    fn only_missing_files_are_not_found() {
        let error = |errno| io_to_path_error(io::Error::from_raw_os_error(errno));
        assert_eq!(error(libc::ENOENT), PathError::NotFound);
        assert_eq!(error(libc::ENOTDIR), PathError::NotFound);
        assert_eq!(error(libc::EACCES), PathError::Forbidden);
        assert_eq!(error(libc::EPERM), PathError::Forbidden);
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EIO] {
            assert_eq!(error(errno), PathError::Unavailable(errno));
        }
        assert_eq!(error(libc::ELOOP), PathError::Failed(Some(libc::ELOOP)));
        assert_eq!(
            io_to_path_error(io::Error::other("no errno")),
            PathError::Failed(None)
        );
    }

    /// The decoder as first written, pushing each decoded segment onto a `PathBuf`: the
    /// one-buffer [`decode_path`] must give exactly its answers, byte for byte.
    fn decode_path_by_pushing(raw: &str) -> Result<(PathBuf, bool), PathError> {
        let rest = raw.strip_prefix('/').ok_or(PathError::Malformed)?;
        let mut relative = PathBuf::new();
        let mut wants_directory = false;
        for segment in rest.split('/') {
            let mut decoded = Vec::new();
            percent_decode_segment(segment.as_bytes(), &mut decoded)?;
            wants_directory = matches!(decoded.as_slice(), b"" | b".");
            match decoded.as_slice() {
                b"" | b"." => continue,
                b".." => return Err(PathError::Malformed),
                bytes if bytes.iter().any(|&b| matches!(b, 0 | b'/' | b'\\')) => {
                    return Err(PathError::Malformed)
                }
                bytes => relative.push(os_string_from_bytes(bytes.to_vec())),
            }
        }
        if wants_directory && !relative.as_os_str().is_empty() {
            relative.push("");
        }
        Ok((relative, raw.ends_with('/')))
    }

    /// The segment decoder as first written, a byte at a time: the run-copying
    /// [`percent_decode_segment`] must agree with it on every input, errors included.
    fn percent_decode_byte_by_byte(segment: &[u8]) -> Result<Vec<u8>, PathError> {
        let mut out = Vec::new();
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

    proptest! {
        #[test]
        fn run_copying_decodes_as_byte_by_byte(segment in "[a-z%0-9A-Fg\\.é]{0,24}") {
            let mut ours = b"prefix".to_vec();
            let ours = percent_decode_segment(segment.as_bytes(), &mut ours)
                .map(|()| ours[b"prefix".len()..].to_vec());
            prop_assert_eq!(ours, percent_decode_byte_by_byte(segment.as_bytes()));
        }
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
        fn decoding_into_one_buffer_matches_pushing_segments(raw in "/[a-z%./\\\\0-9A-F]{0,40}") {
            let ours = decode_path(&raw).map(|d| (d.relative().as_os_str().to_owned(), d.trailing_slash));
            let reference = decode_path_by_pushing(&raw).map(|(p, slash)| (p.into_os_string(), slash));
            prop_assert_eq!(ours, reference);
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
