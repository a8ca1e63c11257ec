//! The movie list knows the movies: metadata read from real files made by ffmpeg at run time
//! (a faststart MP4, the same MP4 with its index at the end, a WebM) checked against ffprobe;
//! the non-faststart one flagged in the JSON and named in the start-up log with its fix; damaged
//! files reported as unknown while the server keeps serving; subtitles and posters found beside
//! the movies and served with the right media types.

mod common;
mod external;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Makes `movie/NAME` under `root` with ffmpeg: `seconds` of test pattern at `size`, with a
/// tone, encoded with `codec_args`.
fn make_movie(root: &Path, name: &str, seconds: u32, size: &str, codec_args: &[&str]) {
    let path = root.join("movie").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut ffmpeg = external::command("ffmpeg");
    ffmpeg
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=duration={seconds}:size={size}:rate=25"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(codec_args)
        .arg(&path);
    external::run(ffmpeg, Duration::from_secs(60)).expect_success("ffmpeg");
}

const H264_AAC: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"];

/// A root with fast.mp4 (moov first), slow.mp4 (moov last), tagged.mp4 (a title in
/// udta > meta > ilst), quicktime.mov (QuickTime's version 1 sound description, with a `wave`
/// box), clip.webm (VP9 + Opus).
fn media_root() -> TestRoot {
    let root = TestRoot::new();
    let faststart = [H264_AAC, &["-movflags", "+faststart"]].concat();
    make_movie(root.path(), "fast.mp4", 3, "320x240", &faststart);
    make_movie(root.path(), "slow.mp4", 3, "320x240", H264_AAC);
    let tagged = [
        H264_AAC,
        &["-metadata", "title=A Reel", "-metadata", "artist=Reelserve"],
    ]
    .concat();
    make_movie(root.path(), "tagged.mp4", 2, "160x120", &tagged);
    make_movie(root.path(), "quicktime.mov", 2, "160x120", &faststart);
    make_movie(
        root.path(),
        "clip.webm",
        2,
        "160x120",
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
        ],
    );
    root
}

fn movies(server: &TestServer) -> Vec<Value> {
    let response = server.get("/_reelserve/movies", &[]);
    assert_eq!(response.status, 200);
    let json: Value = serde_json::from_slice(&response.body).expect("movies JSON");
    json["movies"].as_array().expect("movies array").clone()
}

fn movie<'a>(movies: &'a [Value], name: &str) -> &'a Value {
    movies
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {movies:?}"))
}

/// ffprobe's view of a file: format duration and bit_rate, first video stream's codec and
/// size, first audio stream's codec.
fn ffprobe(path: &Path) -> Value {
    let mut command = external::command("ffprobe");
    command
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path);
    let run = external::run(command, Duration::from_secs(20)).expect_success("ffprobe");
    serde_json::from_slice(&run.stdout).expect("ffprobe JSON")
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

#[test]
fn metadata_agrees_with_ffprobe() {
    if !require("ffmpeg") || !require("ffprobe") {
        return;
    }
    let root = media_root();
    let server = TestServer::start(root.path(), &[]);
    let listed = movies(&server);
    for name in [
        "fast.mp4",
        "slow.mp4",
        "tagged.mp4",
        "quicktime.mov",
        "clip.webm",
    ] {
        let ours = movie(&listed, name);
        let theirs = ffprobe(&root.path().join("movie").join(name));
        let streams = theirs["streams"].as_array().unwrap();
        let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
        let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();

        let duration = number(&ours["duration_s"]);
        let expected = number(&theirs["format"]["duration"]);
        assert!(
            (duration - expected).abs() < 0.05,
            "{name}: duration {duration} s, ffprobe says {expected} s"
        );
        assert_eq!(ours["width"], video["width"], "{name}");
        assert_eq!(ours["height"], video["height"], "{name}");
        assert_eq!(ours["video_codec"], video["codec_name"], "{name}");
        assert_eq!(ours["audio_codec"], audio["codec_name"], "{name}");
        // Both are size x 8 / duration; only the durations' rounding may differ.
        let bitrate = number(&ours["bitrate"]);
        let expected = number(&theirs["format"]["bit_rate"]);
        assert!(
            (bitrate - expected).abs() / expected < 0.02,
            "{name}: bitrate {bitrate}, ffprobe says {expected}"
        );
    }
}

#[test]
fn a_movie_whose_moov_follows_mdat_is_flagged_and_named_at_start_with_the_fix() {
    if !require("ffmpeg") {
        return;
    }
    let root = media_root();
    let server = TestServer::start(root.path(), &[]);
    let listed = movies(&server);
    assert_eq!(movie(&listed, "fast.mp4")["faststart"], true);
    assert_eq!(movie(&listed, "slow.mp4")["faststart"], false);
    // Only MP4 has a moov box to be early or late.
    assert_eq!(movie(&listed, "clip.webm")["faststart"], Value::Null);

    // The start-up check runs on its own thread: give it a moment.
    let fix = "ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let warning = loop {
        let log = server.log();
        if let Some(line) = log.lines().find(|l| l.contains("not faststart")) {
            break line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no faststart warning:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(warning.contains("slow.mp4"), "{warning}");
    assert!(warning.contains(fix), "{warning}");
    let log = server.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("not faststart") && l.contains("/fast.mp4")),
        "{log}"
    );
}

#[test]
fn truncated_and_random_files_are_unknown_and_the_server_keeps_serving() {
    if !require("ffmpeg") {
        return;
    }
    let root = media_root();
    let slow = std::fs::read(root.path().join("movie/slow.mp4")).unwrap();
    let fast = std::fs::read(root.path().join("movie/fast.mp4")).unwrap();
    // Cut inside mdat: the faststart file keeps an intact moov but lost media data; the other
    // one lost its moov.
    root.file("movie/cut-fast.mp4", &fast[..fast.len() / 2]);
    root.file("movie/cut-slow.mp4", &slow[..slow.len() / 2]);
    root.file("movie/noise.mp4", &pattern(200_000, 99));
    let webm = std::fs::read(root.path().join("movie/clip.webm")).unwrap();
    root.file("movie/cut.webm", &webm[..100]);

    let server = TestServer::start(root.path(), &[]);
    let listed = movies(&server);
    for name in ["cut-fast.mp4", "cut-slow.mp4", "noise.mp4", "cut.webm"] {
        let entry = movie(&listed, name);
        for field in [
            "duration_s",
            "width",
            "height",
            "video_codec",
            "audio_codec",
            "bitrate",
            "faststart",
        ] {
            assert_eq!(entry[field], Value::Null, "{name}: {field} in {entry}");
        }
    }
    // Still up, and the damaged files are still files to serve.
    assert_eq!(server.get("/movie/noise.mp4", &[]).body.len(), 200_000);
    assert_eq!(movie(&movies(&server), "fast.mp4")["faststart"], true);
}

#[test]
fn subtitles_and_posters_beside_a_movie_are_listed_and_served_with_their_types() {
    let root = TestRoot::new();
    root.file("movie/film.mp4", &pattern(1000, 1));
    let vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n";
    root.file("movie/film.vtt", vtt);
    root.file("movie/film.en.vtt", vtt);
    root.file("movie/film.pt-BR.vtt", vtt);
    root.file("movie/film.png", b"png");
    root.file("movie/film.jpg", b"jpg");
    root.file("movie/other.mkv", &pattern(1000, 2));
    root.file("movie/filmstrip.vtt", vtt);

    let server = TestServer::start(root.path(), &[]);
    let listed = movies(&server);
    let film = movie(&listed, "film.mp4");
    let subtitles: Vec<(String, Value, String)> = film["subtitles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["url"].as_str().unwrap().to_string(),
                s["lang"].clone(),
                s["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        subtitles,
        [
            ("/movie/film.en.vtt".into(), "en".into(), "en".into()),
            (
                "/movie/film.pt-BR.vtt".into(),
                "pt-BR".into(),
                "pt-BR".into()
            ),
            ("/movie/film.vtt".into(), Value::Null, "Subtitles".into()),
        ]
    );
    // jpg is preferred over png.
    assert_eq!(film["poster"], "/movie/film.jpg");
    let other = movie(&listed, "other.mkv");
    assert_eq!(other["subtitles"], serde_json::json!([]));
    assert_eq!(other["poster"], Value::Null);
    assert_eq!(other["type"], "video/x-matroska");

    let track = server.get("/movie/film.en.vtt", &[]);
    assert_eq!(track.status, 200);
    assert_eq!(
        track.header("content-type"),
        Some("text/vtt; charset=utf-8")
    );
    assert_eq!(track.body, vtt);
    assert_eq!(
        server.get("/movie/film.jpg", &[]).header("content-type"),
        Some("image/jpeg")
    );
}

/// A movie symlinked from outside the root is not served, so its metadata is not read either:
/// the probe opens files the way requests do, beneath the root.
#[test]
fn a_symlink_out_of_the_root_is_not_probed() {
    let seed = external::repo().join("fuzz/corpus/media/seed-faststart.mp4");
    let outside = TestRoot::new();
    let target = outside.file("film.mp4", &std::fs::read(seed).unwrap());
    let root = TestRoot::new();
    root.file("movie/inside.mp4", &std::fs::read(&target).unwrap());
    std::os::unix::fs::symlink(&target, root.path().join("movie/outside.mp4")).unwrap();

    let server = TestServer::start(root.path(), &[]);
    let listed = movies(&server);
    assert_eq!(movie(&listed, "inside.mp4")["video_codec"], "h264");
    assert_eq!(movie(&listed, "outside.mp4")["video_codec"], Value::Null);
    assert_eq!(movie(&listed, "outside.mp4")["duration_s"], Value::Null);
    assert_eq!(server.get("/movie/outside.mp4", &[]).status, 404);
}
