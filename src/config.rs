//! The command line, which is also the server's typed configuration: every flag, mode and limit
//! is defined here once, with its `--help` text and an environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::signed_link::{self, ClientNet};

pub use crate::body::Mode;

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How connections are spread over the worker threads (`--scheduler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedulerKind {
    /// One single-threaded event loop per worker (nginx-style), each connection placed on the
    /// loop serving the fewest and kept there: it wakes no other thread.
    PerCore,
    /// One work-stealing pool: a connection's task may run on any worker, and idle workers
    /// steal ready tasks.
    WorkStealing,
}

/// Where access log lines go (`--access-log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard error (`-`), the default.
    Stderr,
    /// A file, opened for appending (and created if missing) at start-up.
    File(PathBuf),
    /// No access log (`off`): nothing is captured or formatted per request.
    Off,
}

impl AccessLogTarget {
    fn parse(text: &str) -> Result<AccessLogTarget, String> {
        match text {
            "" => Err("expected a file name, `-` (stderr) or `off`".to_owned()),
            "-" => Ok(AccessLogTarget::Stderr),
            "off" => Ok(AccessLogTarget::Off),
            path => Ok(AccessLogTarget::File(PathBuf::from(path))),
        }
    }
}

/// reelserve: serve big files (movies) over HTTP/1.1 the fastest way the OS allows (or over
/// HTTPS, HTTP/2 included, with --tls-cert and --tls-key).
///
/// With no arguments it serves the current directory on http://127.0.0.1:8000, with an HTML5
/// player at / that plays movie/big.mp4 (or the sample movie).
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about)]
pub struct Config {
    /// Directory to serve. Nothing outside it is ever served, symlinks included.
    #[arg(long, env = "REELSERVE_ROOT", default_value = ".")]
    pub root: PathBuf,

    /// Address to listen on (IP:PORT). Port 0 picks a free port; the chosen address is printed.
    #[arg(long, env = "REELSERVE_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,

    /// How to send file bodies [default: sendfile on Linux, mmap elsewhere].
    #[arg(long, env = "REELSERVE_MODE", value_enum)]
    pub mode: Option<Mode>,

    /// Memory that --mode read-all buffers may hold at once, server-wide (e.g. 512m, 1g,
    /// 1048576). A response that would need more than is free gets a 503 with Retry-After.
    #[arg(long, env = "REELSERVE_READ_ALL_BUDGET", value_name = "SIZE", default_value = "512m",
          value_parser = parse_size)]
    pub read_all_budget: u64,

    /// Buffer size for --mode chunked, in bytes.
    #[arg(long, env = "REELSERVE_CHUNK_SIZE", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(1..=(64 * 1024 * 1024)))]
    pub chunk_size: u32,

    /// Cache-Control max-age for files, in seconds (HTML pages always revalidate: no-cache).
    #[arg(long, env = "REELSERVE_CACHE_MAX_AGE", default_value_t = 3600)]
    pub cache_max_age: u64,

    /// Keep open file descriptors for reuse for this many seconds (nginx's open_file_cache; off
    /// by default): a request for a kept file costs one fstat instead of a path resolution, an
    /// open, an fstat and a close. The fstat keeps ETags true for files rewritten in place; a
    /// file replaced under the same name is seen after at most SECS.
    #[arg(long, env = "REELSERVE_OPEN_FILE_CACHE", value_name = "SECS", value_parser = parse_seconds)]
    pub open_file_cache: Option<Duration>,

    /// Seconds a client may take to send a complete request head once it has started one.
    #[arg(long, env = "REELSERVE_HEADER_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: Duration,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = "REELSERVE_IDLE_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub idle_timeout: Duration,

    /// Seconds a client may accept no response bytes before it is dropped.
    #[arg(long, env = "REELSERVE_SEND_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub send_timeout: Duration,

    /// Bytes a connection's socket may hold that the network has not taken yet
    /// (TCP_NOTSENT_LOWAT; sizes like 128k; at least 128k, or 0 for the system's setting, which
    /// is unlimited unless net.ipv4.tcp_notsent_lowat says otherwise). A short queue costs more,
    /// smaller sendfile calls, but a seek's first bytes (or another HTTP/2 stream's) no longer
    /// wait behind megabytes queued earlier; on loopback it is also faster (see the README).
    /// Linux only; elsewhere accepted and ignored.
    #[arg(long, env = "REELSERVE_TCP_NOTSENT_LOWAT", value_name = "SIZE",
          default_value = "128k", value_parser = parse_notsent_lowat)]
    pub tcp_notsent_lowat: u32,

    /// Connections served at once. At the limit, connections waiting for a request they have not
    /// started (idle keep-alive, or silent since accept) are closed, oldest first, to admit new
    /// clients; if there are none, new clients wait until a connection closes.
    #[arg(long, env = "REELSERVE_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Seconds in-flight responses get to finish after SIGTERM/SIGINT before the server exits.
    #[arg(long, env = "REELSERVE_SHUTDOWN_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,

    /// Put the file's inode into its ETag. Off by default, so identical copies on several
    /// instances (same size and mtime) share ETags behind a load balancer or CDN.
    #[arg(long, env = "REELSERVE_ETAG_INODE")]
    pub etag_inode: bool,

    /// Do not serve the counters at /_reelserve/stats.
    #[arg(long, env = "REELSERVE_NO_STATS")]
    pub no_stats: bool,

    /// Log level or filter (e.g. info, debug, reelserve=trace); RUST_LOG overrides it.
    #[arg(long, env = "REELSERVE_LOG_LEVEL", default_value = "info", value_parser = parse_log_filter)]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "REELSERVE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Where to write the access log (one line per response, in --log-format): a FILE (opened
    /// for appending; write `./off` for a file named "off"), `-` for stderr, or `off`. Lines
    /// are buffered and written by a thread of their own (up to 64 KiB or every second); when
    /// the destination cannot keep up, lines beyond 1 MiB of backlog are dropped and counted in
    /// /_reelserve/stats (access_log_dropped) rather than slow a request down.
    #[arg(long, env = "REELSERVE_ACCESS_LOG", value_name = "FILE|-|off", default_value = "-",
          value_parser = AccessLogTarget::parse)]
    pub access_log: AccessLogTarget,

    /// Worker threads, 1 to 1024 [default: one per core].
    #[arg(long, env = "REELSERVE_WORKERS", value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// How connections are spread over the workers: per-core runs one event loop per worker
    /// (nginx-style), each connection on the loop serving the fewest; work-stealing runs one
    /// pool whose idle workers take ready tasks. per-core used about half the CPU per GiB of
    /// whole files and served small files faster in the README's results, where the pool can
    /// move a few big downloads faster. --max-connections is shared by all loops. (per-core
    /// needs Unix; elsewhere the pool runs.)
    #[arg(long, env = "REELSERVE_SCHEDULER", value_enum, default_value_t = SchedulerKind::PerCore)]
    pub scheduler: SchedulerKind,

    /// The same as --scheduler per-core (the default since it measured best; kept so that
    /// command lines written when it was not keep working).
    #[arg(
        long,
        hide = true,
        env = "REELSERVE_PER_CORE",
        conflicts_with = "scheduler"
    )]
    pub per_core: bool,

    /// Send each response's bytes after --limit-rate-after at most this fast, in bytes per
    /// second (nginx's limit_rate; per connection; sizes like 500k or 2m). Uses the kernel's
    /// TCP pacing (Linux; elsewhere the flag is accepted and does nothing).
    #[arg(long, env = "REELSERVE_LIMIT_RATE", value_name = "RATE",
          value_parser = parse_rate)]
    pub limit_rate: Option<u64>,

    /// Bytes of each response sent at full speed before --limit-rate applies (nginx's
    /// limit_rate_after; sizes like 1m).
    #[arg(long, env = "REELSERVE_LIMIT_RATE_AFTER", value_name = "SIZE", default_value = "0",
          value_parser = parse_byte_size)]
    pub limit_rate_after: u64,

    /// Pace movies whose bitrate is known at FACTOR x their bitrate, after --pace-burst seconds
    /// of play time at full speed; every response (a seek too) starts a new burst. For those
    /// movies it wins over --limit-rate.
    #[arg(long, env = "REELSERVE_PACE", value_name = "FACTOR", value_parser = parse_factor)]
    pub pace: Option<f64>,

    /// Seconds of play time each movie response sends at full speed before --pace applies.
    #[arg(long, env = "REELSERVE_PACE_BURST", value_name = "SECS", default_value = "30",
          value_parser = parse_seconds)]
    pub pace_burst: Duration,

    /// PEM certificate chain (leaf first). With --tls-key, the server speaks HTTPS (HTTP/2 and
    /// HTTP/1.1 by ALPN, TLS 1.2 and 1.3) instead of plain HTTP. scripts/make-cert.sh makes a
    /// self-signed pair for local use.
    #[arg(
        long,
        env = "REELSERVE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, RSA or EC) for --tls-cert.
    #[arg(
        long,
        env = "REELSERVE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Signing keys for signed, expiring links: one secret per line, at least 32 bytes, hex or
    /// base64; the first line signs, every line verifies. With it, every request needs a link
    /// made by `reelserve sign` (except /favicon.ico, /robots.txt and the player's script and
    /// style, /html/movie_player.js and .css). Read again on SIGHUP.
    #[arg(long, env = "REELSERVE_SIGNING_KEY_FILE", value_name = "FILE")]
    pub signing_key_file: Option<PathBuf>,

    /// An origin whose pages may read responses from scripts (CORS), as the browser sends it:
    /// scheme://host[:port]; `*` allows every origin. Repeat it (or separate with commas in the
    /// environment variable) to allow several. Without it, no CORS headers are sent.
    #[arg(
        long = "cors-origin",
        env = "REELSERVE_CORS_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Connections one client (an IPv4 address, or an IPv6 /64) may hold at once; more are
    /// answered 429 and closed, taking no --max-connections slot. 0 (the default) turns the
    /// limit off, because behind a proxy or CDN every viewer arrives from the proxy's address;
    /// facing viewers directly, 32 is plenty for a player's seeks (see the README).
    #[arg(long, env = "REELSERVE_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: u32,

    /// Serve Prometheus metrics at http://IP:PORT/metrics, on a listener of their own (never on
    /// the public port). Off by default.
    #[arg(long, env = "REELSERVE_METRICS_ADDR", value_name = "IP:PORT")]
    pub metrics_addr: Option<SocketAddr>,

    /// What to do; with none, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print a signed, expiring link to PATH; the link is the last line of the output.
    Sign(SignArgs),
}

/// `reelserve sign PATH [--ttl 2h] [--ip ADDR|CIDR] [--base-url URL] [--signing-key-file FILE]`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The URL path to link to, e.g. /movie/big.mp4 (or / for the built-in player, its movie
    /// list and every file).
    pub path: String,

    /// How long the link works: 90s, 45m, 2h, 7d.
    #[arg(long, default_value = "2h", value_parser = signed_link::parse_ttl)]
    pub ttl: Duration,

    /// Bind the link to one client address or network (ADDR or ADDR/PREFIX).
    #[arg(long, value_name = "ADDR|CIDR", value_parser = parse_client_net)]
    pub ip: Option<ClientNet>,

    /// The path prefix the link covers [default: PATH]: e.g. /movie/big covers big.mp4,
    /// big.en.vtt and big.jpg in /movie.
    #[arg(long, value_name = "PREFIX")]
    pub scope: Option<String>,

    /// Where viewers reach the server: scheme://host[:port].
    #[arg(
        long,
        env = "REELSERVE_BASE_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub base_url: String,

    /// The key file (its first key signs).
    #[arg(long, env = "REELSERVE_SIGNING_KEY_FILE", value_name = "FILE")]
    pub signing_key_file: Option<PathBuf>,
}

fn parse_client_net(text: &str) -> Result<ClientNet, String> {
    ClientNet::parse(text).ok_or_else(|| {
        format!("`{text}` is not an address or network (e.g. 203.0.113.7 or 2001:db8::/64)")
    })
}

impl Config {
    /// The mode in force: the flag, or the platform default.
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or_else(Mode::platform_default)
    }

    /// The scheduler asked for (`--scheduler`, or the older `--per-core`).
    pub fn scheduler(&self) -> SchedulerKind {
        if self.per_core {
            SchedulerKind::PerCore
        } else {
            self.scheduler
        }
    }

    /// The certificate and key files, when HTTPS is on.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}

/// The most `--workers` accepted: far more threads than any machine has cores, few enough that
/// a typo (`--workers 100000`) is caught instead of spawning threads until the system refuses.
pub const MAX_WORKERS: usize = 1024;

/// Every timeout flag is at least this long: below a millisecond no client could ever meet it
/// (and tokio's timers tick in milliseconds).
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// A timeout in seconds (fractions allowed): from 1 ms to a year.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds (e.g. 10 or 0.5)"))?;
    if !(seconds >= MIN_TIMEOUT.as_secs_f64() && seconds <= 86_400.0 * 365.0) {
        return Err(format!(
            "`{text}` seconds is out of range: give at least 0.001 (1 ms) and at most a year"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `--workers`: 1 to [`MAX_WORKERS`].
fn parse_workers(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(workers) if (1..=MAX_WORKERS).contains(&workers) => Ok(workers),
        _ => Err(format!(
            "give 1 to {MAX_WORKERS} worker threads, or leave --workers out for one per core"
        )),
    }
}

/// A byte size that must not be empty (see [`parse_byte_size`]).
pub fn parse_size(text: &str) -> Result<u64, String> {
    match parse_byte_size(text)? {
        0 => Err(format!("`{text}` is empty; give at least 1 byte")),
        bytes => Ok(bytes),
    }
}

/// A byte size, as nginx writes them and more: a whole number with an optional binary unit,
/// `k`, `m`, `g` or `t` (case and a trailing `b` or `ib` ignored): `1048576`, `512m`, `1g`,
/// `2GiB`, `0`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("`{text}` is not a size; give bytes or a unit, e.g. 512m or 1g");
    let lower = text.trim().to_ascii_lowercase();
    let unitless = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, shift) = match unitless.as_bytes().last() {
        Some(b'k') => (&unitless[..unitless.len() - 1], 10),
        Some(b'm') => (&unitless[..unitless.len() - 1], 20),
        Some(b'g') => (&unitless[..unitless.len() - 1], 30),
        Some(b't') => (&unitless[..unitless.len() - 1], 40),
        _ => (unitless, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Level names a bare `--log-level` word may be. `tracing_subscriber` would read any other bare
/// word (`verbose`) as a target name, silently logging nothing the user meant.
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// `--log-level`: checked at start-up with the parser that will use it (`EnvFilter`), and each
/// directive without `=` must be a level name.
fn parse_log_filter(text: &str) -> Result<String, String> {
    let what_to_do =
        "give a level (trace, debug, info, warn, error, off) or a filter like info,reelserve=debug";
    for directive in text.split(',').map(str::trim) {
        if directive.is_empty() || directive.contains('=') || directive.contains('[') {
            continue;
        }
        if !LOG_LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!("unknown log level `{directive}`; {what_to_do}"));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map_err(|error| format!("not a log filter ({error}); {what_to_do}"))?;
    Ok(text.to_owned())
}

/// The smallest `--tcp-notsent-lowat` but 0. The kernel holds back the last segment of a
/// `sendfile` that was told more bytes follow (`MSG_MORE`), until they do; and it wakes a writer
/// only once less than half the limit is unsent. Loopback segments reach 64 KiB, so under
/// 128 KiB that one held segment can keep the writer asleep, and the response stalls until a
/// 200 ms timer sends it.
pub const MIN_TCP_NOTSENT_LOWAT: u32 = 128 * 1024;

/// `--tcp-notsent-lowat`: 0, or [`MIN_TCP_NOTSENT_LOWAT`] up to what the kernel's `int` holds.
fn parse_notsent_lowat(text: &str) -> Result<u32, String> {
    let bytes = parse_byte_size(text)?;
    if bytes == 0 {
        return Ok(0);
    }
    if bytes < u64::from(MIN_TCP_NOTSENT_LOWAT) {
        return Err(format!(
            "`{text}`: give 0 (the system's setting) or at least 128k; below 128k a loopback \
             connection can stall for 200 ms at a time"
        ));
    }
    i32::try_from(bytes)
        .map(|bytes| bytes.unsigned_abs())
        .map_err(|_| format!("`{text}` is too large; the kernel takes up to 2147483647"))
}

fn parse_rate(text: &str) -> Result<u64, String> {
    match parse_byte_size(text)? {
        0 => Err(format!("`{text}`: a rate must be more than 0")),
        rate => Ok(rate),
    }
}

fn parse_factor(text: &str) -> Result<f64, String> {
    let factor: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number (a multiple of the bitrate, e.g. 1.5)"))?;
    if !(0.1..=1000.0).contains(&factor) {
        return Err(format!("`{text}` must be between 0.1 and 1000"));
    }
    Ok(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_arguments() {
        let config = Config::try_parse_from(["reelserve"]).unwrap();
        assert_eq!(config.addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(config.root, PathBuf::from("."));
        assert_eq!(config.chunk_size, 65536);
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.mode(), Mode::platform_default());
        assert_eq!(config.scheduler(), SchedulerKind::PerCore);
    }

    #[test]
    fn the_scheduler_is_chosen_by_name_or_by_the_older_flag() {
        let scheduler = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("reelserve").chain(args.iter().copied()))
                .map(|config| config.scheduler())
                .ok()
        };
        assert_eq!(
            scheduler(&["--scheduler", "work-stealing"]),
            Some(SchedulerKind::WorkStealing)
        );
        assert_eq!(
            scheduler(&["--scheduler", "per-core"]),
            Some(SchedulerKind::PerCore)
        );
        assert_eq!(scheduler(&["--per-core"]), Some(SchedulerKind::PerCore));
        // Two answers to one question: refused, not silently resolved.
        assert_eq!(
            scheduler(&["--per-core", "--scheduler", "work-stealing"]),
            None
        );
        assert_eq!(scheduler(&["--scheduler", "threads"]), None);
    }

    #[test]
    fn modes_parse_by_name() {
        for &mode in Mode::all() {
            let config = Config::try_parse_from(["reelserve", "--mode", mode.name()]).unwrap();
            assert_eq!(config.mode(), mode);
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::try_parse_from(["reelserve", "--chunk-size", "0"]).is_err());
        assert!(Config::try_parse_from(["reelserve", "--idle-timeout", "-1"]).is_err());
        assert!(Config::try_parse_from(["reelserve", "--mode", "splice"]).is_err());
        assert!(Config::try_parse_from(["reelserve", "--addr", "nope"]).is_err());
    }

    #[test]
    fn https_needs_both_files_and_is_off_by_default() {
        assert_eq!(
            Config::try_parse_from(["reelserve"]).unwrap().tls_files(),
            None
        );
        let both = ["reelserve", "--tls-cert", "c.pem", "--tls-key", "k.pem"];
        let config = Config::try_parse_from(both).unwrap();
        assert_eq!(
            config.tls_files(),
            Some((Path::new("c.pem"), Path::new("k.pem")))
        );
        assert!(Config::try_parse_from(["reelserve", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::try_parse_from(["reelserve", "--tls-key", "k.pem"]).is_err());
    }

    fn refusal(args: &[&str]) -> String {
        let mut argv = vec!["reelserve"];
        argv.extend_from_slice(args);
        match Config::try_parse_from(argv) {
            Ok(config) => panic!("{args:?} was accepted: {config:?}"),
            Err(error) => {
                assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
                error.to_string()
            }
        }
    }

    #[test]
    fn workers_must_be_between_1_and_1024() {
        for bad in ["0", "1025", "100000", "-1", "two"] {
            let message = refusal(&[&format!("--workers={bad}")]);
            assert!(
                message.contains("give 1 to 1024 worker threads"),
                "{message}"
            );
        }
        for good in ["1", "2", "1024"] {
            let config = Config::try_parse_from(["reelserve", "--workers", good]).unwrap();
            assert_eq!(config.workers, Some(good.parse().unwrap()));
        }
    }

    #[test]
    fn timeouts_below_a_millisecond_are_refused_for_every_timeout_flag() {
        for flag in [
            "--header-timeout",
            "--idle-timeout",
            "--send-timeout",
            "--shutdown-timeout",
        ] {
            for bad in ["1e-9", "0.0009", "0", "NaN", "inf", "1e10"] {
                let message = refusal(&[flag, bad]);
                assert!(
                    message.contains("at least 0.001 (1 ms)"),
                    "{flag} {bad}: {message}"
                );
            }
            let config = Config::try_parse_from(["reelserve", flag, "0.001"]).unwrap();
            let _ = config;
        }
        let config = Config::try_parse_from(["reelserve", "--header-timeout", "0.5"]).unwrap();
        assert_eq!(config.header_timeout, Duration::from_millis(500));
    }

    #[test]
    fn unknown_log_levels_are_refused() {
        for bad in ["verbose", "infoo", "info,loud", "reelserve=loud", "[{"] {
            let message = refusal(&["--log-level", bad]);
            assert!(message.contains("info,reelserve=debug"), "{bad}: {message}");
        }
        assert!(refusal(&["--log-level", "verbose"]).contains("unknown log level `verbose`"));
        for good in [
            "info",
            "DEBUG",
            "off",
            "info,reelserve=debug",
            "reelserve=trace",
            "warn,hyper=off",
        ] {
            let config = Config::try_parse_from(["reelserve", "--log-level", good]).unwrap();
            assert_eq!(config.log_level, good);
        }
    }

    #[test]
    fn read_all_budget_takes_sizes_with_units() {
        let config = Config::try_parse_from(["reelserve"]).unwrap();
        assert_eq!(config.read_all_budget, 512 << 20);
        for (text, bytes) in [
            ("1048576", 1u64 << 20),
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("2GiB", 2 << 30),
            ("64kb", 64 << 10),
            ("1t", 1 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
            let config = Config::try_parse_from(["reelserve", "--read-all-budget", text]).unwrap();
            assert_eq!(config.read_all_budget, bytes);
        }
        for bad in ["", "0", "0m", "m", "1.5g", "-1m", "1x", "99999999999t"] {
            assert!(parse_size(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(refusal(&["--read-all-budget", "lots"]).contains("e.g. 512m or 1g"));
    }

    #[test]
    fn access_log_is_stderr_by_default_and_takes_a_file_or_off() {
        let parse = |args: &[&str]| {
            Config::try_parse_from([&["reelserve"], args].concat()).map(|c| c.access_log)
        };
        assert_eq!(parse(&[]).unwrap(), AccessLogTarget::Stderr);
        assert_eq!(
            parse(&["--access-log", "-"]).unwrap(),
            AccessLogTarget::Stderr
        );
        assert_eq!(
            parse(&["--access-log", "off"]).unwrap(),
            AccessLogTarget::Off
        );
        assert_eq!(
            parse(&["--access-log", "/var/log/reel.log"]).unwrap(),
            AccessLogTarget::File(PathBuf::from("/var/log/reel.log"))
        );
        assert!(parse(&["--access-log", ""]).is_err());
    }

    #[test]
    fn pacing_flags_take_nginx_sizes_and_are_off_by_default() {
        let config = Config::try_parse_from(["reelserve"]).unwrap();
        assert_eq!(crate::pacing::PacingConfig::from_config(&config), None);
        let config = Config::try_parse_from([
            "reelserve",
            "--limit-rate",
            "2m",
            "--limit-rate-after",
            "1m",
            "--pace",
            "1.5",
            "--pace-burst",
            "10",
        ])
        .unwrap();
        assert_eq!(config.limit_rate, Some(2 << 20));
        assert_eq!(config.limit_rate_after, 1 << 20);
        assert_eq!(config.pace, Some(1.5));
        assert_eq!(config.pace_burst, Duration::from_secs(10));
        assert!(Config::try_parse_from(["reelserve", "--limit-rate", "0"]).is_err());
        assert!(Config::try_parse_from(["reelserve", "--pace", "0"]).is_err());
        assert!(Config::try_parse_from(["reelserve", "--limit-rate-after", "1q"]).is_err());
    }

    #[test]
    fn notsent_lowat_defaults_to_128k_and_refuses_values_that_can_stall() {
        let parse = |value: &str| {
            Config::try_parse_from(["reelserve", "--tcp-notsent-lowat", value])
                .map(|config| config.tcp_notsent_lowat)
        };
        let config = Config::try_parse_from(["reelserve"]).unwrap();
        assert_eq!(config.tcp_notsent_lowat, 128 * 1024);
        assert_eq!(parse("0").unwrap(), 0);
        assert_eq!(parse("128k").unwrap(), MIN_TCP_NOTSENT_LOWAT);
        assert_eq!(parse("1m").unwrap(), 1 << 20);
        assert_eq!(parse("2147483647").unwrap(), i32::MAX as u32);
        for refused in ["16k", "131071", "2g", "off", "-1"] {
            assert!(parse(refused).is_err(), "{refused} was accepted");
        }
    }

    #[test]
    fn internet_flags_are_off_by_default_and_parse() {
        let config = Config::try_parse_from(["reelserve"]).unwrap();
        assert_eq!(config.signing_key_file, None);
        assert!(config.cors_origins.is_empty());
        assert_eq!(config.max_connections_per_ip, 0);
        assert_eq!(config.metrics_addr, None);
        assert!(config.command.is_none());
        let config = Config::try_parse_from([
            "reelserve",
            "--cors-origin",
            "https://a.example",
            "--cors-origin",
            "*",
            "--max-connections-per-ip",
            "8",
            "--metrics-addr",
            "127.0.0.1:9100",
        ])
        .unwrap();
        assert_eq!(config.cors_origins, ["https://a.example", "*"]);
        assert_eq!(config.max_connections_per_ip, 8);
    }

    #[test]
    fn sign_is_a_subcommand() {
        let config = Config::try_parse_from([
            "reelserve",
            "sign",
            "/movie/big.mp4",
            "--ttl",
            "30m",
            "--ip",
            "10.0.0.0/8",
        ])
        .unwrap();
        let Some(Command::Sign(args)) = config.command else {
            panic!("not parsed as sign");
        };
        assert_eq!(args.path, "/movie/big.mp4");
        assert_eq!(args.ttl, Duration::from_secs(1800));
        assert_eq!(args.ip, ClientNet::parse("10.0.0.0/8"));
        assert!(Config::try_parse_from(["reelserve", "sign", "/a", "--ip", "nope"]).is_err());
        assert!(Config::try_parse_from(["reelserve", "sign", "/a", "--ttl", "2w"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
