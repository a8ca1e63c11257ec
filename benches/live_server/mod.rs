//! The real `reelserve` binary for benchmarks: start it on an ephemeral loopback port in a given
//! `--mode`, and talk to it with a minimal keep-alive HTTP/1.1 client that drains bodies without
//! keeping them.
//!
//! What this is not: a test harness. It checks only what a benchmark needs to be honest (status
//! 2xx, the exact `Content-Length` received); correctness lives in `tests/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Modes of the real server, as spelled on its command line (from the one definition,
/// `reelserve::Mode`).
pub fn server_modes() -> impl Iterator<Item = &'static str> {
    reelserve::Mode::all().iter().map(|mode| mode.name())
}

/// Whether `REELSERVE_BENCH_QUICK` asks for the short run.
pub fn quick() -> bool {
    std::env::var_os("REELSERVE_BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Worker threads for the server: the same as `scripts/bench.py` (a 2-core box).
const SERVER_WORKERS: &str = "2";

/// How long the server may take to print its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest response head the client accepts.
const MAX_HEAD: usize = 16 * 1024;

/// Buffer the client drains bodies into (a typical client's read size).
const DRAIN_BUFFER: usize = 256 * 1024;

/// The binary to run: `REELSERVE_BIN` if set, else the one cargo built for this very `cargo bench`
/// run. Cargo builds the package's binaries before its benchmarks and passes their paths in
/// `CARGO_BIN_EXE_<name>`, so this is never a stale `target/release/reelserve` from an earlier
/// build.
pub fn server_binary() -> PathBuf {
    std::env::var_os("REELSERVE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reelserve")))
}

/// A running `reelserve`; killed when dropped.
pub struct LiveServer {
    child: Child,
    addr: SocketAddr,
}

impl LiveServer {
    /// Starts `reelserve --root ROOT --mode MODE` on `127.0.0.1:0` and waits for the address it
    /// prints. Access logging is off (`--access-log off`), as it is for nginx in the comparison.
    pub fn start(root: &Path, mode: &str) -> LiveServer {
        let binary = server_binary();
        let mut child = Command::new(&binary)
            .arg("--root")
            .arg(root)
            .args(["--addr", "127.0.0.1:0", "--mode", mode])
            .args(["--workers", SERVER_WORKERS, "--log-level", "warn"])
            .args(["--access-log", "off"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("{} --mode {mode} printed no address", binary.display());
            }
        };
        // "reelserve listening on http://127.0.0.1:PORT/ (mode ..., root ...)"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in the server's first line: {line:?}"));
        LiveServer { child, addr }
    }

    /// A new keep-alive connection to the server.
    pub fn connect(&self) -> KeepAliveClient {
        KeepAliveClient::connect(self.addr)
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One persistent HTTP/1.1 connection; requests are sent one at a time (no pipelining).
pub struct KeepAliveClient {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl KeepAliveClient {
    /// A connection to a server at `addr` (the live one, or one in this process).
    pub fn connect(addr: SocketAddr) -> KeepAliveClient {
        let stream = TcpStream::connect(addr).expect("connect to reelserve");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        KeepAliveClient {
            stream,
            buffer: vec![0; DRAIN_BUFFER],
        }
    }

    /// `GET path`, reads the head and drains exactly `Content-Length` body bytes; returns that
    /// length. Panics on anything but a 2xx with a `Content-Length`, or a short body: a benchmark
    /// that silently measured error pages would be worse than none.
    pub fn get(&mut self, path: &str) -> u64 {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.send(request.as_bytes())
    }

    /// Sends `request` (a whole GET) and drains its response as [`get`](Self::get) does,
    /// allocating nothing: what an allocation count of the server needs from its client.
    pub fn send(&mut self, request: &[u8]) -> u64 {
        let path = request.split(|&b| b == b' ').nth(1).unwrap_or_default();
        let path = std::str::from_utf8(path).unwrap_or("?");
        self.stream.write_all(request).expect("send request");

        // Read until the end of the head; whatever follows it is the start of the body.
        let mut filled = 0;
        let head_end = loop {
            if let Some(end) = find(&self.buffer[..filled], b"\r\n\r\n") {
                break end + 4;
            }
            assert!(
                filled < MAX_HEAD,
                "response head longer than {MAX_HEAD} bytes"
            );
            let n = self
                .stream
                .read(&mut self.buffer[filled..])
                .expect("read response");
            assert!(n > 0, "connection closed before the response head ended");
            filled += n;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).expect("ASCII response head");
        let status = head.split(' ').nth(1).unwrap_or("");
        assert!(
            status.starts_with('2'),
            "GET {path}: status {status}, head:\n{head}"
        );
        let content_length: u64 = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("GET {path}: no Content-Length in:\n{head}"));

        let already = (filled - head_end) as u64;
        assert!(already <= content_length, "more bytes than Content-Length");
        let mut left = content_length - already;
        while left > 0 {
            let want = left.min(self.buffer.len() as u64) as usize;
            let n = self
                .stream
                .read(&mut self.buffer[..want])
                .expect("read body");
            assert!(
                n > 0,
                "GET {path}: connection closed with {left} bytes to go"
            );
            left -= n as u64;
        }
        content_length
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes `len` bytes of a deterministic, incompressible-looking pattern to `path`, then reads
/// the file once so it is in the page cache before anything is timed.
pub fn make_file(path: &Path, len: usize) {
    const BLOCK: usize = 1024 * 1024;
    let mut block = vec![0u8; BLOCK.min(len.max(1))];
    // xorshift: cheap, and unlike a repeating counter it defeats any accidental compression.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    for byte in block.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let mut file = std::fs::File::create(path).expect("create bench file");
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        file.write_all(&block[..n]).expect("write bench file");
        left -= n;
    }
    file.sync_all().expect("sync bench file");
    warm_page_cache(path);
}

/// Reads a file once so later reads come from the page cache.
pub fn warm_page_cache(path: &Path) {
    let mut file = std::fs::File::open(path).expect("open bench file");
    std::io::copy(&mut file, &mut std::io::sink()).expect("read bench file");
}
