//! End to end in a real browser: Debian's headless Chromium, driven by playwright-core from
//! `tests/browser/play_and_seek.mjs`, opens the player page reelserve serves from this
//! repository, plays the sample movie (muted), seeks to ~70 % and checks playback resumes there.
//! Here we check the server's side: it answered the media element's Range requests with 206s.
//! A second pair of tests does the same with a 64 MiB movie, long enough that the seek has to
//! fetch from the middle of the file.
//!
//! Needs node, Chromium and `tests/browser/node_modules` (scripts/install-test-deps.sh installs
//! all three); without them the test skips, except in CI, where it fails.

mod access_log;
mod common;
mod external;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// Hard limit for one browser run (the script has its own 45 s deadline inside this).
const BROWSER_DEADLINE: Duration = Duration::from_secs(60);

/// Two Chromiums at once on a 2-core machine only make both slow: one browser test at a time.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

#[test]
fn plays_and_seeks_in_sendfile_mode() {
    play_and_seek("sendfile");
}

#[test]
fn plays_and_seeks_in_chunked_mode() {
    play_and_seek("chunked");
}

/// Over HTTPS Chromium negotiates HTTP/2 by ALPN: the same checks, and every movie request
/// must have been HTTP/2 (the server's access log says which version each request used).
#[test]
fn plays_and_seeks_over_https_with_http2() {
    if !external::browser_available() {
        return;
    }
    let Some(cert) = TestCert::new() else { return };
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start_https(external::repo(), &cert, &["--mode", "sendfile"]);
    let log = run_browser(&server, "sendfile", "browser-https-h2", &[]);
    let is_movie = |path: &str| path.starts_with("/movie/") || path == "/video";
    assert_movie_served_with_206(&log, is_movie);
    let movie: Vec<_> = access_log::parse(&log)
        .into_iter()
        .filter(|a| is_movie(&a.path))
        .collect();
    assert!(
        movie.iter().all(|a| a.version == "HTTP/2.0"),
        "Chromium did not use HTTP/2 over HTTPS:\n{log}"
    );
}

#[test]
fn seek_in_a_long_movie_fetches_from_the_middle_in_sendfile_mode() {
    seek_in_a_long_movie("sendfile");
}

#[test]
fn seek_in_a_long_movie_fetches_from_the_middle_in_chunked_mode() {
    seek_in_a_long_movie("chunked");
}

/// On the open internet (tests/internet.rs has the curl-level tests): the player opened through
/// a signed link to `/` passes its token on to the movie list and the movie, plays and seeks,
/// and nothing it asks for is refused.
#[test]
fn plays_and_seeks_through_a_signed_link() {
    if !external::browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = external::test_key_file(keys_dir.path());
    let server = TestServer::start(
        external::repo(),
        &[
            "--mode",
            "sendfile",
            "--signing-key-file",
            keys.to_str().unwrap(),
        ],
    );
    let link = external::sign_link("/", &server.url(""), &keys);
    let log = run_browser_at(&server, &link, "sendfile", "browser-signed", &[]);
    assert_movie_served_with_206(&log, |path| path.starts_with("/movie/") || path == "/video");
    assert!(
        !log.contains("signed link refused"),
        "the page asked for something without its token:\n{log}"
    );
}

/// A page on another origin (a second server, another port) with `<video crossorigin>` and a
/// `fetch()` of a Range: with its origin in `--cors-origin`, the video plays and the script
/// reads `Content-Range`.
#[test]
fn a_player_on_an_allowed_origin_plays_and_reads_content_range() {
    let Some(page) = cross_origin_page(true) else {
        return;
    };
    assert_eq!(page["video"], "played", "{page}");
    assert_eq!(page["status"], 206, "{page}");
    let size = std::fs::metadata(external::repo().join("movie/sample.mp4"))
        .unwrap()
        .len();
    assert_eq!(
        page["content_range"],
        format!("bytes 0-99/{size}"),
        "{page}"
    );
    assert_eq!(page["bytes"], 100, "{page}");
    assert!(page["etag"].is_string(), "ETag not exposed: {page}");
}

/// The same page when its origin is not allowed: the browser neither plays the video nor lets
/// the script read the response.
#[test]
fn a_player_on_another_origin_is_refused() {
    let Some(page) = cross_origin_page(false) else {
        return;
    };
    assert_ne!(page["video"], "played", "{page}");
    assert!(page["fetch_error"].is_string(), "{page}");
    assert!(page["content_range"].is_null(), "{page}");
}

/// Runs tests/browser/cross_origin.mjs on a page from one server using the sample movie on
/// another, whose `--cors-origin` names the page's origin or not. Returns what the page saw.
fn cross_origin_page(allowed: bool) -> Option<serde_json::Value> {
    if !external::browser_available() {
        return None;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let site = TestRoot::new();
    site.file("player.html", CROSS_ORIGIN_PAGE.as_bytes());
    let page_server = TestServer::start(site.path(), &[]);
    let page_origin = format!("http://{}", page_server.addr);
    let allow = if allowed {
        page_origin.as_str()
    } else {
        "http://elsewhere.test"
    };
    let movies = TestServer::start(external::repo(), &["--cors-origin", allow]);
    let page_url = page_server.url(&format!(
        "/player.html?target={}",
        movies.url("/movie/sample.mp4")
    ));
    let mut node = external::command("node");
    node.current_dir(external::repo())
        .arg("tests/browser/cross_origin.mjs")
        .arg(&page_url);
    let run = external::run(node, BROWSER_DEADLINE);
    let report = run.stdout_text();
    eprintln!("cross-origin page (allowed: {allowed}):\n{report}");
    assert!(
        run.status.success(),
        "cross_origin.mjs failed ({}):\n{report}\nstderr: {}\nmovie server log:\n{}",
        run.status,
        run.stderr,
        movies.log()
    );
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON from the script");
    Some(report["page"].clone())
}

/// A player on another site: plays `?target=` muted with `crossorigin`, and fetches its first
/// 100 bytes with a Range; reports what it could see in `window.report`.
const CROSS_ORIGIN_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>a player on another origin</title>
<video id="v" crossorigin="anonymous" muted playsinline></video>
<script>
  "use strict";
  const target = new URLSearchParams(location.search).get("target");
  const report = (window.report = { done: false });
  let pending = 2;
  const finish = () => { if (--pending === 0) report.done = true; };
  const v = document.getElementById("v");
  let settled = false;
  const videoDone = (what) => { if (!settled) { settled = true; report.video = what; finish(); } };
  v.addEventListener("error", () => videoDone("error " + (v.error && v.error.code)));
  v.addEventListener("timeupdate", () => { if (v.currentTime > 0.5) videoDone("played"); });
  v.muted = true;
  v.src = target;
  v.play().catch((e) => videoDone("play refused: " + e));
  setTimeout(() => videoDone("timeout"), 15000);
  fetch(target, { headers: { Range: "bytes=0-99" } })
    .then((res) => {
      report.status = res.status;
      report.content_range = res.headers.get("Content-Range");
      report.etag = res.headers.get("ETag");
      return res.arrayBuffer();
    })
    .then((body) => { report.bytes = body.byteLength; })
    .catch((e) => { report.fetch_error = String(e); })
    .finally(finish);
</script>
"#;

/// The player page and sample movie of this repository.
fn play_and_seek(mode: &str) {
    if !external::browser_available() {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(external::repo(), &["--mode", mode]);
    let log = run_browser(&server, mode, &format!("browser-{mode}"), &[]);
    // The media element fetches with Range (Chromium always does, starting with `bytes=0-`).
    // The page plays the default movie: sample.mp4, or a big.mp4 made for benchmarks.
    assert_movie_served_with_206(&log, |path| path.starts_with("/movie/") || path == "/video");
}

/// A 64 MiB, 15-minute movie (the sample looped by scripts/make-big-movie.sh) in a root with no
/// player page of its own (so the player compiled into the binary is served): too long to be
/// buffered before the seek, so the seek must fetch from the middle of the file with a Range.
fn seek_in_a_long_movie(mode: &str) {
    if !external::browser_available() || !require("ffmpeg") {
        return;
    }
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = long_movie_root();
    let server = TestServer::start(&root, &["--mode", mode]);
    let log = run_browser(
        &server,
        mode,
        &format!("browser-long-{mode}"),
        &["--seek-must-fetch"],
    );
    let partial = assert_movie_served_with_206(&log, |path| path == "/movie/big.mp4");
    assert!(
        partial >= 2,
        "the server saw no Range request for the seek:\n{log}"
    );
}

/// A root with movie/big.mp4 of 64 MiB, made once per target directory and reused.
fn long_movie_root() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-long-movie");
    let movie = root.join("movie/big.mp4");
    if !movie.exists() {
        let mut make = external::command("bash");
        make.arg(external::repo().join("scripts/make-big-movie.sh"))
            .arg("64M")
            .arg(&movie);
        // The script writes a temporary file and renames it: an interrupted run leaves no
        // half movie behind.
        external::run(make, Duration::from_secs(120)).expect_success("make-big-movie.sh");
    }
    root
}

/// Runs play_and_seek.mjs against `server`, saves its report and screenshot as
/// test-artifacts/NAME.{json,png}, checks them, and returns the server's log.
fn run_browser(server: &TestServer, mode: &str, name: &str, options: &[&str]) -> String {
    run_browser_at(server, &server.url("/"), mode, name, options)
}

/// [`run_browser`] on the page at `url` (e.g. a signed link to `/`).
fn run_browser_at(
    server: &TestServer,
    url: &str,
    mode: &str,
    name: &str,
    options: &[&str],
) -> String {
    let screenshot = external::artifacts_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&screenshot);

    let started = Instant::now();
    let mut node = external::command("node");
    node.current_dir(external::repo())
        .arg("tests/browser/play_and_seek.mjs")
        .arg(url)
        .arg(&screenshot)
        .args(options);
    // A test certificate is self-signed: the script starts $CHROMIUM, so point that at a
    // wrapper that adds --ignore-certificate-errors.
    let wrapper_dir = tempfile::tempdir().unwrap();
    if server.https {
        node.env(
            "CHROMIUM",
            chromium_ignoring_certificate_errors(wrapper_dir.path()),
        );
    }
    let run = external::run(node, BROWSER_DEADLINE);
    let report = run.stdout_text();
    std::fs::write(
        external::artifacts_dir().join(format!("{name}.json")),
        &report,
    )
    .unwrap();
    eprintln!(
        "{name}: browser run took {:.1} s:\n{report}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        run.status.success() && report.contains("\"ok\": true"),
        "play_and_seek.mjs failed in {mode} mode ({}):\n{report}\nstderr: {}\nserver log:\n{}",
        run.status,
        run.stderr,
        server.log()
    );
    // The page shows the mode it got from /_reelserve/movies: the server under test answered.
    assert!(
        report.contains(&format!("\"mode\": \"{mode}\"")),
        "page does not show mode {mode}:\n{report}"
    );
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "screenshot suspiciously small");
    // The access log is written at least once a second: wait for the last lines.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    server.log()
}

/// A script in `dir` that runs the Chromium the script would use, with
/// `--ignore-certificate-errors` added.
fn chromium_ignoring_certificate_errors(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let wrapper = dir.join("chromium");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec '{chromium}' --ignore-certificate-errors \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// Every response for the movie (paths chosen by `is_movie`) was a 206, and there was at least
/// one; no 5xx at all. Returns the number of 206s.
fn assert_movie_served_with_206(log: &str, is_movie: impl Fn(&str) -> bool) -> usize {
    let all = access_log::parse(log);
    let movie: Vec<_> = all.iter().filter(|a| is_movie(&a.path)).collect();
    let partial = movie.iter().filter(|a| a.status == 206).count();
    assert!(
        partial >= 1,
        "no 206 for the movie in the access log:\n{log}"
    );
    assert!(
        movie.iter().all(|a| a.status == 206),
        "a movie request was not answered with 206:\n{log}"
    );
    assert!(
        all.iter().all(|a| a.status < 500),
        "server error in the log:\n{log}"
    );
    partial
}
