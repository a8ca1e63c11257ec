//! The four `--mode`s over real loopback sockets: byte-exact bodies in every mode, proof of
//! which path the bytes took (the server's counters and strace), packet coalescing of head and
//! body, files truncated mid-send, and mappings released.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const FILE_LEN: usize = 5 * 1024 * 1024 + 12_345;

fn root_with_movie() -> (TestRoot, Vec<u8>) {
    let root = TestRoot::new();
    let content = pattern(FILE_LEN, 3);
    root.file("movie/film.mp4", &content);
    (root, content)
}

#[test]
fn every_mode_serves_whole_files_ranges_suffixes_and_multipart_byte_exact() {
    let (root, content) = root_with_movie();
    let len = content.len();
    for mode in modes() {
        let server = TestServer::start(root.path(), &["--mode", mode]);
        let whole = server.get("/movie/film.mp4", &[]);
        assert_eq!(whole.status, 200, "{mode}");
        assert!(whole.body == content, "{mode}: whole file differs");

        let range = server.get("/movie/film.mp4", &[("Range", "bytes=1000-2999999")]);
        assert_eq!(range.status, 206, "{mode}");
        assert_eq!(
            range.header("content-range"),
            Some(format!("bytes 1000-2999999/{len}").as_str())
        );
        assert!(
            range.body == content[1000..3_000_000],
            "{mode}: range differs"
        );

        let suffix = server.get("/movie/film.mp4", &[("Range", "bytes=-70000")]);
        assert_eq!(suffix.status, 206, "{mode}");
        assert!(
            suffix.body == content[len - 70000..],
            "{mode}: suffix differs"
        );

        let open = server.get("/movie/film.mp4", &[("Range", "bytes=4000000-")]);
        assert!(
            open.body == content[4_000_000..],
            "{mode}: open range differs"
        );

        let multi = server.get(
            "/movie/film.mp4",
            &[("Range", "bytes=5000000-5100000,0-99,3000000-3000000")],
        );
        assert_eq!(multi.status, 206, "{mode}");
        let parts = multi.multipart_parts();
        let expected = [(5_000_000, 5_100_000), (0, 99), (3_000_000, 3_000_000)];
        assert_eq!(parts.len(), 3, "{mode}");
        for ((range, ctype, bytes), (a, b)) in parts.iter().zip(expected) {
            assert_eq!(range, &format!("bytes {a}-{b}/{len}"), "{mode}");
            assert_eq!(ctype, "video/mp4");
            assert!(bytes[..] == content[a..=b], "{mode}: part {a}-{b} differs");
        }

        let head = server.request("HEAD", "/movie/film.mp4", &[]);
        assert_eq!(
            head.header("content-length"),
            Some(len.to_string().as_str())
        );
        let etag = whole.header("etag").unwrap().to_string();
        let not_modified = server.get("/movie/film.mp4", &[("If-None-Match", &etag)]);
        assert_eq!(not_modified.status, 304, "{mode}");
        assert!(not_modified.body.is_empty());
    }
}

#[test]
fn keep_alive_and_pipelining_work_in_every_mode() {
    let (root, content) = root_with_movie();
    for mode in modes() {
        let server = TestServer::start(root.path(), &["--mode", mode]);
        let mut stream = connect(server.addr);
        let request = |range: &str| {
            format!("GET /movie/film.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes={range}\r\n\r\n")
        };
        let mut pipelined = request("0-99") + &request("100-2000000") + &request("-5");
        pipelined += "GET /movie/film.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        stream.write_all(pipelined.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let mut at = 0;
        let expected: [&[u8]; 4] = [
            &content[..100],
            &content[100..2_000_001],
            &content[content.len() - 5..],
            &content[..],
        ];
        for want in expected {
            let (response, used) = Response::parse_prefix(&raw[at..], false).unwrap();
            assert!(response.body == want, "{mode}: pipelined body differs");
            at += used;
        }
        assert_eq!(at, raw.len(), "{mode}: trailing bytes");
    }
}

/// The proof the issue asks for: in sendfile mode the file bytes are counted by the sendfile
/// path and no other; in the other modes sendfile carries nothing.
#[test]
fn counters_show_which_path_carried_the_file_bytes() {
    let (root, _) = root_with_movie();
    let len = FILE_LEN as u64;
    for mode in modes() {
        let server = TestServer::start(root.path(), &["--mode", mode]);
        assert_eq!(server.get("/movie/film.mp4", &[]).status, 200);
        let stats = server.stats();
        let (sendfile, writev, copied) = (
            stats["bytes_sendfile"],
            stats["bytes_writev_mapped"],
            stats["bytes_copied"],
        );
        match mode {
            "sendfile" => {
                assert_eq!((sendfile, writev, copied), (len, 0, 0));
                // One sendfile call moves at most 2 MiB (fairness cap): at least 3 calls.
                assert!(stats["sendfile_calls"] >= 3, "{stats:?}");
            }
            "mmap" => assert_eq!((sendfile, writev, copied), (0, len, 0)),
            _ => assert_eq!((sendfile, writev, copied), (0, 0, len), "{mode}"),
        }
    }
}

/// Independent of our own counters: strace counts the syscalls the process really made.
#[test]
fn strace_sees_sendfile_only_in_sendfile_mode() {
    if !require("strace") {
        return;
    }
    let (root, content) = root_with_movie();
    for (mode, expect_sendfile) in [("sendfile", true), ("chunked", false), ("mmap", false)] {
        let trace = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new("strace");
        command
            .args(["-f", "-qq", "-e", "trace=sendfile,sendfile64", "-o"])
            .arg(trace.path())
            .arg(env!("CARGO_BIN_EXE_reelserve"));
        let mut server = TestServer::start_with(command, root.path(), &["--mode", mode]);
        let response = server.get("/movie/film.mp4", &[]);
        assert!(
            response.body == content,
            "{mode}: body differs under strace"
        );
        // SIGTERM the traced server (strace's child); strace exits with its exit status.
        assert_eq!(server.stop_traced(), Some(0), "{mode}");
        let log = std::fs::read_to_string(trace.path()).unwrap();
        let calls: Vec<&str> = log.lines().filter(|l| l.contains("sendfile")).collect();
        // Sum what the sendfile calls returned: "... = 2097152".
        let sent: u64 = calls
            .iter()
            .filter_map(|l| l.rsplit("= ").next()?.trim().parse::<u64>().ok())
            .sum();
        if expect_sendfile {
            assert!(calls.len() >= 3, "{mode}: {} sendfile calls", calls.len());
            assert_eq!(sent, FILE_LEN as u64, "{mode}: sendfile moved {sent} bytes");
        } else {
            assert!(
                calls.is_empty(),
                "{mode}: unexpected sendfile calls: {calls:?}"
            );
        }
    }
}

/// MSG_MORE keeps the response head back until the file bytes follow, so a small response
/// arrives as one TCP segment (nginx's tcp_nopush). Counted on the client socket by the kernel.
#[test]
fn small_range_arrives_as_one_segment_with_its_head() {
    let (root, content) = root_with_movie();
    for mode in ["sendfile", "mmap"] {
        let server = TestServer::start(root.path(), &["--mode", mode]);
        let mut stream = connect(server.addr);
        stream
            .write_all(b"GET /movie/film.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=100-1099\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let response = Response::parse(&raw, false).unwrap();
        assert!(response.body == content[100..1100]);
        assert_eq!(
            data_segments_received(&stream),
            1,
            "{mode}: head and body split"
        );
    }
}

fn data_segments_received(stream: &std::net::TcpStream) -> u32 {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain old data; getsockopt writes at most `len` bytes into it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        assert_eq!(rc, 0);
        info.tcpi_data_segs_in
    }
}

/// A file truncated while it is being sent: the server must not crash (no SIGBUS), must not
/// pad, must not hang: the client gets fewer bytes than Content-Length and an early close.
#[test]
fn file_truncated_mid_send_closes_the_connection_early_in_every_streaming_mode() {
    for mode in ["sendfile", "mmap", "chunked"] {
        let root = TestRoot::new();
        let len = 48 * 1024 * 1024;
        let path = root.file("big.bin", &pattern(len, 9));
        let server = TestServer::start(root.path(), &["--mode", mode]);
        let mut stream = connect(server.addr);
        stream
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut first = vec![0u8; 256 * 1024];
        stream.read_exact(&mut first).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1024 * 1024)
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest); // a reset is fine too
        let received = first.len() + rest.len();
        assert!(
            received < len,
            "{mode}: got {received} bytes: the response was padded or completed"
        );
        assert!(started.elapsed() < Duration::from_secs(15), "{mode}: hung");
        assert_eq!(server.stats()["truncated_sends"], 1, "{mode}");
        // Still alive and serving.
        std::fs::write(root.path().join("small.txt"), b"still here").unwrap();
        let after = server.get("/small.txt", &[]);
        assert_eq!(after.body, b"still here", "{mode}");
        let logged = |log: &str| {
            log.contains("file shrank while it was being sent") && log.contains("complete=false")
        };
        let log = server.wait_log(logged);
        assert!(
            logged(&log),
            "{mode}: the short response was not logged as such:\n{log}"
        );
    }
}

/// Thousands of requests later, descriptors and mappings are back where they started.
#[test]
fn descriptors_and_mappings_return_to_baseline() {
    let (root, content) = root_with_movie();
    let file = root.path().join("movie/film.mp4").canonicalize().unwrap();
    for mode in ["sendfile", "mmap"] {
        let server = TestServer::start(root.path(), &["--mode", mode]);
        // Warm every event loop (connections are spread over them by the kernel), so lazily
        // created per-loop descriptors are in the baseline.
        for _ in 0..32 {
            let _ = server.get("/", &[]);
        }
        let baseline = server.open_fds();
        let mut stream = connect(server.addr);
        for i in 0..2000usize {
            let first = (i * 7919) % (content.len() - 5000);
            let request = format!(
                "GET /movie/film.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes={first}-{}\r\n\r\n",
                first + 4095
            );
            stream.write_all(request.as_bytes()).unwrap();
            let response = read_one_response(&mut stream);
            assert!(
                response.body == content[first..first + 4096],
                "{mode}: request {i}"
            );
        }
        // Ten connections dropped mid-body also release everything.
        for _ in 0..10 {
            let mut s = connect(server.addr);
            s.write_all(b"GET /movie/film.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut some = [0u8; 1000];
            s.read_exact(&mut some).unwrap();
        }
        drop(stream);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (fds, maps) = (server.open_fds(), server.mappings_of(&file));
            if fds <= baseline && maps == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{mode}: {fds} fds (baseline {baseline}), {maps} mappings of the file remain"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads exactly one Content-Length-framed response from a keep-alive stream.
fn read_one_response(stream: &mut std::net::TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Ok((response, used)) = Response::parse_prefix(&raw, false) {
            assert_eq!(used, raw.len(), "unexpected extra bytes");
            return response;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed mid-response");
        raw.extend_from_slice(&buf[..n]);
    }
}

/// One client draining a huge file as fast as loopback allows must not starve the others on a
/// single worker thread (the 2 MiB sendfile cap plus tokio's cooperative budget).
#[test]
fn a_fast_download_does_not_starve_other_clients_on_one_worker() {
    let root = TestRoot::new();
    // Sparse: 4 GiB of zeros costs no disk and no time to make.
    let big = std::fs::File::create(root.path().join("huge.bin")).unwrap();
    big.set_len(4 << 30).unwrap();
    root.file("small.txt", b"hello");
    let server = TestServer::start(root.path(), &["--workers", "1"]);
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reader = stop.clone();
    let downloader = std::thread::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        while !stop_reader.load(std::sync::atomic::Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        total
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let started = Instant::now();
        let response = server.get("/small.txt", &[]);
        assert_eq!(response.body, b"hello");
        // Generous: this is a liveness check, not a latency benchmark.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "starved: {:?}",
            started.elapsed()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let downloaded = downloader.join().unwrap();
    assert!(
        downloaded > 10 << 20,
        "the big download did not progress: {downloaded}"
    );
}

/// Both schedulers — the default per-core event loops (each connection handed to the least
/// busy loop) and the work-stealing pool — serve the same bytes and shut down the same way;
/// `--per-core`, the flag from before per-core was the default, still selects it.
#[test]
fn both_schedulers_serve_and_shut_down_alike() {
    let (root, content) = root_with_movie();
    for (args, says) in [
        (
            &["--workers", "2"][..],
            "scheduler: per-core, 2 event loops",
        ),
        (
            &["--workers", "3"][..],
            "scheduler: per-core, 3 event loops",
        ),
        (
            &["--scheduler", "work-stealing", "--workers", "2"][..],
            "scheduler: work-stealing, one pool of 2 workers",
        ),
        (
            &["--scheduler", "work-stealing", "--workers", "3"][..],
            "scheduler: work-stealing, one pool of 3 workers",
        ),
        (
            &["--per-core", "--workers", "2"][..],
            "scheduler: per-core, 2 event loops",
        ),
    ] {
        let mut server = TestServer::start(root.path(), args);
        // The start-up log says which scheduler runs (the default is per-core).
        let log = server.wait_log(|log| log.contains(says));
        assert!(log.contains(says), "{args:?}: no {says:?} in\n{log}");
        // A second server must not share the port silently.
        let second = std::process::Command::new(env!("CARGO_BIN_EXE_reelserve"))
            .arg("--root")
            .arg(root.path())
            .args(["--addr", &server.addr.to_string()])
            .output()
            .unwrap();
        assert_eq!(
            second.status.code(),
            Some(2),
            "{args:?}: a second server bound the port"
        );
        for _ in 0..8 {
            let range = server.get("/movie/film.mp4", &[("Range", "bytes=100-200099")]);
            assert!(range.body == content[100..200_100], "{args:?}");
        }
        server.terminate();
        assert_eq!(
            server.wait_exit(Duration::from_secs(10)),
            Some(0),
            "{args:?}"
        );
    }
}

/// The default scheduler hands each new connection to the loop serving the fewest: two connections
/// open at once are on two loops, whatever a kernel hash would have done (with one listener
/// per loop, both landed on the same loop half the time), and each is served there. The
/// server logs each placement at debug level.
#[test]
fn per_core_hands_each_connection_to_the_least_busy_loop() {
    let root = TestRoot::new();
    root.file("a.txt", b"hello");
    let server = TestServer::start(root.path(), &["--workers", "2"]);
    let mut clients: Vec<_> = (0..2).map(|_| connect(server.addr)).collect();
    for client in &mut clients {
        client
            .write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
    }
    for client in &mut clients {
        let mut response = Vec::new();
        client.read_to_end(&mut response).unwrap();
        assert!(response.starts_with(b"HTTP/1.1 200") && response.ends_with(b"hello"));
    }
    let placed = |log: &str, index: u32| {
        log.lines()
            .filter(|line| line.contains("connection placed"))
            .any(|line| line.contains(&format!("event_loop={index}")))
    };
    let log = server.wait_log(|log| placed(log, 0) && placed(log, 1));
    assert!(placed(&log, 0) && placed(&log, 1), "{log}");
}

/// A head with a small body (a page, a poster, subtitles) leaves in one `writev` from the
/// mapping instead of `sendmsg(MSG_MORE)` + `sendfile`: strace sees no sendfile, and the
/// counters put the body on the writev path. A body above the threshold still takes sendfile.
#[test]
fn small_bodies_leave_with_their_head_in_one_writev_and_larger_ones_with_sendfile() {
    if !require("strace") {
        return;
    }
    let root = TestRoot::new();
    let small = pattern(2048, 5);
    let large = pattern(64 * 1024, 6);
    root.file("small.vtt", &small);
    root.file("large.jpg", &large);
    let trace = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "-e", "trace=sendfile,sendfile64", "-o"])
        .arg(trace.path())
        .arg(env!("CARGO_BIN_EXE_reelserve"));
    let mut server = TestServer::start_with(command, root.path(), &["--mode", "sendfile"]);
    assert!(server.get("/small.vtt", &[]).body == small);
    let stats = server.stats();
    assert_eq!(stats["bytes_writev_mapped"], 2048, "{stats:?}");
    assert_eq!(stats["bytes_sendfile"], 0, "{stats:?}");
    assert!(server.get("/large.jpg", &[]).body == large);
    let stats = server.stats();
    assert_eq!(stats["bytes_sendfile"], 64 * 1024, "{stats:?}");
    assert_eq!(stats["bytes_writev_mapped"], 2048, "{stats:?}");
    // SIGTERM the traced server (strace's child); strace exits with its exit status.
    assert_eq!(server.stop_traced(), Some(0));
    let log = std::fs::read_to_string(trace.path()).unwrap();
    let sent: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("sendfile"))
        .filter_map(|l| l.rsplit("= ").next()?.trim().parse().ok())
        .collect();
    // Only the large file's bytes went through sendfile.
    assert_eq!(sent.iter().sum::<u64>(), 64 * 1024, "{log}");
}
