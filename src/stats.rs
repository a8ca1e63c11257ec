//! Per-server counters: how many bytes left by which path. They are what proves, in tests and on
//! the player page, that `sendfile` mode really moves file bytes with `sendfile(2)` and the other
//! modes do not. Relaxed atomics: these are figures to read, not to synchronise on.
//!
//! Every request adds to several counters, from whichever worker thread runs it: one shared
//! atomic per counter would bounce its cache line between the cores on every request. A
//! [`Counter`] is split in per-thread shards instead, each on its own cache line, and summed
//! when read (rarely: the stats endpoint, the metrics scrape).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Shards per counter: threads beyond this share shards (still correct, a little slower).
const SHARDS: usize = 8;

/// A counter whose threads add to their own shard; reading sums the shards.
#[derive(Debug, Default)]
pub struct Counter {
    shards: [Shard; SHARDS],
}

/// One shard, alone on its cache line (128 bytes: adjacent-line prefetch pairs 64-byte lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.shards[shard_of_this_thread()]
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Takes `n` away (from this thread's shard, which may wrap: the sum stays right).
    pub fn sub(&self, n: u64) {
        self.shards[shard_of_this_thread()]
            .0
            .fetch_sub(n, Ordering::Relaxed);
    }

    /// The sum of the shards.
    pub fn get(&self) -> u64 {
        self.shards.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(shard.0.load(Ordering::Relaxed))
        })
    }
}

/// This thread's shard: threads are numbered as they first count something.
fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// The server's counters as one connection holds them, for its response bodies. A body keeps a
/// clone of this (whose reference count is the connection's own) rather than of the server's
/// `Arc`, whose count every request on every core would otherwise bump and drop: one shared
/// cache line moved between the cores twice per request.
#[derive(Debug)]
pub struct ConnectionStats(Arc<ServerStats>);

impl ConnectionStats {
    /// A connection's handle on `stats`.
    pub fn new(stats: Arc<ServerStats>) -> Arc<ConnectionStats> {
        Arc::new(ConnectionStats(stats))
    }
}

impl std::ops::Deref for ConnectionStats {
    type Target = ServerStats;

    fn deref(&self) -> &ServerStats {
        &self.0
    }
}

/// Counters for one running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Requests whose head was parsed and handed to the service.
    pub requests: Counter,
    /// Responses with status 206.
    pub responses_206: Counter,
    /// Every byte written to client sockets (heads and bodies), by any path.
    pub bytes_sent: Counter,
    /// File bytes sent with `sendfile(2)` (no user-space copy).
    pub bytes_sendfile: Counter,
    /// `sendfile(2)` calls that moved at least one byte.
    pub sendfile_calls: Counter,
    /// File bytes written with `writev` straight from a memory map.
    pub bytes_writev_mapped: Counter,
    /// File bytes read into user-space buffers (`chunked` and `read-all` modes).
    pub bytes_copied: Counter,
    /// Connections accepted and not yet closed.
    pub open_connections: Counter,
    /// Connections accepted since start.
    pub connections_accepted: Counter,
    /// Sends that ended because the file shrank while it was being sent.
    pub truncated_sends: Counter,
    /// File chunks read on the async worker because they were in the page cache (HTTPS).
    pub chunks_read_in_place: Counter,
    /// Body bytes written after a response's pacing threshold (`--limit-rate`, `--pace`).
    pub bytes_paced: Counter,
    /// File chunks read on the blocking pool (`chunked` mode; HTTPS when not cached).
    pub chunks_read_on_pool: Counter,
    /// HTTP/2 streams reset because they made no progress for the send timeout.
    pub stalled_streams_reset: Counter,
    /// Idle keep-alive connections closed to make room for new ones at `--max-connections`.
    pub idle_connections_evicted: Counter,
    /// Times an idle HTTP/1.1 connection (plain or over TLS) gave its parser's buffers back (see
    /// [`crate::http1_connection`]).
    pub idle_connections_parked: Counter,
    /// Files served from a descriptor the open-file cache kept (`--open-file-cache`).
    pub open_file_cache_hits: Counter,
}

impl ServerStats {
    /// Adds `n` to a counter.
    pub fn add(counter: &Counter, n: u64) {
        counter.add(n);
    }

    /// The counters as a JSON object (field names as above), with the process's access log
    /// counters: `access_log_lines` written and `access_log_dropped`.
    pub fn to_json(&self, mode: &str) -> String {
        let get = |c: &Counter| c.get();
        format!(
            concat!(
                "{{\"mode\":\"{}\",\"requests\":{},\"responses_206\":{},\"bytes_sent\":{},",
                "\"bytes_sendfile\":{},\"sendfile_calls\":{},\"bytes_writev_mapped\":{},",
                "\"bytes_copied\":{},\"open_connections\":{},\"connections_accepted\":{},",
                "\"truncated_sends\":{},\"chunks_read_in_place\":{},\"chunks_read_on_pool\":{},",
                "\"stalled_streams_reset\":{},\"idle_connections_evicted\":{},",
                "\"idle_connections_parked\":{},\"bytes_paced\":{},",
                "\"open_file_cache_hits\":{},",
                "\"access_log_lines\":{},\"access_log_dropped\":{}}}"
            ),
            mode,
            get(&self.requests),
            get(&self.responses_206),
            get(&self.bytes_sent),
            get(&self.bytes_sendfile),
            get(&self.sendfile_calls),
            get(&self.bytes_writev_mapped),
            get(&self.bytes_copied),
            get(&self.open_connections),
            get(&self.connections_accepted),
            get(&self.truncated_sends),
            get(&self.chunks_read_in_place),
            get(&self.chunks_read_on_pool),
            get(&self.stalled_streams_reset),
            get(&self.idle_connections_evicted),
            get(&self.idle_connections_parked),
            get(&self.bytes_paced),
            get(&self.open_file_cache_hits),
            crate::access_log::lines_written(),
            crate::access_log::lines_dropped(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counter = std::sync::Arc::new(Counter::default());
        let threads: Vec<_> = (0..(2 * SHARDS + 3))
            .map(|_| {
                let counter = std::sync::Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.add(1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counter.get(), (2 * SHARDS as u64 + 3) * 1000);
    }

    #[test]
    fn a_gauge_taken_away_on_another_thread_still_sums_right() {
        let counter = std::sync::Arc::new(Counter::default());
        counter.add(5);
        let other = std::sync::Arc::clone(&counter);
        std::thread::spawn(move || other.sub(3)).join().unwrap();
        assert_eq!(counter.get(), 2);
    }
}
