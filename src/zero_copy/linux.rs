//! Linux: `sendfile(2)` for mapped file slices and `sendmsg(MSG_MORE)` for the bytes in front of
//! them.
//!
//! Advantages: file bytes go from the page cache to the socket without entering user space, and
//! the head and the first file bytes share segments. Drawbacks: like any read from the page
//! cache, a miss blocks the worker thread for the disk read (nginx has the same trade-off without
//! its thread pools); and `sendfile` needs a socket that accepts spliced pages (not a kTLS-less
//! TLS stream, not some exotic sockets), which is why refusals fall back to `writev`.
//!
//! Readiness follows tokio's contract: wait for `poll_write_ready`, then try the syscall inside
//! `try_io`, which clears readiness on `EAGAIN` so the next poll registers the waker. Returning
//! `Pending` without that registration would hang the connection.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::task::{ready, Context, Poll};

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;

pub const SENDFILE_AVAILABLE: bool = true;

/// Sends up to `count` bytes of `file` from `offset` to the socket. `Ok(0)` means the file ended
/// at `offset`.
pub fn poll_sendfile(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    file: &File,
    offset: u64,
    count: usize,
) -> Poll<io::Result<usize>> {
    let Ok(offset) = libc::off64_t::try_from(offset) else {
        return Poll::Ready(Err(io::Error::from(io::ErrorKind::InvalidInput)));
    };
    poll_write_syscall(tcp, cx, || {
        let mut off = offset;
        nix::sys::sendfile::sendfile64(tcp, file, Some(&mut off), count)
    })
}

/// Writes `bufs` with `MSG_MORE`: the kernel holds a partial segment back because file bytes
/// follow at once (the `sendfile` right after this call pushes it out).
pub fn poll_send_more(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let flags = MsgFlags::from_bits_retain(libc::MSG_MORE) | MsgFlags::MSG_NOSIGNAL;
    // writev accepts at most IOV_MAX slices; hyper passes at most 64.
    let bufs = &bufs[..bufs.len().min(1024)];
    poll_write_syscall(tcp, cx, || {
        nix::sys::socket::sendmsg::<()>(tcp.as_raw_fd(), bufs, &[], flags, None)
    })
}

/// tokio's readiness contract around one non-blocking write syscall: wait until writable, try
/// the call inside `try_io` (which clears readiness on EAGAIN, so the next poll registers the
/// waker), retry on EAGAIN and EINTR.
fn poll_write_syscall(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    mut syscall: impl FnMut() -> nix::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(tcp.poll_write_ready(cx))?;
        match tcp.try_io(Interest::WRITABLE, || syscall().map_err(io::Error::from)) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            result => return Poll::Ready(result),
        }
    }
}

/// Errors that mean "sendfile cannot serve this pair of descriptors", not "the client is gone".
pub fn is_refusal(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error().map(Errno::from_raw),
        Some(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP)
    )
}
