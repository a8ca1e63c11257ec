//! One owner per timeout: `--header-timeout`, `--idle-timeout` and `--send-timeout` mean what
//! they say at any value, over HTTP/1.1 and over HTTP/2. These use values above 30 s on purpose:
//! hyper's own header timer defaults to 30 s, and while it ran beside the server's timers an idle
//! keep-alive connection was closed at 30 s whatever `--idle-timeout` said. They run in parallel
//! with the rest of the suite, so they cost their 35-40 s once.

mod common;
mod h2_client;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

/// Reads until the server closes `stream`; how long that took from `since`.
fn closed_after(stream: &mut std::net::TcpStream, since: Instant, limit: Duration) -> Duration {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => continue,
        }
    }
}

fn assert_near(actual: Duration, expected: Duration, what: &str) {
    let slack = Duration::from_secs(1);
    assert!(
        actual + slack >= expected && actual <= expected + slack,
        "{what}: closed after {actual:?}, expected {expected:?} ± 1 s"
    );
}

#[test]
fn an_idle_keep_alive_connection_lives_for_the_idle_timeout_even_beyond_thirty_seconds() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let server = TestServer::start(root.path(), &["--idle-timeout", "40"]);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_from = Instant::now();
    let lived = closed_after(&mut stream, idle_from, Duration::from_secs(50));
    assert_near(lived, Duration::from_secs(40), "--idle-timeout 40");
}

#[test]
fn a_slow_request_head_gets_the_header_timeout_even_beyond_thirty_seconds() {
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let server = TestServer::start(
        root.path(),
        &["--header-timeout", "35", "--idle-timeout", "100"],
    );
    let mut stream = connect(server.addr);
    let started = Instant::now();
    stream.write_all(b"GET /a.txt HTTP/1.1\r\n").unwrap();
    // One header byte every two seconds: the head never completes, but the connection is
    // never silent either, so only the header timeout can end it.
    let dripper = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..25 {
                std::thread::sleep(Duration::from_secs(2));
                if stream.write_all(b"X").is_err() {
                    return;
                }
            }
        })
    };
    let lived = closed_after(&mut stream, started, Duration::from_secs(45));
    assert_near(lived, Duration::from_secs(35), "--header-timeout 35");
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = dripper.join();
}

/// Half of a second request pipelined behind a whole one is a head in progress once the first
/// is answered: the header timeout ends it, not the (much longer) idle timeout, even though the
/// parser read those bytes before the first response and the connection is parked meanwhile.
#[test]
fn half_a_pipelined_request_head_gets_the_header_timeout() {
    let root = TestRoot::new();
    root.file("a.txt", b"first");
    let server = TestServer::start(
        root.path(),
        &["--header-timeout", "2", "--idle-timeout", "30"],
    );
    let mut stream = connect(server.addr);
    let started = Instant::now();
    stream
        .write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHo")
        .unwrap();
    assert_eq!(read_one_response(&mut stream).body, b"first");
    let lived = closed_after(&mut stream, started, Duration::from_secs(40));
    assert_near(lived, Duration::from_secs(2), "--header-timeout 2");
}

/// HTTP/2 control frames on an idle connection (PING here; browsers send SETTINGS and
/// WINDOW_UPDATE too) are not a request head: the idle timeout, not the header timeout, ends it.
#[test]
fn an_idle_http2_connection_that_pings_is_closed_at_the_idle_timeout() {
    let Some(cert) = TestCert::new() else { return };
    let root = TestRoot::new();
    root.file("a.txt", b"a");
    let server = TestServer::start_https(
        root.path(),
        &cert,
        &["--header-timeout", "1", "--idle-timeout", "4"],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lived = runtime.block_on(async {
        let (client, mut connection) =
            h2_client::connect(server.addr, &cert.cert, &h2::client::Builder::new()).await;
        let mut ping_pong = connection.ping_pong().expect("ping_pong");
        let started = Instant::now();
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        // One request, then idle but for a PING every 300 ms.
        let mut client = client.ready().await.expect("ready");
        let (response, _) = client
            .send_request(h2_client::get("/a.txt"), true)
            .expect("send");
        assert_eq!(response.await.expect("response").status(), 200);
        let idle_from = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let ping = ping_pong.ping(h2::Ping::opaque());
            match tokio::time::timeout(Duration::from_secs(2), ping).await {
                Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(300)).await,
                _ => break,
            }
            if driver.is_finished() {
                break;
            }
        }
        idle_from.elapsed()
    });
    assert!(
        lived >= Duration::from_millis(3500) && lived < Duration::from_secs(6),
        "an idle, pinging HTTP/2 connection was closed after {lived:?}, expected about 4 s"
    );
}
