//! The movie library: the list of `<root>/movie/` that `/video` and `/_reelserve/movies` use,
//! scanned once and then revalidated by the directory's identity and modification time: one
//! `stat` per request, and a rescan ([`pages::scan_movies`]) only when the directory changed.
//! With 10,000 movies every `/video` request (so every seek) used to read and `stat` them all.
//!
//! The JSON of `/_reelserve/movies` is made by the same scan, once per version of the
//! directory, and every response shares it: a client that never reads holds a reference to
//! the one copy (until the send timeout), not a copy of its own.
//!
//! What it does not see: adding, removing or renaming a movie changes the directory's mtime;
//! rewriting one in place does not, so a movie that grows after it was listed keeps its old size
//! in `/_reelserve/movies` until the next change of the directory. Requests for the movie itself
//! always `fstat` the file, so they are never stale.
//!
//! Timestamps have a granularity (a kernel tick, or a second or two on some file systems): a
//! change in the same tick as a scan leaves the mtime as it was. As git does for its index, a
//! scan is trusted only if it started [`RACY_WINDOW`] after the mtime it saw; until then each
//! request rescans (one at a time).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::pages::{self, Movie};

/// How long after a directory change its mtime might still not reflect a further change.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// The cached movie list of one root, shared by all connections.
#[derive(Debug)]
pub struct MovieIndex {
    root: PathBuf,
    directory: PathBuf,
    /// The server's `--mode`, named in the JSON.
    mode: &'static str,
    /// Shared with the scan on the blocking pool, which stores its result even if the request
    /// that started it is gone by then.
    cached: Arc<Mutex<Option<Snapshot>>>,
    /// One scan at a time: requests that find the cache stale while a scan runs wait for it
    /// (on the async side) instead of starting their own.
    scanning: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Snapshot {
    stamp: DirectoryStamp,
    /// When the scan started (before the directory was read).
    scanned_at: SystemTime,
    list: MovieList,
}

/// One version of the movie list.
#[derive(Debug, Clone)]
pub struct MovieList {
    /// The playable movies, sorted by name.
    pub movies: Arc<[Movie]>,
    /// Their `/_reelserve/movies` JSON ([`pages::movies_json`]).
    pub json: Bytes,
}

impl MovieList {
    fn of(movies: Arc<[Movie]>, mode: &str) -> MovieList {
        let json = Bytes::from(pages::movies_json(&movies, mode));
        MovieList { movies, json }
    }
}

impl Snapshot {
    /// Whether this scan still describes a directory whose stamp is `now`.
    fn is_valid_for(&self, now: &DirectoryStamp) -> bool {
        self.stamp == *now
            && self
                .stamp
                .modified
                .checked_add(RACY_WINDOW)
                .is_some_and(|settled| self.scanned_at >= settled)
    }
}

/// What changes when entries are added to, removed from or renamed in a directory, or when the
/// directory itself is replaced. The change time is in it too: a tool that restores the
/// directory's mtime after copying into it (`rsync -a`, `cp -p`) cannot restore that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirectoryStamp {
    device: u64,
    inode: u64,
    changed: (i64, i64),
    modified: SystemTime,
}

impl DirectoryStamp {
    fn of(directory: &Path) -> io::Result<DirectoryStamp> {
        let metadata = std::fs::metadata(directory)?;
        let (device, inode, changed) = identity(&metadata);
        Ok(DirectoryStamp {
            device,
            inode,
            changed,
            modified: metadata.modified()?,
        })
    }
}

/// Device, inode and change time (seconds, nanoseconds).
#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64, (i64, i64)) {
    use std::os::unix::fs::MetadataExt;
    (
        metadata.dev(),
        metadata.ino(),
        (metadata.ctime(), metadata.ctime_nsec()),
    )
}

#[cfg(not(unix))]
fn identity(_metadata: &std::fs::Metadata) -> (u64, u64, (i64, i64)) {
    (0, 0, (0, 0))
}

impl MovieIndex {
    /// The index of `<root>/movie/` for a server in `mode`; nothing is read until it is first
    /// asked.
    pub fn new(root: &Path, mode: &'static str) -> MovieIndex {
        MovieIndex {
            root: root.to_path_buf(),
            directory: root.join(pages::MOVIE_DIR),
            mode,
            cached: Arc::new(Mutex::new(None)),
            scanning: tokio::sync::Mutex::new(()),
        }
    }

    /// The playable movies, sorted by name (see [`pages::scan_movies`]).
    pub async fn movies(&self) -> io::Result<Arc<[Movie]>> {
        Ok(self.list().await?.movies)
    }

    /// The movies and their JSON. One `stat` of the directory when it has not changed since
    /// the last scan; a scan on the blocking pool when it has. No movie directory means no
    /// movies.
    pub async fn list(&self) -> io::Result<MovieList> {
        // A stat of one directory costs what the `openat2` of every request costs: it is served
        // from the dentry cache, on the async worker.
        let Ok(stamp) = DirectoryStamp::of(&self.directory) else {
            *lock(&self.cached) = None;
            return Ok(MovieList::of(Arc::from([]), self.mode));
        };
        if let Some(list) = self.cached_for(&stamp) {
            return Ok(list);
        }
        let _scanning = self.scanning.lock().await;
        // Another request may have scanned while this one waited.
        let stamp = DirectoryStamp::of(&self.directory)?;
        if let Some(list) = self.cached_for(&stamp) {
            return Ok(list);
        }
        let root = self.root.clone();
        let cached = Arc::clone(&self.cached);
        let mode = self.mode;
        tokio::task::spawn_blocking(move || {
            let scanned_at = SystemTime::now();
            // Metadata, subtitles and posters too, probed once per version of each file.
            let list = MovieList::of(pages::scan_movies(&root).into(), mode);
            tracing::debug!(
                movies = list.movies.len(),
                root = %root.display(),
                "movie index rescanned"
            );
            *lock(&cached) = Some(Snapshot {
                stamp,
                scanned_at,
                list: list.clone(),
            });
            list
        })
        .await
        .map_err(io::Error::other)
    }

    /// Scans the movies (so the first requests find the index ready) and logs a warning, with
    /// the fix, for every one browsers cannot start playing until they have fetched its end.
    /// Returns their names.
    pub async fn warn_about_slow_starts(&self) -> Vec<String> {
        let movies = self.movies().await.unwrap_or_else(|_| Arc::from([]));
        let slow: Vec<String> = movies
            .iter()
            .filter(|movie| movie.media.is_known_slow_start())
            .map(|movie| movie.name.clone())
            .collect();
        for name in &slow {
            tracing::warn!(
                movie = %Path::new(pages::MOVIE_DIR).join(name).display(),
                fix = crate::media::FASTSTART_FIX,
                "movie is not faststart (its moov box follows mdat): browsers must fetch its end \
                 before playing; rewrite it with the fix"
            );
        }
        slow
    }

    /// The path under the root of the movie `/video` plays (see [`pages::default_movie`]).
    pub async fn default_movie_path(&self) -> io::Result<Option<PathBuf>> {
        let movies = self.movies().await?;
        Ok(pages::default_movie(&movies).map(|m| Path::new(pages::MOVIE_DIR).join(&m.name)))
    }

    fn cached_for(&self, stamp: &DirectoryStamp) -> Option<MovieList> {
        lock(&self.cached)
            .as_ref()
            .filter(|snapshot| snapshot.is_valid_for(stamp))
            .map(|snapshot| snapshot.list.clone())
    }
}

/// The cache holds plain data, valid whatever a panicking holder left half done.
fn lock(cached: &Mutex<Option<Snapshot>>) -> std::sync::MutexGuard<'_, Option<Snapshot>> {
    cached.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, mtime: SystemTime) {
        std::fs::File::open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    fn names(movies: &[Movie]) -> Vec<&str> {
        movies.iter().map(|m| m.name.as_str()).collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn unchanged_directory_is_not_rescanned() {
        let root = tempfile::tempdir().unwrap();
        let movies = root.path().join("movie");
        std::fs::create_dir(&movies).unwrap();
        std::fs::write(movies.join("a.mp4"), b"a").unwrap();
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        set_mtime(&movies, an_hour_ago);
        let index = MovieIndex::new(root.path(), "sendfile");
        let rt = runtime();
        let first = rt.block_on(index.movies()).unwrap();
        assert_eq!(names(&first), ["a.mp4"]);
        let second = rt.block_on(index.list()).unwrap();
        assert!(
            Arc::ptr_eq(&first, &second.movies),
            "rescanned an unchanged directory"
        );
        // The JSON is the scan's, shared: the same bytes, not a copy per request.
        let third = rt.block_on(index.list()).unwrap();
        assert_eq!(second.json.as_ptr(), third.json.as_ptr());
        assert!(std::str::from_utf8(&third.json)
            .unwrap()
            .contains("\"a.mp4\""));
        // A movie added, then the mtime put back as `rsync -a` does: the change time tells.
        // (Apart by more than a timestamp tick from the stamp the scan saw.)
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(movies.join("b.mp4"), b"b").unwrap();
        set_mtime(&movies, an_hour_ago);
        assert_eq!(
            names(&rt.block_on(index.movies()).unwrap()),
            ["a.mp4", "b.mp4"]
        );
        assert_eq!(
            rt.block_on(index.default_movie_path()).unwrap(),
            Some(PathBuf::from("movie/a.mp4"))
        );
    }

    #[test]
    fn recently_changed_directory_is_rescanned_until_it_settles() {
        let root = tempfile::tempdir().unwrap();
        let movies = root.path().join("movie");
        std::fs::create_dir(&movies).unwrap();
        std::fs::write(movies.join("a.mp4"), b"a").unwrap();
        let index = MovieIndex::new(root.path(), "sendfile");
        let rt = runtime();
        let first = rt.block_on(index.movies()).unwrap();
        // Within the racy window a change in the same tick could hide: scan again.
        let second = rt.block_on(index.movies()).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(first, second);
    }

    #[test]
    fn missing_movie_directory_means_no_movies() {
        let root = tempfile::tempdir().unwrap();
        let index = MovieIndex::new(root.path(), "sendfile");
        let rt = runtime();
        assert!(rt.block_on(index.movies()).unwrap().is_empty());
        assert_eq!(rt.block_on(index.default_movie_path()).unwrap(), None);
        std::fs::create_dir(root.path().join("movie")).unwrap();
        std::fs::write(root.path().join("movie/sample.mp4"), b"s").unwrap();
        assert_eq!(
            rt.block_on(index.default_movie_path()).unwrap(),
            Some(PathBuf::from("movie/sample.mp4"))
        );
    }
}
