//! Per-server counters: how many bytes left by which path. They are what proves, in tests and on
//! the player page, that `sendfile` mode really moves file bytes with `sendfile(2)` and the other
//! modes do not. Relaxed atomics: these are figures to read, not to synchronise on.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for one running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Requests whose head was parsed and handed to the service.
    pub requests: AtomicU64,
    /// Responses with status 206.
    pub responses_206: AtomicU64,
    /// Every byte written to client sockets (heads and bodies), by any path.
    pub bytes_sent: AtomicU64,
    /// File bytes sent with `sendfile(2)` (no user-space copy).
    pub bytes_sendfile: AtomicU64,
    /// `sendfile(2)` calls that moved at least one byte.
    pub sendfile_calls: AtomicU64,
    /// File bytes written with `writev` straight from a memory map.
    pub bytes_writev_mapped: AtomicU64,
    /// File bytes read into user-space buffers (`chunked` and `read-all` modes).
    pub bytes_copied: AtomicU64,
    /// Connections accepted and not yet closed.
    pub open_connections: AtomicU64,
    /// Connections accepted since start.
    pub connections_accepted: AtomicU64,
    /// Sends that ended because the file shrank while it was being sent.
    pub truncated_sends: AtomicU64,
    /// File chunks read on the async worker because they were in the page cache (HTTPS).
    pub chunks_read_in_place: AtomicU64,
    /// Body bytes written after a response's pacing threshold (`--limit-rate`, `--pace`).
    pub bytes_paced: AtomicU64,
    /// File chunks read on the blocking pool (`chunked` mode; HTTPS when not cached).
    pub chunks_read_on_pool: AtomicU64,
    /// HTTP/2 streams reset because they made no progress for the send timeout.
    pub stalled_streams_reset: AtomicU64,
    /// Idle keep-alive connections closed to make room for new ones at `--max-connections`.
    pub idle_connections_evicted: AtomicU64,
    /// Files served from a descriptor the open-file cache kept (`--open-file-cache`).
    pub open_file_cache_hits: AtomicU64,
}

impl ServerStats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters as a JSON object (field names as above), with the process's access log
    /// counters: `access_log_lines` written and `access_log_dropped`.
    pub fn to_json(&self, mode: &str) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            concat!(
                "{{\"mode\":\"{}\",\"requests\":{},\"responses_206\":{},\"bytes_sent\":{},",
                "\"bytes_sendfile\":{},\"sendfile_calls\":{},\"bytes_writev_mapped\":{},",
                "\"bytes_copied\":{},\"open_connections\":{},\"connections_accepted\":{},",
                "\"truncated_sends\":{},\"chunks_read_in_place\":{},\"chunks_read_on_pool\":{},",
                "\"stalled_streams_reset\":{},\"idle_connections_evicted\":{},\"bytes_paced\":{},",
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
            get(&self.bytes_paced),
            get(&self.open_file_cache_hits),
            crate::access_log::lines_written(),
            crate::access_log::lines_dropped(),
        )
    }
}
