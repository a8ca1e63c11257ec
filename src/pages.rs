//! The pages reelserve makes itself: the movie list the player asks for, directory listings, and
//! the player page compiled into the binary (used when the served root has none on disk).
//!
//! Every HTML page made here goes out with a `Content-Security-Policy` that forbids inline
//! script: the player keeps its script and styles in files next to it
//! (`html/movie_player.{js,css}`, built in too), and the listing's one inline style is allowed
//! by its SHA-256. A file name that slipped through escaping still could not run code.
//!
//! Listings are bounded: [`LISTING_PAGE_SIZE`] entries per page (`?page=N`), and a build nobody
//! waits for any more stops ([`ListingCancel`]). The movie list is cached by
//! [`crate::library::MovieIndex`]; this module only scans and renders it.

use std::collections::BinaryHeap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::media::{self, MediaInfo};
use crate::representation::content_type_for;

/// Where the player page lives under the root (and is served from, at `/` too).
pub const PLAYER_PAGE: &str = "html/movie_player.html";

/// The player page, as shipped in `html/movie_player.html`.
pub const BUILTIN_PLAYER: &[u8] = include_bytes!("../html/movie_player.html");

/// The player's files compiled into the binary, served when the root has no copy of its own:
/// (path under the root, bytes, `Content-Type`). The page loads its script and styles by these
/// absolute paths, so a root's own copy of any of them wins, file by file.
const BUILTIN_FILES: &[(&str, &[u8], &str)] = &[
    (PLAYER_PAGE, BUILTIN_PLAYER, "text/html; charset=utf-8"),
    (
        "html/movie_player.js",
        include_bytes!("../html/movie_player.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "html/movie_player.css",
        include_bytes!("../html/movie_player.css"),
        "text/css; charset=utf-8",
    ),
];

/// The built-in copy of a player file (bytes and `Content-Type`), if `relative` names one.
pub fn builtin_file(relative: &Path) -> Option<(&'static [u8], &'static str)> {
    BUILTIN_FILES
        .iter()
        .find(|(path, _, _)| relative == Path::new(path))
        .map(|&(_, bytes, content_type)| (bytes, content_type))
}

/// `Content-Security-Policy` of the player page: script, styles, media and API calls from this
/// origin only, nothing inline, no plugins, no framing, no `<base>` or form tricks. The icon is
/// the empty `data:` one the page declares.
pub const PLAYER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; media-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The `Content-Security-Policy` for the file at `relative` under the root: the player's for the
/// player page (a root's own copy too), none for anything else. A root's own `index.html` or
/// pages are the root's business: we cannot know what they need.
pub fn content_security_policy(relative: &Path) -> Option<&'static str> {
    // Every file request asks: the bytes' ending first (a comparison of a few bytes), then the
    // components (which parses both paths).
    const PLAYER_NAME: &str = "movie_player.html";
    let ends_like_the_player = relative
        .as_os_str()
        .as_encoded_bytes()
        .ends_with(PLAYER_NAME.as_bytes());
    (ends_like_the_player && relative == Path::new(PLAYER_PAGE)).then_some(PLAYER_CSP)
}

/// The one style sheet of a directory listing, inline (a listing is one request), allowed by
/// hash in [`listing_csp`].
const LISTING_STYLE: &str = "body{font:16px system-ui,sans-serif;margin:2rem;background:#111;\
    color:#eee}a{color:#8cf}li{margin:.2rem 0}";

/// `Content-Security-Policy` of a directory listing: no script at all, only its own style.
pub fn listing_csp() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, LISTING_STYLE.as_bytes());
        format!(
            "default-src 'none'; style-src 'sha256-{}'; img-src data:; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
            base64(digest.as_ref())
        )
    })
}

/// Standard base64 with padding (RFC 4648 §4), for CSP hash sources.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Directory (under the root) that holds the movies the player lists.
pub const MOVIE_DIR: &str = "movie";

/// The movie `/video` serves when it exists, as in the original tutorial.
pub const BIG_MOVIE: &str = "big.mp4";

/// The small movie shipped in the repository.
pub const SAMPLE_MOVIE: &str = "sample.mp4";

/// Extensions the player offers.
pub const MOVIE_EXTENSIONS: &[&str] = &["mp4", "webm", "m4v", "mov", "mkv"];

/// Characters escaped in a path segment of a URL we generate (RFC 3986 pchar, conservatively).
/// `:` too, so no name can read as a scheme (`javascript:`, `data:`), and `&`, so none can
/// start a character reference in an attribute.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b':')
    .add(b'&')
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'\'');

/// Poster image extensions, in order of preference.
pub const POSTER_EXTENSIONS: &[&str] = &["jpg", "png", "webp"];

/// One playable file in the movie directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Movie {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Duration, picture size, codecs, bitrate, faststart (see [`scan_movies`]).
    pub media: MediaInfo,
    /// Subtitle files beside the movie, sorted by file name.
    pub subtitles: Vec<Subtitles>,
    /// File name of the poster image beside the movie.
    pub poster: Option<String>,
}

impl Movie {
    /// Absolute URL of the movie.
    pub fn url(&self) -> String {
        movie_dir_url(&self.name)
    }

    /// Absolute URL of the poster image.
    pub fn poster_url(&self) -> Option<String> {
        self.poster.as_deref().map(movie_dir_url)
    }
}

/// A WebVTT file beside a movie: `NAME.vtt`, or `NAME.LANG.vtt` for a language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subtitles {
    /// File name.
    pub file: String,
    /// The `LANG` of `NAME.LANG.vtt` (a BCP 47 tag such as `en` or `pt-BR`, as the file says).
    pub lang: Option<String>,
}

impl Subtitles {
    /// Absolute URL of the file.
    pub fn url(&self) -> String {
        movie_dir_url(&self.file)
    }

    /// What the player's track menu shows: the language, else "Subtitles".
    pub fn label(&self) -> &str {
        self.lang.as_deref().unwrap_or("Subtitles")
    }
}

fn movie_dir_url(file: &str) -> String {
    format!("/{MOVIE_DIR}/{}", utf8_percent_encode(file, SEGMENT))
}

/// The playable files in `<root>/movie/`, sorted by name, with their metadata (probed once per
/// version of the file, see [`media::probe_cached`]), subtitles and posters, from one read of
/// the directory. Hidden files and names that are not UTF-8 are left out. Blocking, and reads
/// and `stat`s the whole directory: requests go through the cached
/// [`crate::library::MovieIndex`].
pub fn scan_movies(root: &Path) -> Vec<Movie> {
    let names = movie_dir_names(root);
    let mut movies = movies_among(root, &names);
    describe_movies_among(root, &names, &mut movies);
    movies
}

/// The visible UTF-8 names in `<root>/movie/`, sorted (none if it cannot be read).
fn movie_dir_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join(MOVIE_DIR))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Fills in the metadata, subtitles and poster of each of `movies`, whose neighbours in `<root>/movie/`
/// are `neighbours` (sorted).
fn describe_movies_among(root: &Path, neighbours: &[String], movies: &mut [Movie]) {
    let root_dir = crate::resolve::Root::open(root).ok();
    for movie in movies {
        movie.media = root_dir
            .as_ref()
            .and_then(|root| media::probe_beneath(root, &Path::new(MOVIE_DIR).join(&movie.name)))
            .unwrap_or_default();
        let stem = Path::new(&movie.name)
            .file_stem()
            .and_then(OsStr::to_str)
            .unwrap_or(&movie.name);
        movie.subtitles = neighbours
            .iter()
            .filter_map(|file| subtitles_for(stem, file))
            .collect();
        movie.poster = POSTER_EXTENSIONS.iter().find_map(|extension| {
            neighbours
                .iter()
                .find(|file| {
                    file.strip_prefix(stem)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .is_some_and(|ext| ext.eq_ignore_ascii_case(extension))
                })
                .cloned()
        });
    }
}

/// `file` as subtitles of the movie named `stem`: `stem.vtt` or `stem.LANG.vtt`.
fn subtitles_for(stem: &str, file: &str) -> Option<Subtitles> {
    let rest = file.strip_prefix(stem)?.strip_prefix('.')?;
    let (lang, extension) = match rest.rsplit_once('.') {
        Some((lang, extension)) => (Some(lang), extension),
        None => (None, rest),
    };
    if !extension.eq_ignore_ascii_case("vtt") {
        return None;
    }
    let lang = match lang {
        None => None,
        Some(lang)
            if !lang.is_empty()
                && lang.len() <= 35
                && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Some(lang.to_string())
        }
        Some(_) => return None,
    };
    Some(Subtitles {
        file: file.to_string(),
        lang,
    })
}

/// The playable files among `names` (sorted) in `<root>/movie/`, in the same order.
fn movies_among(root: &Path, names: &[String]) -> Vec<Movie> {
    let directory = root.join(MOVIE_DIR);
    names
        .iter()
        .filter_map(|name| {
            let extension = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
            if !MOVIE_EXTENSIONS.contains(&extension.as_str()) {
                return None;
            }
            // Follows symlinks: a linked movie is as good as a copied one (and is still checked
            // against the root when it is requested).
            let metadata = std::fs::metadata(directory.join(name)).ok()?;
            metadata.is_file().then(|| Movie {
                name: name.clone(),
                size: metadata.len(),
                ..Movie::default()
            })
        })
        .collect()
}

/// The movie `/video` plays: `big.mp4` if present, else the sample, else the first one.
pub fn default_movie(movies: &[Movie]) -> Option<&Movie> {
    movies
        .iter()
        .find(|m| m.name == BIG_MOVIE)
        .or_else(|| movies.iter().find(|m| m.name == SAMPLE_MOVIE))
        .or_else(|| movies.first())
}

/// The JSON the player page reads from `/_reelserve/movies`.
pub fn movies_json(movies: &[Movie], mode: &str) -> String {
    let mut json = format!("{{\"mode\":{},\"default\":", json_string(mode));
    match default_movie(movies) {
        Some(movie) => json.push_str(&json_string(&movie.url())),
        None => json.push_str("null"),
    }
    json.push_str(",\"movies\":[");
    for (i, movie) in movies.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"name\":{},\"url\":{},\"size\":{},\"type\":{},",
            json_string(&movie.name),
            json_string(&movie.url()),
            movie.size,
            json_string(&content_type_for(Path::new(&movie.name)))
        );
        write_media_fields(&mut json, movie);
        json.push('}');
    }
    json.push_str("]}");
    json
}

/// `"duration_s":…,"width":…,…,"subtitles":[…],"poster":…` for one movie (null when unknown).
fn write_media_fields(json: &mut String, movie: &Movie) {
    let info = &movie.media;
    let number = |n: Option<u64>| n.map_or_else(|| "null".to_string(), |n| n.to_string());
    let string = |s: Option<&str>| s.map_or_else(|| "null".to_string(), json_string);
    let duration = info
        .duration
        .map_or_else(|| "null".to_string(), |d| format!("{:.3}", d.as_secs_f64()));
    let faststart = info
        .faststart
        .map_or_else(|| "null".to_string(), |f| f.to_string());
    let _ = write!(
        json,
        "\"duration_s\":{duration},\"width\":{},\"height\":{},\"video_codec\":{},\
         \"audio_codec\":{},\"bitrate\":{},\"faststart\":{faststart},\"subtitles\":[",
        number(info.width.map(u64::from)),
        number(info.height.map(u64::from)),
        string(info.video_codec.as_deref()),
        string(info.audio_codec.as_deref()),
        number(info.bitrate),
    );
    for (i, subtitles) in movie.subtitles.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"url\":{},\"lang\":{},\"label\":{}}}",
            json_string(&subtitles.url()),
            string(subtitles.lang.as_deref()),
            json_string(subtitles.label()),
        );
    }
    let _ = write!(
        json,
        "],\"poster\":{}",
        string(movie.poster_url().as_deref())
    );
}

/// A JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Also escape <, > and & so the JSON can never close a <script> it is pasted into.
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Entries on one page of a directory listing; the rest are on `?page=2`, `?page=3`, ... Five
/// thousand short names make about half a megabyte of HTML, where a 100,000-entry directory
/// listed whole made 11 MB per request.
pub const LISTING_PAGE_SIZE: usize = 5_000;

/// Which page of a listing a query string asks for: `page=N`, counted from 1. Anything else
/// (absent, `0`, not a number) means the first page; a page past the end shows the last one.
pub fn listing_page(query: Option<&str>) -> usize {
    query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter_map(|pair| pair.strip_prefix("page="))
        .find_map(|n| n.parse::<usize>().ok().filter(|&n| n >= 1))
        .unwrap_or(1)
}

/// Tells a listing being built on the blocking pool that nobody waits for it any more. The
/// request's future holds the [`CancelOnDrop`] guard; hyper drops that future when the client
/// closes or resets, and the build, which checks the flag per entry, stops.
#[derive(Debug, Clone, Default)]
pub struct ListingCancel(Arc<AtomicBool>);

impl ListingCancel {
    /// A flag nobody has set yet.
    pub fn new() -> ListingCancel {
        ListingCancel::default()
    }

    /// A guard that sets the flag when it is dropped.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Arc::clone(&self.0))
    }

    /// Whether the listing is no longer wanted.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Sets its [`ListingCancel`] when dropped (see there).
#[derive(Debug)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Why no listing was made.
#[derive(Debug)]
pub enum ListingError {
    /// The directory could not be read.
    Io(io::Error),
    /// The request went away while the listing was being built.
    Cancelled,
}

impl From<io::Error> for ListingError {
    fn from(error: io::Error) -> ListingError {
        ListingError::Io(error)
    }
}

impl From<ListingError> for io::Error {
    fn from(error: ListingError) -> io::Error {
        match error {
            ListingError::Io(error) => error,
            ListingError::Cancelled => {
                io::Error::new(io::ErrorKind::Interrupted, "listing cancelled: client gone")
            }
        }
    }
}

/// One entry of a listing, in listing order: directories first, then by name.
#[derive(Debug, PartialEq, Eq)]
struct ListingEntry {
    is_dir: bool,
    display: String,
    name: OsString,
}

impl Ord for ListingEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .is_dir
            .cmp(&self.is_dir)
            .then_with(|| self.display.cmp(&other.display))
            .then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for ListingEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Page `page` (from 1, see [`listing_page`]) of an HTML listing of a directory, at most
/// [`LISTING_PAGE_SIZE`] entries. Hidden entries are left out; names are escaped for HTML and
/// percent-encoded in `./`-prefixed links, so a link is always a relative path, whatever the
/// name. Blocking.
///
/// Bounded: the directory is read once, keeping only the first `page × LISTING_PAGE_SIZE`
/// entries in listing order (a max-heap), so the first page holds 5,000 entries in memory
/// however large the directory. `cancel` is checked per entry: a build nobody waits for stops.
///
/// `link_query` (a signed link's token, or empty) goes on every link of the page, so a listing
/// opened through a signed link can be browsed with it.
pub fn directory_listing(
    directory: &Path,
    url_path: &str,
    page: usize,
    cancel: &ListingCancel,
    link_query: &str,
) -> Result<String, ListingError> {
    let keep = page.max(1).saturating_mul(LISTING_PAGE_SIZE);
    let mut first_entries: BinaryHeap<ListingEntry> = BinaryHeap::new();
    let mut total = 0usize;
    for (read, entry) in std::fs::read_dir(directory)?.enumerate() {
        if cancel.is_cancelled() {
            tracing::debug!(
                entries_read = read,
                directory = %directory.display(),
                "directory listing abandoned: the client is gone"
            );
            return Err(ListingError::Cancelled);
        }
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        total += 1;
        let candidate = ListingEntry {
            is_dir: file_type.is_dir(),
            display: name.to_string_lossy().into_owned(),
            name,
        };
        if first_entries.len() < keep {
            first_entries.push(candidate);
        } else if first_entries.peek().is_some_and(|last| candidate < *last) {
            first_entries.pop();
            first_entries.push(candidate);
        }
    }
    let pages = total.div_ceil(LISTING_PAGE_SIZE).max(1);
    let shown = page.clamp(1, pages);
    let first = (shown - 1) * LISTING_PAGE_SIZE;
    let entries = first_entries.into_sorted_vec();
    let on_page = entries.iter().skip(first).take(LISTING_PAGE_SIZE);

    let title = html_escape(url_path);
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Index of {title}</title><link rel=\"icon\" href=\"data:,\">\
         <style>{LISTING_STYLE}</style></head>\
         <body><h1>Index of {title}</h1>"
    );
    let token = html_escape(link_query);
    let (query, more_query) = if token.is_empty() {
        (String::new(), String::new())
    } else {
        (format!("?{token}"), format!("&amp;{token}"))
    };
    let navigation = page_navigation(shown, pages, first, total, &more_query);
    html.push_str(&navigation);
    html.push_str("<ul>");
    if url_path != "/" {
        let _ = write!(html, "<li><a href=\"../{query}\">../</a></li>");
    }
    for entry in on_page {
        let slash = if entry.is_dir { "/" } else { "" };
        let _ = write!(
            html,
            "<li><a href=\"{}{slash}{query}\">{}{slash}</a></li>",
            listing_href(&entry.name),
            html_escape(&entry.display)
        );
    }
    html.push_str("</ul>");
    html.push_str(&navigation);
    html.push_str("</body></html>\n");
    Ok(html)
}

/// "Entries 5001–10000 of 12345 (page 2 of 3)" with links to the neighbouring pages; nothing
/// when everything fits on one page. `more_query` (HTML-escaped, from `&amp;`) follows `page=N`.
fn page_navigation(
    shown: usize,
    pages: usize,
    first: usize,
    total: usize,
    more_query: &str,
) -> String {
    if pages == 1 {
        return String::new();
    }
    let last = (first + LISTING_PAGE_SIZE).min(total);
    let mut nav = format!(
        "<p>Entries {}–{last} of {total} (page {shown} of {pages}).",
        first + 1
    );
    if shown > 1 {
        let _ = write!(
            nav,
            " <a href=\"?page={}{more_query}\">Previous page</a>",
            shown - 1
        );
    }
    if shown < pages {
        let _ = write!(
            nav,
            " <a href=\"?page={}{more_query}\">Next page</a>",
            shown + 1
        );
    }
    nav.push_str("</p>");
    nav
}

/// The link to a directory entry: `./` and the percent-encoded name, so it is a relative path
/// whatever the name (`javascript:x` would otherwise be read as a scheme, RFC 3986 §4.2).
fn listing_href(name: &OsStr) -> String {
    format!(
        "./{}",
        percent_encoding::percent_encode(name.as_encoded_bytes(), SEGMENT)
    )
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movie(name: &str) -> Movie {
        Movie {
            name: name.into(),
            size: 1,
            ..Movie::default()
        }
    }

    #[test]
    fn big_movie_preferred_then_sample_then_first() {
        let movies = [movie("a.webm"), movie("big.mp4"), movie("sample.mp4")];
        assert_eq!(default_movie(&movies).unwrap().name, "big.mp4");
        assert_eq!(default_movie(&movies[2..]).unwrap().name, "sample.mp4");
        assert_eq!(default_movie(&movies[..1]).unwrap().name, "a.webm");
        assert_eq!(default_movie(&[]), None);
    }

    #[test]
    fn movie_urls_are_absolute_and_encoded() {
        assert_eq!(movie("my film #1.mp4").url(), "/movie/my%20film%20%231.mp4");
        assert_eq!(movie("été.mp4").url(), "/movie/%C3%A9t%C3%A9.mp4");
    }

    #[test]
    fn movies_json_escapes_names() {
        let json = movies_json(&[movie("a\"<b>.mp4")], "sendfile");
        assert_eq!(
            json,
            "{\"mode\":\"sendfile\",\"default\":\"/movie/a%22%3Cb%3E.mp4\",\"movies\":[{\"name\":\"a\\\"\\u003cb\\u003e.mp4\",\"url\":\"/movie/a%22%3Cb%3E.mp4\",\"size\":1,\"type\":\"video/mp4\",\"duration_s\":null,\"width\":null,\"height\":null,\"video_codec\":null,\"audio_codec\":null,\"bitrate\":null,\"faststart\":null,\"subtitles\":[],\"poster\":null}]}"
        );
        assert_eq!(
            movies_json(&[], "mmap"),
            "{\"mode\":\"mmap\",\"default\":null,\"movies\":[]}"
        );
    }

    #[test]
    fn subtitles_are_name_vtt_or_name_lang_vtt() {
        let lang = |file: &str| subtitles_for("film", file).map(|s| s.lang);
        assert_eq!(lang("film.vtt"), Some(None));
        assert_eq!(lang("film.en.vtt"), Some(Some("en".into())));
        assert_eq!(lang("film.pt-BR.VTT"), Some(Some("pt-BR".into())));
        assert_eq!(lang("film.en.srt"), None);
        assert_eq!(lang("filmography.vtt"), None);
        assert_eq!(lang("film..vtt"), None);
        assert_eq!(lang("film.a.b.vtt"), None);
    }

    #[test]
    fn movies_json_lists_media_subtitles_and_poster() {
        let mut film = movie("film.mp4");
        film.media = MediaInfo {
            duration: Some(std::time::Duration::from_millis(3008)),
            width: Some(320),
            height: Some(240),
            video_codec: Some("h264".into()),
            audio_codec: Some("aac".into()),
            bitrate: Some(241_000),
            faststart: Some(false),
        };
        film.subtitles = vec![Subtitles {
            file: "film.en.vtt".into(),
            lang: Some("en".into()),
        }];
        film.poster = Some("film.jpg".into());
        let json = movies_json(&[film], "sendfile");
        assert!(
            json.contains(
                "\"duration_s\":3.008,\"width\":320,\"height\":240,\"video_codec\":\"h264\",\
             \"audio_codec\":\"aac\",\"bitrate\":241000,\"faststart\":false,\
             \"subtitles\":[{\"url\":\"/movie/film.en.vtt\",\"lang\":\"en\",\"label\":\"en\"}],\
             \"poster\":\"/movie/film.jpg\"}"
            ),
            "{json}"
        );
    }

    #[test]
    fn html_escape_covers_markup() {
        assert_eq!(
            html_escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn listing_hrefs_of_hostile_names_are_relative_paths() {
        let hostile = [
            "javascript:alert(document.domain)",
            "JaVaScRiPt:x",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "//evil.example",
            "a&quot;b",
            "\"><img src=x onerror=alert(1)>",
            " javascript:x",
        ];
        for name in hostile {
            let href = listing_href(OsStr::new(name));
            assert!(href.starts_with("./"), "{name}: {href}");
            assert!(
                !href[2..].contains(['/', ':', '&', '"', '<', '>', '\'', ' ']),
                "{name}: {href}"
            );
        }
        assert_eq!(
            listing_href(OsStr::new("javascript:alert(document.domain)")),
            "./javascript%3Aalert(document.domain)"
        );
        assert_eq!(listing_href(OsStr::new("JaVaScRiPt:x")), "./JaVaScRiPt%3Ax");
        assert_eq!(
            listing_href(OsStr::new("data:text/html,x")),
            "./data%3Atext%2Fhtml,x"
        );
        assert_eq!(listing_href(OsStr::new("a&b c.mp4")), "./a%26b%20c.mp4");
    }

    #[test]
    fn listing_of_hostile_names_links_only_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "javascript:alert(document.domain)",
            "JaVaScRiPt:x",
            "data:text,x",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("data:sub")).unwrap();
        let html = directory_listing(dir.path(), "/d/", 1, &ListingCancel::new(), "").unwrap();
        let hrefs: Vec<&str> = html
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(
            hrefs,
            [
                "data:,",
                "../",
                "./data%3Asub/",
                "./JaVaScRiPt%3Ax",
                "./data%3Atext,x",
                "./javascript%3Aalert(document.domain)",
            ]
        );
        assert!(
            html.contains(">javascript:alert(document.domain)</a>"),
            "{html}"
        );
    }

    #[test]
    fn listing_page_comes_from_the_query() {
        assert_eq!(listing_page(None), 1);
        assert_eq!(listing_page(Some("")), 1);
        assert_eq!(listing_page(Some("page=3")), 3);
        assert_eq!(listing_page(Some("sort=name&page=2")), 2);
        assert_eq!(listing_page(Some("page=0")), 1);
        assert_eq!(listing_page(Some("page=-1")), 1);
        assert_eq!(listing_page(Some("page=x&page=4")), 4);
        assert_eq!(listing_page(Some("page=99999999999999999999999")), 1);
        assert_eq!(listing_page(Some("apage=5")), 1);
    }

    #[test]
    fn listing_stops_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let cancel = ListingCancel::new();
        drop(cancel.on_drop());
        assert!(cancel.is_cancelled());
        let result = directory_listing(dir.path(), "/", 1, &cancel, "");
        assert!(matches!(result, Err(ListingError::Cancelled)), "{result:?}");
        let fresh = ListingCancel::new();
        let _guard = fresh.on_drop();
        assert!(directory_listing(dir.path(), "/", 1, &fresh, "").is_ok());
    }

    #[test]
    fn listing_order_is_directories_first_then_names() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "C"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("z")).unwrap();
        let html = directory_listing(dir.path(), "/", 1, &ListingCancel::new(), "").unwrap();
        let names: Vec<&str> = html
            .split("<li><a href=\"")
            .skip(1)
            .filter_map(|rest| rest.split("\">").nth(1)?.split("</a>").next())
            .collect();
        assert_eq!(names, ["z/", "C", "a", "b"]);
        // Everything fits: no page navigation.
        assert!(!html.contains("?page="), "{html}");
    }

    #[test]
    fn page_navigation_links_the_neighbours() {
        assert_eq!(page_navigation(1, 1, 0, 10, ""), "");
        assert_eq!(
            page_navigation(1, 3, 0, 12_345, ""),
            "<p>Entries 1–5000 of 12345 (page 1 of 3). <a href=\"?page=2\">Next page</a></p>"
        );
        assert_eq!(
            page_navigation(3, 3, 10_000, 12_345, ""),
            "<p>Entries 10001–12345 of 12345 (page 3 of 3). \
             <a href=\"?page=2\">Previous page</a></p>"
        );
    }

    #[test]
    fn listing_style_is_the_one_its_policy_allows() {
        let dir = tempfile::tempdir().unwrap();
        let html = directory_listing(dir.path(), "/", 1, &ListingCancel::new(), "").unwrap();
        let style = html
            .split("<style>")
            .nth(1)
            .and_then(|rest| rest.split("</style>").next())
            .unwrap();
        assert_eq!(style, LISTING_STYLE);
        assert_eq!(html.matches("<style>").count(), 1);
        assert!(!html.contains("<script"));
        let digest = ring::digest::digest(&ring::digest::SHA256, style.as_bytes());
        let source = format!("style-src 'sha256-{}'", base64(digest.as_ref()));
        assert!(listing_csp().contains(&source), "{}", listing_csp());
    }

    #[test]
    fn only_the_player_page_gets_the_player_policy() {
        let policy = |path: &str| content_security_policy(Path::new(path));
        assert_eq!(policy("html/movie_player.html"), Some(PLAYER_CSP));
        assert_eq!(policy("html//movie_player.html"), Some(PLAYER_CSP));
        assert_eq!(policy("movie_player.html"), None);
        assert_eq!(policy("films/html/movie_player.html"), None);
        assert_eq!(policy("html/movie_player.js"), None);
        assert_eq!(policy("movie/big.mp4"), None);
    }

    #[test]
    fn policies_are_valid_header_values_without_inline_script() {
        for policy in [PLAYER_CSP, listing_csp()] {
            assert!(http::HeaderValue::from_str(policy).is_ok(), "{policy}");
            assert!(!policy.contains("unsafe"), "{policy}");
            assert!(policy.starts_with("default-src 'none'"), "{policy}");
        }
    }

    #[test]
    fn base64_rfc_4648_test_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn builtin_player_has_no_inline_code() {
        let page = std::str::from_utf8(BUILTIN_PLAYER).unwrap();
        assert!(page.contains("<script src=\"/html/movie_player.js\"></script>"));
        assert!(page.contains("<link rel=\"stylesheet\" href=\"/html/movie_player.css\">"));
        assert_eq!(page.matches("<script").count(), 1);
        assert!(!page.contains("<style"));
        let inline_attribute = page.split_whitespace().find(|token| {
            token.starts_with("style=") || (token.starts_with("on") && token.contains('='))
        });
        assert_eq!(inline_attribute, None, "inline style or event handler");
        for path in ["html/movie_player.js", "html/movie_player.css", PLAYER_PAGE] {
            assert!(builtin_file(Path::new(path)).is_some(), "{path}");
        }
        assert!(builtin_file(Path::new("html/other.js")).is_none());
    }

    #[test]
    fn builtin_player_uses_absolute_media_urls() {
        let page = std::str::from_utf8(BUILTIN_PLAYER).unwrap();
        assert!(page.contains("src=\"/video\""));
        assert!(!page.contains("\"movie/big.mp4\""));
    }
}
