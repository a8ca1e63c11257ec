//! The player page shows what the server knows about a movie, in a real headless Chromium
//! (driven by `tests/browser/movie_details.mjs`): a `.vtt` beside the movie becomes a subtitles
//! text track whose cues load, the poster beside it is the video's poster, the duration and
//! resolution are shown, and a movie whose `moov` follows `mdat` gets a visible warning.
//!
//! Needs ffmpeg, node, Chromium and `tests/browser/node_modules` (scripts/install-test-deps.sh
//! installs them); without them the test skips, except in CI, where it fails.

mod common;
mod external;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Runs movie_details.mjs against `server` and returns its report.
fn movie_details(server: &TestServer) -> Value {
    let mut node = external::command("node");
    node.current_dir(external::repo())
        .arg("tests/browser/movie_details.mjs")
        .arg(server.url("/"));
    let run = external::run(node, Duration::from_secs(60));
    let report = run.stdout_text();
    assert!(
        run.status.success(),
        "movie_details.mjs failed:\n{report}\nstderr: {}\nserver log:\n{}",
        run.stderr,
        server.log()
    );
    serde_json::from_str(&report).expect("report JSON")
}

#[test]
fn subtitles_beside_a_movie_show_up_as_a_text_track_with_cues_and_the_slow_start_is_warned() {
    if !browser_available() || !require("ffmpeg") {
        return;
    }
    let root = TestRoot::new();
    let movie = root.path().join("movie/film.mp4");
    std::fs::create_dir_all(movie.parent().unwrap()).unwrap();
    // No +faststart: ffmpeg writes moov after mdat.
    let mut ffmpeg = external::command("ffmpeg");
    ffmpeg
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=duration=3:size=320x240:rate=25"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&movie);
    external::run(ffmpeg, Duration::from_secs(60)).expect_success("ffmpeg");
    root.file(
        "movie/film.en.vtt",
        b"WEBVTT\n\n00:00.000 --> 00:02.000\nHello from reelserve\n\n00:02.000 --> 00:03.000\nBye\n",
    );
    let mut poster = external::command("ffmpeg");
    poster
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=size=320x240", "-frames:v", "1"])
        .arg(root.path().join("movie/film.jpg"));
    external::run(poster, Duration::from_secs(30)).expect_success("ffmpeg poster");

    let server = TestServer::start(root.path(), &[]);
    let report = movie_details(&server);
    let track = &report["tracks"][0];
    assert_eq!(track["kind"], "subtitles", "{report}");
    assert_eq!(track["language"], "en", "{report}");
    assert_eq!(
        track["cues"],
        serde_json::json!(["Hello from reelserve", "Bye"]),
        "{report}"
    );
    assert_eq!(report["track_elements"], 1, "{report}");
    assert_eq!(report["poster"], "/movie/film.jpg", "{report}");
    let info = report["info"].as_str().unwrap();
    assert!(
        info.contains("0:03") && info.contains("320×240"),
        "{report}"
    );
    assert_eq!(report["warning_visible"], true, "{report}");
    // The browser fetched the track from the server, as text/vtt.
    assert!(
        server.log().contains("path=/movie/film.en.vtt") && server.log().contains("status=200"),
        "{}",
        server.log()
    );
}

/// node, Chromium and the installed playwright-core; a skip outside CI, a failure in it.
fn browser_available() -> bool {
    if !require("node") || !require("chromium") {
        return false;
    }
    let module = external::repo().join("tests/browser/node_modules/playwright-core/package.json");
    if module.exists() {
        return true;
    }
    let message = "tests/browser/node_modules is missing: run scripts/install-test-deps.sh \
                   (it runs `npm ci --prefix tests/browser`)";
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    false
}
