//! The command line, which is also the server's typed configuration: every flag, mode and limit
//! is defined here once, with its `--help` text and an environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// How response bodies are read from disk and written to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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

    /// The default: zero-copy where the platform has it.
    pub fn platform_default() -> Mode {
        if crate::zero_copy::SENDFILE_AVAILABLE {
            Mode::Sendfile
        } else {
            Mode::Mmap
        }
    }
}

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
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

    /// Buffer size for --mode chunked, in bytes.
    #[arg(long, env = "REELSERVE_CHUNK_SIZE", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(1..=(64 * 1024 * 1024)))]
    pub chunk_size: u32,

    /// Cache-Control max-age for files, in seconds (HTML pages always revalidate: no-cache).
    #[arg(long, env = "REELSERVE_CACHE_MAX_AGE", default_value_t = 3600)]
    pub cache_max_age: u64,

    /// Seconds a client may take to send a complete request head once it has started one.
    #[arg(long, env = "REELSERVE_HEADER_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: Duration,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = "REELSERVE_IDLE_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub idle_timeout: Duration,

    /// Seconds a client may accept no response bytes before it is dropped.
    #[arg(long, env = "REELSERVE_SEND_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub send_timeout: Duration,

    /// Connections served at once; further ones wait in the listen backlog until one closes.
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
    #[arg(long, env = "REELSERVE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "REELSERVE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Worker threads [default: one per core].
    #[arg(long, env = "REELSERVE_WORKERS")]
    pub workers: Option<usize>,

    /// Run one single-threaded event loop per worker, each with its own SO_REUSEPORT listener
    /// and share of --max-connections (nginx-style), instead of one work-stealing pool. Fewer
    /// cross-thread wake-ups for many small requests; with few connections the kernel's hash
    /// can put them all on one loop (see the README's results).
    #[arg(long, env = "REELSERVE_PER_CORE")]
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
          value_parser = crate::pacing::parse_size)]
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
}

impl Config {
    /// The mode in force: the flag, or the platform default.
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or_else(Mode::platform_default)
    }

    /// The certificate and key files, when HTTPS is on.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0 * 365.0) {
        return Err(format!("`{text}` must be more than 0 and at most a year"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_rate(text: &str) -> Result<u64, String> {
    match crate::pacing::parse_size(text)? {
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
    }

    #[test]
    fn modes_parse_by_name() {
        for mode in [Mode::Sendfile, Mode::Mmap, Mode::Chunked, Mode::ReadAll] {
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
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
