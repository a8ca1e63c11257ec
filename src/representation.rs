//! What a response is about: the bytes of a file (or of a page built into the binary), their
//! length, validators and media type.

use std::borrow::Cow;
use std::cell::Cell;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::body::FileKey;
use crate::conditional::{OpaqueTag, Validators};

/// Where the representation's bytes live.
#[derive(Debug, Clone)]
pub enum Content {
    /// An open file; its length and validators come from the same `fstat`.
    File(Arc<File>),
    /// Bytes compiled into the binary (the fallback player page).
    Static(Bytes),
}

/// A selected representation (RFC 9110 §3.2): the thing ranges and validators refer to.
#[derive(Debug, Clone)]
pub struct Representation {
    /// The bytes.
    pub content: Content,
    /// Total length in bytes.
    pub len: u64,
    /// `ETag` and `Last-Modified`.
    pub validators: Validators,
    /// `Content-Type`.
    pub content_type: Cow<'static, str>,
    /// Which version of which file this is (for reusing a mapping across responses).
    pub file_key: Option<FileKey>,
    /// `Content-Security-Policy` to send with it: set for the pages reelserve ships (see
    /// [`crate::pages`]), never for a root's own files, whose needs we cannot know.
    pub content_security_policy: Option<&'static str>,
}

impl Representation {
    /// A representation of a regular file already opened (see [`crate::resolve::open_beneath`])
    /// and perhaps shared (the open-file cache keeps one descriptor for many responses), with
    /// length and validators from `metadata`, an `fstat` of it taken now, so they describe
    /// exactly what will be sent even if the path is replaced meanwhile; `path` gives the media
    /// type by extension. The inode goes into the ETag only if `etag_inode` (see
    /// [`Validators::from_file_identity`]).
    pub fn from_shared_file(
        file: Arc<File>,
        metadata: &std::fs::Metadata,
        path: &Path,
        etag_inode: bool,
    ) -> Representation {
        Representation {
            validators: file_validators(
                etag_inode.then(|| inode(metadata)),
                metadata.len(),
                metadata.modified().ok(),
            ),
            len: metadata.len(),
            file_key: Some(FileKey::from_metadata(metadata)),
            content: Content::File(file),
            content_type: content_type_for(path),
            content_security_policy: None,
        }
    }

    /// A page compiled into the binary; its tag is a hash of its bytes.
    pub fn from_static(bytes: &'static [u8], content_type: &'static str) -> Representation {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        Representation {
            content: Content::Static(Bytes::from_static(bytes)),
            len: bytes.len() as u64,
            validators: Validators {
                // 24 bytes of `etagc`: always a tag.
                etag: OpaqueTag::new(&format!("builtin-{:016x}", hasher.finish()))
                    .unwrap_or(OpaqueTag::EMPTY),
                last_modified: None,
            },
            content_type: Cow::Borrowed(content_type),
            file_key: None,
            content_security_policy: None,
        }
    }

    /// The same, sent with `policy` (if any) as its `Content-Security-Policy`.
    pub fn with_content_security_policy(self, policy: Option<&'static str>) -> Representation {
        Representation {
            content_security_policy: policy,
            ..self
        }
    }

    /// Whether this is an HTML page (pages revalidate on every use; media are cached).
    pub fn is_html(&self) -> bool {
        self.content_type.starts_with("text/html")
    }
}

/// [`Validators::from_file_identity`], remembered per thread for the last file it described:
/// an unchanged file asked for again (a page, a poster, a player's next range) gets the same
/// validators, and comparing three numbers costs a tenth of writing them in hex.
fn file_validators(inode: Option<u64>, len: u64, modified: Option<SystemTime>) -> Validators {
    type Identity = (Option<u64>, u64, Option<SystemTime>);
    thread_local! {
        static LAST: Cell<Option<(Identity, Validators)>> = const { Cell::new(None) };
    }
    let identity = (inode, len, modified);
    LAST.with(|last| match last.get() {
        Some((seen, validators)) if seen == identity => validators,
        _ => {
            let validators = Validators::from_file_identity(inode, len, modified);
            last.set(Some((identity, validators)));
            validators
        }
    })
}

#[cfg(unix)]
fn inode(metadata: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_metadata: &std::fs::Metadata) -> u64 {
    0
}

/// `Content-Type` by file extension (mime_guess), with `charset=utf-8` for text types and the
/// video types browsers expect. Unknown extensions are `application/octet-stream`.
pub fn content_type_for(path: &Path) -> Cow<'static, str> {
    let extension = extension_bytes(path);
    // Lengths first: most entries differ there, and a length is cheaper to compare than bytes
    // without regard to case.
    if let Some((_, known)) = KNOWN_TYPES.iter().find(|(ext, _)| {
        ext.len() == extension.len() && ext.as_bytes().eq_ignore_ascii_case(extension)
    }) {
        return Cow::Borrowed(known);
    }
    Cow::Owned(guessed_content_type(path))
}

/// What [`Path::extension`] gives, as bytes (empty for none), read from the end of the bytes:
/// `extension()` parses the path into components first, and this runs on every request.
fn extension_bytes(path: &Path) -> &[u8] {
    let bytes = path.as_os_str().as_encoded_bytes();
    let bytes = bytes.strip_suffix(b"/").unwrap_or(bytes);
    let name = match bytes.iter().rposition(|&b| b == b'/') {
        Some(slash) => &bytes[slash + 1..],
        None => bytes,
    };
    match name.iter().rposition(|&b| b == b'.') {
        // A leading dot (`.profile`) starts a name, not an extension; `..` is no file.
        Some(0) | None => b"",
        Some(_) if name == b".." => b"",
        Some(dot) => &name[dot + 1..],
    }
}

/// The media types of the files a movie site is made of, without a lookup or an allocation per
/// request. The video types and `vtt` are ours (a movie server should not depend on a general
/// table for them, and browsers ignore a `<track>` served as anything but `text/vtt`); the
/// others are what [`guessed_content_type`] says (a test keeps them equal).
const KNOWN_TYPES: &[(&str, &str)] = &[
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("webm", "video/webm"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("vtt", "text/vtt; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("json", "application/json; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("svg", "image/svg+xml; charset=utf-8"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("webp", "image/webp"),
    ("gif", "image/gif"),
];

/// The type `mime_guess` gives `path` (octet-stream when unknown), with `charset=utf-8` for
/// text.
fn guessed_content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    if mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript" | "application/json" | "image/svg+xml"
        )
    {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_validators_are_the_ones_the_identity_gives() {
        let at = |secs, nanos| Some(std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos));
        // Each identity differs from the one before in one part, then repeats.
        let identities = [
            (Some(7), 100, at(1_700_000_000, 5)),
            (Some(7), 100, at(1_700_000_000, 5)),
            (Some(8), 100, at(1_700_000_000, 5)),
            (None, 100, at(1_700_000_000, 5)),
            (None, 101, at(1_700_000_000, 5)),
            (None, 101, at(1_700_000_000, 6)),
            (None, 101, None),
            (None, 101, None),
            (Some(7), 100, at(1_700_000_000, 5)),
        ];
        for (inode, len, modified) in identities {
            assert_eq!(
                file_validators(inode, len, modified),
                Validators::from_file_identity(inode, len, modified),
                "{inode:?} {len} {modified:?}"
            );
        }
    }

    #[test]
    fn known_types_agree_with_the_general_table_except_ours() {
        let ours = ["mp4", "m4v", "webm", "mkv", "mov", "html", "htm", "vtt"];
        for (extension, known) in KNOWN_TYPES {
            if !ours.contains(extension) {
                let path = format!("file.{extension}");
                assert_eq!(
                    guessed_content_type(Path::new(&path)),
                    *known,
                    "{extension}"
                );
            }
        }
    }

    #[test]
    fn extension_bytes_are_what_path_extension_says() {
        for path in [
            "movie/big.mp4",
            "a.MP4",
            "a.en.vtt",
            "noextension",
            "dir/",
            "dir.d/file",
            ".hidden",
            "dir/.hidden",
            "a.",
            "..",
            "a/..",
            "a.b/",
            "/abs/x.tar.gz",
            "x.mp4/",
            "",
        ] {
            let expected = Path::new(path)
                .extension()
                .map_or(&b""[..], |e| e.as_encoded_bytes());
            assert_eq!(extension_bytes(Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        let cases = [
            ("movie/big.mp4", "video/mp4"),
            ("a.MP4", "video/mp4"),
            ("a.webm", "video/webm"),
            ("a.m4v", "video/mp4"),
            ("a.mov", "video/quicktime"),
            ("a.mkv", "video/x-matroska"),
            ("a.en.vtt", "text/vtt; charset=utf-8"),
            ("poster.webp", "image/webp"),
            ("poster.jpg", "image/jpeg"),
            ("html/movie_player.html", "text/html; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("poster.png", "image/png"),
            ("blob.unknownext", "application/octet-stream"),
            ("noextension", "application/octet-stream"),
        ];
        for (path, expected) in cases {
            assert_eq!(content_type_for(Path::new(path)), expected, "{path}");
        }
    }
}
