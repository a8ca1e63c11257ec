//! Paced delivery: after the first bytes of a response, send the rest no faster than a rate,
//! using the kernel's TCP pacing instead of user-space sleeps.
//!
//! Most viewers of a long movie leave early; a server that sends every response at line rate
//! pays egress for minutes of film nobody watches. nginx answers with `limit_rate` /
//! `limit_rate_after` (and its mp4 module's bitrate-based `mp4_limit_rate`); the same flags here:
//!
//! - `--limit-rate RATE --limit-rate-after SIZE`: any response's first SIZE bytes at full speed,
//!   the rest at RATE bytes per second (per connection, as nginx).
//! - `--pace FACTOR [--pace-burst SECS]`: a movie whose bitrate is known (see
//!   [`crate::media`]) goes at full speed for its first SECS of play time (SECS x bitrate bytes
//!   from the response's start), then at FACTOR x its bitrate. Every response starts a new
//!   burst, so a seek (a new Range request) starts playing at once. For such movies `--pace`
//!   wins over `--limit-rate`; other files get `--limit-rate`, if given.
//!
//! How: the response body counts the bytes hyper has written ([`Pacer::on_sent`], called from
//! the body chunks' `advance`); when the count reaches the threshold it stores the wanted rate in
//! the connection's [`PacingRequest`]. The connection IO ([`crate::zero_copy::ZeroCopyStream`])
//! compares it with what it last applied ([`AppliedPacing::sync`]) before each write and, when it
//! changed, sets `SO_MAX_PACING_RATE` on the socket: the kernel (since Linux 4.13 with no `fq`
//! qdisc needed) then spaces the packets. No timers, no per-byte work in user space, and it
//! paces `sendfile` and TLS alike, since the same socket is underneath. The body ends its first
//! chunk exactly at the threshold, so the unpaced part is exact on the `sendfile` path.
//! Each new request on the connection resets the rate to unlimited.
//!
//! Precision: the kernel leaves a connection's first 10 segments unpaced and lets a sender that
//! fell behind catch up at up to twice the rate (`tcp_update_skb_after_send`); on loopback,
//! where a segment is 64 KiB, rates of a few hundred KB/s therefore finish early. At MB/s rates
//! and on real networks (1.5 KB segments) the rate holds.
//!
//! Limits: the rate is per connection, so over HTTP/2 it applies to every stream of the
//! connection (the latest response to cross its threshold sets it). Off Linux this is a
//! documented no-op: [`set_max_pacing_rate`] does nothing and responses go at full speed.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::stats::ServerStats;

/// A socket the kernel can be asked to pace: anything with a descriptor on Unix.
#[cfg(unix)]
pub use std::os::fd::AsFd as PacedSocket;

/// A socket the kernel can be asked to pace: here nothing is, so anything will do.
#[cfg(not(unix))]
pub trait PacedSocket {}
#[cfg(not(unix))]
impl<T> PacedSocket for T {}

/// The rate meaning "no limit".
pub const UNLIMITED: u64 = u64::MAX;

/// The pacing flags, as given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacingConfig {
    /// `--limit-rate`: bytes per second, after `limit_rate_after`.
    pub limit_rate: Option<u64>,
    /// `--limit-rate-after`: bytes of each response sent at full speed.
    pub limit_rate_after: u64,
    /// `--pace`: multiple of a movie's bitrate.
    pub pace: Option<f64>,
    /// `--pace-burst`: play time sent at full speed.
    pub pace_burst: Duration,
}

/// How one response is paced: its first `after` bytes at full speed, then `rate` bytes per
/// second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingPlan {
    /// Bytes sent at full speed.
    pub after: u64,
    /// Bytes per second after that.
    pub rate: u64,
}

impl PacingConfig {
    /// The pacing flags of `config`, or `None` when there are none (then nothing changes).
    pub fn from_config(config: &Config) -> Option<PacingConfig> {
        if config.limit_rate.is_none() && config.pace.is_none() {
            return None;
        }
        Some(PacingConfig {
            limit_rate: config.limit_rate,
            limit_rate_after: config.limit_rate_after,
            pace: config.pace,
            pace_burst: config.pace_burst,
        })
    }

    /// The plan for a response about a file whose average bitrate (bits per second) is
    /// `bitrate`, if known.
    pub fn plan(&self, bitrate: Option<u64>) -> Option<PacingPlan> {
        if let (Some(factor), Some(bitrate)) = (self.pace, bitrate.filter(|&b| b > 0)) {
            let bytes_per_second = bitrate as f64 / 8.0;
            let rate = (factor * bytes_per_second).round();
            let after = (self.pace_burst.as_secs_f64() * bytes_per_second).round();
            if rate >= 1.0 && rate.is_finite() && after.is_finite() {
                return Some(PacingPlan {
                    after: after as u64,
                    rate: rate as u64,
                });
            }
        }
        self.limit_rate.map(|rate| PacingPlan {
            after: self.limit_rate_after,
            rate: rate.max(1),
        })
    }

    /// Whether responses about this file need its bitrate (`--pace` is on).
    pub fn wants_bitrate(&self) -> bool {
        self.pace.is_some()
    }
}

/// The rate a connection's responses ask its socket for; [`UNLIMITED`] until one crosses its
/// threshold. Shared by the connection's bodies (which store) and its IO (which applies).
#[derive(Debug)]
pub struct PacingRequest(AtomicU64);

impl Default for PacingRequest {
    fn default() -> Self {
        PacingRequest(AtomicU64::new(UNLIMITED))
    }
}

impl PacingRequest {
    /// Asks for `rate` bytes per second from the next write on.
    pub fn request(&self, rate: u64) {
        self.0.store(rate, Ordering::Relaxed);
    }

    /// Back to unlimited (a new response starts).
    pub fn reset(&self) {
        self.request(UNLIMITED);
    }

    /// The rate asked for.
    pub fn requested(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the connection's socket was last set to. Starts unlimited (the kernel default), so a
/// server without pacing flags never makes the system call.
#[derive(Debug)]
pub struct AppliedPacing(u64);

impl Default for AppliedPacing {
    fn default() -> Self {
        AppliedPacing(UNLIMITED)
    }
}

impl AppliedPacing {
    /// Applies the requested rate to `socket` if it differs from the applied one. A refusal is
    /// logged once and not retried until the request changes again.
    pub fn sync(&mut self, socket: &impl PacedSocket, request: &PacingRequest) {
        let wanted = request.requested();
        if wanted == self.0 {
            return;
        }
        self.0 = wanted;
        if let Err(error) = set_max_pacing_rate(socket, wanted) {
            tracing::debug!(%error, rate = wanted, "cannot set SO_MAX_PACING_RATE; not paced");
        }
    }
}

/// One paced response: counts the bytes written and asks for the rate at the threshold.
#[derive(Debug)]
pub struct Pacer {
    plan: PacingPlan,
    conn: Arc<crate::zero_copy::ConnShared>,
    stats: Arc<ServerStats>,
}

impl Pacer {
    /// A pacer for a response on the connection `conn`. With a threshold of 0 the rate is asked
    /// for at once, so even the first write is paced.
    pub fn new(
        plan: PacingPlan,
        conn: Arc<crate::zero_copy::ConnShared>,
        stats: Arc<ServerStats>,
    ) -> Pacer {
        if plan.after == 0 {
            conn.pacing.request(plan.rate);
        }
        Pacer { plan, conn, stats }
    }

    /// The plan.
    pub fn plan(&self) -> PacingPlan {
        self.plan
    }

    /// hyper wrote body bytes `before..after` of the response.
    pub fn on_sent(&self, before: u64, after: u64) {
        if after < self.plan.after {
            return;
        }
        // Stored on every write past the threshold, not only on crossing it: over HTTP/2
        // another stream's new request may have reset the connection's rate meanwhile.
        self.conn.pacing.request(self.plan.rate);
        let paced = after - before.max(self.plan.after);
        ServerStats::add(&self.stats.bytes_paced, paced);
    }

    /// Bytes of the body, counted from `produced`, that the next chunk may hold so it ends at the
    /// threshold (`None`: no limit, the threshold is behind).
    pub fn chunk_limit(&self, produced: u64) -> Option<u64> {
        (produced < self.plan.after).then(|| self.plan.after - produced)
    }
}

/// Sets the socket's `SO_MAX_PACING_RATE` to `rate` bytes per second ([`UNLIMITED`]: none).
#[cfg(target_os = "linux")]
pub fn set_max_pacing_rate(socket: &impl PacedSocket, rate: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // The kernel takes an unsigned int (and, since 4.20, an unsigned long); ~0U means
    // unlimited. Rates above 4 GiB/s are as good as unlimited for one connection.
    let value: libc::c_uint = u32::try_from(rate).unwrap_or(u32::MAX);
    // SAFETY: the descriptor is borrowed from a live socket for the duration of the call, and
    // optval points at a c_uint whose size is passed as optlen.
    let result = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MAX_PACING_RATE,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere the kernel cannot pace a socket: a no-op, so the flags are accepted and responses
/// go at full speed.
#[cfg(not(target_os = "linux"))]
pub fn set_max_pacing_rate(_socket: &impl PacedSocket, _rate: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(limit: Option<u64>, after: u64, pace: Option<f64>) -> PacingConfig {
        PacingConfig {
            limit_rate: limit,
            limit_rate_after: after,
            pace,
            pace_burst: Duration::from_secs(30),
        }
    }

    #[test]
    fn sizes_parse_like_nginx() {
        assert_eq!(crate::config::parse_byte_size("2m"), Ok(2 * 1024 * 1024));
        assert_eq!(crate::config::parse_byte_size("1M"), Ok(1024 * 1024));
        assert_eq!(crate::config::parse_byte_size("512k"), Ok(512 * 1024));
        assert_eq!(crate::config::parse_byte_size("1g"), Ok(1 << 30));
        assert_eq!(crate::config::parse_byte_size("1000"), Ok(1000));
        assert!(crate::config::parse_byte_size("2x").is_err());
        assert!(crate::config::parse_byte_size("m").is_err());
        assert!(crate::config::parse_byte_size("-1").is_err());
        assert!(crate::config::parse_byte_size("99999999999999999999g").is_err());
    }

    #[test]
    fn limit_rate_applies_after_its_threshold() {
        assert_eq!(
            pacing(Some(2 << 20), 1 << 20, None).plan(None),
            Some(PacingPlan {
                after: 1 << 20,
                rate: 2 << 20
            })
        );
    }

    #[test]
    fn pace_is_burst_seconds_then_factor_times_bitrate() {
        // 8 Mbit/s = 1 MB/s: 30 s burst = 30 MB, then 1.5 MB/s.
        let plan = pacing(None, 0, Some(1.5)).plan(Some(8_000_000));
        assert_eq!(
            plan,
            Some(PacingPlan {
                after: 30_000_000,
                rate: 1_500_000
            })
        );
    }

    #[test]
    fn pace_wins_for_movies_with_a_bitrate_and_limit_rate_covers_the_rest() {
        let both = pacing(Some(1000), 10, Some(2.0));
        assert_eq!(both.plan(Some(8000)).unwrap().rate, 2000);
        assert_eq!(both.plan(None).unwrap().rate, 1000);
        assert_eq!(pacing(None, 0, Some(2.0)).plan(None), None);
        assert_eq!(pacing(None, 0, Some(2.0)).plan(Some(0)), None);
    }

    #[test]
    fn chunk_limit_stops_at_the_threshold() {
        let conn = Arc::new(crate::zero_copy::ConnShared::default());
        let stats = Arc::new(ServerStats::default());
        let pacer = Pacer::new(
            PacingPlan {
                after: 100,
                rate: 10,
            },
            Arc::clone(&conn),
            Arc::clone(&stats),
        );
        assert_eq!(pacer.chunk_limit(0), Some(100));
        assert_eq!(pacer.chunk_limit(60), Some(40));
        assert_eq!(pacer.chunk_limit(100), None);
        pacer.on_sent(0, 60);
        assert_eq!(conn.pacing.requested(), UNLIMITED);
        pacer.on_sent(60, 100);
        assert_eq!(conn.pacing.requested(), 10);
        pacer.on_sent(100, 150);
        assert_eq!(stats.bytes_paced.get(), 50);
    }

    #[test]
    fn a_zero_threshold_paces_from_the_first_byte() {
        let conn = Arc::new(crate::zero_copy::ConnShared::default());
        let _pacer = Pacer::new(
            PacingPlan { after: 0, rate: 7 },
            Arc::clone(&conn),
            Arc::new(ServerStats::default()),
        );
        assert_eq!(conn.pacing.requested(), 7);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_accepts_a_pacing_rate_and_unlimited() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        set_max_pacing_rate(&socket, 2 << 20).unwrap();
        set_max_pacing_rate(&socket, UNLIMITED).unwrap();
    }
}
