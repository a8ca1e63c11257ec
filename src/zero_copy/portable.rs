//! Platforms without `sendfile(2)` (and `--features portable-only`): mapped slices are written
//! with plain `writev`, which is what `--mode mmap` does everywhere. These functions exist so
//! the caller compiles the same way on every platform; they are never reached because
//! `SENDFILE_AVAILABLE` is false.

use std::fs::File;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use tokio::net::TcpStream;

pub const SENDFILE_AVAILABLE: bool = false;

pub fn poll_sendfile(
    _tcp: &TcpStream,
    _cx: &mut Context<'_>,
    _file: &File,
    _offset: u64,
    _count: usize,
) -> Poll<io::Result<usize>> {
    Poll::Ready(Err(io::Error::from(io::ErrorKind::Unsupported)))
}

pub fn poll_send_more(
    _tcp: &TcpStream,
    _cx: &mut Context<'_>,
    _bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    Poll::Ready(Err(io::Error::from(io::ErrorKind::Unsupported)))
}

pub fn is_refusal(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::Unsupported
}
