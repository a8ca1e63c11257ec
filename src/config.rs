//! The command line, which is also the server's typed configuration: every flag, mode and limit
//! is defined here once, with its `--help` text and an environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::signed_link::{self, ClientNet};

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
    /// made by `reelserve sign` (except /favicon.ico and /robots.txt). Read again on SIGHUP.
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
