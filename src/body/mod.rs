//! Response bodies: what a response sends after its head, and how file bytes are produced.
//!
//! A [`ResponseBody`] is a list of [`Segment`]s: literal bytes (error pages, multipart part
//! headers) and file ranges.
//!
//! The one decision behind `--mode` is a [`FileStrategy`], made once per connection from the
//! [`Mode`] and the connection's [`Transport`]:
//!
//! | mode | file range becomes | file |
//! |---|---|---|
//! | `sendfile`, `mmap` | [`MappedChunk`] windows, written by `sendfile` or `writev` | `mapped.rs` |
//! | `chunked` | `Bytes` read with `pread` on the blocking pool, `--chunk-size` at a time | `chunked.rs` |
//! | any streaming mode over TLS | `Bytes` read with `pread`, 128 KiB at a time; page-cache hits in place | `chunked.rs` |
//! | `read-all` | one `Bytes` per range, read before the response starts | `read_all.rs` |
//!
//! Whatever the mode, a file that turns out shorter than promised ends the body with an error,
//! never with padding: hyper then closes the connection, so the client sees a short response,
//! not a complete-looking wrong one.

pub mod budget;
pub mod chunked;
pub mod mapped;
pub mod read_all;

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

pub use budget::{BufferBudget, BufferPermit, ServerBudget};
pub use mapped::{FileKey, FileSpan, MappedChunk, MappedRegistry};

use crate::pacing::Pacer;
use crate::stats::{ConnectionStats, ServerStats};

/// A piece of a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Bytes already in memory.
    Bytes(Bytes),
    /// `len` bytes of the response's file from `offset`.
    File {
        /// File offset of the first byte.
        offset: u64,
        /// Number of bytes.
        len: u64,
    },
}

impl Segment {
    /// Number of bytes the segment contributes to the body.
    pub fn len(&self) -> u64 {
        match self {
            Segment::Bytes(bytes) => bytes.len() as u64,
            Segment::File { len, .. } => *len,
        }
    }

    /// Whether the segment contributes no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How response bodies are read from disk and written to the socket: the `--mode` flag. The
/// strategy a connection actually uses is [`FileStrategy::for_connection`] of this and the
/// connection's [`Transport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Kernel to socket with sendfile(2): no copy through user space (Linux; elsewhere: mmap).
    Sendfile,
    /// Write slices of a memory map of the file with writev(2): one copy, in the kernel.
    Mmap,
    /// Read --chunk-size pieces into buffers and send each (Node's fs.createReadStream).
    Chunked,
    /// Read the whole requested range into memory, then send it (Node's fs.readFile).
    ReadAll,
}

impl Mode {
    /// The name used on the command line and in logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sendfile => "sendfile",
            Mode::Mmap => "mmap",
            Mode::Chunked => "chunked",
            Mode::ReadAll => "read-all",
        }
    }

    /// Every mode, in the order `--help` lists them: tests and benches iterate over this
    /// rather than spelling the list out again.
    pub fn all() -> &'static [Mode] {
        <Mode as clap::ValueEnum>::value_variants()
    }

    /// The default: zero-copy where the platform has it.
    pub fn platform_default() -> Mode {
        if crate::zero_copy::SENDFILE_AVAILABLE {
            Mode::Sendfile
        } else {
            Mode::Mmap
        }
    }
}

/// What carries a connection's bytes: it decides whether mapped file views may be handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP/1.1 over [`crate::zero_copy::ZeroCopyStream`]: mapped chunks leave with
    /// `sendfile` (or `writev`), and user space never reads their pages.
    Plain,
    /// TLS, HTTP/1.1 or HTTP/2: every body byte is encrypted (and for h2 framed) in user space.
    /// Reading a mapped page there raises SIGBUS if the file was truncated under it, so file
    /// bytes are read with `pread` instead (docs/architecture.md, "The zero-copy seam").
    Tls,
}

/// Largest mapped window in `sendfile` mode. The pages are never touched, so the size only
/// bounds address space; 64 MiB keeps the number of `mmap` calls per GiB small.
pub const SENDFILE_WINDOW: usize = 64 * 1024 * 1024;

/// Largest mapped window in `mmap` mode: `writev` faults the pages in, so this bounds how much
/// of a file one connection keeps resident.
pub const MMAP_WINDOW: usize = 2 * 1024 * 1024;

/// Buffer size for file bytes on TLS connections in `sendfile` and `mmap` modes. Large, because
/// small copies cost throughput and a chunk that misses the page cache costs a blocking-pool
/// round trip; not larger, because a connection holds up to two (one being sent, the next being
/// read) and 64 connections must stay within the 32 MiB peak-RSS budget (the measurements that
/// chose it are in results/RESULTS.md).
pub const TLS_CHUNK_SIZE: usize = 128 * 1024;

/// How one connection turns the file ranges of a response into body bytes: the one decision
/// behind `--mode`, made once per connection by [`FileStrategy::for_connection`]. The body
/// produces chunks by it, and [`crate::zero_copy::ZeroCopyStream`] asks
/// [`FileStrategy::sends_with_sendfile`] how to write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStrategy {
    /// Every range read into memory before the response starts (`read-all`).
    ReadAll,
    /// `pread` into fresh buffers of at most `chunk_size` bytes.
    Chunked {
        /// Buffer size.
        chunk_size: usize,
        /// Read bytes that are in the page cache right here, on the async worker, and only the
        /// rest on the blocking pool (HTTPS, where the copy is the fast path and a thread hop
        /// per chunk costs more than the copy; `preadv2(RWF_NOWAIT)`, as nginx reads); `false`
        /// always uses the pool, as Node's `createReadStream` does on libuv's (`--mode chunked`).
        cached_inline: bool,
    },
    /// Memory-mapped windows of at most `window` bytes, registered so the connection can send
    /// them with `sendfile` (or write them with `writev`).
    Mapped {
        /// Largest window mapped at once.
        window: usize,
        /// The connection sends mapped windows with `sendfile` (so user space never touches the
        /// pages, and a whole-file mapping is kept for the next response about the same version
        /// of the file); `false` writes them with `writev` and unmaps each window when sent.
        sendfile: bool,
    },
}

impl FileStrategy {
    /// The strategy for `mode` on `transport`: `sendfile` and `mmap` become large `pread` chunks
    /// on TLS; `chunked` (with `--chunk-size`) and `read-all` are the same everywhere.
    pub fn for_connection(mode: Mode, chunk_size: usize, transport: Transport) -> FileStrategy {
        match (mode, transport) {
            (Mode::ReadAll, _) => FileStrategy::ReadAll,
            (Mode::Chunked, _) => FileStrategy::Chunked {
                chunk_size,
                cached_inline: false,
            },
            (Mode::Sendfile | Mode::Mmap, Transport::Tls) => FileStrategy::Chunked {
                chunk_size: TLS_CHUNK_SIZE,
                cached_inline: true,
            },
            (Mode::Mmap, Transport::Plain) => FileStrategy::Mapped {
                window: MMAP_WINDOW,
                sendfile: false,
            },
            (Mode::Sendfile, Transport::Plain) => FileStrategy::Mapped {
                window: SENDFILE_WINDOW,
                sendfile: crate::zero_copy::SENDFILE_AVAILABLE,
            },
        }
    }

    /// The size of the buffers this strategy fills (`None`: it fills none, or reads whole ranges,
    /// which the buffer budget does not cover).
    pub fn buffer_size(&self) -> Option<usize> {
        match *self {
            FileStrategy::Chunked { chunk_size, .. } => Some(chunk_size),
            FileStrategy::ReadAll | FileStrategy::Mapped { .. } => None,
        }
    }

    /// The largest buffer any connection of a server in `mode` fills (plain or TLS).
    pub fn largest_buffer(mode: Mode, chunk_size: usize) -> usize {
        [Transport::Plain, Transport::Tls]
            .into_iter()
            .filter_map(|t| FileStrategy::for_connection(mode, chunk_size, t).buffer_size())
            .max()
            .unwrap_or(0)
    }

    /// Whether the connection IO sends mapped chunks with `sendfile` (else `writev`).
    pub fn sends_with_sendfile(&self) -> bool {
        matches!(self, FileStrategy::Mapped { sendfile: true, .. })
    }
}

impl std::fmt::Display for FileStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = |bytes: usize| match bytes {
            b if b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
            b if b % 1024 == 0 => format!("{} KiB", b / 1024),
            b => format!("{b} bytes"),
        };
        match *self {
            FileStrategy::ReadAll => f.write_str("read-all (whole ranges read into memory)"),
            FileStrategy::Chunked {
                chunk_size,
                cached_inline: false,
            } => write!(
                f,
                "pread chunks of {} on the blocking pool",
                size(chunk_size)
            ),
            FileStrategy::Chunked {
                chunk_size,
                cached_inline: true,
            } => write!(
                f,
                "pread chunks of {} (page-cache hits read in place)",
                size(chunk_size)
            ),
            FileStrategy::Mapped {
                window,
                sendfile: true,
            } => write!(f, "sendfile from mapped windows of {}", size(window)),
            FileStrategy::Mapped {
                window,
                sendfile: false,
            } => write!(f, "writev from mapped windows of {}", size(window)),
        }
    }
}

/// Where a response's file segments come from, and how they become chunks.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// The open file.
    pub file: Arc<File>,
    /// Which version of the file this is (a whole-file mapping is reused only for the same one).
    pub key: Option<FileKey>,
    /// The connection's strategy.
    pub strategy: FileStrategy,
    /// The connection's registry of mapped regions.
    pub registry: Arc<MappedRegistry>,
    /// The connection's share of the buffer budget, for strategies that fill buffers.
    pub budget: Option<BufferBudget>,
}

/// One chunk of body data, as hyper queues it. It reports the bytes hyper writes from it to the
/// response's [`ResponseProgress`], so the access log counts bytes that really left.
#[derive(Debug)]
pub struct BodyChunk {
    data: ChunkData,
    progress: Arc<ResponseProgress>,
    /// The budget a filled buffer holds until hyper drops the chunk.
    _buffer: Option<BufferPermit>,
}

#[derive(Debug)]
enum ChunkData {
    /// Bytes in a user-space buffer.
    Copied(Bytes),
    /// A window of a memory-mapped file.
    Mapped(MappedChunk),
}

impl Buf for BodyChunk {
    fn remaining(&self) -> usize {
        match &self.data {
            ChunkData::Copied(b) => b.remaining(),
            ChunkData::Mapped(m) => m.remaining(),
        }
    }

    fn chunk(&self) -> &[u8] {
        match &self.data {
            ChunkData::Copied(b) => b.chunk(),
            ChunkData::Mapped(m) => m.chunk(),
        }
    }

    fn advance(&mut self, cnt: usize) {
        match &mut self.data {
            ChunkData::Copied(b) => b.advance(cnt),
            ChunkData::Mapped(m) => m.advance(cnt),
        }
        let before = self.progress.sent.fetch_add(cnt as u64, Ordering::Relaxed);
        if let Some(pacer) = &self.progress.pacer {
            pacer.on_sent(before, before + cnt as u64);
        }
    }
}

/// Called once when a response is over, with the body bytes written to the socket and whether
/// that was all of them (the access log and the connection's idle tracking hang off this).
pub type BodyFinished = Box<dyn FnOnce(u64, bool) + Send + Sync>;

/// How much of one response's body has been written. Shared by the body and every chunk it
/// produced; when the last of them is dropped the response is over (hyper drops the body when
/// it has produced everything, but the chunks are written after that).
pub struct ResponseProgress {
    expected: u64,
    sent: AtomicU64,
    failed: AtomicBool,
    on_finished: Mutex<Option<BodyFinished>>,
    /// Paces the response once enough of it has been written (`--limit-rate`, `--pace`).
    pacer: Option<Pacer>,
}

impl std::fmt::Debug for ResponseProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseProgress")
            .field("expected", &self.expected)
            .field("sent", &self.sent)
            .finish()
    }
}

impl Drop for ResponseProgress {
    fn drop(&mut self) {
        let callback = self
            .on_finished
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(callback) = callback {
            let sent = *self.sent.get_mut();
            callback(sent, sent == self.expected && !*self.failed.get_mut());
        }
    }
}

/// The body of every response reelserve sends.
pub struct ResponseBody {
    segments: VecDeque<Segment>,
    file: Option<FileSource>,
    stats: Option<Arc<ConnectionStats>>,
    /// A chunk being read on the blocking pool, with the budget reserved for it.
    pending_read: Option<(JoinHandle<io::Result<Bytes>>, Option<BufferPermit>)>,
    /// A buffer reservation waiting for budget.
    pending_budget: Option<budget::PendingReservation>,
    remaining: u64,
    progress: Arc<ResponseProgress>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("segments", &self.segments.len())
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl ResponseBody {
    /// A body with no bytes (HEAD, 304, and friends).
    pub fn empty() -> ResponseBody {
        ResponseBody::from_segments(VecDeque::new(), None, None)
    }

    /// A body of bytes in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> ResponseBody {
        let bytes = bytes.into();
        let segments = if bytes.is_empty() {
            VecDeque::new()
        } else {
            VecDeque::from([Segment::Bytes(bytes)])
        };
        ResponseBody::from_segments(segments, None, None)
    }

    /// A body made of segments; file segments come from `file`, produced by its strategy.
    pub fn from_segments(
        segments: VecDeque<Segment>,
        file: Option<FileSource>,
        stats: Option<Arc<ConnectionStats>>,
    ) -> ResponseBody {
        let remaining = segments.iter().map(Segment::len).sum();
        ResponseBody {
            segments,
            file,
            stats,
            pending_read: None,
            pending_budget: None,
            remaining,
            progress: Arc::new(ResponseProgress {
                expected: remaining,
                sent: AtomicU64::new(0),
                failed: AtomicBool::new(false),
                on_finished: Mutex::new(None),
                pacer: None,
            }),
        }
    }

    /// Exact length of the body.
    pub fn len(&self) -> u64 {
        self.remaining
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Registers a callback for when the response is over: the body and every chunk it
    /// produced have been dropped.
    pub fn on_finished(&mut self, callback: BodyFinished) {
        *self
            .progress
            .on_finished
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(callback);
    }

    /// Paces this response with `pacer`: chunks are cut at its threshold, and the bytes
    /// written report to it. Call before the body is first polled (later it has no effect).
    pub fn pace(&mut self, pacer: Pacer) {
        match Arc::get_mut(&mut self.progress) {
            Some(progress) => progress.pacer = Some(pacer),
            None => tracing::debug!("body already producing; not paced"),
        }
    }

    /// The most bytes the next chunk may hold so it ends at the pacing threshold, if one is
    /// ahead (then the rate applies from exactly that byte on the `sendfile` path).
    fn pacing_cap(&self) -> Option<u64> {
        let produced = self.progress.expected - self.remaining;
        self.progress
            .pacer
            .as_ref()
            .and_then(|pacer| pacer.chunk_limit(produced))
    }

    /// Hands `data` to hyper as the next chunk.
    fn yield_chunk(
        &mut self,
        data: ChunkData,
        buffer: Option<BufferPermit>,
    ) -> Poll<Option<Result<Frame<BodyChunk>, io::Error>>> {
        let n = match &data {
            ChunkData::Copied(b) => b.len(),
            ChunkData::Mapped(m) => m.remaining(),
        };
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(BodyChunk {
            data,
            progress: Arc::clone(&self.progress),
            _buffer: buffer,
        }))))
    }

    /// Hands over `bytes` just read from the front file segment (never empty).
    fn yield_read(
        &mut self,
        bytes: Bytes,
        buffer: Option<BufferPermit>,
    ) -> Poll<Option<Result<Frame<BodyChunk>, io::Error>>> {
        if let Some(Segment::File { offset, len }) = self.segments.front_mut() {
            *offset += bytes.len() as u64;
            *len -= bytes.len() as u64;
        }
        if let Some(stats) = &self.stats {
            ServerStats::add(&stats.bytes_copied, bytes.len() as u64);
        }
        self.yield_chunk(ChunkData::Copied(bytes), buffer)
    }

    /// Reserves a buffer of `n` bytes from the connection's budget (none needed: `None`).
    fn reserve_buffer(&mut self, n: usize, cx: &mut Context<'_>) -> Poll<Option<BufferPermit>> {
        if let Some(pending) = self.pending_budget.as_mut() {
            let permit = ready!(pending.as_mut().poll(cx));
            self.pending_budget = None;
            return Poll::Ready(permit);
        }
        let Some(budget) = self.file.as_ref().and_then(|f| f.budget.as_ref()) else {
            return Poll::Ready(None);
        };
        if let Some(permit) = budget.try_reserve(n) {
            return Poll::Ready(Some(permit));
        }
        let mut pending = budget.reserve(n);
        match pending.as_mut().poll(cx) {
            Poll::Ready(permit) => Poll::Ready(permit),
            Poll::Pending => {
                self.pending_budget = Some(pending);
                Poll::Pending
            }
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<BodyChunk>, io::Error>>> {
        if let Some(stats) = &self.stats {
            if error.kind() == io::ErrorKind::UnexpectedEof {
                ServerStats::add(&stats.truncated_sends, 1);
            }
        }
        tracing::error!(%error, "response body failed; closing the connection");
        self.progress.failed.store(true, Ordering::Relaxed);
        self.segments.clear();
        Poll::Ready(Some(Err(error)))
    }
}

/// The error for a file that ended before the promised bytes (nginx: "someone has truncated
/// the file").
pub fn file_shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shrank while it was being sent",
    )
}

impl Body for ResponseBody {
    type Data = BodyChunk;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<BodyChunk>, io::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((read, _)) = this.pending_read.as_mut() {
                let result = ready!(Pin::new(read).poll(cx));
                let buffer = this.pending_read.take().and_then(|(_, buffer)| buffer);
                let bytes = match result {
                    Ok(Ok(bytes)) if !bytes.is_empty() => bytes,
                    Ok(Ok(_)) => return this.fail(file_shrank()),
                    Ok(Err(error)) => return this.fail(error),
                    Err(join_error) => return this.fail(io::Error::other(join_error)),
                };
                return this.yield_read(bytes, buffer);
            }
            let cap = this.pacing_cap();
            let Some(segment) = this.segments.front_mut() else {
                return Poll::Ready(None);
            };
            match segment {
                Segment::Bytes(bytes) if cap.is_some_and(|cap| cap < bytes.len() as u64) => {
                    let head = bytes.split_to(cap.unwrap_or(0) as usize);
                    return this.yield_chunk(ChunkData::Copied(head), None);
                }
                Segment::Bytes(_) => {
                    let Some(Segment::Bytes(bytes)) = this.segments.pop_front() else {
                        unreachable!("front segment was checked to be bytes");
                    };
                    return this.yield_chunk(ChunkData::Copied(bytes), None);
                }
                Segment::File { len: 0, .. } => {
                    this.segments.pop_front();
                }
                Segment::File { offset, len } => {
                    let Some(source) = &this.file else {
                        return this.fail(io::Error::other("file segment without a file"));
                    };
                    let file = &source.file;
                    let (chunk_size, cached_inline) = match source.strategy {
                        FileStrategy::Mapped { window, sendfile } => {
                            let n = (*len).min(window as u64).min(cap.unwrap_or(u64::MAX)) as usize;
                            let mapped = match source.key {
                                // Only sendfile never touches the pages: there a kept whole-file
                                // mapping costs address space only. mmap mode faults pages in,
                                // so its windows are unmapped as soon as they are sent.
                                Some(key) if sendfile => MappedChunk::map_reusable(
                                    file,
                                    key,
                                    *offset,
                                    n,
                                    &source.registry,
                                ),
                                _ => MappedChunk::map(file, *offset, n, &source.registry),
                            };
                            match mapped {
                                Ok(chunk) => {
                                    *offset += n as u64;
                                    *len -= n as u64;
                                    return this.yield_chunk(ChunkData::Mapped(chunk), None);
                                }
                                Err(error) => return this.fail(error),
                            }
                        }
                        FileStrategy::Chunked {
                            chunk_size,
                            cached_inline,
                        } => (chunk_size, cached_inline),
                        // read-all bodies arrive as bytes (see `read_all`); a file segment left
                        // over is read like a chunked one rather than refused.
                        FileStrategy::ReadAll => (MMAP_WINDOW, false),
                    };
                    let n = (*len).min(chunk_size as u64).min(cap.unwrap_or(u64::MAX)) as usize;
                    let at = *offset;
                    let buffer = ready!(this.reserve_buffer(n, cx));
                    let Some(source) = &this.file else {
                        return this.fail(io::Error::other("file segment without a file"));
                    };
                    if cached_inline {
                        if let Some(bytes) = chunked::read_cached(&source.file, at, n) {
                            if let Some(stats) = &this.stats {
                                ServerStats::add(&stats.chunks_read_in_place, 1);
                            }
                            return this.yield_read(bytes, buffer);
                        }
                    }
                    if let Some(stats) = &this.stats {
                        ServerStats::add(&stats.chunks_read_on_pool, 1);
                    }
                    let file = Arc::clone(&source.file);
                    let read =
                        tokio::task::spawn_blocking(move || chunked::read_chunk(&file, at, n));
                    this.pending_read = Some((read, buffer));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.pending_read.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some((read, _)) = self.pending_read.take() {
            read.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_never_gets_mapped_views() {
        for &mode in Mode::all() {
            let strategy = FileStrategy::for_connection(mode, 4096, Transport::Tls);
            assert!(
                !matches!(strategy, FileStrategy::Mapped { .. }),
                "{mode:?}: {strategy}"
            );
            assert!(!strategy.sends_with_sendfile());
        }
        assert_eq!(
            FileStrategy::for_connection(Mode::Sendfile, 4096, Transport::Tls),
            FileStrategy::Chunked {
                chunk_size: TLS_CHUNK_SIZE,
                cached_inline: true
            }
        );
        assert_eq!(
            FileStrategy::for_connection(Mode::Chunked, 4096, Transport::Tls),
            FileStrategy::Chunked {
                chunk_size: 4096,
                cached_inline: false
            }
        );
        assert_eq!(
            FileStrategy::for_connection(Mode::ReadAll, 4096, Transport::Tls),
            FileStrategy::ReadAll
        );
    }

    #[test]
    fn plain_connections_keep_their_mode() {
        assert_eq!(
            FileStrategy::for_connection(Mode::Sendfile, 4096, Transport::Plain),
            FileStrategy::Mapped {
                window: SENDFILE_WINDOW,
                sendfile: crate::zero_copy::SENDFILE_AVAILABLE
            }
        );
        assert_eq!(
            FileStrategy::for_connection(Mode::Mmap, 4096, Transport::Plain),
            FileStrategy::Mapped {
                window: MMAP_WINDOW,
                sendfile: false
            }
        );
        assert!(
            !FileStrategy::for_connection(Mode::Mmap, 4096, Transport::Plain).sends_with_sendfile()
        );
        assert_eq!(
            FileStrategy::for_connection(Mode::Chunked, 4096, Transport::Plain),
            FileStrategy::Chunked {
                chunk_size: 4096,
                cached_inline: false
            }
        );
    }

    #[test]
    fn strategies_describe_themselves_for_the_log() {
        let tls = FileStrategy::for_connection(Mode::Sendfile, 4096, Transport::Tls);
        assert_eq!(
            tls.to_string(),
            "pread chunks of 128 KiB (page-cache hits read in place)"
        );
        let chunked = |n| FileStrategy::Chunked {
            chunk_size: n,
            cached_inline: false,
        };
        assert_eq!(
            chunked(65536).to_string(),
            "pread chunks of 64 KiB on the blocking pool"
        );
        assert_eq!(
            chunked(1000).to_string(),
            "pread chunks of 1000 bytes on the blocking pool"
        );
        assert_eq!(
            FileStrategy::Mapped {
                window: SENDFILE_WINDOW,
                sendfile: true
            }
            .to_string(),
            "sendfile from mapped windows of 64 MiB"
        );
    }

    #[test]
    fn modes_are_listed_once_in_help_order() {
        let names: Vec<&str> = Mode::all().iter().map(|m| m.name()).collect();
        assert_eq!(names, ["sendfile", "mmap", "chunked", "read-all"]);
    }
}
