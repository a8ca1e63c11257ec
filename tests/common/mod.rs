//! Shared test harness: start the real `reelserve` binary on an ephemeral loopback port, make
//! files for it, and speak HTTP/1.1 over raw TCP where exact bytes matter.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every mode the server has, as spelled on its command line (from the one definition,
/// `reelserve::Mode`).
pub fn modes() -> impl Iterator<Item = &'static str> {
    reelserve::Mode::all().iter().map(|mode| mode.name())
}

/// A running server process; killed on drop.
pub struct TestServer {
    pub child: Child,
    pub addr: SocketAddr,
    /// Whether it speaks HTTPS (started with a certificate).
    pub https: bool,
    pub log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts `reelserve --root ROOT --addr 127.0.0.1:0 ARGS...` and waits for its address.
    pub fn start(root: &Path, args: &[&str]) -> TestServer {
        TestServer::start_with(Command::new(env!("CARGO_BIN_EXE_reelserve")), root, args)
    }

    /// Like `start`, from a prepared command (e.g. `strace -f ... reelserve`).
    pub fn start_with(mut command: Command, root: &Path, args: &[&str]) -> TestServer {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("server.log");
        let mut child = command
            .arg("--root")
            .arg(root)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "reelserve=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start reelserve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("server did not start; log:\n{}", read(&log)));
        let addr = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        TestServer {
            child,
            addr,
            https: line.contains("https://"),
            log,
            _log_dir: log_dir,
        }
    }

    /// Starts the server with HTTPS on, using `cert`.
    pub fn start_https(root: &Path, cert: &TestCert, args: &[&str]) -> TestServer {
        let mut all = vec!["--tls-cert", cert.cert_str(), "--tls-key", cert.key_str()];
        all.extend_from_slice(args);
        TestServer::start(root, &all)
    }

    /// `http://ADDR{path}`, or `https://...` for a server started with a certificate.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        read(&self.log)
    }

    /// The log once `ready` says it holds what the test waits for, or as it is after 5 s. The
    /// server writes its log from a thread of its own: diagnostics a moment after they happen,
    /// access lines up to a second later (buffered like nginx's `flush=1s`).
    pub fn wait_log(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if ready(&log) || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log once every response finished so far has its access line written (or after
    /// 5 s), for checks that some request was NOT made. Plain HTTP servers only.
    pub fn settled_log(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // Counted while this stats request is in flight: every other one has finished.
            let stats = self.stats();
            let logged = stats["access_log_lines"] + stats["access_log_dropped"];
            if logged + 1 >= stats["requests"] || Instant::now() >= deadline {
                return self.log();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` with `Connection: close` and extra header lines.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let raw = raw_exchange(self.addr, request.as_bytes());
        Response::parse(&raw, method == "HEAD")
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&raw)))
    }

    /// The server's counters from /_reelserve/stats.
    pub fn stats(&self) -> HashMap<String, u64> {
        let response = self.get("/_reelserve/stats", &[]);
        assert_eq!(response.status, 200);
        parse_flat_json_numbers(&String::from_utf8_lossy(&response.body))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        terminate(&self.child);
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        wait_exit(&mut self.child, timeout)
    }

    /// For a server started under strace (`start_with(strace ...)`): SIGTERMs the traced server
    /// (strace's child) and waits for strace, which exits with the server's exit status.
    pub fn stop_traced(&mut self) -> Option<i32> {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid())).ok()?;
        let traced = children.split_whitespace().next()?.to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &traced])
            .status()
            .ok()?;
        assert!(killed.success(), "kill -TERM {traced}");
        self.wait_exit(Duration::from_secs(20))
    }

    /// A value from /proc/PID/status, in kB (e.g. "VmRSS", "VmHWM").
    pub fn proc_status_kb(&self, field: &str) -> u64 {
        proc_status_kb(self.pid(), field)
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// Lines of /proc/PID/maps that map `path`.
    pub fn mappings_of(&self, path: &Path) -> usize {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid())).unwrap();
        let name = path.to_str().unwrap();
        maps.lines().filter(|l| l.contains(name)).count()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `child`.
pub fn terminate(child: &Child) {
    // SAFETY-free: kill(1) instead of libc::kill keeps the tests free of unsafe.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to `timeout` for `child` to exit; returns its exit code.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs a server command that must refuse to start: it must exit within 5 s (else it is
/// killed and the test fails: it started serving instead) with exit code 2 and one line on
/// stderr. Returns that stderr and the whole output.
pub fn refused_start(mut command: Command) -> (String, std::process::Output) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if wait_exit(&mut child, Duration::from_secs(5)).is_none() {
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        panic!(
            "it started instead of refusing: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{command:?}: {stderr}");
    (stderr, output)
}

pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `{"a":1,"b":"x","c":2}` -> {a:1, c:2}: enough for our flat stats object.
pub fn parse_flat_json_numbers(json: &str) -> HashMap<String, u64> {
    json.trim_matches(|c| c == '{' || c == '}' || c == '\n')
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once(':')?;
            Some((
                key.trim().trim_matches('"').to_string(),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// Writes `request`, reads until the server closes (bounded by a 20 s read timeout).
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading response: {e}"),
    }
    raw
}

/// Reads exactly one response from a keep-alive `stream` (plain or TLS); the connection stays
/// open.
pub fn read_one_response(stream: &mut impl Read) -> Response {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Ok((response, _)) = Response::parse_prefix(&raw, false) {
            return response;
        }
        let n = stream.read(&mut buf).expect("read a response");
        assert!(n > 0, "connection closed after {} bytes", raw.len());
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Polls `condition` every 20 ms for up to `timeout`; whether it held.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Waits for a parked-connections counter to reach `expected`, then for several park delays
/// more, and asserts that it stayed there: an idle spell parks a connection once, and a parser
/// woken by a request serves it rather than being ended and parked again.
pub fn assert_parked_exactly(expected: u64, mut parked: impl FnMut() -> u64) {
    assert!(
        eventually(Duration::from_secs(5), || parked() >= expected),
        "the idle connection was not parked {expected} times: {}",
        parked()
    );
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(parked(), expected, "parked more often than it was idle");
}

/// Sends `GET path` with `host` in two halves, longer than the park delay apart, and reads the
/// response: the parked-connections counter must not move in between (bytes of a head in
/// progress keep the parser), whether the stream is plain or TLS.
pub fn get_in_two_halves_unparked(
    stream: &mut (impl Read + Write),
    path: &str,
    host: &str,
    mut parked: impl FnMut() -> u64,
) -> Response {
    let before = parked();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHo").as_bytes())
        .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(parked(), before, "parked with half a request head read");
    stream
        .write_all(format!("st: {host}\r\n\r\n").as_bytes())
        .unwrap();
    read_one_response(stream)
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Parses one response from the start of `raw` (the body is Content-Length bytes, or the
    /// rest for close-delimited bodies). Fails if the body is shorter than promised.
    pub fn parse(raw: &[u8], head_request: bool) -> Result<Response, String> {
        let (response, used) = Response::parse_prefix(raw, head_request)?;
        if used < raw.len() && !head_request {
            // Extra bytes after a complete response on a closed connection are a framing bug.
            return Err(format!("{} bytes after the response", raw.len() - used));
        }
        Ok(response)
    }

    /// Parses one response and returns how many bytes of `raw` it used (for pipelining).
    pub fn parse_prefix(raw: &[u8], head_request: bool) -> Result<(Response, usize), String> {
        let end = find(raw, b"\r\n\r\n").ok_or("no complete head")?;
        let head = std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().ok_or("no status line")?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().ok_or("no version")?.to_string();
        let status = parts
            .next()
            .ok_or("no status")?
            .parse()
            .map_err(|_| "bad status")?;
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap_or((l, ""));
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let mut response = Response {
            status,
            version,
            headers,
            body: Vec::new(),
        };
        let body_start = end + 4;
        let no_body =
            head_request || status == 304 || status == 204 || (100..200).contains(&status);
        if no_body {
            return Ok((response, body_start));
        }
        match response.header("content-length") {
            Some(len) => {
                let len: usize = len.parse().map_err(|_| "bad content-length")?;
                if raw.len() < body_start + len {
                    return Err(format!(
                        "short body: {} of {len} bytes",
                        raw.len() - body_start
                    ));
                }
                response.body = raw[body_start..body_start + len].to_vec();
                Ok((response, body_start + len))
            }
            None => {
                response.body = raw[body_start..].to_vec();
                Ok((response, raw.len()))
            }
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// The parts of a multipart/byteranges body: (Content-Range, Content-Type, bytes).
    pub fn multipart_parts(&self) -> Vec<(String, String, Vec<u8>)> {
        let content_type = self.header("content-type").expect("content-type");
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .expect("boundary")
            .trim_matches('"');
        let delimiter = format!("\r\n--{boundary}");
        let mut parts = Vec::new();
        let mut rest = &self.body[..];
        // Skip the (empty) preamble up to the first delimiter.
        let first = find(rest, delimiter.as_bytes()).expect("first delimiter");
        rest = &rest[first + delimiter.len()..];
        loop {
            if rest.starts_with(b"--") {
                assert_eq!(&rest[2..], b"\r\n", "epilogue after the close delimiter");
                break;
            }
            assert!(rest.starts_with(b"\r\n"), "delimiter not followed by CRLF");
            rest = &rest[2..];
            let head_end = find(rest, b"\r\n\r\n").expect("part head");
            let head = std::str::from_utf8(&rest[..head_end]).unwrap();
            let field = |name: &str| {
                head.split("\r\n")
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let (range, ctype) = (field("content-range"), field("content-type"));
            rest = &rest[head_end + 4..];
            // Content-Range tells the part's exact length: use it, don't search the data.
            let span = range
                .trim_start_matches("bytes ")
                .split('/')
                .next()
                .unwrap()
                .to_string();
            let (a, b) = span.split_once('-').unwrap();
            let len = b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1;
            parts.push((range, ctype, rest[..len].to_vec()));
            rest = &rest[len..];
            assert!(
                rest.starts_with(delimiter.as_bytes()),
                "part not followed by a delimiter"
            );
            rest = &rest[delimiter.len()..];
        }
        parts
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Deterministic, non-repeating-looking content: byte i of file `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9E3779B97F4A7C15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A temporary root directory with files in it.
pub struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    pub fn new() -> TestRoot {
        TestRoot {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A root under cargo's per-target temporary directory, on the filesystem the build is on.
    /// For tests that need a real disk behind the file: `/tmp` may be a tmpfs, whose pages can
    /// never be dropped from the page cache.
    #[allow(dead_code)]
    pub fn on_disk() -> TestRoot {
        TestRoot {
            dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `relative` (creating directories) and returns the full path.
    pub fn file(&self, relative: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

/// Whether a command is on PATH.
pub fn have(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Tools the suite needs: in CI (CI=true) a missing one is a failure, not a skip, so a broken
/// install step cannot turn tests green by skipping them.
pub fn require(command: &str) -> bool {
    if have(command) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{command} is required in CI but is not installed");
    }
    eprintln!("skipping: {command} is not installed (scripts/install-test-deps.sh installs it)");
    false
}

/// A self-signed certificate and key for localhost and 127.0.0.1, made by scripts/make-cert.sh
/// (openssl) in a temporary directory.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCert {
    /// `None` (a skip outside CI) when openssl is missing.
    pub fn new() -> Option<TestCert> {
        if !require("openssl") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-cert.sh");
        let output = Command::new(script).arg(dir.path()).output().unwrap();
        assert!(
            output.status.success(),
            "make-cert.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(TestCert {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        })
    }

    pub fn cert_str(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    pub fn key_str(&self) -> &str {
        self.key.to_str().unwrap()
    }
}
