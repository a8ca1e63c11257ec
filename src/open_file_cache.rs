//! `--open-file-cache SECS`: open descriptors kept for reuse, as nginx's `open_file_cache`. Off
//! by default.
//!
//! A request for a file found here costs one `fstat` of the kept descriptor instead of a path
//! resolution, an `open` (`openat2`), an `fstat` and a `close`. The `fstat` is what keeps it
//! honest: the length, modification time and so the `ETag` always come from the descriptor
//! whose bytes are sent, so a file rewritten in place is never served under its old `ETag`.
//! A file *replaced* (renamed over, or deleted and created again) is a new inode the kept
//! descriptor does not see: its old bytes, under their own old `ETag`, are served until the
//! entry is `SECS` old and the path is resolved again, which is the staleness the flag asks for.
//!
//! Bounds: at most [`MAX_ENTRIES`] descriptors; entries older than `SECS` are dropped when the
//! cache is full, and a full cache of fresh entries simply does not cache more.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most descriptors the cache keeps open (nginx's `open_file_cache max=`).
pub const MAX_ENTRIES: usize = 10_000;

/// Open files by the path they were asked for (relative to the root).
#[derive(Debug)]
pub struct OpenFileCache {
    ttl: Duration,
    entries: Mutex<HashMap<PathBuf, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    file: Arc<File>,
    /// Where the file was found (its name gives the media type).
    path: PathBuf,
    opened: Instant,
}

/// A kept descriptor with its metadata as of now.
#[derive(Debug)]
pub struct CachedFile {
    /// The open file.
    pub file: Arc<File>,
    /// Its `fstat`, taken now.
    pub metadata: Metadata,
    /// Where it was found.
    pub path: PathBuf,
}

impl OpenFileCache {
    /// A cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> OpenFileCache {
        OpenFileCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The kept descriptor for `relative`, if it is younger than the time to live, with a fresh
    /// `fstat`. An entry whose `fstat` fails is forgotten.
    pub fn get(&self, relative: &Path) -> Option<CachedFile> {
        let entry = {
            let entries = self.lock();
            let entry = entries.get(relative)?;
            if entry.opened.elapsed() >= self.ttl {
                return None;
            }
            entry.clone()
        };
        match entry.file.metadata() {
            Ok(metadata) if metadata.is_file() => Some(CachedFile {
                file: entry.file,
                metadata,
                path: entry.path,
            }),
            _ => {
                self.lock().remove(relative);
                None
            }
        }
    }

    /// Keeps `file`, just opened for `relative` and found at `path`.
    pub fn insert(&self, relative: &Path, file: Arc<File>, path: &Path) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(relative) {
            let ttl = self.ttl;
            entries.retain(|_, entry| entry.opened.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(
            relative.to_path_buf(),
            Entry {
                file,
                path: path.to_path_buf(),
                opened: Instant::now(),
            },
        );
    }

    /// Descriptors kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no descriptor is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map holds plain data, valid whatever a panicking holder left half done.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(dir: &Path, name: &str, content: &[u8]) -> (Arc<File>, PathBuf) {
        let path = dir.join(name);
        let mut file = File::create(&path).unwrap();
        file.write_all(content).unwrap();
        (Arc::new(File::open(&path).unwrap()), path)
    }

    #[test]
    fn a_kept_file_is_found_with_fresh_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = temp_file(dir.path(), "a.txt", b"hello");
        let cache = OpenFileCache::new(Duration::from_secs(60));
        assert!(cache.get(Path::new("a.txt")).is_none());
        cache.insert(Path::new("a.txt"), file, &path);
        let hit = cache.get(Path::new("a.txt")).unwrap();
        assert_eq!(hit.metadata.len(), 5);
        // Rewritten in place: the same descriptor, the new length.
        std::fs::write(&path, b"hello, world").unwrap();
        let hit = cache.get(Path::new("a.txt")).unwrap();
        assert_eq!(hit.metadata.len(), 12);
    }

    #[test]
    fn entries_expire() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = temp_file(dir.path(), "a.txt", b"hello");
        let cache = OpenFileCache::new(Duration::from_millis(1));
        cache.insert(Path::new("a.txt"), file, &path);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get(Path::new("a.txt")).is_none());
    }

    #[test]
    fn a_full_cache_of_fresh_entries_keeps_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = temp_file(dir.path(), "a.txt", b"hello");
        let cache = OpenFileCache::new(Duration::from_secs(60));
        for i in 0..MAX_ENTRIES {
            cache.insert(Path::new(&format!("{i}")), Arc::clone(&file), &path);
        }
        cache.insert(Path::new("one-more"), Arc::clone(&file), &path);
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert!(cache.get(Path::new("one-more")).is_none());
    }
}
