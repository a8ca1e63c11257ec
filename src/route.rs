//! Routing: which resource a request path names, opened and ready to plan.
//!
//! | path | resource |
//! |---|---|
//! | `/_reelserve/movies` | JSON made once per version of `movie/` ([`crate::library`]) |
//! | `/_reelserve/stats` | JSON made on the fly ([`crate::stats`]) |
//! | `/video` | the default movie, as the tutorial's Express route served it |
//! | `/` | the root's `index.html`, else `html/movie_player.html`, else the built-in player |
//! | a directory | `301` to its slash form; then its `index.html`, else a listing |
//! | anything else | the file beneath `--root` ([`crate::resolve`]); hidden names are 404 |
//!
//! What is *sent* for a file (200, 206, 304, ...) is not decided here but by [`crate::plan`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;

use crate::error::ServeError;
use crate::pages;
use crate::representation::Representation;
use crate::resolve::{self, DecodedPath, Opened, PathError};
use crate::state::ServerState;
use crate::stats::ServerStats;

/// Prefix of the server's own endpoints (kept out of the way of files).
pub const API_PREFIX: &str = "/_reelserve/";

/// What a request path names.
#[derive(Debug)]
pub enum Resource {
    /// A file or a page built into the binary: validators, conditionals and ranges apply.
    Representation(Representation),
    /// Content made on the fly (API JSON, listings): no validators, no ranges, never cached.
    Generated {
        /// The bytes.
        content: Bytes,
        /// Their media type.
        content_type: &'static str,
        /// `Content-Security-Policy` for pages (listings).
        policy: Option<&'static str>,
    },
}

/// Finds and opens the resource `path` names. Opening is blocking but served from the dentry
/// and page caches (one `openat2` on Linux), as nginx's own `open` + `fstat` are; directory
/// scans run on the blocking pool.
pub async fn route(
    state: &ServerState,
    path: &str,
    query: Option<&str>,
) -> Result<Resource, ServeError> {
    if let Some(endpoint) = path.strip_prefix(API_PREFIX) {
        // Boxed, as every rare branch below: the future of the common path (a file) stays
        // small, and it is allocated and moved on every request.
        return Box::pin(api(state, endpoint)).await;
    }
    let representation = match path {
        // Parity with the tutorial's Express route: the default movie, fully range-capable.
        "/video" => {
            let movie = Box::pin(state.movies.default_movie_path()).await?;
            let movie = movie.ok_or_else(ServeError::not_found)?;
            match find(state, &movie)? {
                Found::File(representation) => representation,
                Found::Directory(_) => return Err(ServeError::not_found()),
            }
        }
        "/" => front_page(state)?,
        _ => {
            let decoded = resolve::decode_path(path)?;
            if is_hidden(&decoded) {
                return Err(ServeError::not_found());
            }
            match find(state, decoded.relative()) {
                Ok(Found::File(representation)) => representation.with_content_security_policy(
                    pages::content_security_policy(decoded.relative()),
                ),
                Ok(Found::Directory(directory)) => {
                    return Box::pin(directory_resource(state, path, query, &decoded, directory))
                        .await
                }
                Err(PathError::NotFound) if pages::builtin_file(decoded.relative()).is_some() => {
                    builtin_file(decoded.relative())?
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    Ok(Resource::Representation(representation))
}

/// `/`: the root's `index.html`, else the player page on disk, else the built-in player.
fn front_page(state: &ServerState) -> Result<Representation, ServeError> {
    for candidate in ["index.html", pages::PLAYER_PAGE] {
        match find(state, Path::new(candidate)) {
            Ok(Found::File(representation)) => {
                return Ok(representation.with_content_security_policy(
                    pages::content_security_policy(Path::new(candidate)),
                ))
            }
            Ok(Found::Directory(_)) | Err(PathError::NotFound) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    builtin_file(Path::new(pages::PLAYER_PAGE))
}

/// A directory: the slash form first (relative links in its page resolve against the URL, as
/// nginx and Apache redirect), then its `index.html`, else a listing.
async fn directory_resource(
    state: &ServerState,
    url_path: &str,
    query: Option<&str>,
    decoded: &DecodedPath,
    directory: PathBuf,
) -> Result<Resource, ServeError> {
    if !decoded.has_trailing_slash() {
        let mut location = directory_location(url_path);
        // The query goes along: it may be the signed link that admitted this request.
        if let Some(query) = query {
            location.push('?');
            location.push_str(query);
        }
        let location = HeaderValue::try_from(location).map_err(|_| ServeError::not_found())?;
        return Err(ServeError::moved_permanently(location));
    }
    // The index goes through `find` like any other file: `dir/index.html` may be a symlink,
    // and one that leaves the root must not be served. A missing or escaping index means a
    // listing, as if there were none.
    match find(state, &decoded.relative().join("index.html")) {
        Ok(Found::File(representation)) => return Ok(Resource::Representation(representation)),
        Ok(Found::Directory(_)) | Err(PathError::NotFound) => {}
        Err(error) => return Err(error.into()),
    }
    let url_path = url_path.to_owned();
    let page = pages::listing_page(query);
    let cancel = pages::ListingCancel::new();
    // Dropped with this future when the client goes away: the build then stops.
    let _cancel_on_drop = cancel.on_drop();
    // Opened through a signed link, its links carry the token on.
    let link_query = match (&state.signing, query) {
        (Some(_), Some(query)) => crate::signed_link::token_query(query),
        _ => String::new(),
    };
    let html = blocking(move || {
        pages::directory_listing(&directory, &url_path, page, &cancel, &link_query)
    })
    .await?
    .map_err(std::io::Error::from)?;
    Ok(Resource::Generated {
        content: html.into(),
        content_type: "text/html; charset=utf-8",
        policy: Some(pages::listing_csp()),
    })
}

/// `/_reelserve/…`: the movie list the player reads, and the counters.
async fn api(state: &ServerState, endpoint: &str) -> Result<Resource, ServeError> {
    let content = match endpoint {
        // Made by the scan, shared by every response.
        "movies" => state.movies.list().await?.json,
        "stats" if !state.config.no_stats => state.stats.to_json(state.mode.name()).into(),
        _ => return Err(ServeError::not_found()),
    };
    Ok(Resource::Generated {
        content,
        content_type: "application/json",
        policy: None,
    })
}

/// What a path relative to the root names.
enum Found {
    File(Representation),
    Directory(PathBuf),
}

/// Opens a path relative to the root (see [`resolve::open_beneath`]), or takes its descriptor
/// from the open-file cache (`--open-file-cache`), whose `fstat` is always fresh.
fn find(state: &ServerState, relative: &Path) -> Result<Found, PathError> {
    let etag_inode = state.config.etag_inode;
    if let Some(cache) = &state.open_files {
        if let Some(hit) = cache.get(relative) {
            ServerStats::add(&state.stats.open_file_cache_hits, 1);
            return Ok(Found::File(Representation::from_shared_file(
                hit.file,
                &hit.metadata,
                &hit.path,
                etag_inode,
            )));
        }
    }
    match resolve::open_beneath(&state.root_dir, relative)? {
        Opened::File {
            file,
            metadata,
            path,
        } => {
            let file = Arc::new(file);
            if let Some(cache) = &state.open_files {
                cache.insert(relative, Arc::clone(&file), &path);
            }
            Ok(Found::File(Representation::from_shared_file(
                file, &metadata, &path, etag_inode,
            )))
        }
        Opened::Directory(directory) => Ok(Found::Directory(directory)),
    }
}

/// The built-in copy of a player file (page, script, style).
fn builtin_file(relative: &Path) -> Result<Representation, ServeError> {
    let (bytes, content_type) = pages::builtin_file(relative).ok_or_else(ServeError::not_found)?;
    Ok(Representation::from_static(bytes, content_type)
        .with_content_security_policy(pages::content_security_policy(relative)))
}

/// The `Location` of the redirect from a directory URL to its slash form. Leading slashes are
/// collapsed to one: `GET //host` names the directory `host` under the root, but echoing
/// `//host/` would be a network-path reference (RFC 3986 §4.2) sending browsers to another
/// host, an open redirect.
fn directory_location(request_path: &str) -> String {
    format!("/{}/", request_path.trim_start_matches('/'))
}

/// Hidden files (any segment starting with '.') are not served: `--root .` must not publish
/// `.git` or `.env`.
fn is_hidden(path: &DecodedPath) -> bool {
    resolve::has_hidden_segment(path.relative())
}

/// Runs blocking file-system work (directory reads) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServeError::from(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_location_is_never_a_network_path_reference() {
        assert_eq!(directory_location("/films"), "/films/");
        assert_eq!(directory_location("//films"), "/films/");
        assert_eq!(directory_location("///evil.example"), "/evil.example/");
        assert_eq!(directory_location("/a//b"), "/a//b/");
    }

    #[test]
    fn hidden_segments_anywhere_are_hidden() {
        let hidden = |raw: &str| resolve::decode_path(raw).map(|d| is_hidden(&d)).ok();
        assert_eq!(hidden("/.git/config"), Some(true));
        assert_eq!(hidden("/a/.env"), Some(true));
        assert_eq!(hidden("/movie/big.mp4"), Some(false));
        assert_eq!(hidden("/a.b/c"), Some(false));
    }
}
