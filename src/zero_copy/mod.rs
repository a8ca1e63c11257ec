//! The connection IO under hyper: where file bytes leave through `sendfile(2)`.
//!
//! hyper 1.x writes HTTP/1 messages with `poll_write_vectored` when the IO says
//! `is_write_vectored()`; with `writev(true)` it queues body chunks as they are (no copy) and
//! passes `[head, chunk, ...]` as `IoSlice`s. [`ZeroCopyStream`] looks each slice up in the
//! connection's [`MappedRegistry`]: a slice that is a mapped file window goes out with `sendfile`
//! from the file descriptor (the pages are never touched in user space), everything before it
//! with one `sendmsg(MSG_MORE)`, so a head and the first file bytes share packets as nginx's
//! `tcp_nopush` makes them. hyper then advances its queue by what we report, exactly as if we
//! had written the slice. See docs/architecture.md, "The zero-copy seam".
//!
//! Where `sendfile` is not available (other OSes, `--features portable-only`) or refuses the
//! socket at run time (EINVAL, ENOSYS, EOPNOTSUPP), mapped slices are written with plain
//! `writev` from the mapping: the `mmap` mode.
//!
//! The stream is also the one owner of the per-connection time limits, because it is the one
//! place that sees every read and write: the request-head timeout, the keep-alive idle timeout
//! and the send-stall timeout. hyper's own header timer is off (see `server.rs`), so no second
//! timer runs per request; one `Sleep` per connection is re-armed only when it fires early.

#[cfg(all(target_os = "linux", not(feature = "portable-only")))]
mod linux;
#[cfg(not(all(target_os = "linux", not(feature = "portable-only"))))]
mod portable;
#[cfg(all(target_os = "linux", not(feature = "portable-only")))]
use linux as platform;
#[cfg(not(all(target_os = "linux", not(feature = "portable-only"))))]
use portable as platform;

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::body::{file_shrank, FileStrategy, MappedRegistry};
use crate::pacing::{AppliedPacing, PacingRequest};
use crate::stats::ServerStats;

/// Whether this build can send with `sendfile(2)`.
pub const SENDFILE_AVAILABLE: bool = platform::SENDFILE_AVAILABLE;

/// How long a connection may be idle before it lets go of the whole-file mapping it keeps for
/// the next response (see [`MappedRegistry::forget_reusable`]): a player's range requests come
/// in bursts much closer together than this.
pub const REUSABLE_MAPPING_IDLE_RELEASE: Duration = Duration::from_secs(1);

/// A response whose file bytes in one write come to at most this leaves with its head in one
/// `writev` from the mapping, instead of `sendmsg(MSG_MORE)` then `sendfile`: one syscall
/// instead of two for a small page, a poster or a subtitle file, and copying a few KiB in the
/// kernel costs less than the syscall it saves. The kernel reads the mapped pages, user space
/// never does, so a truncated file still means EFAULT, never SIGBUS.
pub const SMALL_BODY_WRITEV: usize = 16 * 1024;

/// Largest single `sendfile` call: one fast client on a worker yields to the others at least
/// this often (nginx's `sendfile_max_chunk` default is 2 MiB).
pub const MAX_SENDFILE_CHUNK: usize = 2 * 1024 * 1024;

/// State shared by a connection's IO and the service answering its requests.
#[derive(Debug, Default)]
pub struct ConnShared {
    /// Mapped regions of this connection's queued body chunks.
    pub registry: Arc<MappedRegistry>,
    /// Requests whose [`InFlightRequest`] is alive.
    in_flight: AtomicUsize,
    /// Requests handed to the service so far.
    started: AtomicU64,
    /// HTTP/2: bytes while no request is in flight are as likely control frames (PING,
    /// SETTINGS, WINDOW_UPDATE) as a request, so they do not start the header timer; the idle
    /// timeout alone bounds such a connection.
    multiplexed: AtomicBool,
    /// Waiting for a request with not one byte of it received (a keep-alive connection between
    /// requests, or a new one that has said nothing yet): closing it loses nothing.
    evictable: AtomicBool,
    /// Asked to close at once (see [`ConnShared::evict_if_idle`]).
    evicted: AtomicBool,
    /// Idle long enough to give the HTTP/1 parser's buffers back (see
    /// [`ZeroCopyStream::park_when_idle`]); taken by [`ConnShared::take_park_request`].
    park_requested: AtomicBool,
    /// Wakes the connection's task while it is evictable.
    idle_waker: Mutex<Option<Waker>>,
    /// HTTP/2: wakes the connection's task when its last request in flight ends. A stream's
    /// request can end in the stream's own task (a reset, say), after the connection last
    /// looked; without a wake-up nothing would start its idle clock.
    busy_waker: Mutex<Option<Waker>>,
    /// The pacing rate the response being sent asks for (see [`crate::pacing`]).
    pub pacing: PacingRequest,
}

impl ConnShared {
    /// The service calls this when hyper hands it a request head. The request counts as in
    /// flight (no header or idle timeout) until the returned guard is dropped: when its response
    /// body is over, or when the request is abandoned (the handler's future is dropped).
    pub fn start_request(self: &Arc<Self>) -> InFlightRequest {
        // Each response starts unpaced; its body asks for a rate when it crosses its threshold.
        self.pacing.reset();
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel);
        InFlightRequest(Arc::clone(self))
    }

    /// Marks the connection as HTTP/2 (see the `multiplexed` field).
    pub fn set_multiplexed(&self) {
        self.multiplexed.store(true, Ordering::Release);
    }

    /// Closes the connection if it is waiting for a request it has not started to send, as
    /// nginx closes idle keep-alive connections when it runs out of `worker_connections`.
    /// Whether it did.
    pub fn evict_if_idle(&self) -> bool {
        if !self.evictable.load(Ordering::Acquire) || self.evicted.swap(true, Ordering::AcqRel) {
            return false;
        }
        wake(&self.idle_waker);
        true
    }

    /// Whether the stream asked, since the last call, for the connection to be parked: idle for
    /// its park delay with not one byte of a next request received.
    pub fn take_park_request(&self) -> bool {
        self.park_requested.swap(false, Ordering::AcqRel)
    }

    /// Whether the connection waits for a request with not one byte of it received and nothing
    /// in flight (as last seen by its stream).
    pub fn awaits_new_request(&self) -> bool {
        self.evictable.load(Ordering::Acquire) && self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Records that the connection waits for a request it has not started: it may be evicted,
    /// and `waker` is how.
    fn wait_evictable(&self, waker: &Waker) {
        register(&self.idle_waker, waker);
        self.evictable.store(true, Ordering::Release);
    }

    /// HTTP/2, with requests in flight: `waker` is woken when the last of them ends (see the
    /// `busy_waker` field). Whether it may have ended already, between the connection's last
    /// look at the count and now (then the caller must look again).
    fn wait_until_no_request(&self, waker: &Waker) -> bool {
        register(&self.busy_waker, waker);
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// A request in flight on a connection; see [`ConnShared::start_request`].
#[derive(Debug)]
pub struct InFlightRequest(Arc<ConnShared>);

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        let last = self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1;
        // On HTTP/1.1 a request ends inside the connection's own task, which then looks at the
        // count itself; an HTTP/2 stream's may end in the stream's task.
        if last && self.0.multiplexed.load(Ordering::Acquire) {
            wake(&self.0.busy_waker);
        }
    }
}

/// Keeps `waker` in `slot` (unless it holds one that wakes the same task).
fn register(slot: &Mutex<Option<Waker>>, waker: &Waker) {
    // A waker is valid whatever a panicking holder of the lock left.
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

/// Wakes the task whose waker `slot` holds, if any (the waker is used up).
fn wake(slot: &Mutex<Option<Waker>>) {
    let waker = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The per-connection time limits, all owned by [`ZeroCopyStream`].
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time to receive a whole request head, from its first byte (or from accept).
    pub header: Duration,
    /// Time an idle keep-alive connection is kept.
    pub idle: Duration,
    /// Time a client may accept no bytes while we have some to send.
    pub send: Duration,
}

/// A TCP connection as hyper's IO, with zero-copy writes and time limits.
pub struct ZeroCopyStream {
    io: TokioIo<TcpStream>,
    shared: Arc<ConnShared>,
    stats: Arc<ServerStats>,
    timeouts: Timeouts,
    /// Send mapped slices with `sendfile` (else `writev`); cleared if the socket refuses it.
    use_sendfile: bool,
    /// When the current request head started arriving (or the connection was accepted);
    /// `None` while no head is being received.
    head_started: Option<Instant>,
    /// Bytes of the next request have arrived (the connection is not evictable).
    head_bytes_seen: bool,
    /// When the connection last became idle (no request in flight).
    idle_since: Instant,
    /// Requests started as last seen, to notice new ones.
    seen_started: u64,
    /// Whether a request was in flight at the last poll, to notice the end of one.
    was_busy: bool,
    /// Since when writes have made no progress.
    stalled_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// The waker `timer` holds: set when a poll of it returned `Pending`, cleared when it is
    /// reset or fires.
    timer_waker: Option<Waker>,
    /// The pacing rate set on the socket now.
    pacing: AppliedPacing,
    /// After how long idle to ask for parking (HTTP/1.1, plain or over TLS; see
    /// [`ZeroCopyStream::park_when_idle`]).
    park_after: Option<Duration>,
    /// No parking before this (set when a parked connection resumes, so that a connection
    /// woken by the client's end or a spurious readiness reads it before it could park again).
    park_not_before: Option<Instant>,
    /// Bytes read by a parser that was let go before it used them, given out first.
    replay: bytes::Bytes,
}

/// The time, read at most once per poll and only if a deadline needs it. One poll checks
/// several deadlines (header, keep-alive idle, parking, the kept mapping) microseconds apart,
/// and a keep-alive request used to read the clock six times here; on a VM a read is not free.
#[derive(Default)]
struct PollClock(Option<Instant>);

impl PollClock {
    fn now(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

impl ZeroCopyStream {
    /// Wraps an accepted connection.
    pub fn new(
        tcp: TcpStream,
        shared: Arc<ConnShared>,
        stats: Arc<ServerStats>,
        timeouts: Timeouts,
        strategy: FileStrategy,
    ) -> ZeroCopyStream {
        let now = Instant::now();
        ZeroCopyStream {
            io: TokioIo::new(tcp),
            shared,
            stats,
            timeouts,
            use_sendfile: strategy.sends_with_sendfile() && SENDFILE_AVAILABLE,
            head_started: Some(now),
            head_bytes_seen: false,
            idle_since: now,
            seen_started: 0,
            was_busy: false,
            stalled_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.header)),
            timer_waker: None,
            pacing: AppliedPacing::default(),
            park_after: None,
            park_not_before: None,
            replay: bytes::Bytes::new(),
        }
    }

    /// Asks for the connection to be parked once it has waited `after` for a next request with
    /// not one byte of it received: [`ConnShared::take_park_request`] then says yes, and the
    /// owner of hyper's connection ends it and keeps only this stream until bytes arrive (see
    /// `crate::http1_connection`).
    pub fn park_when_idle(&mut self, after: Duration) {
        self.park_after = Some(after);
    }

    /// The state this connection's IO shares with its service.
    pub fn shared(&self) -> Arc<ConnShared> {
        Arc::clone(&self.shared)
    }

    /// The server's counters.
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.stats)
    }

    /// A parked connection resumes (a new parser takes the stream): it may park again only
    /// after another park delay. An ask to park left from before (the old parser's last flush
    /// can ask again while it ends) is dropped, or the new parser would be ended at once.
    pub fn resume_from_parking(&mut self) {
        self.park_not_before = self.park_after.map(|after| Instant::now() + after);
        self.shared.park_requested.store(false, Ordering::Release);
    }

    /// Bytes a finished parser had read but not used: the next reads return them first.
    pub fn replay(&mut self, bytes: bytes::Bytes) {
        debug_assert!(self.replay.is_empty());
        self.replay = bytes;
    }

    /// Over TLS: the parser read plaintext this stream's reads did not carry at that moment
    /// (bytes replayed above TLS after parking, or records rustls had decrypted earlier). For
    /// the header timeout and eviction that is a request head starting, as a socket read is.
    pub(crate) fn plaintext_arrived(&mut self) {
        let mut clock = PollClock::default();
        self.track_requests(&mut clock);
        self.bytes_arrived(&mut clock);
    }

    /// A read returned (bytes, the end, or an error), from the socket or from the replay.
    /// While nothing is in flight that is the start of a request head: the connection is no
    /// longer evictable, and (HTTP/1; see `ConnShared::multiplexed` for HTTP/2) the header
    /// timer starts.
    fn bytes_arrived(&mut self, clock: &mut PollClock) {
        if self.was_busy {
            return;
        }
        self.head_bytes_seen = true;
        self.shared.evictable.store(false, Ordering::Release);
        if self.head_started.is_none() && !self.shared.multiplexed.load(Ordering::Acquire) {
            self.head_started = Some(clock.now());
        }
    }

    /// The error that ends the connection if it was evicted to make room for a new one.
    pub(crate) fn eviction(&self) -> Option<io::Error> {
        if !self.shared.evicted.load(Ordering::Acquire) {
            return None;
        }
        tracing::debug!("idle connection closed to make room for a new one");
        Some(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "closed to make room at --max-connections",
        ))
    }

    /// While parked: resolves `Ok` when the socket has something to read (a request, or the
    /// end), `Err` when the connection is evicted or its timeout passes: the header timeout for
    /// a new connection that has sent nothing yet, the keep-alive idle timeout after a
    /// response. Keeps the idle duties of [`Read::poll_read`]: evictable, and the kept mapping
    /// let go.
    pub fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(evicted) = self.eviction() {
            return Poll::Ready(Err(evicted));
        }
        if !self.replay.is_empty() {
            return Poll::Ready(Ok(()));
        }
        self.shared.wait_evictable(cx.waker());
        // A peek, not `poll_read_ready`: tokio reports a socket it has not read yet as ready
        // (a new connection that has sent nothing would bring hyper in at once); a peek that
        // finds nothing clears that and waits for a real byte (or the end).
        let mut byte = [0u8; 1];
        let mut peeked = tokio::io::ReadBuf::new(&mut byte);
        if self.io.inner().poll_peek(cx, &mut peeked)?.is_ready() {
            return Poll::Ready(Ok(()));
        }
        let mut clock = PollClock::default();
        self.release_mapping_when_idle(cx, &mut clock);
        match self.waiting_timeout(cx, &mut clock) {
            Some(timeout) => Poll::Ready(Err(timeout)),
            None => Poll::Pending,
        }
    }

    /// While waiting for a request: the error that ends the connection once the deadline
    /// passes (the header timeout from the first byte of a head, or from accept; else the
    /// keep-alive idle timeout), arming the timer for it if need be.
    fn waiting_timeout(
        &mut self,
        cx: &mut Context<'_>,
        clock: &mut PollClock,
    ) -> Option<io::Error> {
        let (deadline, what) = match self.head_started {
            Some(started) => (started + self.timeouts.header, "request head"),
            None => (self.idle_since + self.timeouts.idle, "keep-alive idle"),
        };
        if !self.deadline_passed(deadline, cx, clock) {
            return None;
        }
        tracing::debug!("{what} timeout; closing the connection");
        Some(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timeout"),
        ))
    }

    /// Waiting for a next request with nothing of it received and nothing of the last response
    /// left to send. A response's end can wait after its request stopped counting (over TLS the
    /// session takes it and sends it later): until it is out, closing the connection to make
    /// room would cut the response short, and the connection is not idle, so not parked either.
    fn awaits_head(&self) -> bool {
        !self.head_bytes_seen && self.stalled_since.is_none()
    }

    /// While idle with no byte of a next request: once the park delay has passed, says so
    /// through [`ConnShared::take_park_request`] (arming the timer for that moment if need be).
    fn request_park_when_due(&mut self, cx: &mut Context<'_>, clock: &mut PollClock) {
        if let Some(after) = self.park_after {
            let due =
                (self.idle_since + after).max(self.park_not_before.unwrap_or(self.idle_since));
            if self.awaits_head() && self.deadline_passed(due, cx, clock) {
                self.shared.park_requested.store(true, Ordering::Release);
            }
        }
    }

    /// Notices requests that started or finished since the last poll. A request can start and
    /// finish within one poll of the connection (a small file answered at once), so "a request
    /// started since the last look and none is in flight now" also starts the idle clock.
    fn track_requests(&mut self, clock: &mut PollClock) {
        let started = self.shared.started.load(Ordering::Acquire);
        let busy = self.shared.in_flight.load(Ordering::Acquire) > 0;
        let mut became_idle = false;
        if started != self.seen_started {
            self.seen_started = started;
            self.head_started = None;
            self.head_bytes_seen = false;
            became_idle = !busy;
        } else if self.was_busy && !busy {
            became_idle = true;
        }
        self.was_busy = busy;
        if became_idle {
            self.idle_since = clock.now();
            // A kept mapping the last response did not use (the tab polled the stats, say) is
            // let go at once; one it did use is kept for the next range request of a burst.
            self.shared.registry.forget_reusable_unless_used();
        }
    }

    /// While idle: lets go of the kept whole-file mapping once the connection has been idle for
    /// [`REUSABLE_MAPPING_IDLE_RELEASE`] (arming the timer for that moment if need be).
    fn release_mapping_when_idle(&mut self, cx: &mut Context<'_>, clock: &mut PollClock) {
        if self.shared.registry.has_reusable()
            && self.deadline_passed(self.idle_since + REUSABLE_MAPPING_IDLE_RELEASE, cx, clock)
        {
            self.shared.registry.forget_reusable();
        }
    }

    /// Arms the timer for `deadline` and reports whether it has passed. Registers the waker, so
    /// a `Pending` return is always woken by the socket or by the deadline.
    fn deadline_passed(
        &mut self,
        deadline: Instant,
        cx: &mut Context<'_>,
        clock: &mut PollClock,
    ) -> bool {
        if clock.now() >= deadline {
            return true;
        }
        // One timer serves reads and writes: arm it for the earlier deadline.
        if self.timer.deadline() > deadline || self.timer.is_elapsed() {
            self.timer.as_mut().reset(deadline);
            self.timer_waker = None;
        } else if self
            .timer_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            // Armed for this deadline or an earlier one, not fired, and already holding this
            // task's waker: polling it again would only register the same waker. This is the
            // case on every request of a keep-alive connection (the idle deadline only moves
            // later), so it is worth the check.
            return false;
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            // An earlier, stale deadline fired: re-arm for this one so the waker stays set.
            self.timer.as_mut().reset(deadline);
            if self.timer.as_mut().poll(cx).is_ready() {
                self.timer_waker = None;
                return true;
            }
        }
        self.timer_waker = Some(cx.waker().clone());
        false
    }

    fn on_write_result(
        &mut self,
        cx: &mut Context<'_>,
        clock: &mut PollClock,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.stalled_since = None;
                    ServerStats::add(&self.stats.bytes_sent, n as u64);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                // Bytes to send: not evictable until they are out (see `awaits_head`).
                self.shared.evictable.store(false, Ordering::Release);
                let since = *self.stalled_since.get_or_insert_with(|| clock.now());
                if self.deadline_passed(since + self.timeouts.send, cx, clock) {
                    tracing::debug!("client accepted no bytes for the send timeout; closing");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "send timeout: the client stopped reading",
                    )));
                }
                Poll::Pending
            }
            error => error,
        }
    }

    /// Counts and logs a send cut short because the file shrank (nginx: "someone has truncated
    /// the file"); the error closes the connection, so the client sees a short response.
    fn file_shrank(&self) -> io::Error {
        ServerStats::add(&self.stats.truncated_sends, 1);
        tracing::error!("file shrank while it was being sent; closing the connection");
        file_shrank()
    }

    /// The `writev` path: plain vectored write; mapped bytes among `bufs` are counted as such.
    fn poll_writev(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = match ready!(Pin::new(&mut self.io).poll_write_vectored(cx, bufs)) {
            Ok(written) => written,
            // The kernel could not read a mapped page: the file was truncated under the
            // mapping. (User space never reads those pages, so this is EFAULT, not SIGBUS.)
            Err(error) if error.raw_os_error() == Some(libc::EFAULT) => {
                return Poll::Ready(Err(self.file_shrank()));
            }
            Err(error) => return Poll::Ready(Err(error)),
        };
        let mut left = written;
        let mut mapped = 0;
        for buf in bufs {
            if left == 0 {
                break;
            }
            let n = left.min(buf.len());
            if self.shared.registry.contains(buf.as_ptr()) {
                mapped += n;
            }
            left -= n;
        }
        ServerStats::add(&self.stats.bytes_writev_mapped, mapped as u64);
        Poll::Ready(Ok(written))
    }

    /// The zero-copy path: bytes before the first mapped slice go out with `sendmsg(MSG_MORE)`,
    /// a mapped slice goes out with `sendfile`; a head with a small body goes out in one
    /// `writev` ([`SMALL_BODY_WRITEV`]).
    fn poll_write_zero_copy(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let (first_mapped, mapped_bytes) = self.shared.registry.mapped_slices(bufs);
        match first_mapped {
            None => self.poll_writev(cx, bufs),
            // A head followed by a small body (only then: a lone tail of a big body still
            // leaves with sendfile).
            Some(n) if n > 0 && mapped_bytes <= SMALL_BODY_WRITEV => self.poll_writev(cx, bufs),
            Some(0) => {
                let Some(span) = self.shared.registry.lookup(bufs[0].as_ptr()) else {
                    return self.poll_writev(cx, bufs);
                };
                let count = bufs[0].len().min(span.available).min(MAX_SENDFILE_CHUNK);
                match ready!(platform::poll_sendfile(
                    self.io.inner(),
                    cx,
                    &span.file,
                    span.offset,
                    count
                )) {
                    Ok(0) => Poll::Ready(Err(self.file_shrank())),
                    Ok(sent) => {
                        ServerStats::add(&self.stats.bytes_sendfile, sent as u64);
                        ServerStats::add(&self.stats.sendfile_calls, 1);
                        Poll::Ready(Ok(sent))
                    }
                    Err(error) if platform::is_refusal(&error) => {
                        tracing::debug!(%error, "sendfile refused this socket; falling back to writev");
                        self.use_sendfile = false;
                        self.poll_writev(cx, bufs)
                    }
                    Err(error) => Poll::Ready(Err(error)),
                }
            }
            Some(n) => platform::poll_send_more(self.io.inner(), cx, &bufs[..n]),
        }
    }
}

impl Read for ZeroCopyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut clock = PollClock::default();
        this.track_requests(&mut clock);
        if let Some(evicted) = this.eviction() {
            return Poll::Ready(Err(evicted));
        }
        if read_replayed(&mut this.replay, &mut buf) {
            this.bytes_arrived(&mut clock);
            return Poll::Ready(Ok(()));
        }
        // hyper-util's TokioIo does the unsafe cursor plumbing; we only watch the outcome.
        let mut probe = Pin::new(&mut this.io);
        match probe.as_mut().poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.bytes_arrived(&mut clock);
                Poll::Ready(result)
            }
            Poll::Pending => {
                if this.was_busy {
                    this.shared.evictable.store(false, Ordering::Release);
                    if this.shared.multiplexed.load(Ordering::Acquire)
                        && this.shared.wait_until_no_request(cx.waker())
                    {
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                if this.awaits_head() {
                    this.shared.wait_evictable(cx.waker());
                }
                if this.head_started.is_none() {
                    this.release_mapping_when_idle(cx, &mut clock);
                    this.request_park_when_due(cx, &mut clock);
                }
                match this.waiting_timeout(cx, &mut clock) {
                    Some(timeout) => Poll::Ready(Err(timeout)),
                    None => Poll::Pending,
                }
            }
        }
    }
}

/// Moves as much of `replay` (bytes a finished parser had read but not used) into `buf` as fits;
/// whether there was any.
pub(crate) fn read_replayed(replay: &mut bytes::Bytes, buf: &mut ReadBufCursor<'_>) -> bool {
    if replay.is_empty() {
        return false;
    }
    let n = replay.len().min(buf.remaining());
    buf.put_slice(&replay.split_to(n));
    true
}

impl Write for ZeroCopyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut clock = PollClock::default();
        this.track_requests(&mut clock);
        this.pacing.sync(this.io.inner(), &this.shared.pacing);
        let result = if this.use_sendfile {
            this.poll_write_zero_copy(cx, bufs)
        } else {
            this.poll_writev(cx, bufs)
        };
        this.on_write_result(cx, &mut clock, result)
    }

    fn is_write_vectored(&self) -> bool {
        // This is what makes hyper queue body chunks (WriteStrategy::Queue) instead of copying
        // them into its head buffer.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut clock = PollClock::default();
        // hyper flushes after the last bytes of a response and may not read again until the
        // client sends more: the idle clock must be armed here, not only on the next read.
        this.track_requests(&mut clock);
        if !this.was_busy && this.head_started.is_none() {
            if this.awaits_head() {
                this.shared.wait_evictable(cx.waker());
            }
            // Only arms (or keeps) the timer; the read side reports the timeout (or asks for
            // parking) when it fires.
            this.release_mapping_when_idle(cx, &mut clock);
            this.request_park_when_due(cx, &mut clock);
            let _ = this.deadline_passed(this.idle_since + this.timeouts.idle, cx, &mut clock);
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(all(test, target_os = "linux", not(feature = "portable-only")))]
mod tests {
    use super::*;
    use crate::body::{MappedChunk, Mode, Transport};
    use bytes::Buf;
    use std::io::{Read as _, Write as _};
    use std::os::fd::AsRawFd;

    fn timeouts() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            send: Duration::from_secs(5),
        }
    }

    /// Sends `[head, mapped chunk]` through a ZeroCopyStream over a real loopback socket and
    /// returns what the peer received plus the stream's counters.
    async fn send_head_and_chunk(refuse_sendfile: bool) -> (Vec<u8>, Vec<u8>, Arc<ServerStats>) {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&content).unwrap();
        let file = Arc::new(file);

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let mut received = Vec::new();
            peer.read_to_end(&mut received).unwrap();
            received
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        if refuse_sendfile {
            // sendfile(2) refuses an O_APPEND destination with EINVAL (do_splice_direct): a
            // real refusal from the real kernel, without any test hook in the server.
            // SAFETY: plain fcntl calls on a descriptor this test owns.
            unsafe {
                let fd = tcp.as_raw_fd();
                let flags = libc::fcntl(fd, libc::F_GETFL);
                assert!(flags >= 0);
                assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_APPEND), 0);
            }
        }
        let shared = Arc::new(ConnShared::default());
        let stats = Arc::new(ServerStats::default());
        let mut stream = ZeroCopyStream::new(
            tcp,
            Arc::clone(&shared),
            Arc::clone(&stats),
            timeouts(),
            FileStrategy::for_connection(Mode::Sendfile, 4096, Transport::Plain),
        );
        let mut head = bytes::Bytes::from_static(b"HEAD-BYTES\r\n");
        let mut chunk = MappedChunk::map(&file, 1000, 250_000, &shared.registry).unwrap();
        while head.has_remaining() || chunk.has_remaining() {
            let slices = [IoSlice::new(head.chunk()), IoSlice::new(chunk.chunk())];
            let slices: Vec<IoSlice<'_>> = slices.into_iter().filter(|s| !s.is_empty()).collect();
            let mut n =
                std::future::poll_fn(|cx| Pin::new(&mut stream).poll_write_vectored(cx, &slices))
                    .await
                    .unwrap();
            let from_head = n.min(head.remaining());
            head.advance(from_head);
            n -= from_head;
            chunk.advance(n);
        }
        drop(chunk);
        assert!(shared.registry.is_empty(), "mapping left registered");
        drop(stream);
        let mut expected = b"HEAD-BYTES\r\n".to_vec();
        expected.extend_from_slice(&content[1000..251_000]);
        (reader.join().unwrap(), expected, stats)
    }

    /// Polls `poll` once: its outcome, `Pending` included.
    async fn poll_once<T>(mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        std::future::poll_fn(|cx| Poll::Ready(poll(cx))).await
    }

    /// Polls an idle connection as hyper does between requests: a read (nothing to read) and a
    /// flush. Whether the read waited and the flush was done.
    async fn poll_idle(stream: &mut ZeroCopyStream) -> Poll<(bool, bool)> {
        let mut storage = [0u8; 64];
        poll_once(|cx| {
            let mut buf = hyper::rt::ReadBuf::new(&mut storage);
            let read = Pin::new(&mut *stream).poll_read(cx, buf.unfilled());
            let flush = Pin::new(&mut *stream).poll_flush(cx);
            Poll::Ready((read.is_pending(), flush.is_ready()))
        })
        .await
    }

    /// A connection whose last bytes are not all sent (over TLS, the end of a response waits
    /// in the session after its request stopped counting) is neither evictable nor asked to
    /// park, however long past the park delay; once they are out, it is both.
    #[tokio::test]
    async fn bytes_left_to_send_keep_an_idle_connection_from_parking_and_eviction() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let shared = Arc::new(ConnShared::default());
        let mut stream = ZeroCopyStream::new(
            tcp,
            Arc::clone(&shared),
            Arc::new(ServerStats::default()),
            timeouts(),
            FileStrategy::for_connection(Mode::Sendfile, 4096, Transport::Plain),
        );
        stream.park_when_idle(Duration::from_millis(10));
        // A request came and went: idle, no head started.
        shared.started.fetch_add(1, Ordering::AcqRel);
        let block = vec![7u8; 1 << 16];
        // The peer reads nothing: write until the socket takes no more.
        loop {
            match poll_once(|cx| Pin::new(&mut stream).poll_write(cx, &block)).await {
                Poll::Ready(Ok(n)) => assert!(n > 0),
                Poll::Pending => break,
                Poll::Ready(Err(error)) => panic!("{error}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            poll_idle(&mut stream).await,
            Poll::Ready((true, true))
        ));
        assert!(
            !shared.awaits_new_request(),
            "evictable with bytes left to send"
        );
        assert!(
            !shared.take_park_request(),
            "asked to park with bytes left to send"
        );

        // The peer reads everything: the next write goes out, and the idle connection may be
        // evicted and parked.
        let reader = std::thread::spawn(move || {
            let mut received = Vec::new();
            peer.read_to_end(&mut received).unwrap();
        });
        loop {
            match poll_once(|cx| Pin::new(&mut stream).poll_write(cx, b"end")).await {
                Poll::Ready(Ok(n)) if n > 0 => break,
                Poll::Ready(Err(error)) => panic!("{error}"),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        assert!(matches!(
            poll_idle(&mut stream).await,
            Poll::Ready((true, true))
        ));
        assert!(
            shared.awaits_new_request(),
            "not evictable once all is sent"
        );
        assert!(
            shared.take_park_request(),
            "not asked to park once all is sent"
        );
        drop(stream);
        reader.join().unwrap();
    }

    #[tokio::test]
    async fn mapped_slices_leave_through_sendfile() {
        let (received, expected, stats) = send_head_and_chunk(false).await;
        assert!(received == expected, "bytes differ");
        assert_eq!(stats.bytes_sendfile.get(), 250_000);
        assert_eq!(stats.bytes_writev_mapped.get(), 0);
    }

    #[tokio::test]
    async fn refused_sendfile_falls_back_to_writev_from_the_mapping() {
        let (received, expected, stats) = send_head_and_chunk(true).await;
        assert!(received == expected, "bytes differ");
        assert_eq!(stats.bytes_sendfile.get(), 0);
        assert_eq!(stats.bytes_writev_mapped.get(), 250_000);
    }
}
