//! What the server does at its limits and at the edges of its path rules, against the real
//! binary over loopback, each case bounded to a few seconds: out of descriptors (a retryable
//! 503, never a cacheable 404), a read-all response larger than memory (a 503, never an abort),
//! hidden files reached through symlinks and files asked for as directories (404), configuration
//! refused at start-up in one line with exit code 2, and idle keep-alive connections parked
//! without hyper's buffers (served again, evicted for room, closed by a graceful stop).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Sends `GET path` on a keep-alive connection and reads exactly one response.
fn keep_alive_get(stream: &mut TcpStream, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    read_one_response(stream)
}

/// Runs `prlimit ARGS`, which must succeed.
fn prlimit(args: &[&str]) {
    let output = Command::new("prlimit").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "prlimit {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The descriptor numbers process `pid` has open, in order.
fn open_fd_numbers(pid: u32) -> Vec<u32> {
    let mut numbers: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

// RFC 9110 §15.6.4: 503 is for a temporary condition; a 404 would be remembered by caches
// (§15.5.5: 404 is heuristically cacheable) for an existing file.
#[test]
fn out_of_descriptors_an_existing_file_is_503_with_retry_after_then_200_once_released() {
    if !require("prlimit") {
        return;
    }
    let root = TestRoot::new();
    let content = pattern(10_000, 7);
    root.file("movie.bin", &content);
    let server = TestServer::start(root.path(), &[]);

    // The connection that will ask for the file, accepted and served once.
    let mut client = connect(server.addr);
    assert_eq!(keep_alive_get(&mut client, "/missing").status, 404);

    // RLIMIT_NOFILE bounds descriptor numbers, not their count: open(2) takes the lowest free
    // number. So allow two numbers above the highest in use, and fill every free number below
    // the limit with an idle connection.
    let fds = open_fd_numbers(server.pid());
    let limit = fds.iter().max().unwrap() + 3;
    prlimit(&[
        "--pid",
        &server.pid().to_string(),
        &format!("--nofile={limit}:{limit}"),
    ]);
    let free = limit as usize - fds.len();
    let mut held = Vec::new();
    for _ in 0..free {
        let mut stream = connect(server.addr);
        // Served (so accepted) without opening a file: with no number free, even a lookup of a
        // missing file fails with EMFILE, as open(2) takes a number before the path walk.
        assert_eq!(keep_alive_get(&mut stream, "/_reelserve/stats").status, 200);
        held.push(stream);
    }
    assert_eq!(
        open_fd_numbers(server.pid()),
        (0..limit).collect::<Vec<_>>(),
        "every descriptor number below the limit is in use"
    );

    let refused = keep_alive_get(&mut client, "/movie.bin");
    assert_eq!(
        refused.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&refused.body)
    );
    let retry_after: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    assert!(
        String::from_utf8_lossy(&refused.body).contains("Too many open files"),
        "{:?}",
        String::from_utf8_lossy(&refused.body)
    );
    assert!(
        eventually(Duration::from_secs(2), || server
            .log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("Too many open files"))),
        "no warning logged:\n{}",
        server.log()
    );

    drop(held);
    assert!(
        eventually(Duration::from_secs(5), || server.open_fds() <= fds.len()),
        "the server did not close the released connections"
    );
    let served = keep_alive_get(&mut client, "/movie.bin");
    assert_eq!(served.status, 200);
    assert_eq!(served.body, content);
}

#[test]
fn read_all_refuses_a_60_gib_file_with_a_clear_503_and_keeps_serving() {
    let root = TestRoot::new();
    // Sparse: 60 GiB long, no disk used. Allocating it used to abort the process.
    std::fs::File::create(root.path().join("huge.bin"))
        .unwrap()
        .set_len(60 << 30)
        .unwrap();
    root.file("small.txt", b"still here");
    let mut server = TestServer::start(root.path(), &["--mode", "read-all"]);

    let refused = server.get("/huge.bin", &[]);
    let text = String::from_utf8_lossy(&refused.body);
    assert_eq!(refused.status, 503, "{text}");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    assert!(
        text.contains("60 GiB") && text.contains("512 MiB") && text.contains("--read-all-budget"),
        "{text}"
    );

    assert_eq!(
        server.wait_exit(Duration::from_millis(100)),
        None,
        "it exited"
    );
    assert_eq!(server.get("/small.txt", &[]).body, b"still here");
    // A range of the huge file that fits is served.
    let part = server.get("/huge.bin", &[("Range", "bytes=1000-1999")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, vec![0u8; 1000]);
}

#[test]
fn read_all_budget_is_shared_and_given_back_when_a_response_ends() {
    let root = TestRoot::new();
    let big = pattern(32 << 20, 3);
    root.file("big.bin", &big);
    let server = TestServer::start(
        root.path(),
        &["--mode", "read-all", "--read-all-budget", "48m"],
    );
    // Each response fits, again and again: each gives its bytes back when it ends.
    for _ in 0..3 {
        assert_eq!(server.get("/big.bin", &[]).body, big);
    }

    // A client that stops reading keeps its 32 MiB reserved (more than socket buffers hold)...
    let mut stalled = connect(server.addr);
    stalled
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1];
    stalled.read_exact(&mut first).unwrap();
    // ...so another whole file does not fit now, but a range does.
    let refused = server.get("/big.bin", &[]);
    let text = String::from_utf8_lossy(&refused.body);
    assert_eq!(refused.status, 503, "{text}");
    assert!(
        text.contains("32 MiB") && text.contains("16 MiB") && text.contains("retry later"),
        "{text}"
    );
    assert_eq!(
        server.get("/big.bin", &[("Range", "bytes=0-99")]).body,
        &big[..100]
    );

    // When that client goes, its reservation goes with its body.
    drop(stalled);
    assert!(
        eventually(Duration::from_secs(5), || server
            .get("/big.bin", &[])
            .status
            == 200),
        "the budget was not given back"
    );

    let tight = TestServer::start(
        root.path(),
        &["--mode", "read-all", "--read-all-budget", "1m"],
    );
    let text = String::from_utf8_lossy(&tight.get("/big.bin", &[]).body).into_owned();
    assert!(text.contains("32 MiB") && text.contains("1 MiB"), "{text}");
}

/// A root with `.git/config` and symlinks into it, and plain files beside.
fn root_with_symlinks_to_hidden_files() -> TestRoot {
    let root = TestRoot::new();
    root.file(".git/config", b"[remote \"origin\"] secret");
    root.file("sub/plain.txt", b"plain");
    root.file("file.txt", b"file");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, root.path().join(name)).unwrap();
    };
    link("../.git/config", "sub/cfg.txt");
    link(
        root.path().join(".git/config").to_str().unwrap(),
        "sub/absolute.txt",
    );
    link(".git", "visible");
    link("plain.txt", "sub/alias.txt");
    root
}

#[test]
fn hidden_files_are_not_served_through_symlinks() {
    let root = root_with_symlinks_to_hidden_files();
    for mode in modes() {
        let server = TestServer::start(root.path(), &["--mode", mode]);
        for path in [
            "/.git/config",
            "/sub/cfg.txt",
            "/sub/absolute.txt",
            "/visible/config",
        ] {
            let response = server.get(path, &[]);
            assert_eq!(response.status, 404, "{mode} {path}");
            assert!(
                !String::from_utf8_lossy(&response.body).contains("secret"),
                "{mode} {path}"
            );
        }
        // Symlinks that stay among visible files still work.
        assert_eq!(server.get("/sub/alias.txt", &[]).body, b"plain", "{mode}");
    }
}

// RFC 3986 §3.3: a path ending in `/` (or `/.`) names the contents of a directory; a regular
// file has none.
#[test]
fn a_file_asked_for_as_a_directory_is_404() {
    let root = root_with_symlinks_to_hidden_files();
    let server = TestServer::start(root.path(), &[]);
    assert_eq!(server.get("/file.txt", &[]).body, b"file");
    for path in [
        "/file.txt/",
        "/file.txt/.",
        "/file.txt/%2e",
        "/file.txt//",
        "/sub/plain.txt/",
        "/sub/alias.txt/",
    ] {
        assert_eq!(server.get(path, &[]).status, 404, "{path}");
    }
    // Directories in those forms are still directories.
    assert_eq!(server.get("/sub/", &[]).status, 200);
    assert_ne!(server.get("/sub/.", &[]).status, 404);
}

#[test]
fn bad_configuration_is_one_clear_line_and_exit_2() {
    let root = TestRoot::new();
    let refuse = |args: &[&str], expected: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reelserve"));
        command
            .arg("--root")
            .arg(root.path())
            .args(["--addr", "127.0.0.1:0"])
            .args(args);
        let (stderr, output) = refused_start(command);
        assert!(stderr.starts_with("reelserve: "), "{args:?}: {stderr}");
        for word in expected {
            assert!(stderr.contains(word), "{args:?}: {word:?} not in {stderr}");
        }
        assert!(output.stdout.is_empty(), "{args:?} started listening");
    };
    refuse(&["--workers", "0"], &["--workers", "1 to 1024"]);
    refuse(&["--workers", "5000"], &["--workers", "1 to 1024"]);
    refuse(&["--header-timeout", "1e-9"], &["--header-timeout", "1 ms"]);
    refuse(&["--send-timeout", "0.0001"], &["--send-timeout", "1 ms"]);
    refuse(
        &["--log-level", "verbose"],
        &["unknown log level `verbose`", "info"],
    );
    refuse(
        &["--read-all-budget", "lots"],
        &["--read-all-budget", "512m"],
    );

    if require("openssl") {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("enc.pem");
        let status = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-aes256", "-pass", "pass:secret", "-out"])
            .arg(&key)
            .output()
            .unwrap()
            .status;
        assert!(status.success());
        let cert = TestCert::new().unwrap();
        let key = key.to_str().unwrap();
        refuse(
            &["--tls-cert", cert.cert_str(), "--tls-key", key],
            &[
                "is encrypted",
                &format!("openssl pkey -in {key} -out key.pem"),
            ],
        );
    }
}

/// Tests run as root, who may list even a mode-000 directory: the server runs as nobody here.
#[test]
fn an_unreadable_root_is_refused_at_start() {
    if !require("setpriv") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let root = TestRoot::new();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = root.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_reelserve"))
        .arg("--root")
        .arg(&locked)
        .args(["--addr", "127.0.0.1:0"]);
    let (stderr, _) = refused_start(command);
    assert!(
        stderr.contains("cannot read the directory")
            && stderr.contains(locked.to_str().unwrap())
            && stderr.contains("Permission denied"),
        "{stderr}"
    );
}

/// An idle keep-alive connection gives hyper's buffers back after a moment (it is *parked*:
/// only the socket and its timers are kept) and is served by a new parser when the client
/// speaks again: on the same socket, a whole request, one split across the park delay (bytes
/// of a head in progress keep the parser), and two pipelined in one write. A graceful stop
/// closes a parked connection at once.
#[test]
fn an_idle_keep_alive_connection_is_parked_and_served_again_on_the_same_socket() {
    let root = TestRoot::new();
    root.file("a.txt", b"parked and back");
    let mut server = TestServer::start(root.path(), &["--shutdown-timeout", "20"]);
    let parked = |server: &TestServer| server.stats()["idle_connections_parked"];
    let mut stream = connect(server.addr);
    // Each idle spell parks the connection once: a parser woken by a request serves it.
    for round in 1..=2 {
        assert_eq!(
            keep_alive_get(&mut stream, "/a.txt").body,
            b"parked and back"
        );
        assert_parked_exactly(round, || parked(&server));
    }

    let before = parked(&server);
    let response = get_in_two_halves_unparked(&mut stream, "/a.txt", "x", || parked(&server));
    assert_eq!(response.body, b"parked and back");

    assert_parked_exactly(before + 1, || parked(&server));
    stream
        .write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut responses = 0;
    while responses < 2 {
        let n = stream.read(&mut buf).expect("two pipelined responses");
        assert!(n > 0, "closed after {responses} pipelined responses");
        raw.extend_from_slice(&buf[..n]);
        responses = 0;
        let mut rest = &raw[..];
        while let Ok((response, used)) = Response::parse_prefix(rest, false) {
            assert_eq!(response.body, b"parked and back");
            responses += 1;
            rest = &rest[used..];
        }
    }

    // Parked again, then a graceful stop: closed at once, not after --shutdown-timeout.
    assert_parked_exactly(before + 2, || parked(&server));
    let stopping = Instant::now();
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));
}

/// A parked connection (see above) still makes room at `--max-connections`: the oldest is
/// closed to admit a new client, as a connection waiting inside hyper would be.
#[test]
fn parked_connections_make_room_at_the_connection_limit() {
    let root = TestRoot::new();
    root.file("a.txt", b"room");
    let server = TestServer::start(
        root.path(),
        &["--max-connections", "2", "--idle-timeout", "30"],
    );
    let mut kept: Vec<TcpStream> = (0..2).map(|_| connect(server.addr)).collect();
    for stream in &mut kept {
        assert_eq!(keep_alive_get(stream, "/a.txt").body, b"room");
    }
    // Both parked (the stats request itself takes a slot for a moment: ask once they are).
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(server.get("/a.txt", &[]).status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    kept[0]
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(kept[0].read(&mut buf), Ok(0) | Err(_)),
        "the oldest was not closed"
    );
    let stats = server.stats();
    assert!(stats["idle_connections_parked"] >= 2, "{stats:?}");
    assert!(stats["idle_connections_evicted"] >= 1, "{stats:?}");
}
