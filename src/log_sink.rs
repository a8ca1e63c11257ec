//! A bounded, lossy, non-blocking log destination: callers append whole lines to a buffer in
//! memory, and a dedicated thread (outside the tokio event loops) writes the buffer out.
//!
//! It exists so that no log output can ever block an event loop: with stderr on a pipe whose
//! reader has stopped reading, a plain `write(2)` blocks the thread that calls it, and with it
//! every connection that thread serves. Here the only thread that ever blocks on the
//! destination is the writer; when it is stuck, the buffer fills up to its cap and further
//! lines are dropped and counted ([`LogSink::dropped`]).
//!
//! What it is not: a general async writer. Lines are appended whole (one `append` is one or
//! more complete lines), so lines never interleave; a line is never split or retried; and there
//! is no back-pressure by design.
//!
//! Memory: at most `cap` bytes wait in the buffer, plus at most `cap` bytes in the writer's
//! hands (the batch it is writing), so a sink holds at most `2 * cap` bytes, however slow or
//! stalled the destination.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// When the writer thread writes what has been appended.
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    /// Most bytes that may wait in the buffer; a line that does not fit is dropped.
    pub cap: usize,
    /// The writer is woken as soon as this many bytes wait (1: at every line).
    pub flush_at: usize,
    /// The writer writes whatever waits at least this often.
    pub flush_every: Duration,
}

/// One destination with its writer thread. Cloning shares the same buffer and thread.
#[derive(Debug, Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    policy: FlushPolicy,
    pending: Mutex<Pending>,
    /// Signalled when the writer should look at `pending`.
    wake: Condvar,
    /// Signalled when the writer has written everything and stopped.
    drained: Condvar,
    written: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// Lines in `buf`.
    lines: u64,
    closing: bool,
    done: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave `Pending` half-updated in a way that
    // matters (at worst a line is counted but not written): keep logging.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LogSink {
    /// Starts a writer thread named `name` that writes to `destination` under `policy`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(
        name: &str,
        destination: Box<dyn Write + Send>,
        policy: FlushPolicy,
    ) -> io::Result<LogSink> {
        let shared = Arc::new(Shared {
            policy,
            pending: Mutex::new(Pending {
                buf: Vec::with_capacity(policy.flush_at.min(policy.cap) + 4096),
                ..Pending::default()
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let for_thread = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || write_loop(&for_thread, destination))?;
        Ok(LogSink { shared })
    }

    /// Appends `bytes` (`lines` complete lines) to the buffer, or drops them if the buffer is
    /// full. Never blocks on the destination, never makes a system call unless the writer has
    /// to be woken (once per `flush_at` bytes). Returns whether the lines were kept.
    pub fn append(&self, bytes: &[u8], lines: u64) -> bool {
        let shared = &*self.shared;
        let mut pending = lock(&shared.pending);
        let before = pending.buf.len();
        if pending.closing || before + bytes.len() > shared.policy.cap {
            drop(pending);
            shared.dropped.fetch_add(lines, Ordering::Relaxed);
            return false;
        }
        pending.buf.extend_from_slice(bytes);
        pending.lines += lines;
        let wake = before < shared.policy.flush_at && pending.buf.len() >= shared.policy.flush_at;
        drop(pending);
        if wake {
            shared.wake.notify_one();
        }
        true
    }

    /// Lines written to the destination so far.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Lines dropped so far: the buffer was full, or the destination failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Asks the writer to write everything appended so far and stop. Lines appended after
    /// this are dropped.
    pub fn close(&self) {
        lock(&self.shared.pending).closing = true;
        self.shared.wake.notify_one();
    }

    /// After [`close`](Self::close): waits until everything has been written, or until
    /// `deadline` (a stalled destination must not keep the process from exiting). Returns
    /// whether everything was written.
    pub fn wait_drained(&self, deadline: Instant) -> bool {
        let mut pending = lock(&self.shared.pending);
        while !pending.done {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            pending = self
                .shared
                .drained
                .wait_timeout(pending, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// The writer thread: waits for `flush_at` bytes, the flush interval or `close`, swaps the
/// buffer for an empty one (so appends go on while it writes) and writes the batch.
fn write_loop(shared: &Shared, mut destination: Box<dyn Write + Send>) {
    let policy = shared.policy;
    let mut batch: Vec<u8> = Vec::with_capacity(policy.flush_at.min(policy.cap) + 4096);
    loop {
        let lines = {
            let mut pending = lock(&shared.pending);
            let deadline = Instant::now() + policy.flush_every;
            while !pending.closing && pending.buf.len() < policy.flush_at {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                pending = shared
                    .wake
                    .wait_timeout(pending, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if pending.closing && pending.buf.is_empty() {
                pending.done = true;
                drop(pending);
                shared.drained.notify_all();
                return;
            }
            std::mem::swap(&mut pending.buf, &mut batch);
            std::mem::take(&mut pending.lines)
        };
        if !batch.is_empty() {
            let result = destination
                .write_all(&batch)
                .and_then(|()| destination.flush());
            let counter = match result {
                Ok(()) => &shared.written,
                // Nowhere to report it (this is the log): count the lines as lost.
                Err(_) => &shared.dropped,
            };
            counter.fetch_add(lines, Ordering::Relaxed);
            batch.clear();
            // A batch that grew large while the destination was slow gives its memory back.
            if batch.capacity() > 4 * (policy.flush_at.min(policy.cap) + 4096) {
                batch.shrink_to(policy.flush_at.min(policy.cap) + 4096);
            }
        }
        // When closing, the loop goes round until the buffer is empty.
    }
}

/// A `tracing_subscriber` writer that appends each formatted event to a [`LogSink`]: the
/// subscriber formats one event into one `write_all` call, which is one line.
#[derive(Debug, Clone)]
pub struct TracingWriter {
    sink: LogSink,
}

impl TracingWriter {
    /// Events go to `sink`.
    pub fn new(sink: LogSink) -> TracingWriter {
        TracingWriter { sink }
    }
}

/// The writer for one event, from [`TracingWriter`].
#[derive(Debug)]
pub struct TracingLine<'a> {
    sink: &'a LogSink,
}

impl Write for TracingLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Lossy on purpose: a full buffer drops the line rather than fail the caller.
        let _kept = self.sink.append(buf, 1);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TracingWriter {
    type Writer = TracingLine<'a>;

    fn make_writer(&'a self) -> TracingLine<'a> {
        TracingLine { sink: &self.sink }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination that records what it got and can be made to block.
    #[derive(Clone, Default)]
    struct Recorder {
        got: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _open = lock(&self.gate);
            lock(&self.got).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn policy(cap: usize, flush_at: usize) -> FlushPolicy {
        FlushPolicy {
            cap,
            flush_at,
            flush_every: Duration::from_secs(1),
        }
    }

    #[test]
    fn close_writes_everything_appended_before_it() {
        let recorder = Recorder::default();
        let sink =
            LogSink::spawn("t", Box::new(recorder.clone()), policy(1 << 20, 64 << 10)).unwrap();
        for i in 0..1000 {
            assert!(sink.append(format!("line {i}\n").as_bytes(), 1));
        }
        sink.close();
        assert!(sink.wait_drained(Instant::now() + Duration::from_secs(5)));
        let got = lock(&recorder.got).clone();
        assert_eq!(got.iter().filter(|&&b| b == b'\n').count(), 1000);
        assert!(got.starts_with(b"line 0\nline 1\n"));
        assert_eq!((sink.written(), sink.dropped()), (1000, 0));
        assert!(
            !sink.append(b"late\n", 1),
            "appends after close are dropped"
        );
    }

    #[test]
    fn a_stalled_destination_drops_lines_beyond_the_cap_without_blocking() {
        let recorder = Recorder::default();
        let stall = lock(&recorder.gate);
        let sink = LogSink::spawn("t", Box::new(recorder.clone()), policy(1000, 1)).unwrap();
        // The writer takes the first line and blocks in write; the rest fill the buffer.
        assert!(sink.append(b"first\n", 1));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !lock(&sink.shared.pending).buf.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the writer never took the first line"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        let kept = (0..10_000)
            .filter(|_| sink.append(b"0123456789\n", 1))
            .count();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(kept <= 1000 / 11, "{kept} lines kept past a 1000-byte cap");
        assert_eq!(sink.dropped(), 10_000 - kept as u64);
        sink.close();
        assert!(
            !sink.wait_drained(Instant::now() + Duration::from_millis(200)),
            "drained while the destination is stalled"
        );
        drop(stall);
        assert!(sink.wait_drained(Instant::now() + Duration::from_secs(5)));
        assert_eq!(sink.written(), 1 + kept as u64);
    }

    #[test]
    fn lines_are_written_after_the_flush_interval_without_reaching_the_size() {
        let recorder = Recorder::default();
        let sink = LogSink::spawn(
            "t",
            Box::new(recorder.clone()),
            FlushPolicy {
                cap: 1 << 20,
                flush_at: 64 << 10,
                flush_every: Duration::from_millis(100),
            },
        )
        .unwrap();
        assert!(sink.append(b"one\n", 1));
        let deadline = Instant::now() + Duration::from_secs(5);
        while lock(&recorder.got).is_empty() {
            assert!(Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(&*lock(&recorder.got), b"one\n");
    }
}
