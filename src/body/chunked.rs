//! `--mode chunked`: file bytes read with `pread` into fresh buffers, one `--chunk-size` piece at
//! a time, on tokio's blocking pool: what Node's `fs.createReadStream` does on libuv's pool.

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
}
