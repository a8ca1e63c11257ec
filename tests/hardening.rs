//! Hostile and unlucky clients, over real loopback sockets, each bounded to a few seconds:
//! slowloris, idle and stalled connections, resets mid-body, the connection limit, signals,
//! unreadable files, startup errors, and the JSON log.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Whether the peer has closed `stream` (EOF or reset), without blocking.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // e.g. a 408/400 the server sent before closing
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

fn sparse_file(root: &TestRoot, name: &str, len: u64) {
    let file = std::fs::File::create(root.path().join(name)).unwrap();
    file.set_len(len).unwrap();
}

#[test]
fn slowloris_connections_are_closed_on_time_and_do_not_delay_normal_clients() {
    let root = TestRoot::new();
    root.file("page.html", b"<p>hi</p>");
    let timeout = Duration::from_millis(1500);
    let server = TestServer::start(root.path(), &["--header-timeout", "1.5"]);
    // (stream, connected at, closed at)
    let mut slow: Vec<(TcpStream, Instant, Option<Instant>)> = (0..400)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(b"GET /page.html HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            (s, Instant::now(), None)
        })
        .collect();
    let deadline = Instant::now() + timeout + Duration::from_secs(5);
    // Drip a header byte now and then; meanwhile normal clients must be served at once.
    while slow.iter().any(|(_, _, closed)| closed.is_none()) {
        let open = slow.iter().filter(|(_, _, c)| c.is_none()).count();
        assert!(
            Instant::now() < deadline,
            "{open} slowloris connections still open"
        );
        for (stream, _, closed) in slow.iter_mut().filter(|(_, _, c)| c.is_none()) {
            if stream.write_all(b"X").is_err() || closed_by_server(stream) {
                *closed = Some(Instant::now());
            }
        }
        let t = Instant::now();
        assert_eq!(server.get("/page.html", &[]).body, b"<p>hi</p>");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "normal client delayed: {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Closed by the header timeout: not before it (drip or no drip), and not long after.
    for (_, connected, closed) in &slow {
        let lived = closed.unwrap() - *connected;
        assert!(
            lived >= timeout - Duration::from_millis(100),
            "closed after only {lived:?}"
        );
    }
    assert_eq!(server.get("/page.html", &[]).status, 200);
}

#[test]
fn idle_keep_alive_connections_close_after_the_idle_timeout_not_before() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let server = TestServer::start(
        root.path(),
        &["--idle-timeout", "1.5", "--header-timeout", "10"],
    );
    let mut stream = connect(server.addr);
    let request = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        // Idle for less than the timeout between requests: the connection stays usable.
        stream.write_all(request).unwrap();
        let n = stream.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(700));
        assert!(!closed_by_server(&mut stream));
    }
    let idle_from = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the server to close the idle connection");
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(700) && idle < Duration::from_secs(4),
        "closed after {idle:?}"
    );
}

#[test]
fn a_connection_that_never_sends_a_request_gets_the_header_timeout() {
    let root = TestRoot::new();
    let server = TestServer::start(
        root.path(),
        &["--header-timeout", "1", "--idle-timeout", "60"],
    );
    let mut stream = connect(server.addr);
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    let root = TestRoot::new();
    sparse_file(&root, "big.bin", 512 << 20);
    let server = TestServer::start(root.path(), &["--send-timeout", "1"]);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.stats()["open_connections"], 2); // the stalled one and this stats request
    let deadline = Instant::now() + Duration::from_secs(8);
    while server.stats()["open_connections"] > 1 {
        assert!(Instant::now() < deadline, "stalled client still connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    // What the client can still read is what was in the socket buffers: far from 512 MiB.
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    assert!(received.len() < 64 << 20, "{} bytes", received.len());
    assert!(server
        .wait_log(|log| log.contains("client accepted no bytes for the send timeout"))
        .contains("client accepted no bytes for the send timeout"));
}

#[test]
fn stalled_clients_do_not_grow_server_memory() {
    let root = TestRoot::new();
    sparse_file(&root, "big.bin", 512 << 20);
    for mode in ["sendfile", "chunked"] {
        let server = TestServer::start(root.path(), &["--mode", mode, "--send-timeout", "60"]);
        let _ = server.get("/big.bin", &[("Range", "bytes=0-99")]);
        let before = server.proc_status_kb("VmRSS");
        let clients: Vec<TcpStream> = (0..100)
            .map(|_| {
                let mut s = connect(server.addr);
                s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                s
            })
            .collect();
        // Let every connection fill its socket buffers and stall.
        std::thread::sleep(Duration::from_millis(1500));
        let after = server.proc_status_kb("VmRSS");
        let grown = after.saturating_sub(before);
        // 100 stalled downloads of 512 MiB: user-space memory must not follow the file size.
        // (chunked holds one 64 KiB buffer per connection; sendfile holds none.)
        assert!(
            grown < 40 * 1024,
            "{mode}: RSS grew by {grown} kB with 100 stalled clients"
        );
        assert_eq!(server.stats()["open_connections"], 101, "{mode}");
        drop(clients);
    }
}

#[test]
fn a_thousand_clients_resetting_mid_body_cost_nothing() {
    let root = TestRoot::new();
    let content = pattern(8 << 20, 5);
    root.file("movie.mp4", &content);
    let server = TestServer::start(root.path(), &[]);
    // Warm every event loop, so lazily created per-loop descriptors are in the baseline.
    for _ in 0..32 {
        let _ = server.get("/movie.mp4", &[("Range", "bytes=0-0")]);
    }
    let baseline_fds = server.open_fds();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let mut s = connect(addr);
                    s.write_all(b"GET /movie.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
                        .unwrap();
                    let mut some = [0u8; 32 * 1024];
                    s.read_exact(&mut some).unwrap();
                    reset(s);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open = server.stats()["open_connections"];
        if open == 1 && server.open_fds() <= baseline_fds {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connections / {} fds remain",
            server.open_fds()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.get("/movie.mp4", &[]).body == content);
}

/// Closes with SO_LINGER 0: the kernel sends RST instead of FIN.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid linger value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(stream);
}

#[test]
fn max_connections_makes_extra_clients_wait_in_the_backlog() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let server = TestServer::start(root.path(), &["--max-connections", "2", "--workers", "1"]);
    let request = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    // Both slots held by connections in the middle of a request head: nothing is idle, so
    // nothing may be closed to make room (idle ones would be; see tests/hostile_clients.rs).
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(b"GET /a.txt HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut waiting = connect(server.addr);
    waiting.write_all(request).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let early = waiting.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a third connection was served beyond --max-connections 2: {early:?}"
    );
    held.pop();
    waiting
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = waiting.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[test]
fn sigterm_lets_a_large_download_finish_refuses_new_connections_and_exits_0() {
    let root = TestRoot::new();
    let len = 64usize << 20;
    let content = pattern(len, 7);
    root.file("movie.mp4", &content);
    let mut server = TestServer::start(root.path(), &[]);
    let addr = server.addr;
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /movie.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut received = vec![0u8; 1 << 20];
    stream.read_exact(&mut received).unwrap();

    server.terminate();
    // New connections are refused at once (the listener is closed)...
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            _ => assert!(Instant::now() < deadline, "still accepting after SIGTERM"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...while the download in flight completes, byte-exact.
    stream.read_to_end(&mut received).unwrap();
    let response = Response::parse(&received, false).unwrap();
    assert!(
        response.body == content,
        "the download was cut or corrupted by the shutdown"
    );
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_second_signal_exits_immediately() {
    let root = TestRoot::new();
    sparse_file(&root, "big.bin", 512 << 20);
    let mut server = TestServer::start(root.path(), &["--shutdown-timeout", "60"]);
    let mut stalled = connect(server.addr);
    stalled
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.terminate();
    // The stalled download keeps the server in its graceful phase...
    assert_eq!(server.wait_exit(Duration::from_millis(700)), None);
    // ...until a second signal.
    server.terminate();
    let code = server.wait_exit(Duration::from_secs(3));
    assert!(matches!(code, Some(c) if c != 0), "exit: {code:?}");
}

#[test]
fn unreadable_files_are_403_and_logged_when_not_root() {
    if !require("setpriv") {
        return;
    }
    let root = TestRoot::new();
    root.file("public.txt", b"public");
    let secret = root.file("secret.txt", b"secret");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        root.path().join("public.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Drop to nobody (tests run as root in CI, and root may read anything).
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_reelserve"));
    let server = TestServer::start_with(command, root.path(), &[]);
    assert_eq!(server.get("/public.txt", &[]).body, b"public");
    let denied = server.get("/secret.txt", &[]);
    assert_eq!(denied.status, 403);
    assert!(
        server.wait_log(|log| log.contains("WARN")).contains("WARN"),
        "no log line for the 403"
    );
}

#[test]
fn startup_errors_are_one_clear_line_and_exit_2() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reelserve"));
    command.args(["--root", "/no/such/dir"]);
    let (stderr, _) = refused_start(command);
    assert!(
        stderr.contains("/no/such/dir") && stderr.contains("--root"),
        "{stderr}"
    );

    let root = TestRoot::new();
    let server = TestServer::start(root.path(), &[]);
    let mut command = Command::new(env!("CARGO_BIN_EXE_reelserve"));
    command
        .args(["--root"])
        .arg(root.path())
        .args(["--addr", &server.addr.to_string()]);
    let (stderr, _) = refused_start(command);
    assert!(
        stderr.contains(&server.addr.to_string()) && stderr.contains("--addr"),
        "{stderr}"
    );
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let server = TestServer::start(root.path(), &["--log-format", "json"]);
    assert_eq!(server.get("/a.txt", &[]).status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log();
        let access: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .filter(|v: &serde_json::Value| v["target"] == "reelserve::access")
            .collect();
        if let Some(line) = access.first() {
            assert_eq!(line["fields"]["status"], 200);
            assert_eq!(line["fields"]["path"], "/a.txt");
            assert_eq!(line["fields"]["bytes"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "no access line in {log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn idle_connections_cost_little_memory() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let server = TestServer::start(root.path(), &[]);
    let _ = server.get("/a.txt", &[]);
    let before = server.proc_status_kb("VmRSS");
    let count = 2000;
    let mut buf = [0u8; 1024];
    let conns: Vec<TcpStream> = (0..count)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            assert!(s.read(&mut buf).unwrap() > 0);
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let after = server.proc_status_kb("VmRSS");
    let per_connection = (after.saturating_sub(before)) * 1024 / count as u64;
    eprintln!(
        "idle keep-alive connection: {per_connection} bytes of RSS each ({count} connections)"
    );
    assert!(
        per_connection < 64 * 1024,
        "{per_connection} bytes per idle connection"
    );
    assert_eq!(server.stats()["open_connections"], count as u64 + 1);
    drop(conns);
}
