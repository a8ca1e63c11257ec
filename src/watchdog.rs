//! The send timeout for HTTP/2 streams: every stream task hyper spawns runs under a
//! [`StallWatchdog`] that resets the stream if it makes no progress for `--send-timeout`.
//!
//! Over HTTP/2 a response can stall where the connection IO never sees it: a client that sets
//! its window to zero and never sends WINDOW_UPDATE keeps answering PINGs, so the connection is
//! busy and healthy, while each stream waits for capacity for ever, holding an open file and its
//! buffers. [`crate::zero_copy::ZeroCopyStream`] times out stalled *socket* writes; this times out
//! stalled *streams*, whatever they wait on (the peer's window, the socket, the buffer budget).
//!
//! "Progress" is the stream task being woken by what it waits on (capacity granted, a read
//! finished, bytes written). A stream nobody wakes for `--send-timeout` is dropped, which makes
//! h2 send `RST_STREAM(CANCEL)` and releases its file and buffers; when nothing is left in flight
//! the connection's idle timeout closes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::stats::ServerStats;

/// hyper's executor for HTTP/2 stream tasks: spawns each on tokio under a [`StallWatchdog`].
#[derive(Debug, Clone)]
pub struct WatchdogExecutor {
    stall_timeout: Duration,
    stats: Arc<ServerStats>,
}

impl WatchdogExecutor {
    /// Streams that make no progress for `stall_timeout` are reset (counted in `stats`).
    pub fn new(stall_timeout: Duration, stats: Arc<ServerStats>) -> WatchdogExecutor {
        WatchdogExecutor {
            stall_timeout,
            stats,
        }
    }
}

impl<F> hyper::rt::Executor<F> for WatchdogExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(StallWatchdog::new(
            future,
            self.stall_timeout,
            Arc::clone(&self.stats),
        ));
    }
}

/// Runs `inner` until it completes, or until it has not been woken for the stall timeout; then
/// drops it.
pub struct StallWatchdog<F> {
    inner: Pin<Box<F>>,
    wakes: Arc<WakeRecorder>,
    /// Never polled yet: poll it once whatever the recorder says.
    fresh: bool,
    timeout: Duration,
    /// When the stall timeout runs out (pushed on every wake of `inner`).
    deadline: Instant,
    /// Fires at or before `deadline`; re-armed only when it fires early.
    timer: Pin<Box<Sleep>>,
    stats: Arc<ServerStats>,
}

impl<F> StallWatchdog<F> {
    fn new(inner: F, timeout: Duration, stats: Arc<ServerStats>) -> StallWatchdog<F> {
        let deadline = Instant::now() + timeout;
        StallWatchdog {
            inner: Box::pin(inner),
            wakes: Arc::new(WakeRecorder::default()),
            fresh: true,
            timeout,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            stats,
        }
    }
}

/// The waker handed to the inner future: it records that the inner future was woken, then wakes
/// the task.
#[derive(Default)]
struct WakeRecorder {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl WakeRecorder {
    fn set_task(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if !task.as_ref().is_some_and(|t| t.will_wake(waker)) {
            *task = Some(waker.clone());
        }
    }
}

impl Wake for WakeRecorder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl<F: Future<Output = ()>> Future for StallWatchdog<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.wakes.set_task(cx.waker());
        if std::mem::take(&mut this.fresh) || this.wakes.woken.swap(false, Ordering::AcqRel) {
            let waker = Waker::from(Arc::clone(&this.wakes));
            if this
                .inner
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                return Poll::Ready(());
            }
            this.deadline = Instant::now() + this.timeout;
        }
        loop {
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= this.deadline {
                ServerStats::add(&this.stats.stalled_streams_reset, 1);
                tracing::debug!(
                    "an HTTP/2 stream made no progress for the send timeout; resetting it"
                );
                return Poll::Ready(());
            }
            let deadline = this.deadline;
            this.timer.as_mut().reset(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_future_that_is_never_woken_is_dropped_after_the_timeout() {
        let stats = Arc::new(ServerStats::default());
        let started = Instant::now();
        StallWatchdog::new(
            std::future::pending::<()>(),
            Duration::from_secs(5),
            Arc::clone(&stats),
        )
        .await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(stats.stalled_streams_reset.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_that_keeps_making_progress_runs_to_completion() {
        let stats = Arc::new(ServerStats::default());
        let started = Instant::now();
        let finished = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&finished);
        // Wakes every 3 s (under the 5 s timeout) for 30 s, then completes.
        StallWatchdog::new(
            async move {
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                done.store(true, Ordering::Relaxed);
            },
            Duration::from_secs(5),
            Arc::clone(&stats),
        )
        .await;
        assert!(finished.load(Ordering::Relaxed));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(stats.stalled_streams_reset.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_that_stops_making_progress_is_dropped_a_timeout_after_its_last_wake() {
        let stats = Arc::new(ServerStats::default());
        let started = Instant::now();
        StallWatchdog::new(
            async {
                tokio::time::sleep(Duration::from_secs(4)).await;
                std::future::pending::<()>().await;
            },
            Duration::from_secs(5),
            Arc::clone(&stats),
        )
        .await;
        assert_eq!(started.elapsed(), Duration::from_secs(9));
        assert_eq!(stats.stalled_streams_reset.get(), 1);
    }
}
