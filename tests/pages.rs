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
