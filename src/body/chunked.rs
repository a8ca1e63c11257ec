//! `--mode chunked`: file bytes read with `pread` into fresh buffers, one `--chunk-size` piece at
//! a time, on tokio's blocking pool: what Node's `fs.createReadStream` does on libuv's pool.
//! HTTPS connections read the same way, but first try [`read_cached`], which reads only what is
//! in the page cache and so may run on the async worker without a thread hop.

use std::fs::File;
use std::io;

use bytes::{Bytes, BytesMut};

/// Reads up to `len` bytes of `file` at `offset`. Returns fewer only when the file ends first
/// (an empty result means it ended at `offset`). Blocking.
pub fn read_chunk(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buffer = BytesMut::zeroed(len);
    let mut filled = 0;
    while filled < len {
        match read_at(file, &mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buffer.truncate(filled);
    Ok(buffer.freeze())
}

/// Reads up to `len` bytes of `file` at `offset` only as far as they are in the page cache
/// (`preadv2` with `RWF_NOWAIT`, Linux >= 4.14), so it never waits for the disk and may run on an
/// async worker, as nginx reads in its event loop. `None` when the first page is not cached, the
/// kernel cannot tell (then: read on the blocking pool with [`read_chunk`]), or at end of file
/// (the pool read reports that). Fewer bytes than asked when only some pages are cached.
#[cfg(target_os = "linux")]
pub fn read_cached(file: &File, offset: u64, len: usize) -> Option<Bytes> {
    use std::os::fd::AsRawFd;
    let offset = libc::off_t::try_from(offset).ok()?;
    let mut buffer = BytesMut::with_capacity(len);
    let iov = libc::iovec {
        iov_base: buffer.spare_capacity_mut().as_mut_ptr().cast(),
        iov_len: len,
    };
    // SAFETY: the iovec covers exactly the `len` bytes of spare capacity `buffer` owns, which the
    // kernel may write; no Rust reference to them exists until `set_len` below.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    if read <= 0 {
        return None;
    }
    // SAFETY: the kernel initialised the first `read` bytes (`read <= len` by preadv2's contract).
    unsafe { buffer.set_len(read as usize) };
    Some(buffer.freeze())
}

/// Elsewhere there is no way to ask for cached bytes only: always read on the pool.
#[cfg(not(target_os = "linux"))]
pub fn read_cached(_file: &File, _offset: u64, _len: usize) -> Option<Bytes> {
    None
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_exact_ranges_and_stops_at_eof() {
        let path = std::env::temp_dir().join(format!("reelserve-chunked-{}", std::process::id()));
        File::create(&path)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&read_chunk(&file, 2, 3).unwrap()[..], b"234");
        assert_eq!(&read_chunk(&file, 8, 5).unwrap()[..], b"89");
        assert!(read_chunk(&file, 10, 5).unwrap().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cached_reads_return_cached_bytes_and_nothing_at_eof() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        // Just written, so in the page cache.
        assert_eq!(read_cached(&file, 2, 3).as_deref(), Some(&b"234"[..]));
        assert_eq!(read_cached(&file, 8, 5).as_deref(), Some(&b"89"[..]));
        assert_eq!(read_cached(&file, 10, 5), None);
    }
}
