//! Memory-mapped views of file regions, and the per-connection registry that lets the socket
//! writer recognise them.
//!
//! A [`MappedChunk`] is a `Buf` whose bytes are an `mmap` of part of a file. hyper queues it as
//! it is (no copy, `writev(true)`) and later hands its address to
//! [`crate::zero_copy::ZeroCopyStream::poll_write_vectored`] as an `IoSlice`. The writer asks the
//! [`MappedRegistry`] which file and offset that address stands for and, in `sendfile` mode,
//! sends from the file descriptor instead of from memory: the mapped pages are never touched in
//! user space. Any writer that does not know the trick still sends the right bytes, because
//! `chunk()` really is the file's content.
//!
//! What this is not: a cache. Each chunk maps its own window and unmaps it when hyper drops it.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Buf;
use memmap2::{Mmap, MmapOptions};

/// Mapped regions alive on one connection, by address. A connection holds at most a few (the
/// chunks hyper has queued, and the last whole-file mapping kept for reuse), so a vector is the
/// right map.
#[derive(Debug, Default)]
pub struct MappedRegistry {
    regions: Mutex<Vec<RegisteredRegion>>,
    /// The last whole-file mapping made on this connection, kept for the next response about
    /// the same file: a player asks for many ranges of one movie on one connection, and a
    /// mapping that is never touched in user space costs only address space, while
    /// `mmap`/`munmap` per response costs syscalls and a TLB shootdown on every core.
    reusable: Mutex<Option<(FileKey, Arc<Mapping>)>>,
    /// The kept mapping served a response since the connection was last idle.
    reusable_used: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct RegisteredRegion {
    start: usize,
    len: usize,
    file: Arc<File>,
    file_offset: u64,
}

/// Where an address inside a registered region comes from.
#[derive(Debug, Clone)]
pub struct FileSpan {
    /// The file the mapping was made from.
    pub file: Arc<File>,
    /// File offset of the looked-up address.
    pub offset: u64,
    /// Mapped bytes from that address to the end of the region.
    pub available: usize,
}

/// What identifies one version of a file: a mapping made for one key serves every response
/// with the same key. A file rewritten in place changes length or mtime; a replaced file
/// changes inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileKey {
    /// The key of an open file's metadata.
    #[cfg(unix)]
    pub fn from_metadata(metadata: &std::fs::Metadata) -> FileKey {
        use std::os::unix::fs::MetadataExt;
        FileKey {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.len(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
        }
    }

    /// The key of an open file's metadata.
    #[cfg(not(unix))]
    pub fn from_metadata(metadata: &std::fs::Metadata) -> FileKey {
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        FileKey {
            dev: 0,
            ino: 0,
            len: metadata.len(),
            mtime_ns,
        }
    }
}

/// Largest file mapped whole for reuse; larger ones are mapped window by window and unmapped as
/// each is sent. A kept mapping costs address space (and keeps a deleted file's blocks
/// allocated until it is released), so this bounds both per connection: 4,096 connections
/// hold at most 4 TiB of the 128 TiB a 64-bit process has. 32-bit targets never map whole files.
const MAX_REUSABLE_MAPPING: u64 = if cfg!(target_pointer_width = "64") {
    1 << 30
} else {
    0
};

impl MappedRegistry {
    /// Which file region the address `ptr` lies in, if it lies in a registered mapping.
    pub fn lookup(&self, ptr: *const u8) -> Option<FileSpan> {
        let address = ptr as usize;
        self.lock()
            .iter()
            .find(|r| address >= r.start && address < r.start + r.len)
            .map(|r| {
                // Stateless: the offset is derived from the address on every call, so it stays
                // right after partial writes and for every part of a multipart body.
                let delta = address - r.start;
                FileSpan {
                    file: Arc::clone(&r.file),
                    offset: r.file_offset + delta as u64,
                    available: r.len - delta,
                }
            })
    }

    /// Whether `ptr` lies in a registered mapping: what the writer asks of every slice, without
    /// the `Arc` clone a full [`lookup`](Self::lookup) makes.
    pub fn contains(&self, ptr: *const u8) -> bool {
        let address = ptr as usize;
        self.lock()
            .iter()
            .any(|r| address >= r.start && address < r.start + r.len)
    }

    /// Where the mapped slices among `bufs` are: the index of the first one, and how many
    /// mapped bytes there are in all (one look at the registry for the whole write).
    pub fn mapped_slices(&self, bufs: &[std::io::IoSlice<'_>]) -> (Option<usize>, usize) {
        let regions = self.lock();
        let mut first = None;
        let mut total = 0;
        for (index, buf) in bufs.iter().enumerate() {
            let address = buf.as_ptr() as usize;
            let mapped = !buf.is_empty()
                && regions
                    .iter()
                    .any(|r| address >= r.start && address < r.start + r.len);
            if mapped {
                first.get_or_insert(index);
                total += buf.len();
            }
        }
        (first, total)
    }

    /// Number of live regions (tests check that mappings are released).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no region is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// At the end of a burst of requests: drops the kept mapping unless a response since the
    /// last call used it.
    pub fn forget_reusable_unless_used(&self) {
        use std::sync::atomic::Ordering;
        if !self.reusable_used.swap(false, Ordering::AcqRel) && self.has_reusable() {
            self.forget_reusable();
        }
    }

    /// Whether a whole-file mapping is kept for reuse.
    pub fn has_reusable(&self) -> bool {
        self.reusable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Drops the mapping kept for reuse (it is unmapped once no queued chunk uses it): the
    /// connection calls this when it has been idle for a moment, so a keep-alive connection
    /// does not pin the last file it sent (a deleted movie's disk space, or address space).
    pub fn forget_reusable(&self) {
        let kept = self
            .reusable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(kept);
    }

    fn register(&self, region: RegisteredRegion) {
        self.lock().push(region);
    }

    fn unregister(&self, start: usize) {
        self.lock().retain(|r| r.start != start);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<RegisteredRegion>> {
        // A panic while holding this lock cannot leave the vector inconsistent (push/retain
        // are the only mutations), so a poisoned lock is still safe to use.
        self.regions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One `mmap` of a file region, registered for as long as it lives.
struct Mapping {
    map: Mmap,
    /// Start of the wanted bytes inside `map` (mappings start on a page boundary).
    data_start: usize,
    /// The registry to leave on drop. Weak: the registry's reuse slot holds mappings, and a
    /// registry that is gone (connection closed) has nothing to leave.
    registry: Weak<MappedRegistry>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("len", &self.bytes().len())
            .finish()
    }
}

impl Mapping {
    /// Maps `len` bytes of `file` from `offset` and registers them.
    fn new(
        file: &Arc<File>,
        offset: u64,
        len: usize,
        registry: &Arc<MappedRegistry>,
    ) -> io::Result<Mapping> {
        debug_assert!(len > 0, "empty regions are never mapped");
        let page = page_size() as u64;
        let aligned = offset - offset % page;
        let data_start = (offset - aligned) as usize;
        // SAFETY: memmap2's contract is that the file is not modified while mapped, or reading
        // the mapping may fault. reelserve never writes files, and user space never reads these
        // pages on the sendfile path; the writev path reads them inside the kernel, where a page
        // that vanished (file truncated) makes `writev` fail with EFAULT instead of raising
        // SIGBUS. Paths that would copy mapped bytes in user space (TLS, HTTP/2) do not use
        // mapped chunks at all.
        let map = unsafe {
            MmapOptions::new()
                .offset(aligned)
                .len(data_start + len)
                .map(&**file)?
        };
        registry.register(RegisteredRegion {
            start: map.as_ptr() as usize + data_start,
            len,
            file: Arc::clone(file),
            file_offset: offset,
        });
        Ok(Mapping {
            map,
            data_start,
            registry: Arc::downgrade(registry),
        })
    }

    fn bytes(&self) -> &[u8] {
        &self.map[self.data_start..]
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Leave the registry before `map` is unmapped (fields drop after this runs), so no
        // writer can look up an address that is no longer mapped.
        if let Some(registry) = self.registry.upgrade() {
            registry.unregister(self.map.as_ptr() as usize + self.data_start);
        }
    }
}

/// A view of a mapped file region, as a `Buf` hyper can queue.
pub struct MappedChunk {
    mapping: Arc<Mapping>,
    /// Read position inside the mapping's bytes (advances as hyper writes).
    pos: usize,
    /// End of the view inside the mapping's bytes.
    end: usize,
}

impl std::fmt::Debug for MappedChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedChunk")
            .field("remaining", &self.remaining())
            .finish()
    }
}

impl MappedChunk {
    /// Maps `len` bytes of `file` from `offset` for this chunk alone (unmapped when it drops).
    ///
    /// # Errors
    /// Whatever `mmap(2)` says (e.g. the file system cannot map).
    pub fn map(
        file: &Arc<File>,
        offset: u64,
        len: usize,
        registry: &Arc<MappedRegistry>,
    ) -> io::Result<MappedChunk> {
        Ok(MappedChunk {
            mapping: Arc::new(Mapping::new(file, offset, len, registry)?),
            pos: 0,
            end: len,
        })
    }

    /// A view of `len` bytes from `offset` of a whole-file mapping shared by the responses on
    /// this connection about the same version of the file (`key`); mapped on first use.
    ///
    /// # Errors
    /// Whatever `mmap(2)` says.
    pub fn map_reusable(
        file: &Arc<File>,
        key: FileKey,
        offset: u64,
        len: usize,
        registry: &Arc<MappedRegistry>,
    ) -> io::Result<MappedChunk> {
        if key.len > MAX_REUSABLE_MAPPING || offset + len as u64 > key.len {
            return MappedChunk::map(file, offset, len, registry);
        }
        registry
            .reusable_used
            .store(true, std::sync::atomic::Ordering::Release);
        let mut reusable = registry.reusable.lock().unwrap_or_else(|e| e.into_inner());
        let mapping = match &*reusable {
            Some((kept, mapping)) if *kept == key => Arc::clone(mapping),
            _ => {
                let mapping = Arc::new(Mapping::new(file, 0, key.len as usize, registry)?);
                *reusable = Some((key, Arc::clone(&mapping)));
                mapping
            }
        };
        Ok(MappedChunk {
            mapping,
            pos: offset as usize,
            end: offset as usize + len,
        })
    }
}

impl Buf for MappedChunk {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn chunk(&self) -> &[u8] {
        &self.mapping.bytes()[self.pos..self.end]
    }

    fn advance(&mut self, cnt: usize) {
        assert!(
            cnt <= self.remaining(),
            "advance past the end of a mapped chunk"
        );
        self.pos += cnt;
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always supported on Unix.
    #[cfg(unix)]
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    #[cfg(not(unix))]
    let size = 4096;
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(content: &[u8]) -> Arc<File> {
        let path = std::env::temp_dir().join(format!(
            "reelserve-mapped-{}-{}",
            std::process::id(),
            content.len()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        Arc::new(file)
    }

    #[test]
    fn unaligned_window_reads_the_right_bytes_and_registers() {
        let content: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let file = temp_file(&content);
        let registry = Arc::new(MappedRegistry::default());
        let mut chunk = MappedChunk::map(&file, 5000, 7000, &registry).unwrap();
        assert_eq!(chunk.chunk(), &content[5000..12000]);
        assert_eq!(registry.len(), 1);

        let span = registry.lookup(chunk.chunk().as_ptr()).unwrap();
        assert_eq!((span.offset, span.available), (5000, 7000));
        chunk.advance(1234);
        let span = registry.lookup(chunk.chunk().as_ptr()).unwrap();
        assert_eq!((span.offset, span.available), (6234, 5766));
        assert_eq!(chunk.chunk(), &content[6234..12000]);

        // Addresses outside the window are not ours.
        assert!(registry.lookup(content.as_ptr()).is_none());
        assert!(!registry.contains(content.as_ptr()));
        assert!(registry.contains(chunk.chunk().as_ptr()));
        drop(chunk);
        assert!(registry.is_empty());
    }

    #[test]
    fn reusable_mapping_is_shared_per_file_version_and_released() {
        let content: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
        let file = temp_file(&content);
        let key = FileKey::from_metadata(&file.metadata().unwrap());
        let registry = Arc::new(MappedRegistry::default());
        let a = MappedChunk::map_reusable(&file, key, 100, 1000, &registry).unwrap();
        let b = MappedChunk::map_reusable(&file, key, 40_000, 10_000, &registry).unwrap();
        assert_eq!(a.chunk(), &content[100..1100]);
        assert_eq!(b.chunk(), &content[40_000..50_000]);
        // One whole-file mapping serves both.
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.lookup(b.chunk().as_ptr()).unwrap().offset, 40_000);
        // Another version of the file gets its own mapping; the old one goes when unused.
        let other = FileKey {
            len: key.len,
            mtime_ns: key.mtime_ns + 1,
            ..key
        };
        let c = MappedChunk::map_reusable(&file, other, 0, 10, &registry).unwrap();
        assert_eq!(registry.len(), 2);
        drop((a, b));
        assert_eq!(registry.len(), 1);
        drop(c);
        registry.forget_reusable();
        assert!(registry.is_empty());
    }
}
