//! The pages reelserve makes itself: the movie list the player asks for, directory listings, and
//! the player page compiled into the binary (used when the served root has none on disk).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::representation::content_type_for;

/// The player page, as shipped in `html/movie_player.html`.
pub const BUILTIN_PLAYER: &[u8] = include_bytes!("../html/movie_player.html");

/// Directory (under the root) that holds the movies the player lists.
pub const MOVIE_DIR: &str = "movie";

/// The movie `/video` serves when it exists, as in the original tutorial.
pub const BIG_MOVIE: &str = "big.mp4";

/// The small movie shipped in the repository.
pub const SAMPLE_MOVIE: &str = "sample.mp4";

/// Extensions the player offers.
pub const MOVIE_EXTENSIONS: &[&str] = &["mp4", "webm", "m4v", "mov", "mkv"];

/// Characters escaped in a path segment of a URL we generate (RFC 3986 pchar, conservatively).
const SEGMENT: &AsciiSet = &CONTROLS
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

/// One playable file in the movie directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movie {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

impl Movie {
    /// Absolute URL of the movie.
    pub fn url(&self) -> String {
        format!("/{MOVIE_DIR}/{}", utf8_percent_encode(&self.name, SEGMENT))
    }
}

/// The playable files in `<root>/movie/`, sorted by name. Hidden files and names that are not
/// UTF-8 are left out. Blocking.
pub fn list_movies(root: &Path) -> Vec<Movie> {
    let Ok(entries) = std::fs::read_dir(root.join(MOVIE_DIR)) else {
        return Vec::new();
    };
    let mut movies: Vec<Movie> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let extension = Path::new(&name).extension()?.to_str()?.to_ascii_lowercase();
            if name.starts_with('.') || !MOVIE_EXTENSIONS.contains(&extension.as_str()) {
                return None;
            }
            // Follows symlinks: a linked movie is as good as a copied one (and is still checked
            // against the root when it is requested).
            let metadata = std::fs::metadata(entry.path()).ok()?;
            metadata.is_file().then_some(Movie {
                name,
                size: metadata.len(),
            })
        })
        .collect();
    movies.sort_by(|a, b| a.name.cmp(&b.name));
    movies
}

/// The movie `/video` plays: `big.mp4` if present, else the sample, else the first one.
pub fn default_movie(movies: &[Movie]) -> Option<&Movie> {
    movies
        .iter()
        .find(|m| m.name == BIG_MOVIE)
        .or_else(|| movies.iter().find(|m| m.name == SAMPLE_MOVIE))
        .or_else(|| movies.first())
}

/// The path under the root of the movie `/video` plays. Blocking.
pub fn default_movie_path(root: &Path) -> Option<PathBuf> {
    let movies = list_movies(root);
    default_movie(&movies).map(|m| Path::new(MOVIE_DIR).join(&m.name))
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
            "{{\"name\":{},\"url\":{},\"size\":{},\"type\":{}}}",
            json_string(&movie.name),
            json_string(&movie.url()),
            movie.size,
            json_string(&content_type_for(Path::new(&movie.name)))
        );
    }
    json.push_str("]}");
    json
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

/// An HTML listing of a directory. Hidden entries are left out; names are escaped for HTML and
/// percent-encoded in links. Blocking.
pub fn directory_listing(directory: &Path, url_path: &str) -> io::Result<String> {
    let mut entries: Vec<(bool, String, String)> = std::fs::read_dir(directory)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                return None;
            }
            let is_dir = entry.file_type().ok()?.is_dir();
            let display = name.to_string_lossy().into_owned();
            let href = encode_segment(&name);
            Some((is_dir, display, href))
        })
        .collect();
    // Directories first, then by name.
    entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let title = html_escape(url_path);
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Index of {title}</title>\
         <style>body{{font:16px system-ui,sans-serif;margin:2rem;background:#111;color:#eee}}\
         a{{color:#8cf}}li{{margin:.2rem 0}}</style></head>\
         <body><h1>Index of {title}</h1><ul>"
    );
    if url_path != "/" {
        html.push_str("<li><a href=\"../\">../</a></li>");
    }
    for (is_dir, display, href) in entries {
        let slash = if is_dir { "/" } else { "" };
        let _ = write!(
            html,
            "<li><a href=\"{href}{slash}\">{}{slash}</a></li>",
            html_escape(&display)
        );
    }
    html.push_str("</ul></body></html>\n");
    Ok(html)
}

fn encode_segment(name: &OsStr) -> String {
    percent_encoding::percent_encode(name.as_encoded_bytes(), SEGMENT).to_string()
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
            "{\"mode\":\"sendfile\",\"default\":\"/movie/a%22%3Cb%3E.mp4\",\"movies\":[{\"name\":\"a\\\"\\u003cb\\u003e.mp4\",\"url\":\"/movie/a%22%3Cb%3E.mp4\",\"size\":1,\"type\":\"video/mp4\"}]}"
        );
        assert_eq!(
            movies_json(&[], "mmap"),
            "{\"mode\":\"mmap\",\"default\":null,\"movies\":[]}"
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
    fn builtin_player_uses_absolute_media_urls() {
        let page = std::str::from_utf8(BUILTIN_PLAYER).unwrap();
        assert!(page.contains("src=\"/video\""));
        assert!(!page.contains("\"movie/big.mp4\""));
    }
}
