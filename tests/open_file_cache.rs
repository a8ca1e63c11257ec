//! `--open-file-cache SECS` (nginx's `open_file_cache`): off by default; on, a kept descriptor
//! serves later requests, and a file's bytes always go out under their own `ETag` — rewritten
//! in place, the new bytes carry the new tag at once; replaced under the same name, the old
//! file (and its old tag) is served until the entry is SECS old.

mod common;

use std::time::Duration;

use common::*;

fn get(server: &TestServer, path: &str) -> (Vec<u8>, String) {
    let response = server.get(path, &[]);
    assert_eq!(response.status, 200);
    let etag = response.header("etag").unwrap_or_default().to_string();
    (response.body, etag)
}

#[test]
fn without_the_flag_nothing_is_kept() {
    let root = TestRoot::new();
    root.file("a.txt", b"hello");
    let server = TestServer::start(root.path(), &[]);
    for _ in 0..3 {
        assert_eq!(get(&server, "/a.txt").0, b"hello");
    }
    assert_eq!(server.stats()["open_file_cache_hits"], 0);
}

#[test]
fn a_kept_descriptor_serves_later_requests() {
    let root = TestRoot::new();
    root.file("a.txt", b"hello");
    let server = TestServer::start(root.path(), &["--open-file-cache", "60"]);
    for _ in 0..3 {
        assert_eq!(get(&server, "/a.txt").0, b"hello");
    }
    assert_eq!(server.stats()["open_file_cache_hits"], 2);
}

#[test]
fn a_file_rewritten_in_place_is_never_served_under_its_old_etag() {
    let root = TestRoot::new();
    let path = root.file("a.txt", b"first version");
    let server = TestServer::start(root.path(), &["--open-file-cache", "60"]);
    let (body, old_etag) = get(&server, "/a.txt");
    assert_eq!(body, b"first version");
    // Same inode, new length and mtime: the kept descriptor sees the new bytes.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&path, b"second version, longer").unwrap();
    let (body, etag) = get(&server, "/a.txt");
    assert_eq!(body, b"second version, longer");
    assert_ne!(etag, old_etag, "new bytes under the old ETag");
    assert!(server.stats()["open_file_cache_hits"] >= 1);
}

#[test]
fn a_file_replaced_under_its_name_is_seen_after_the_time_to_live() {
    let root = TestRoot::new();
    root.file("a.txt", b"old file");
    let server = TestServer::start(root.path(), &["--open-file-cache", "2"]);
    let (body, old_etag) = get(&server, "/a.txt");
    assert_eq!(body, b"old file");
    let replacement = root.file("a.txt.new", b"the new file");
    std::fs::rename(&replacement, root.path().join("a.txt")).unwrap();
    // Within the time to live: the kept (old) file, with its own tag.
    let (body, etag) = get(&server, "/a.txt");
    assert_eq!(
        (body.as_slice(), etag.as_str()),
        (&b"old file"[..], old_etag.as_str())
    );
    std::thread::sleep(Duration::from_millis(2200));
    let (body, etag) = get(&server, "/a.txt");
    assert_eq!(body, b"the new file");
    assert_ne!(etag, old_etag);
}
