//! HTTPS (`--tls-cert`/`--tls-key`): curl over HTTP/2 and HTTP/1.1 with byte checks (files,
//! ranges, multipart, 304, HEAD, 405, paths, `/video`), in every `--mode`, with proof that no
//! file byte took a mapped path; hostile clients on the TLS port (plain HTTP, garbage, silence,
//! an HTTP/2 rapid-reset flood); a file truncated mid-send; bad certificate and key files; and
//! the start-up line that says how each protocol sends file bodies (kernel TLS fallback).
//!
//! The certificate is made per test by scripts/make-cert.sh (openssl). Needs curl and openssl:
//! a skip outside CI when one is missing, a failure in CI.

mod access_log;
mod common;
mod external;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use external::Finished;

const MIB: usize = 1024 * 1024;

/// curl's flag for each protocol, and the version curl prints in the status line.
const PROTOCOLS: [(&str, &str); 2] = [("--http2", "HTTP/2"), ("--http1.1", "HTTP/1.1")];

/// The same, as the server's access log names it.
fn logged_version(curl_flag: &str) -> &'static str {
    match curl_flag {
        "--http2" => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// `curl -k ARGS...` (the certificate is self-signed).
fn curl(args: &[&str]) -> Finished {
    let mut all = vec!["-k"];
    all.extend_from_slice(args);
    external::curl(&all)
}

/// `curl -k -i PROTOCOL ARGS... URL`, parsed; checks curl spoke `protocol`.
fn get(server: &TestServer, protocol: &str, path: &str, args: &[&str]) -> Response {
    let url = server.url(path);
    let mut all = vec!["-i", protocol];
    all.extend_from_slice(args);
    all.push(&url);
    let finished = curl(&all).expect_success(&format!("curl {all:?}"));
    let head_only = args.contains(&"-I");
    let response = Response::parse(&finished.stdout, head_only)
        .unwrap_or_else(|e| panic!("{e}: curl printed {:?}", finished.stdout_text()));
    let expected = PROTOCOLS
        .iter()
        .find(|(flag, _)| *flag == protocol)
        .unwrap()
        .1;
    assert_eq!(
        response.version, expected,
        "curl {all:?} spoke another version"
    );
    response
}

fn stats(server: &TestServer) -> std::collections::HashMap<String, u64> {
    let finished = curl(&[&server.url("/_reelserve/stats")]).expect_success("stats");
    parse_flat_json_numbers(&finished.stdout_text())
}

fn assert_same_bytes(got: &[u8], expected: &[u8], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    if let Some(at) = got.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {at}");
    }
}

fn tools() -> Option<TestCert> {
    if !require("curl") {
        return None;
    }
    TestCert::new()
}

// ---- RFC 9110 over both protocols ------------------------------------------------------------

#[test]
fn every_mode_serves_files_ranges_and_multipart_byte_exact_over_h2_and_http1() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    let content = pattern(3 * MIB + 4321, 21);
    root.file("movie/film.mp4", &content);
    let len = content.len();
    for mode in modes() {
        let server = TestServer::start_https(root.path(), &cert, &["--mode", mode]);
        let mut file_bytes = 0;
        for (protocol, _) in PROTOCOLS {
            let what = format!("{mode} {protocol}");
            let whole = get(&server, protocol, "/movie/film.mp4", &[]);
            assert_eq!(whole.status, 200, "{what}");
            assert_same_bytes(&whole.body, &content, &format!("{what}: whole file"));
            // RFC 9113 §8.2.2: no connection-specific fields in HTTP/2 (nor needed in 1.1).
            assert_eq!(whole.header("connection"), None, "{what}");
            assert_eq!(whole.header("keep-alive"), None, "{what}");

            let range = get(
                &server,
                protocol,
                "/movie/film.mp4",
                &["-r", "1000-2999999"],
            );
            assert_eq!(range.status, 206, "{what}");
            assert_eq!(
                range.header("content-range"),
                Some(format!("bytes 1000-2999999/{len}").as_str()),
                "{what}"
            );
            assert_same_bytes(&range.body, &content[1000..3_000_000], &what);

            let suffix = get(&server, protocol, "/movie/film.mp4", &["-r", "-70000"]);
            assert_same_bytes(&suffix.body, &content[len - 70000..], &what);

            let spec = "3000000-3100000,0-99,2000000-2000000";
            let multi = get(&server, protocol, "/movie/film.mp4", &["-r", spec]);
            assert_eq!(multi.status, 206, "{what}");
            let parts = multi.multipart_parts();
            let expected = [(3_000_000, 3_100_000), (0, 99), (2_000_000, 2_000_000)];
            assert_eq!(parts.len(), 3, "{what}");
            for ((range, ctype, bytes), (a, b)) in parts.iter().zip(expected) {
                assert_eq!(range, &format!("bytes {a}-{b}/{len}"), "{what}");
                assert_eq!(ctype, "video/mp4", "{what}");
                assert_same_bytes(bytes, &content[a..=b], &format!("{what}: part {a}-{b}"));
            }
            file_bytes += len + 2_999_000 + 70000 + 100_001 + 100 + 1;
        }
        // Under TLS every file byte is read into a buffer (pread or read-all), none is mapped.
        let stats = stats(&server);
        assert_eq!(stats["bytes_sendfile"], 0, "{mode}: {stats:?}");
        assert_eq!(stats["bytes_writev_mapped"], 0, "{mode}: {stats:?}");
        assert_eq!(
            stats["bytes_copied"], file_bytes as u64,
            "{mode}: {stats:?}"
        );
        // The server saw both protocols (four requests each).
        let log = server.wait_log(|log| access_log::for_path(log, "/movie/film.mp4").len() >= 8);
        for (protocol, _) in PROTOCOLS {
            let version = logged_version(protocol);
            let served = access_log::for_path(&log, "/movie/film.mp4");
            assert_eq!(
                served.iter().filter(|a| a.version == version).count(),
                4,
                "{mode}: {version} requests in the access log:\n{log}"
            );
        }
    }
}

#[test]
fn conditionals_head_405_paths_and_video_route_over_h2_and_http1() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    let content = pattern(MIB, 5);
    root.file("movie/film.mp4", &content);
    root.file(".secret", b"hidden");
    let server = TestServer::start_https(root.path(), &cert, &[]);
    let len = content.len().to_string();
    for (protocol, _) in PROTOCOLS {
        // §9.3.2: HEAD has GET's fields, Content-Length included, and no content.
        let head = get(&server, protocol, "/movie/film.mp4", &["-I"]);
        assert_eq!(head.status, 200, "{protocol}");
        assert_eq!(
            head.header("content-length"),
            Some(len.as_str()),
            "{protocol}"
        );
        assert_eq!(head.header("accept-ranges"), Some("bytes"), "{protocol}");
        let etag = head.header("etag").expect("etag").to_string();
        let modified = head
            .header("last-modified")
            .expect("last-modified")
            .to_string();

        // §13.1.2: a matching If-None-Match is 304 with the validators and no content.
        let not_modified = get(
            &server,
            protocol,
            "/movie/film.mp4",
            &["-H", &format!("If-None-Match: {etag}")],
        );
        assert_eq!(not_modified.status, 304, "{protocol}");
        assert!(not_modified.body.is_empty(), "{protocol}");
        assert_eq!(
            not_modified.header("etag"),
            Some(etag.as_str()),
            "{protocol}"
        );
        let since = get(
            &server,
            protocol,
            "/movie/film.mp4",
            &["-H", &format!("If-Modified-Since: {modified}")],
        );
        assert_eq!(since.status, 304, "{protocol}");

        // §13.1.1: If-Match with another tag fails.
        let failed = get(
            &server,
            protocol,
            "/movie/film.mp4",
            &["-H", "If-Match: \"other\""],
        );
        assert_eq!(failed.status, 412, "{protocol}");

        // §13.1.5: If-Range with a stale tag sends the whole file.
        let stale = get(
            &server,
            protocol,
            "/movie/film.mp4",
            &["-r", "0-9", "-H", "If-Range: \"stale\""],
        );
        assert_eq!(stale.status, 200, "{protocol}");
        assert_same_bytes(&stale.body, &content, protocol);

        // §14.2 and §15.5.17: unsatisfiable range.
        let beyond = get(&server, protocol, "/movie/film.mp4", &["-r", "99999999-"]);
        assert_eq!(beyond.status, 416, "{protocol}");
        assert_eq!(
            beyond.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );

        // §15.5.6: other methods are 405 with Allow.
        for method in ["POST", "DELETE", "PUT"] {
            let refused = get(&server, protocol, "/movie/film.mp4", &["-X", method]);
            assert_eq!(refused.status, 405, "{protocol} {method}");
            assert_eq!(refused.header("allow"), Some("GET, HEAD"), "{protocol}");
        }

        // The tutorial's route, range-capable.
        let video = get(&server, protocol, "/video", &["-r", "100-199"]);
        assert_eq!(video.status, 206, "{protocol}");
        assert_same_bytes(
            &video.body,
            &content[100..200],
            &format!("{protocol} /video"),
        );

        // Path safety holds whatever the protocol.
        let up = get(&server, protocol, "/../etc/passwd", &["--path-as-is"]);
        assert_eq!(up.status, 400, "{protocol}");
        let encoded = get(&server, protocol, "/movie%2f..%2f..%2fetc/passwd", &[]);
        assert_eq!(encoded.status, 400, "{protocol}");
        let hidden = get(&server, protocol, "/.secret", &[]);
        assert_eq!(hidden.status, 404, "{protocol}");
    }
}

/// One HTTP/2 connection carries many range requests at once (curl --parallel multiplexes).
#[test]
fn h2_multiplexes_parallel_ranges_on_one_connection() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    let content = pattern(8 * MIB, 8);
    root.file("clip.bin", &content);
    let server = TestServer::start_https(root.path(), &cert, &[]);
    let out = tempfile::tempdir().unwrap();
    let url = server.url("/clip.bin");
    // One transfer per `--next` group; per-transfer options are repeated in each.
    let mut command = external::command("curl");
    command.args(["-q", "-sS", "--parallel", "--parallel-max", "8"]);
    for i in 0..8 {
        if i > 0 {
            command.arg("--next");
        }
        let (a, b) = (i * MIB + 17, i * MIB + 17 + MIB - 1);
        command
            .args(["--noproxy", "*", "--max-time", "20", "-k", "--http2"])
            .args(["-r", &format!("{a}-{b}"), "-o"])
            .arg(out.path().join(format!("part{i}")))
            .arg(&url);
    }
    external::run(command, Duration::from_secs(30)).expect_success("curl --parallel");
    for i in 0..8 {
        let got = std::fs::read(out.path().join(format!("part{i}"))).unwrap();
        let a = i * MIB + 17;
        let b = (a + MIB).min(content.len());
        assert_same_bytes(&got, &content[a..b], &format!("part {i}"));
    }
    let log = server.wait_log(|log| access_log::for_path(log, "/clip.bin").len() >= 8);
    let served = access_log::for_path(&log, "/clip.bin");
    assert_eq!(served.len(), 8);
    assert!(served
        .iter()
        .all(|a| a.status == 206 && a.version == "HTTP/2.0"));
    // All eight over one connection (the stats request is the second).
    assert_eq!(stats(&server)["connections_accepted"], 2);
}

// ---- hostile clients -------------------------------------------------------------------------

/// Bytes that are not a TLS handshake get the connection closed at once (after at most a TLS
/// alert; never an HTTP answer), a client that says nothing is closed at the header timeout,
/// and a download in progress on another connection does not notice.
#[test]
fn garbage_plaintext_and_silence_on_the_tls_port_are_closed_without_harming_others() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    let content = pattern(12 * MIB, 2);
    root.file("big.bin", &content);
    root.file("small.txt", b"fine");
    let server = TestServer::start_https(root.path(), &cert, &["--header-timeout", "2"]);
    let url = server.url("/big.bin");
    let out = tempfile::tempdir().unwrap();
    let downloaded = out.path().join("big.bin");
    let download = {
        let (url, downloaded) = (url.clone(), downloaded.clone());
        std::thread::spawn(move || {
            let path = downloaded.to_str().unwrap();
            curl(&["--http2", "--limit-rate", "4M", "-o", path, &url])
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    let mut hello_start = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
    hello_start.extend_from_slice(&[0x03, 0x03]);
    let cases: [(&str, Vec<u8>, Duration); 4] = [
        (
            "plain HTTP",
            b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Duration::from_secs(1),
        ),
        ("garbage", pattern(4096, 77), Duration::from_secs(1)),
        // A handshake that starts and stalls, and one that never starts: the header timeout.
        ("half a ClientHello", hello_start, Duration::from_secs(5)),
        ("silence", Vec::new(), Duration::from_secs(5)),
    ];
    for (what, bytes, limit) in cases {
        let started = Instant::now();
        let mut stream = connect(server.addr);
        if !bytes.is_empty() {
            stream.write_all(&bytes).unwrap();
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer); // a reset is a close too
        let took = started.elapsed();
        assert!(took < limit, "{what}: closed only after {took:?}");
        assert!(
            !answer.starts_with(b"HTTP/"),
            "{what}: got a plain HTTP answer on the TLS port"
        );
        // At most a TLS alert record (content type 21).
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "{what}: unexpected answer {answer:?}"
        );
    }

    let finished = download
        .join()
        .unwrap()
        .expect_success("download beside the hostile clients");
    assert!(
        finished.elapsed > Duration::from_millis(1500),
        "rate limit not in effect"
    );
    assert_same_bytes(&std::fs::read(&downloaded).unwrap(), &content, "download");
    let small = get(&server, "--http1.1", "/small.txt", &[]);
    assert_eq!(small.body, b"fine");
    let log = server.wait_log(|log| log.contains("TLS handshake failed"));
    assert!(log.contains("TLS handshake failed"), "{log}");
    // Every hostile connection was let go: only the stats request itself is open.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats(&server)["open_connections"] != 1 {
        assert!(Instant::now() < deadline, "connections left open");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// HTTP/2 "rapid reset" (CVE-2023-44487): a client opens streams and cancels them at once,
/// which costs it nothing. The server must not do more work than the requests would have cost
/// (each stream it accepted is at most one request), must cut such a connection off, and must
/// keep serving everyone else meanwhile.
#[test]
fn h2_rapid_reset_flood_is_cut_off_and_others_are_served() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    let content = pattern(2 * MIB, 4);
    root.file("small.txt", b"fine");
    root.file("movie/film.mp4", &content);
    let server = TestServer::start_https(root.path(), &cert, &[]);
    let before = stats(&server)["requests"];

    // Someone else watching a movie meanwhile.
    let url = server.url("/movie/film.mp4");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let viewer = {
        let (url, stop, content) = (url.clone(), Arc::clone(&stop), content.clone());
        std::thread::spawn(move || {
            let mut served = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let finished = curl(&["--http2", "-r", "1000-1999999", &url]);
                let finished = finished.expect_success("viewer during the flood");
                assert_same_bytes(&finished.stdout, &content[1000..2_000_000], "viewer");
                served += 1;
            }
            served
        })
    };

    const CONNECTIONS: usize = 10;
    const STREAMS: u32 = 1000;
    let mut cut_off = 0;
    for _ in 0..CONNECTIONS {
        let mut tls = h2_client(&server, &cert);
        let mut flood = h2::preface();
        for i in 0..STREAMS {
            let stream = 2 * i + 1;
            flood.extend(h2::frame(
                h2::HEADERS,
                h2::END_STREAM | h2::END_HEADERS,
                stream,
                &h2::get_request("/small.txt"),
            ));
            flood.extend(h2::frame(
                h2::RST_STREAM,
                0,
                stream,
                &h2::CANCEL.to_be_bytes(),
            ));
        }
        // The server may close the connection while we are still writing: that is the point.
        let _ = tls.write_all(&flood).and_then(|()| tls.flush());
        if h2::read_until_goaway(&mut tls) == Some(h2::ENHANCE_YOUR_CALM) {
            cut_off += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let viewed = viewer.join().unwrap();
    assert!(viewed >= 1, "the viewer got nothing done during the flood");

    let handled = stats(&server)["requests"] - before - viewed - 1;
    let opened = CONNECTIONS as u64 * u64::from(STREAMS);
    eprintln!(
        "{opened} streams opened and reset: {handled} reached the service, \
         {cut_off}/{CONNECTIONS} connections cut off with ENHANCE_YOUR_CALM, {viewed} \
         viewer requests served meanwhile"
    );
    assert!(
        handled <= opened,
        "more requests handled ({handled}) than streams opened ({opened})"
    );
    assert_eq!(
        cut_off, CONNECTIONS,
        "a flooding connection was not closed with ENHANCE_YOUR_CALM"
    );
    let started = Instant::now();
    let after = get(&server, "--http2", "/small.txt", &[]);
    assert_eq!(after.body, b"fine");
    assert!(started.elapsed() < Duration::from_secs(2));
}

// ---- how file bytes are read ------------------------------------------------------------------

/// Over TLS the file is copied anyway, so the fastest copy is the goal: chunks whose pages are
/// in the page cache are read in place on the async worker (no thread hop), and only pages that
/// would wait for the disk go to the blocking pool. `--mode chunked` keeps Node's way: always
/// the pool.
#[test]
fn https_reads_cached_chunks_in_place_and_uncached_ones_on_the_pool() {
    let Some(cert) = tools() else { return };
    if !require("dd") || !require("sync") || !require("fincore") {
        return;
    }
    let root = TestRoot::on_disk();
    let content = pattern(4 * MIB, 6);
    let path = root.file("clip.bin", &content);
    let server = TestServer::start_https(root.path(), &cert, &[]);
    // Just written: in the page cache. 4 MiB is 32 chunks of 128 KiB.
    let cached = get(&server, "--http2", "/clip.bin", &[]);
    assert_same_bytes(&cached.body, &content, "cached");
    let counters = stats(&server);
    assert_eq!(counters["chunks_read_in_place"], 32, "{counters:?}");
    assert_eq!(counters["chunks_read_on_pool"], 0, "{counters:?}");

    if drop_from_page_cache(&path) {
        let uncached = get(&server, "--http1.1", "/clip.bin", &[]);
        assert_same_bytes(&uncached.body, &content, "uncached");
        let counters = stats(&server);
        assert!(counters["chunks_read_on_pool"] >= 1, "{counters:?}");
        assert_eq!(
            counters["chunks_read_in_place"] + counters["chunks_read_on_pool"],
            64,
            "{counters:?}"
        );
    } else {
        eprintln!(
            "the page cache kept {} on this filesystem: the uncached half is not exercised",
            path.display()
        );
    }

    let chunked = TestServer::start_https(root.path(), &cert, &["--mode", "chunked"]);
    let body = get(&chunked, "--http2", "/clip.bin", &[]);
    assert_same_bytes(&body.body, &content, "chunked mode");
    let counters = stats(&chunked);
    assert_eq!(counters["chunks_read_in_place"], 0, "{counters:?}");
    // --chunk-size 64 KiB: 64 chunks.
    assert_eq!(counters["chunks_read_on_pool"], 64, "{counters:?}");
}

/// Writes `path` back and drops its pages (dd's `iflag=nocache` is posix_fadvise DONTNEED),
/// then asks `fincore` whether any page is still resident: a tmpfs, or pages the kernel is
/// still writing, stay. Tries a few times, then `vm.drop_caches`; `false` if the pages would
/// not go.
fn drop_from_page_cache(path: &std::path::Path) -> bool {
    let path = path.to_str().unwrap();
    for attempt in 0..5 {
        if attempt == 3 {
            // Last resort, where the test may (root, /proc/sys writable): drop every clean
            // page of the machine. Slows other tests for a moment, never changes their results.
            let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");
        }
        external::run(external_command("sync", &[path]), Duration::from_secs(30))
            .expect_success("sync");
        external::run(
            external_command("dd", &[&format!("if={path}"), "iflag=nocache", "count=0"]),
            Duration::from_secs(30),
        )
        .expect_success("dd iflag=nocache");
        let resident = external::run(
            external_command(
                "fincore",
                &["--bytes", "--noheadings", "--output", "RES", path],
            ),
            Duration::from_secs(30),
        )
        .expect_success("fincore");
        if String::from_utf8_lossy(&resident.stdout).trim() == "0" {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn external_command(program: &str, args: &[&str]) -> std::process::Command {
    let mut command = external::command(program);
    command.args(args);
    command
}

// ---- truncation, start-up --------------------------------------------------------------------

/// A file cut short while it is sent over TLS: the copy path reads with pread (a mapped page
/// read in user space would be SIGBUS), so the server notices, ends that response early (HTTP/1.1:
/// closes the connection; HTTP/2: resets the stream) and serves on.
#[test]
fn file_truncated_mid_send_over_https_ends_the_response_early_without_crashing() {
    let Some(cert) = tools() else { return };
    for (round, (protocol, _)) in PROTOCOLS.into_iter().enumerate() {
        let root = TestRoot::new();
        let len = 48 * MIB;
        let path = root.file("big.bin", &pattern(len, 9));
        root.file("small.txt", b"still here");
        let server = TestServer::start_https(root.path(), &cert, &["--mode", "sendfile"]);
        let out = tempfile::tempdir().unwrap();
        let received = out.path().join("got");
        let download = {
            let url = server.url("/big.bin");
            let received = received.clone();
            std::thread::spawn(move || {
                let path = received.to_str().unwrap();
                curl(&[protocol, "--limit-rate", "4M", "-o", path, &url])
            })
        };
        std::thread::sleep(Duration::from_millis(700));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(MIB as u64)
            .unwrap();
        let finished = download.join().unwrap();
        let got = std::fs::metadata(&received).map(|m| m.len()).unwrap_or(0);
        assert!(
            !finished.status.success(),
            "{protocol}: curl reported success for a short response"
        );
        assert!(
            got < len as u64,
            "{protocol}: got {got} bytes: padded or completed"
        );
        assert!(
            finished.elapsed < Duration::from_secs(15),
            "{protocol}: hung"
        );
        let small = get(&server, protocol, "/small.txt", &[]);
        assert_eq!(small.body, b"still here", "{protocol}");
        assert_eq!(
            stats(&server)["truncated_sends"],
            1,
            "{protocol} (round {round})"
        );
        let logged = |log: &str| {
            log.contains("file shrank while it was being sent") && log.contains("complete=false")
        };
        let log = server.wait_log(logged);
        assert!(
            logged(&log),
            "{protocol}: the short response was not logged as such:\n{log}"
        );
    }
}

/// Bad or missing certificate and key files stop start-up with exit code 2 and one line that
/// names the file.
#[test]
fn bad_certificate_or_key_files_stop_startup_naming_the_file() {
    let Some(cert) = TestCert::new() else { return };
    let Some(other) = TestCert::new() else { return };
    let root = TestRoot::new();
    let garbage = root.file("garbage.pem", b"this is not PEM\n");
    let missing = root.path().join("missing.pem");
    let (cert_path, key_path) = (cert.cert_str(), cert.key_str());
    let (garbage, missing) = (garbage.to_str().unwrap(), missing.to_str().unwrap());
    let cases: [(&str, &str, String); 5] = [
        (
            missing,
            key_path,
            format!("cannot read TLS certificate {missing}:"),
        ),
        (
            cert_path,
            missing,
            format!("cannot read TLS private key {missing}:"),
        ),
        (
            garbage,
            key_path,
            format!("no TLS certificate in {garbage}"),
        ),
        // A certificate where the key should be.
        (
            cert_path,
            cert_path,
            format!("no TLS private key in {cert_path}"),
        ),
        (
            cert_path,
            other.key_str(),
            format!(
                "TLS certificate {cert_path} and key {} cannot be used together",
                other.key_str()
            ),
        ),
    ];
    for (tls_cert, tls_key, expected) in cases {
        let mut command = external::command(env!("CARGO_BIN_EXE_reelserve"));
        command
            .arg("--root")
            .arg(root.path())
            .args(["--addr", "127.0.0.1:0", "--tls-cert", tls_cert])
            .args(["--tls-key", tls_key]);
        let finished = external::run(command, Duration::from_secs(10));
        assert_eq!(finished.status.code(), Some(2), "{expected}");
        let stderr = finished.stderr.trim_end();
        assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("reelserve: {expected}")),
            "expected {expected:?}, got {stderr:?}"
        );
        assert!(finished.stdout.is_empty(), "it started listening");
    }
}

/// The log says once at start-up how each protocol sends file bodies, and, on a kernel without
/// the `tls` ULP (this one), that kernel TLS is unavailable and why: the copy path is used.
#[test]
fn startup_log_states_the_https_body_strategy_and_the_kernel_tls_fallback() {
    let Some(cert) = TestCert::new() else { return };
    let root = TestRoot::new();
    let ulps = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
    let kernel_has_tls = ulps.split_whitespace().any(|name| name == "tls");
    let cases = [
        (vec![], "HTTPS (h1/h2): pread chunks of 128 KiB"),
        (
            vec!["--mode", "mmap"],
            "HTTPS (h1/h2): pread chunks of 128 KiB",
        ),
        (
            vec!["--mode", "chunked", "--chunk-size", "262144"],
            "HTTPS (h1/h2): pread chunks of 256 KiB",
        ),
        (vec!["--mode", "read-all"], "HTTPS (h1/h2): read-all"),
    ];
    for (args, expected) in cases {
        let server = TestServer::start_https(root.path(), &cert, &args);
        let log = server.wait_log(|log| log.contains("file bodies:"));
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("file bodies:")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: once at start-up:\n{log}");
        assert!(lines[0].contains(expected), "{args:?}: {}", lines[0]);
        if kernel_has_tls {
            assert!(
                lines[0].contains("the kernel offers kernel TLS"),
                "{}",
                lines[0]
            );
        } else {
            assert!(
                lines[0]
                    .contains("kernel TLS unavailable: /proc/sys/net/ipv4/tcp_available_ulp lists"),
                "{}",
                lines[0]
            );
        }
    }
    // Without a certificate nothing changes: plain HTTP/1.1, and the log says HTTPS is off.
    let plain = TestServer::start(root.path(), &[]);
    assert!(
        plain
            .wait_log(|log| log.contains("file bodies:"))
            .contains("file bodies: plain HTTP/1.1: sendfile; HTTPS: off"),
        "{}",
        plain.log()
    );
    assert_eq!(plain.get("/", &[]).status, 200);
}

/// The server's counters, fetched on a connection the server closes after the answer (so that
/// it is never parked itself and the parking count is the test's own).
fn closing_stats(server: &TestServer) -> std::collections::HashMap<String, u64> {
    let finished = curl(&[
        "--http1.1",
        "-H",
        "Connection: close",
        &server.url("/_reelserve/stats"),
    ])
    .expect_success("stats");
    parse_flat_json_numbers(&finished.stdout_text())
}

/// An idle HTTPS connection that chose HTTP/1.1 is parked as a plain one is (hyper's parser and
/// buffers let go; the rustls session kept), and its next request, on the same TLS session, is
/// served. Half a request head keeps the parser; a graceful stop closes a parked connection at
/// once, with a `close_notify` alert.
#[test]
fn an_idle_https_http1_connection_is_parked_and_served_again_on_the_same_session() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    root.file("a.txt", b"parked over TLS");
    let mut server = TestServer::start_https(root.path(), &cert, &["--shutdown-timeout", "20"]);
    let parked = |server: &TestServer| closing_stats(server)["idle_connections_parked"];
    let mut tls = tls_client(&server, &cert, b"http/1.1");
    for round in 1..=2 {
        tls.write_all(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        assert_eq!(read_one_response(&mut tls).body, b"parked over TLS");
        assert_parked_exactly(round, || parked(&server));
    }

    let before = parked(&server);
    let response = get_in_two_halves_unparked(&mut tls, "/a.txt", "localhost", || parked(&server));
    assert_eq!(response.body, b"parked over TLS");

    assert_parked_exactly(before + 1, || parked(&server));
    let stopping = Instant::now();
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    // rustls reads a close_notify as the end (Ok(0)); a close without one is an error.
    let mut rest = Vec::new();
    let end = tls.read_to_end(&mut rest);
    assert!(
        matches!(end, Ok(0)),
        "not closed with close_notify: {end:?}, {rest:?}"
    );
}

/// Over TLS too, half of a second request pipelined behind a whole one gets the header timeout
/// once the first is answered: the parser reads those bytes as plaintext rustls decrypted with
/// the first request, or replayed after parking, never from a socket read of their own.
#[test]
fn half_a_pipelined_https_request_head_gets_the_header_timeout() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    root.file("a.txt", b"first");
    let server = TestServer::start_https(
        root.path(),
        &cert,
        &["--header-timeout", "2", "--idle-timeout", "30"],
    );
    let mut tls = tls_client(&server, &cert, b"http/1.1");
    let started = Instant::now();
    tls.write_all(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\nGET /a.txt HTTP/1.1\r\nHo")
        .unwrap();
    tls.flush().unwrap();
    assert_eq!(read_one_response(&mut tls).body, b"first");
    tls.sock
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut rest = Vec::new();
    // The end, clean or not: the server does not say goodbye to a client that timed out.
    let _ = tls.read_to_end(&mut rest);
    let lived = started.elapsed();
    assert!(rest.is_empty(), "unexpected bytes {rest:?}");
    assert!(
        lived < Duration::from_secs(4),
        "closed after {lived:?}, not at --header-timeout 2"
    );
}

/// A parked HTTPS connection keeps its timeouts: a client that completes the handshake and
/// never asks is closed at the header timeout, an idle one after a response at the keep-alive
/// idle timeout; and neither holds its `--max-connections` slot longer.
#[test]
fn parked_https_connections_still_time_out() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    root.file("a.txt", b"brief");
    let server = TestServer::start_https(
        root.path(),
        &cert,
        &["--header-timeout", "1", "--idle-timeout", "1"],
    );
    let mut silent = tls_client(&server, &cert, b"http/1.1");
    let mut idle = tls_client(&server, &cert, b"http/1.1");
    idle.write_all(b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(read_one_response(&mut idle).body, b"brief");
    let started = Instant::now();
    for (what, tls) in [("silent", &mut silent), ("idle", &mut idle)] {
        let mut rest = Vec::new();
        // The end, clean or not: the server does not say goodbye to a client that timed out.
        let _ = tls.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{what}: unexpected bytes {rest:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: closed only after {:?}",
            started.elapsed()
        );
    }
    let stats = closing_stats(&server);
    assert!(stats["idle_connections_parked"] >= 1, "{stats:?}");
    assert!(
        eventually(Duration::from_secs(5), || closing_stats(&server)
            ["open_connections"]
            == 1),
        "connections left open"
    );
}

/// Parked HTTPS connections still make room at `--max-connections` (the oldest is closed to
/// admit a new client), and one whose client says goodbye (`close_notify`) while it is parked
/// is closed cleanly, its slot given back.
#[test]
fn parked_https_connections_make_room_and_end_when_the_client_leaves() {
    let Some(cert) = tools() else { return };
    let root = TestRoot::new();
    root.file("a.txt", b"room");
    let server = TestServer::start_https(
        root.path(),
        &cert,
        &["--max-connections", "2", "--idle-timeout", "30"],
    );
    let request = b"GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut kept: Vec<_> = (0..2)
        .map(|_| tls_client(&server, &cert, b"http/1.1"))
        .collect();
    for tls in &mut kept {
        tls.write_all(request).unwrap();
        assert_eq!(read_one_response(tls).body, b"room");
    }
    // Both parked by now; a third client is admitted at once.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut third = tls_client(&server, &cert, b"http/1.1");
    third.write_all(request).unwrap();
    assert_eq!(read_one_response(&mut third).body, b"room");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    kept[0]
        .sock
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut rest = Vec::new();
    let oldest = kept[0].read_to_end(&mut rest);
    assert!(
        !matches!(&oldest, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the oldest parked connection was not closed: {oldest:?}"
    );

    let leaving = &mut kept[1];
    leaving.conn.send_close_notify();
    leaving.flush().unwrap();
    let end = leaving.read_to_end(&mut rest);
    assert!(matches!(end, Ok(0)), "not closed cleanly: {end:?}");
    // Its slot is given back when its task ends, just after; until then a stats request
    // would take the third client's slot.
    std::thread::sleep(Duration::from_millis(300));
    let stats = closing_stats(&server);
    assert!(stats["idle_connections_parked"] >= 2, "{stats:?}");
    assert!(stats["idle_connections_evicted"] >= 1, "{stats:?}");
    // The third client and the stats request.
    assert_eq!(stats["open_connections"], 2, "{stats:?}");
    third.write_all(request).unwrap();
    assert_eq!(read_one_response(&mut third).body, b"room");
}

// ---- a raw HTTP/2 client, for what polite clients never do -----------------------------------

/// A TLS connection to `server` that offered only `h2` by ALPN and trusts `cert`.
fn h2_client(
    server: &TestServer,
    cert: &TestCert,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    tls_client(server, cert, b"h2")
}

/// A TLS connection to `server` that offered only `alpn` and trusts `cert`; the server must
/// have chosen it.
fn tls_client(
    server: &TestServer,
    cert: &TestCert,
    alpn: &[u8],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_file(&cert.cert).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = connect(server.addr);
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    assert_eq!(tls.conn.alpn_protocol(), Some(alpn), "ALPN not negotiated");
    tls
}

/// HTTP/2 frames by hand (RFC 9113 §4, §6) and HPACK without Huffman or indexing (RFC 7541).
mod h2 {
    use std::io::Read;

    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const GOAWAY: u8 = 0x7;
    pub const END_STREAM: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const CANCEL: u32 = 0x8;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;

    /// The connection preface and an empty SETTINGS frame.
    pub fn preface() -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(SETTINGS, 0, 0, &[]));
        bytes
    }

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        bytes.extend([kind, flags]);
        bytes.extend(stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    /// A header block for `GET https://localhost{path}`.
    pub fn get_request(path: &str) -> Vec<u8> {
        // Static table: 2 = :method GET, 7 = :scheme https; literals without indexing for
        // :path (name 4) and :authority (name 1).
        let mut block = vec![0x82, 0x87, 0x04, path.len() as u8];
        block.extend_from_slice(path.as_bytes());
        block.extend([0x01, 9]);
        block.extend_from_slice(b"localhost");
        block
    }

    /// Reads frames until GOAWAY (its error code), the end of the connection, or the read
    /// timeout (then `None`).
    pub fn read_until_goaway(stream: &mut impl Read) -> Option<u32> {
        let mut head = [0u8; 9];
        loop {
            stream.read_exact(&mut head).ok()?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            stream.read_exact(&mut payload).ok()?;
            if head[3] == GOAWAY && payload.len() >= 8 {
                return Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
            }
        }
    }
}
