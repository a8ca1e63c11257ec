//! The pages reelserve makes itself, over real loopback sockets: directory listings and the
//! player page. Hostile file names get harmless links, and every generated page carries a
//! `Content-Security-Policy` that forbids inline script.

mod common;

use common::*;

fn policy(response: &Response) -> &str {
    response
        .header("content-security-policy")
        .unwrap_or_else(|| {
            panic!(
                "no Content-Security-Policy; headers: {:?}",
                response.headers
            )
        })
}

/// A policy under which no inline script or `javascript:` URL runs: `script-src` (or, without
/// it, `default-src`) names no `'unsafe-inline'`.
fn assert_forbids_inline_script(policy: &str) {
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(!policy.contains("unsafe-eval"), "{policy}");
}

// Issue 14 item 4: a stored file named like a URL scheme must not become a script link.
#[test]
fn listing_links_hostile_names_as_relative_paths_under_a_policy() {
    let root = TestRoot::new();
    root.file("d/javascript:alert(document.domain)", b"js");
    root.file("d/JaVaScRiPt:x", b"mixed");
    root.file("d/data:text,hi", b"data");
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/d/", &[]);
    assert_eq!(response.status, 200);
    let html = String::from_utf8(response.body.clone()).unwrap();
    for href in [
        "href=\"./javascript%3Aalert(document.domain)\"",
        "href=\"./JaVaScRiPt%3Ax\"",
        "href=\"./data%3Atext,hi\"",
    ] {
        assert!(html.contains(href), "{href} missing in {html}");
    }
    assert!(
        !html.to_ascii_lowercase().contains("href=\"javascript:"),
        "{html}"
    );
    assert!(!html.contains("href=\"data:text"), "{html}");
    assert_forbids_inline_script(policy(&response));
    assert!(!policy(&response).contains("script-src"));
    // The links still lead to the files.
    assert_eq!(
        server
            .get("/d/javascript%3Aalert(document.domain)", &[])
            .body,
        b"js"
    );
    assert_eq!(server.get("/d/JaVaScRiPt%3Ax", &[]).body, b"mixed");
    // HEAD of a listing carries it too.
    let head = server.request("HEAD", "/d/", &[]);
    assert_eq!(
        head.header("content-security-policy"),
        Some(policy(&response))
    );
}

// Issue 14 item 4: the player, whether built in or the root's copy, is sent with a policy; its
// script and styles are files of their own, built in too.
#[test]
fn player_page_carries_a_policy_built_in_and_from_disk() {
    let root = TestRoot::new();
    let server = TestServer::start(root.path(), &[]);
    for target in ["/", "/html/movie_player.html"] {
        let response = server.get(target, &[]);
        assert_eq!(response.status, 200, "{target}");
        let policy = policy(&response);
        assert_forbids_inline_script(policy);
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("media-src 'self'"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        // A revalidation keeps it (RFC 9110 §15.4.5: a 304 carries what a 200 would).
        let etag = response.header("etag").unwrap().to_string();
        let not_modified = server.get(target, &[("If-None-Match", &etag)]);
        assert_eq!(not_modified.status, 304);
        assert_eq!(not_modified.header("content-security-policy"), Some(policy));
    }
    for (asset, content_type) in [
        ("/html/movie_player.js", "text/javascript; charset=utf-8"),
        ("/html/movie_player.css", "text/css; charset=utf-8"),
    ] {
        let response = server.get(asset, &[]);
        assert_eq!(response.status, 200, "{asset}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{asset}"
        );
        let on_disk = std::fs::read(format!("{}{asset}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(response.body == on_disk, "{asset}: not the shipped file");
    }
    assert_eq!(server.get("/html/other.js", &[]).status, 404);

    // The root's own player page: the same policy.
    root.file("html/movie_player.html", b"<p>custom player</p>");
    let custom = server.get("/", &[]);
    assert_eq!(custom.body, b"<p>custom player</p>");
    assert_forbids_inline_script(policy(&custom));
    let direct = server.get("/html/movie_player.html", &[]);
    assert_eq!(
        direct.header("content-security-policy"),
        Some(policy(&custom))
    );
    // A root's own script next to it wins over the built-in one, and is not a page: no policy.
    root.file("html/movie_player.js", b"// custom");
    let script = server.get("/html/movie_player.js", &[]);
    assert_eq!(script.body, b"// custom");

    // A root's own index.html is the root's business: reelserve does not guess its policy.
    root.file("index.html", b"<p>index</p>");
    let index = server.get("/", &[]);
    assert_eq!(index.body, b"<p>index</p>");
    assert_eq!(index.header("content-security-policy"), None);
}

/// A root for directories of many files: in tmpfs when there is one, where creating 20,000
/// files takes a second rather than the tens of seconds a busy disk can take.
fn many_files_root() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// `count` empty files `f00000.txt`, `f00001.txt`, ... in `directory`.
fn many_files(directory: &std::path::Path, count: usize) -> Vec<String> {
    std::fs::create_dir_all(directory).unwrap();
    (0..count)
        .map(|i| {
            let name = format!("f{i:05}.txt");
            std::fs::File::create(directory.join(&name)).unwrap();
            name
        })
        .collect()
}

/// The entry names a listing page links to, in order (without `../`).
fn listed_names(html: &str) -> Vec<String> {
    html.split("<li><a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split("\">").nth(1)?.split("</a>").next())
        .filter(|name| *name != "../")
        .map(str::to_string)
        .collect()
}

// Issue 14 item 6: a huge directory gives pages of at most 5,000 entries, which together list
// every entry once, in order.
#[test]
fn huge_directory_listing_is_paginated() {
    let root = many_files_root();
    let names = many_files(&root.path().join("big"), 20_000);
    let server = TestServer::start(root.path(), &[]);
    let mut listed = Vec::new();
    for page in 1..=4 {
        let target = if page == 1 {
            "/big/".to_string()
        } else {
            format!("/big/?page={page}")
        };
        let response = server.get(&target, &[]);
        assert_eq!(response.status, 200, "{target}");
        assert!(
            response.body.len() < 512 * 1024,
            "{target}: {} bytes",
            response.body.len()
        );
        let html = String::from_utf8(response.body).unwrap();
        let on_page = listed_names(&html);
        assert_eq!(on_page.len(), 5_000, "{target}");
        let first = (page - 1) * 5_000 + 1;
        assert!(
            html.contains(&format!("Entries {first}–{} of 20000", first + 4_999)),
            "{target}"
        );
        listed.extend(on_page);
    }
    assert_eq!(listed, names);
    // Past the end: the last page; nonsense: the first.
    let past = server.get("/big/?page=99", &[]);
    assert_eq!(
        listed_names(&String::from_utf8(past.body).unwrap()),
        names[15_000..]
    );
    let nonsense = server.get("/big/?page=abc", &[]);
    assert_eq!(
        listed_names(&String::from_utf8(nonsense.body).unwrap()),
        names[..5_000]
    );
    let first = String::from_utf8(server.get("/big/", &[]).body).unwrap();
    assert!(first.contains("<a href=\"?page=2\">Next page</a>"));
}

// Issue 14 item 6: building a listing stops when the client that asked for it is gone (the
// server logs, at debug, how far the build got).
#[test]
fn listing_build_stops_when_the_client_goes_away() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    const ENTRIES: usize = 50_000;
    let root = many_files_root();
    many_files(&root.path().join("huge"), ENTRIES);
    let server = TestServer::start(root.path(), &[]);
    let abandoned = || {
        server
            .log()
            .lines()
            .find(|line| line.contains("directory listing abandoned"))
            .map(str::to_string)
    };
    // The client hangs up right after its request; hyper sees the EOF while the listing is
    // being built and drops the request. A few tries, in case one build wins the race.
    let mut line = None;
    for _ in 0..3 {
        let mut stream = connect(server.addr);
        stream
            .write_all(b"GET /huge/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        drop(stream);
        let deadline = Instant::now() + Duration::from_secs(1);
        while line.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            line = abandoned();
        }
        if line.is_some() {
            break;
        }
    }
    let line = line.unwrap_or_else(|| panic!("no abandoned build in the log:\n{}", server.log()));
    eprintln!("{line}");
    let read: usize = line
        .split("entries_read=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no entries_read in {line:?}"));
    assert!(read < ENTRIES, "the build read all {read} entries: {line}");
    // The server still answers.
    assert_eq!(server.get("/huge/?page=12", &[]).status, 200);
}

/// A root whose `movie/` holds `names` (small files) and was last changed an hour ago, so the
/// server's movie index trusts its first scan (see `library::RACY_WINDOW`).
fn settled_movie_root(names: &[&str]) -> TestRoot {
    let root = TestRoot::new();
    for name in names {
        root.file(&format!("movie/{name}"), name.as_bytes());
    }
    set_directory_mtime(&root.path().join("movie"), 3600);
    root
}

fn set_directory_mtime(directory: &std::path::Path, seconds_ago: u64) {
    let time = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds_ago);
    std::fs::File::open(directory)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

fn movie_names(server: &TestServer) -> Vec<String> {
    let response = server.get("/_reelserve/movies", &[]);
    assert_eq!(response.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    json["movies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

// Issue 14 item 6: `/video` and `/_reelserve/movies` use the cached movie index: strace sees the
// movie directory read once, however many requests follow.
#[test]
fn movie_index_reads_the_movie_directory_once_while_it_is_unchanged() {
    use std::process::Command;
    if !require("strace") {
        return;
    }
    let root = settled_movie_root(&["sample.mp4", "other.webm"]);
    let trace = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new("strace");
    // -y names each descriptor's path, so only reads of the movie directory count.
    command
        .args(["-f", "-qq", "-y", "-e", "trace=getdents64", "-o"])
        .arg(trace.path())
        .arg(env!("CARGO_BIN_EXE_reelserve"));
    let mut server = TestServer::start_with(command, root.path(), &[]);
    for _ in 0..20 {
        let video = server.get("/video", &[("Range", "bytes=0-3")]);
        assert_eq!(video.status, 206);
        assert_eq!(video.body, b"samp");
        assert_eq!(movie_names(&server), ["other.webm", "sample.mp4"]);
    }
    // SIGTERM the traced server (strace's child); strace exits with its exit status.
    assert_eq!(server.stop_traced(), Some(0));
    let log = std::fs::read_to_string(trace.path()).unwrap();
    let movie_dir = format!("{}>", root.path().join("movie").display());
    let reads = log
        .lines()
        .filter(|line| line.contains("getdents64(") && line.contains(&movie_dir))
        .count();
    // One scan of a small directory: a getdents64 that returns the entries, one that returns 0.
    assert!(
        (1..=2).contains(&reads),
        "{reads} getdents64 calls on {movie_dir} for 40 requests:\n{log}"
    );
}

// Issue 14 item 6: the cached index follows the directory: a movie dropped in appears (and
// `/video` switches to `big.mp4`), a movie removed disappears.
#[test]
fn movie_index_sees_movies_added_and_removed() {
    let root = settled_movie_root(&["sample.mp4"]);
    let server = TestServer::start(root.path(), &[]);
    assert_eq!(movie_names(&server), ["sample.mp4"]);
    assert_eq!(server.get("/video", &[]).body, b"sample.mp4");

    root.file("movie/big.mp4", b"big.mp4");
    assert_eq!(movie_names(&server), ["big.mp4", "sample.mp4"]);
    assert_eq!(server.get("/video", &[]).body, b"big.mp4");

    std::fs::remove_file(root.path().join("movie/big.mp4")).unwrap();
    assert_eq!(movie_names(&server), ["sample.mp4"]);
    assert_eq!(server.get("/video", &[]).body, b"sample.mp4");

    // The whole folder gone, then back.
    std::fs::remove_dir_all(root.path().join("movie")).unwrap();
    assert!(movie_names(&server).is_empty());
    assert_eq!(server.get("/video", &[]).status, 404);
    root.file("movie/new.webm", b"new");
    assert_eq!(movie_names(&server), ["new.webm"]);
}
