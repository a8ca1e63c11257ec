//! Response bodies: what a response sends after its head, and how file bytes are produced.
//!
//! A [`ResponseBody`] is a list of [`Segment`]s: literal bytes (error pages, multipart part
//! headers) and file ranges. How a file range becomes body chunks is the `--mode`:
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

pub use mapped::{FileKey, FileSpan, MappedChunk, MappedRegistry};

use crate::pacing::Pacer;
use crate::stats::ServerStats;

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
    fn len(&self) -> u64 {
        match self {
            Segment::Bytes(bytes) => bytes.len() as u64,
            Segment::File { len, .. } => *len,
        }
    }
}

/// How file segments are turned into chunks.
#[derive(Debug, Clone)]
pub enum FileStrategy {
    /// Memory-mapped windows of at most `window` bytes, registered so the connection can send
    /// them with `sendfile` (or write them with `writev`).
    Mapped {
        /// Largest window mapped at once.
        window: usize,
        /// The connection's registry.
        registry: Arc<MappedRegistry>,
        /// Map the whole file once and reuse the mapping for later responses about the same
        /// version of it (sendfile mode, where the pages are never touched); `None` maps each
        /// window on its own and unmaps it when sent (mmap mode, which faults pages in).
        reuse: Option<FileKey>,
    },
    /// `pread` into fresh buffers of at most `chunk_size` bytes.
    Chunked {
        /// Buffer size.
        chunk_size: usize,
        /// Read bytes that are in the page cache right here, on the async worker, and only the
        /// rest on the blocking pool (HTTPS, where the copy is the fast path and a thread hop
        /// per chunk costs more than the copy); `false` always uses the pool, as Node does
        /// (`--mode chunked`).
        cached_inline: bool,
    },
}

/// One chunk of body data, as hyper queues it. It reports the bytes hyper writes from it to the
/// response's [`ResponseProgress`], so the access log counts bytes that really left.
#[derive(Debug)]
pub struct BodyChunk {
    data: ChunkData,
    progress: Arc<ResponseProgress>,
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
    file: Option<(Arc<File>, FileStrategy)>,
    stats: Option<Arc<ServerStats>>,
    pending_read: Option<JoinHandle<io::Result<Bytes>>>,
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
        file: Option<(Arc<File>, FileStrategy)>,
        stats: Option<Arc<ServerStats>>,
    ) -> ResponseBody {
        let remaining = segments.iter().map(Segment::len).sum();
        ResponseBody {
            segments,
            file,
            stats,
            pending_read: None,
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
    ) -> Poll<Option<Result<Frame<BodyChunk>, io::Error>>> {
        let n = match &data {
            ChunkData::Copied(b) => b.len(),
            ChunkData::Mapped(m) => m.remaining(),
        };
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(BodyChunk {
            data,
            progress: Arc::clone(&self.progress),
        }))))
    }

    /// Hands over `bytes` just read from the front file segment (never empty).
    fn yield_read(&mut self, bytes: Bytes) -> Poll<Option<Result<Frame<BodyChunk>, io::Error>>> {
        if let Some(Segment::File { offset, len }) = self.segments.front_mut() {
            *offset += bytes.len() as u64;
            *len -= bytes.len() as u64;
        }
        if let Some(stats) = &self.stats {
            ServerStats::add(&stats.bytes_copied, bytes.len() as u64);
        }
        self.yield_chunk(ChunkData::Copied(bytes))
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
            if let Some(read) = this.pending_read.as_mut() {
                let result = ready!(Pin::new(read).poll(cx));
                this.pending_read = None;
                let bytes = match result {
                    Ok(Ok(bytes)) if !bytes.is_empty() => bytes,
                    Ok(Ok(_)) => return this.fail(file_shrank()),
                    Ok(Err(error)) => return this.fail(error),
                    Err(join_error) => return this.fail(io::Error::other(join_error)),
                };
                return this.yield_read(bytes);
            }
            let cap = this.pacing_cap();
            let Some(segment) = this.segments.front_mut() else {
                return Poll::Ready(None);
            };
            match segment {
                Segment::Bytes(bytes) if cap.is_some_and(|cap| cap < bytes.len() as u64) => {
                    let head = bytes.split_to(cap.unwrap_or(0) as usize);
                    return this.yield_chunk(ChunkData::Copied(head));
                }
                Segment::Bytes(_) => {
                    let Some(Segment::Bytes(bytes)) = this.segments.pop_front() else {
                        unreachable!("front segment was checked to be bytes");
                    };
                    return this.yield_chunk(ChunkData::Copied(bytes));
                }
                Segment::File { len: 0, .. } => {
                    this.segments.pop_front();
                }
                Segment::File { offset, len } => {
                    let Some((file, strategy)) = &this.file else {
                        return this.fail(io::Error::other("file segment without a file"));
                    };
                    match strategy {
                        FileStrategy::Mapped {
                            window,
                            registry,
                            reuse,
                        } => {
                            let n =
                                (*len).min(*window as u64).min(cap.unwrap_or(u64::MAX)) as usize;
                            let mapped = match reuse {
                                Some(key) => {
                                    MappedChunk::map_reusable(file, *key, *offset, n, registry)
                                }
                                None => MappedChunk::map(file, *offset, n, registry),
                            };
                            match mapped {
                                Ok(chunk) => {
                                    *offset += n as u64;
                                    *len -= n as u64;
                                    return this.yield_chunk(ChunkData::Mapped(chunk));
                                }
                                Err(error) => return this.fail(error),
                            }
                        }
                        FileStrategy::Chunked {
                            chunk_size,
                            cached_inline,
                        } => {
                            let n = (*len).min(*chunk_size as u64).min(cap.unwrap_or(u64::MAX))
                                as usize;
                            if *cached_inline {
                                if let Some(bytes) = chunked::read_cached(file, *offset, n) {
                                    if let Some(stats) = &this.stats {
                                        ServerStats::add(&stats.chunks_read_in_place, 1);
                                    }
                                    return this.yield_read(bytes);
                                }
                            }
                            if let Some(stats) = &this.stats {
                                ServerStats::add(&stats.chunks_read_on_pool, 1);
                            }
                            let (file, at) = (Arc::clone(file), *offset);
                            this.pending_read = Some(tokio::task::spawn_blocking(move || {
                                chunked::read_chunk(&file, at, n)
                            }));
                        }
                    }
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
        if let Some(read) = self.pending_read.take() {
            read.abort();
        }
    }
}
