//! The access log and the server's own log output, against the real binary: complete after a
//! graceful stop, says who asked (client address, Range, User-Agent, Referer) in both formats
//! without letting a header forge a line, `--access-log FILE|-|off`, and no log destination,
//! however stalled, ever stops the server from serving.

mod access_log;
mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{connect, find, parse_flat_json_numbers, TestRoot, TestServer};

/// Sends `total` requests for `path` (with `user_agent`) over one keep-alive connection,
/// `batch` pipelined at a time, and checks every response is a 200 ending in `body`.
fn keep_alive_requests(
    addr: SocketAddr,
    path: &str,
    user_agent: &str,
    body: &[u8],
    total: usize,
    batch: usize,
) {
    let mut stream = connect(addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {user_agent}\r\n\r\n");
    let mut end_of_response = b"\r\n\r\n".to_vec();
    end_of_response.extend_from_slice(body);
    let mut sent = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while sent < total {
        let n = batch.min(total - sent);
        stream.write_all(request.repeat(n).as_bytes()).unwrap();
        let mut got = Vec::new();
        // Responses counted so far, and where the next one can start.
        let (mut complete, mut searched) = (0, 0);
        while complete < n {
            let read = stream
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("after {sent} requests: {e}"));
            assert!(read > 0, "server closed after {sent} requests");
            got.extend_from_slice(&buf[..read]);
            while let Some(at) = find(&got[searched..], &end_of_response) {
                complete += 1;
                searched += at + end_of_response.len();
            }
        }
        assert_eq!(count(&got, b"HTTP/1.1 200 OK\r\n"), n);
        sent += n;
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let mut rest = haystack;
    let mut found = 0;
    while let Some(at) = find(rest, needle) {
        found += 1;
        rest = &rest[at + needle.len()..];
    }
    found
}

#[test]
fn a_graceful_stop_leaves_exactly_one_access_line_per_request() {
    let root = TestRoot::new();
    root.file("tiny.txt", b"tiny\n");
    let logs = tempfile::tempdir().unwrap();
    let access = logs.path().join("access.log");
    let mut server = TestServer::start(
        root.path(),
        &[
            "--access-log",
            access.to_str().unwrap(),
            "--log-level",
            "warn",
        ],
    );
    let (threads, per_thread) = (4, 25_000);
    let addr = server.addr;
    let clients: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                keep_alive_requests(addr, "/tiny.txt", "test", b"tiny\n", per_thread, 100)
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(server.stats()["access_log_dropped"], 0);
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));

    let log = std::fs::read_to_string(&access).unwrap();
    let lines = access_log::for_path(&log, "/tiny.txt");
    assert_eq!(lines.len(), threads * per_thread);
    assert!(lines
        .iter()
        .all(|a| a.status == 200 && a.bytes == 5 && a.complete));
    // Nothing but access lines in the file, each whole.
    assert_eq!(
        log.lines().count(),
        threads * per_thread + 1,
        "the stats request too"
    );
    assert!(log
        .lines()
        .all(|l| l.contains(" INFO reelserve::access: client=127.0.0.1:")));
    // And none of them on stderr.
    assert!(access_log::parse(&server.log()).is_empty());
}

/// Issue: with stderr on a pipe whose reader never reads, every request hung once ~64 KiB of
/// log lines had been written. Now lines beyond the buffer are dropped and counted.
#[test]
fn a_stderr_pipe_that_is_never_read_does_not_stop_the_server() {
    let root = TestRoot::new();
    root.file("small.txt", b"small\n");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stderr.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Opened for reading (so the server's writes do not fail) and never read.
    let _reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let stderr = OpenOptions::new().write(true).open(&fifo).unwrap();
    let mut server = SpawnedServer::start(root.path(), &["--access-log", "-"], stderr);

    // 5,000 requests with debug logging and a 1 KiB User-Agent: over 5 MB of log lines
    // against a 64 KiB pipe buffer and the access log's 1 MiB buffer.
    let user_agent = "Player/1.0 ".repeat(100);
    let started = Instant::now();
    let addr = server.addr;
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let user_agent = user_agent.clone();
            std::thread::spawn(move || {
                keep_alive_requests(addr, "/small.txt", &user_agent, b"small\n", 2_000, 20)
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    // New connections too, each with its own debug lines.
    for _ in 0..1_000 {
        let response = common::raw_exchange(
            addr,
            format!(
                "GET /small.txt HTTP/1.1\r\nHost: x\r\nUser-Agent: {user_agent}\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    eprintln!(
        "5,000 requests with stderr stalled: {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // The log really was stalled: lines were dropped, and counted.
    let stats = server.stats();
    assert!(stats["access_log_dropped"] > 0, "{stats:?}");
    assert!(stats["access_log_lines"] < 5_000, "{stats:?}");
    assert_eq!(stats["requests"], 5_001, "{stats:?}");

    // A stalled log does not keep the server from exiting either (a bounded wait at exit).
    server.terminate();
    let exited = server.wait_exit(Duration::from_secs(15));
    assert_eq!(exited, Some(0), "did not exit with stderr stalled");
}

#[test]
fn access_lines_say_who_and_carry_range_user_agent_and_referer() {
    let root = TestRoot::new();
    root.file("clip.bin", b"0123456789");
    let server = TestServer::start(root.path(), &[]);
    let mut stream = connect(server.addr);
    let client = stream.local_addr().unwrap();
    // Quotes, a fake field, a fake line prefix, a tab and a non-ASCII byte: none may leak out
    // of the value.
    let hostile =
        b"Player/1.0 \"evil\" status=999\treelserve::access: method=POST path=/forged \xff";
    let mut request = b"GET /clip.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=2-5\r\n".to_vec();
    request.extend_from_slice(b"User-Agent: ");
    request.extend_from_slice(hostile);
    request.extend_from_slice(
        b"\r\nReferer: http://example.test/player?a=1&b=2\r\nConnection: close\r\n\r\n",
    );
    stream.write_all(&request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 206 "),
        "{}",
        String::from_utf8_lossy(&response)
    );

    let log = server.wait_log(|log| !access_log::for_path(log, "/clip.bin").is_empty());
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reelserve::access:"))
        .collect();
    assert_eq!(lines.len(), 1, "one line, nothing forged:\n{log}");
    let line = lines[0];
    let parsed = access_log::parse(line);
    assert_eq!(parsed.len(), 1);
    assert_eq!(
        (
            parsed[0].method.as_str(),
            parsed[0].path.as_str(),
            parsed[0].status,
            parsed[0].bytes
        ),
        ("GET", "/clip.bin", 206, 4),
        "{line}"
    );
    assert!(line.contains(&format!(" client={client} ")), "{line}");
    assert!(line.contains(" range=bytes=2-5"), "{line}");
    assert!(
        line.contains(
            " user_agent=\"Player/1.0 \\\"evil\\\" status=999\\treelserve::access: method=POST path=/forged \\xff\""
        ),
        "{line}"
    );
    assert!(
        line.contains(" referer=http://example.test/player?a=1&b=2"),
        "{line}"
    );

    // Counted in the stats once written (within the 1 s flush interval).
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats()["access_log_lines"] < 1 {
        assert!(Instant::now() < deadline, "access_log_lines never counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.stats()["access_log_dropped"], 0);
}

#[test]
fn json_access_lines_carry_client_range_user_agent_and_referer() {
    let root = TestRoot::new();
    root.file("clip.bin", b"0123456789");
    let server = TestServer::start(root.path(), &["--log-format", "json"]);
    let mut stream = connect(server.addr);
    let client = stream.local_addr().unwrap();
    stream
        .write_all(
            b"GET /clip.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\n\
              User-Agent: Lecteur \"vid\\o\"\r\nReferer: http://example.test/\r\n\
              Connection: close\r\n\r\n",
        )
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    assert!(response.starts_with(b"HTTP/1.1 206 "));

    let log = server.wait_log(|log| log.contains("\"target\":\"reelserve::access\""));
    let access: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["target"] == "reelserve::access")
        .collect();
    assert_eq!(access.len(), 1, "{log}");
    let fields = &access[0]["fields"];
    assert_eq!(fields["client"], client.to_string());
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["path"], "/clip.bin");
    assert_eq!(fields["version"], "HTTP/1.1");
    assert_eq!(fields["status"], 206);
    assert_eq!(fields["bytes"], 3);
    assert_eq!(fields["complete"], true);
    assert_eq!(fields["range"], "bytes=-3");
    assert_eq!(fields["user_agent"], "Lecteur \"vid\\o\"");
    assert_eq!(fields["referer"], "http://example.test/");
    assert_eq!(access[0]["level"], "INFO");
}

#[test]
fn access_log_off_logs_and_counts_nothing() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let mut server = TestServer::start(root.path(), &["--access-log", "off"]);
    for _ in 0..10 {
        assert_eq!(server.get("/a.txt", &[]).status, 200);
    }
    let stats = server.stats();
    assert_eq!(
        (stats["access_log_lines"], stats["access_log_dropped"]),
        (0, 0)
    );
    // After a graceful stop everything the server had to say has been written.
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    let log = server.log();
    assert!(log.contains("all connections finished"), "{log}");
    assert!(!log.contains("reelserve::access"), "{log}");
}

#[test]
fn access_log_file_is_appended_to() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let logs = tempfile::tempdir().unwrap();
    let access = logs.path().join("access.log");
    std::fs::write(&access, "an earlier line\n").unwrap();
    let mut server = TestServer::start(root.path(), &["--access-log", access.to_str().unwrap()]);
    assert_eq!(server.get("/a.txt", &[]).status, 200);
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    let log = std::fs::read_to_string(&access).unwrap();
    assert!(log.starts_with("an earlier line\n"), "{log}");
    assert_eq!(access_log::for_path(&log, "/a.txt").len(), 1, "{log}");
}

#[test]
fn an_access_log_that_cannot_be_opened_is_a_clear_startup_error() {
    let root = TestRoot::new();
    let mut command = Command::new(env!("CARGO_BIN_EXE_reelserve"));
    command.arg("--root").arg(root.path()).args([
        "--addr",
        "127.0.0.1:0",
        "--access-log",
        "/no/such/dir/access.log",
    ]);
    let (stderr, _) = common::refused_start(command);
    assert!(
        stderr.contains("/no/such/dir/access.log") && stderr.contains("--access-log"),
        "{stderr}"
    );
}

/// The real binary with stderr on `stderr` (the harness's `TestServer` always logs to a file).
struct SpawnedServer {
    child: Child,
    addr: SocketAddr,
}

impl SpawnedServer {
    fn start(root: &Path, args: &[&str], stderr: File) -> SpawnedServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reelserve"))
            .arg("--root")
            .arg(root)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start reelserve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        SpawnedServer { child, addr }
    }

    fn stats(&self) -> std::collections::HashMap<String, u64> {
        let raw = common::raw_exchange(
            self.addr,
            b"GET /_reelserve/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let response = common::Response::parse(&raw, false).unwrap();
        assert_eq!(response.status, 200);
        parse_flat_json_numbers(&String::from_utf8_lossy(&response.body))
    }

    fn terminate(&self) {
        common::terminate(&self.child);
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        common::wait_exit(&mut self.child, timeout)
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
