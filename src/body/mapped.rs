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
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Buf;
use memmap2::{Mmap, MmapOptions};

/// Mapped regions alive on one connection, by address. A connection holds at most a few (the
/// chunks hyper has queued), so a vector is the right map.
#[derive(Debug, Default)]
pub struct MappedRegistry {
    regions: Mutex<Vec<RegisteredRegion>>,
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

    /// Number of live regions (tests check that mappings are released).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no region is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// A mapped window of a file, registered for as long as it lives.
pub struct MappedChunk {
    map: Mmap,
    /// Start of the wanted bytes inside `map` (mappings start on a page boundary).
    data_start: usize,
    /// Read position inside `map` (advances as hyper writes).
    pos: usize,
    registry: Arc<MappedRegistry>,
}

impl std::fmt::Debug for MappedChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedChunk")
            .field("len", &(self.map.len() - self.data_start))
            .field("remaining", &self.remaining())
            .finish()
    }
}

impl MappedChunk {
    /// Maps `len` bytes of `file` from `offset` and registers them.
    ///
    /// # Errors
    /// Whatever `mmap(2)` says (e.g. the file system cannot map).
    pub fn map(
        file: &Arc<File>,
        offset: u64,
        len: usize,
        registry: &Arc<MappedRegistry>,
    ) -> io::Result<MappedChunk> {
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
        Ok(MappedChunk {
            map,
            data_start,
            pos: data_start,
            registry: Arc::clone(registry),
        })
    }
}

impl Buf for MappedChunk {
    fn remaining(&self) -> usize {
        self.map.len() - self.pos
    }

    fn chunk(&self) -> &[u8] {
        &self.map[self.pos..]
    }

    fn advance(&mut self, cnt: usize) {
        assert!(
            cnt <= self.remaining(),
            "advance past the end of a mapped chunk"
        );
        self.pos += cnt;
    }
}

impl Drop for MappedChunk {
    fn drop(&mut self) {
        // Leave the registry before `map` is unmapped (fields drop after this runs), so no
        // writer can look up an address that is no longer mapped.
        self.registry
            .unregister(self.map.as_ptr() as usize + self.data_start);
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
        drop(chunk);
        assert!(registry.is_empty());
    }
}
