//! Paced delivery over real loopback connections: curl downloads under `--limit-rate` /
//! `--limit-rate-after` (nginx's semantics) and `--pace` (a movie's bitrate, after a burst of
//! play time) take the time the kernel's pacing should give them, and the server counts exactly
//! the bytes sent after each response's threshold as paced. Without the flags nothing is paced.
//!
//! Only Linux paces (`SO_MAX_PACING_RATE`); elsewhere the flags are a no-op and these tests skip.

mod common;
mod external;

use std::path::Path;
use std::time::Duration;

use common::*;

const MIB: u64 = 1024 * 1024;

/// curl's total time for `GET url` (with extra arguments), and the bytes it received.
fn timed_download(url: &str, extra: &[&str]) -> (Duration, u64) {
    let mut args = vec![
        "-o",
        "/dev/null",
        "-w",
        "%{time_total} %{size_download} %{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let run = external::curl(&args).expect_success("curl");
    let out = run.stdout_text();
    let mut fields = out.split_whitespace();
    let seconds: f64 = fields.next().and_then(|s| s.parse().ok()).unwrap();
    let size: u64 = fields.next().and_then(|s| s.parse().ok()).unwrap();
    let status = fields.next().unwrap_or("");
    assert!(status == "200" || status == "206", "status {status}");
    (Duration::from_secs_f64(seconds), size)
}

fn assert_within_20_percent(actual: Duration, expected: Duration, what: &str) {
    let ratio = actual.as_secs_f64() / expected.as_secs_f64();
    assert!(
        (0.8..=1.2).contains(&ratio),
        "{what}: took {actual:?}, expected {expected:?} ±20%"
    );
}

#[test]
fn limit_rate_after_sends_the_first_bytes_at_full_speed_then_the_rate() {
    if !cfg!(target_os = "linux") || !require("curl") {
        return;
    }
    let root = TestRoot::new();
    let len: u64 = 12_000_000;
    root.file("movie/big.mp4", &pattern(len as usize, 5));
    let server = TestServer::start(
        root.path(),
        &["--limit-rate", "2m", "--limit-rate-after", "1m"],
    );
    let (took, size) = timed_download(&server.url("/movie/big.mp4"), &[]);
    assert_eq!(size, len);
    // 1 MiB at loopback speed (milliseconds), then the rest at 2 MiB/s: ~5.2 s.
    let expected = Duration::from_secs_f64((len - MIB) as f64 / (2 * MIB) as f64);
    assert_within_20_percent(took, expected, "12 MB at 2 MiB/s after 1 MiB");
    assert_eq!(server.stats()["bytes_paced"], len - MIB);
}

/// Over HTTPS the TLS records go out through the same socket, so the kernel paces them too.
#[test]
fn limit_rate_paces_https_too() {
    if !cfg!(target_os = "linux") || !require("curl") {
        return;
    }
    let Some(cert) = TestCert::new() else { return };
    let root = TestRoot::new();
    let len: u64 = 8_000_000;
    root.file("movie/big.mp4", &pattern(len as usize, 7));
    let server = TestServer::start_https(
        root.path(),
        &cert,
        &["--limit-rate", "2m", "--limit-rate-after", "1m"],
    );
    let (took, size) = timed_download(&server.url("/movie/big.mp4"), &["-k", "--http1.1"]);
    assert_eq!(size, len);
    // TLS adds a few percent of record overhead on the wire, inside the tolerance.
    let expected = Duration::from_secs_f64((len - MIB) as f64 / (2 * MIB) as f64);
    assert_within_20_percent(took, expected, "8 MB over HTTPS at 2 MiB/s after 1 MiB");
    let stats = external::curl(&["-k", &server.url("/_reelserve/stats")]).expect_success("stats");
    let stats = parse_flat_json_numbers(&stats.stdout_text());
    assert_eq!(stats["bytes_paced"], len - MIB);
}

#[test]
fn without_pacing_flags_nothing_is_paced() {
    if !require("curl") {
        return;
    }
    let root = TestRoot::new();
    root.file("movie/big.mp4", &pattern(4_000_000, 6));
    let server = TestServer::start(root.path(), &[]);
    let (_, size) = timed_download(&server.url("/movie/big.mp4"), &[]);
    assert_eq!(size, 4_000_000);
    assert_eq!(server.stats()["bytes_paced"], 0);
}

/// A 6 s H.264 movie of about 12 Mbit/s (noise keeps the encoder from compressing the test
/// pattern to nothing): a rate of about 1.5 MB/s, where the kernel's pacing is precise on
/// loopback. (At a few hundred KB/s it is not: the kernel leaves a connection's first 10
/// segments unpaced, and loopback segments are 64 KiB.)
fn make_movie(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut ffmpeg = external::command("ffmpeg");
    ffmpeg
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=6:size=480x270:rate=25")
        .args([
            "-vf",
            "noise=alls=30:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "26",
            "-movflags",
            "+faststart",
        ])
        .arg(path);
    external::run(ffmpeg, Duration::from_secs(60)).expect_success("ffmpeg");
}

#[test]
fn pace_sends_a_burst_of_play_time_then_the_bitrate_and_a_seek_starts_a_new_burst() {
    if !cfg!(target_os = "linux") || !require("curl") || !require("ffmpeg") {
        return;
    }
    let root = TestRoot::new();
    let path = root.path().join("movie/film.mp4");
    make_movie(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    // --pace 1 --pace-burst 1: the first second of play at full speed, then real time.
    let server = TestServer::start(root.path(), &["--pace", "1", "--pace-burst", "1"]);
    let movies: serde_json::Value =
        serde_json::from_slice(&server.get("/_reelserve/movies", &[]).body).unwrap();
    let bitrate = movies["movies"][0]["bitrate"].as_u64().expect("bitrate");
    let bytes_per_second = bitrate as f64 / 8.0;
    let burst = bytes_per_second.round() as u64;

    let (took, size) = timed_download(&server.url("/movie/film.mp4"), &[]);
    assert_eq!(size, len);
    let expected = Duration::from_secs_f64((len - burst) as f64 / bytes_per_second);
    assert_within_20_percent(took, expected, "whole movie paced at its bitrate");
    let paced_whole = server.stats()["bytes_paced"];
    assert_eq!(paced_whole, len - burst);

    // A seek to the last quarter: a fresh burst from there, then the bitrate again.
    let from = len - len / 4;
    let range = format!("{from}-");
    let (_, size) = timed_download(&server.url("/movie/film.mp4"), &["-r", &range]);
    assert_eq!(size, len - from);
    assert_eq!(
        server.stats()["bytes_paced"] - paced_whole,
        len - from - burst
    );
}
