//! The pages reelserve makes itself: the movie list the player asks for, directory listings, and
//! the player page compiled into the binary (used when the served root has none on disk).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::media::{self, MediaInfo};
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

/// Poster image extensions, in order of preference.
pub const POSTER_EXTENSIONS: &[&str] = &["jpg", "png", "webp"];

/// One playable file in the movie directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Movie {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Duration, picture size, codecs, bitrate, faststart (see [`describe_movies`]).
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

/// Fills in what [`list_movies`] leaves out: each movie's metadata (probed once per version of
/// the file, see [`media::probe_cached`]), its subtitles and its poster, from the files beside
/// it in `<root>/movie/`. Blocking.
pub fn describe_movies(root: &Path, movies: &mut [Movie]) {
    let directory = root.join(MOVIE_DIR);
    let root_dir = crate::resolve::Root::open(root).ok();
    let mut neighbours: Vec<String> = std::fs::read_dir(&directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    neighbours.sort();
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
                ..Movie::default()
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
    fn builtin_player_uses_absolute_media_urls() {
        let page = std::str::from_utf8(BUILTIN_PLAYER).unwrap();
        assert!(page.contains("src=\"/video\""));
        assert!(!page.contains("\"movie/big.mp4\""));
    }
}
