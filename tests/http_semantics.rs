//! HTTP semantics over real loopback sockets against the real binary: one test per rule of
//! RFC 9110 (and of RFC 9112 / RFC 6585 / RFC 3986 where the rule lives there) that reelserve
//! implements, named after the rule and citing its section (docs/architecture.md, "HTTP semantics").
//!
//! Every test starts its own server on its own temporary root, speaks raw HTTP/1.1 where bytes
//! matter, and asserts exact statuses, header values and body bytes, so each can fail.
//! What this file is not: a test of the body strategies' IO (tests/ per mode) or of the sans-IO
//! parsers' edge cases (unit tests in src/range.rs, src/conditional.rs, src/resolve.rs).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// Modification time given to fixture files: Unix time 1_000_000_000. Old, so `Last-Modified`
/// is a strong validator (§8.8.2.2) and `If-Range` dates can match it.
const MTIME_SECS: u64 = 1_000_000_000;
/// `MTIME_SECS` as an IMF-fixdate (§5.6.7).
const MTIME_HTTP: &str = "Sun, 09 Sep 2001 01:46:40 GMT";
/// One day before `MTIME_HTTP`.
const DAY_BEFORE: &str = "Sat, 08 Sep 2001 01:46:40 GMT";
/// One day after `MTIME_HTTP`.
const DAY_AFTER: &str = "Mon, 10 Sep 2001 01:46:40 GMT";
/// One second after `MTIME_HTTP`.
const SECOND_AFTER: &str = "Sun, 09 Sep 2001 01:46:41 GMT";

/// Length of the main fixture file: not a power of two, bigger than one TCP segment.
const LEN: usize = 10_000;

fn mtime() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(MTIME_SECS)
}

/// Sets a file's mtime with std only (`File::set_modified` needs a handle opened for writing).
fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// Writes a file whose mtime is `MTIME_SECS`.
fn old_file(root: &TestRoot, relative: &str, content: &[u8]) -> PathBuf {
    let path = root.file(relative, content);
    set_mtime(&path, mtime());
    path
}

/// A server whose root holds `movie.mp4` (`LEN` pattern bytes, old mtime).
struct Fixture {
    server: TestServer,
    root: TestRoot,
    content: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_args(&[])
    }

    fn with_args(args: &[&str]) -> Fixture {
        let root = TestRoot::new();
        let content = pattern(LEN, 7);
        old_file(&root, "movie.mp4", &content);
        let server = TestServer::start(root.path(), args);
        Fixture {
            server,
            root,
            content,
        }
    }

    fn get(&self, headers: &[(&str, &str)]) -> Response {
        self.server.get("/movie.mp4", headers)
    }

    fn etag(&self) -> String {
        let response = self.get(&[]);
        assert_eq!(response.status, 200);
        response.header("etag").expect("ETag").to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Raw-socket helpers
// ---------------------------------------------------------------------------------------------

/// A client connection that reads responses one at a time (keep-alive, pipelining).
struct Client {
    stream: TcpStream,
    buffered: Vec<u8>,
}

impl Client {
    fn connect(server: &TestServer) -> Client {
        let stream = connect(server.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buffered: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads exactly one response (its head and Content-Length body) off the connection.
    fn read_response(&mut self, head_request: bool) -> Response {
        loop {
            if let Ok((response, used)) = Response::parse_prefix(&self.buffered, head_request) {
                let bodyless = head_request || response.status == 304;
                if bodyless || response.header("content-length").is_some() {
                    self.buffered.drain(..used);
                    return response;
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("reading a response");
            assert!(
                n > 0,
                "connection closed before a complete response; have {:?}",
                String::from_utf8_lossy(&self.buffered)
            );
            self.buffered.extend_from_slice(&chunk[..n]);
        }
    }

    /// Asserts that the server closes the connection with nothing more to say.
    fn assert_closed_by_server(&mut self) {
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("server did not close the connection: {e}"),
        }
        self.buffered.extend_from_slice(&rest);
        assert!(
            self.buffered.is_empty(),
            "bytes after the last response: {:?}",
            String::from_utf8_lossy(&self.buffered)
        );
    }
}

/// A request head with `Connection: close`.
fn request_text(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// The exact bytes the server sends for one `Connection: close` request.
fn raw_response(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    raw_exchange(server.addr, request_text(method, path, headers).as_bytes())
}

/// Asserts a response has no content: the bytes end right after the blank line of the head.
fn assert_head_only(raw: &[u8]) {
    let end = find(raw, b"\r\n\r\n").expect("complete head") + 4;
    assert_eq!(
        raw.len(),
        end,
        "content after the head: {:?}",
        String::from_utf8_lossy(&raw[end..])
    );
}

/// Every header but Date (which may tick between two responses), in order.
fn headers_without_date(response: &Response) -> Vec<(String, String)> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name != "date")
        .cloned()
        .collect()
}

fn assert_whole_file_200(response: &Response, content: &[u8]) {
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-range"), None);
    assert_eq!(
        response.header("content-length"),
        Some(content.len().to_string().as_str())
    );
    assert!(response.body == content, "body is not the whole file");
}

fn assert_single_range_206(response: &Response, content: &[u8], first: usize, last: usize) {
    assert_eq!(response.status, 206, "{response:?}");
    let expected_range = format!("bytes {first}-{last}/{}", content.len());
    assert_eq!(
        response.header("content-range"),
        Some(expected_range.as_str())
    );
    assert_eq!(
        response.header("content-length"),
        Some((last - first + 1).to_string().as_str())
    );
    assert!(
        response.body == content[first..=last],
        "body is not bytes {first}-{last}"
    );
}

fn parse_http_date(value: &str) -> SystemTime {
    httpdate::parse_http_date(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

/// An IMF-fixdate (§5.6.7) is what `httpdate` formats; anything else does not round-trip.
fn assert_imf_fixdate(value: &str) {
    assert_eq!(httpdate::fmt_http_date(parse_http_date(value)), value);
}

// ---------------------------------------------------------------------------------------------
// Methods (§9)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc9110_9_3_1_get_transfers_the_representation_with_200() {
    let f = Fixture::new();
    let response = f.get(&[]);
    assert_whole_file_200(&response, &f.content);
}

#[test]
fn rfc9110_9_3_2_head_sends_the_same_headers_as_get_and_no_content() {
    let f = Fixture::new();
    let get = f.get(&[]);
    let raw = raw_response(&f.server, "HEAD", "/movie.mp4", &[]);
    assert_head_only(&raw);
    let head = Response::parse(&raw, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(LEN.to_string().as_str())
    );
    assert_eq!(headers_without_date(&head), headers_without_date(&get));
    assert!(head.header("date").is_some());
}

#[test]
fn rfc9110_9_3_2_head_leaves_the_persistent_connection_usable() {
    let f = Fixture::new();
    let mut client = Client::connect(&f.server);
    client.send(b"HEAD /movie.mp4 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let head = client.read_response(true);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(LEN.to_string().as_str())
    );
    // If the server had sent content after the HEAD response, it would be read as the next
    // response's head here and fail to parse.
    client.send(b"GET /movie.mp4 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let get = client.read_response(false);
    assert_whole_file_200(&get, &f.content);
    client.assert_closed_by_server();
}

#[test]
fn rfc9110_15_5_6_other_methods_get_405_with_allow_get_head() {
    let f = Fixture::new();
    for method in [
        "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "BREW",
    ] {
        let response = f.server.request(method, "/movie.mp4", &[]);
        assert_eq!(response.status, 405, "{method}");
        // §15.5.6: a 405 MUST carry Allow with the methods the resource supports.
        assert_eq!(response.header("allow"), Some("GET, HEAD"), "{method}");
        assert!(
            response.body != f.content,
            "{method} must not transfer the file"
        );
    }
    // And on a path that does not exist: the method is checked first.
    let response = f.server.request("DELETE", "/nope", &[]);
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

// ---------------------------------------------------------------------------------------------
// Fields every file response carries
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc9110_14_3_accept_ranges_bytes_is_always_sent() {
    let f = Fixture::new();
    for headers in [
        &[][..],
        &[("Range", "bytes=0-0")][..],
        &[("Range", "bytes=0-0,5-5")][..],
    ] {
        let response = f.get(headers);
        assert_eq!(
            response.header("accept-ranges"),
            Some("bytes"),
            "{headers:?}"
        );
        assert_eq!(response.header_count("accept-ranges"), 1);
    }
    let head = f.server.request("HEAD", "/movie.mp4", &[]);
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
}

#[test]
fn rfc9110_8_3_content_type_follows_the_file_extension() {
    let root = TestRoot::new();
    let cases = [
        ("a.mp4", "video/mp4"),
        ("b.MP4", "video/mp4"),
        ("c.webm", "video/webm"),
        ("page.html", "text/html; charset=utf-8"),
        ("blob.qqqunknown", "application/octet-stream"),
        ("noextension", "application/octet-stream"),
    ];
    for (name, _) in cases {
        root.file(name, b"x");
    }
    let server = TestServer::start(root.path(), &[]);
    for (name, expected) in cases {
        let response = server.get(&format!("/{name}"), &[]);
        assert_eq!(response.status, 200, "{name}");
        assert_eq!(response.header("content-type"), Some(expected), "{name}");
        assert_eq!(response.header_count("content-type"), 1);
    }
}

#[test]
fn rfc9110_8_8_3_etag_is_a_strong_quoted_entity_tag_stable_across_requests() {
    let f = Fixture::new();
    let etag = f.etag();
    assert!(!etag.starts_with("W/"), "weak ETag {etag}");
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    let opaque = &etag[1..etag.len() - 1];
    // etagc = %x21 / %x23-7E / obs-text
    assert!(
        opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)),
        "{etag}"
    );
    assert_eq!(f.etag(), etag, "the same file must keep its tag");
}

/// A file replaced by another (new inode) with the same size and mtime: by default the tag is
/// the same (so identical copies on several instances agree); with `--etag-inode` it changes.
#[test]
fn rfc9110_8_8_3_etag_inode_flag_tells_replaced_files_apart() {
    let root = TestRoot::new();
    let path = old_file(&root, "clip.mp4", &pattern(LEN, 1));
    let etags = |args: &[&str]| {
        let server = TestServer::start(root.path(), args);
        server
            .get("/clip.mp4", &[])
            .header("etag")
            .unwrap()
            .to_string()
    };
    let (plain_before, inode_before) = (etags(&[]), etags(&["--etag-inode"]));
    // Replace by rename: a new inode, same size, same mtime.
    let replacement = root.path().join("clip.mp4.new");
    std::fs::write(&replacement, pattern(LEN, 2)).unwrap();
    set_mtime(&replacement, mtime());
    std::fs::rename(&replacement, &path).unwrap();
    assert_eq!(etags(&[]), plain_before);
    assert_ne!(etags(&["--etag-inode"]), inode_before);
}

#[test]
fn rfc9110_8_8_3_etag_changes_when_the_file_changes() {
    let f = Fixture::new();
    let before = f.etag();
    let path = f.root.path().join("movie.mp4");
    std::fs::write(&path, pattern(LEN + 1, 8)).unwrap();
    set_mtime(&path, mtime());
    let after = f.etag();
    assert_ne!(before, after);
    // The old tag no longer validates the new content.
    let response = f.get(&[("If-None-Match", &before)]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, pattern(LEN + 1, 8));
}

#[test]
fn rfc9110_8_8_2_last_modified_is_the_files_mtime_as_an_imf_fixdate() {
    let f = Fixture::new();
    let response = f.get(&[]);
    assert_eq!(response.header("last-modified"), Some(MTIME_HTTP));
    assert_imf_fixdate(MTIME_HTTP);
}

#[test]
fn rfc9110_8_8_2_1_last_modified_is_never_later_than_date() {
    // §8.8.2.1: an mtime in the future (clock skew, a copied file) MUST be replaced by the
    // message origination date, or caches would keep a date the server has not reached yet.
    let root = TestRoot::new();
    let path = root.file("future.mp4", b"from the future");
    set_mtime(
        &path,
        SystemTime::now() + Duration::from_secs(3 * 24 * 3600),
    );
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/future.mp4", &[]);
    assert_eq!(response.status, 200);
    let date = parse_http_date(response.header("date").expect("Date"));
    let last_modified = parse_http_date(response.header("last-modified").expect("Last-Modified"));
    assert!(
        last_modified <= date,
        "Last-Modified {:?} is after Date {:?}",
        response.header("last-modified"),
        response.header("date")
    );
}

#[test]
fn rfc9110_6_6_1_date_is_sent_as_the_current_imf_fixdate() {
    let f = Fixture::new();
    let response = f.get(&[]);
    let date = response.header("date").expect("Date");
    assert_imf_fixdate(date);
    let sent = parse_http_date(date);
    let now = SystemTime::now();
    let skew = now.duration_since(sent).unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(5), "Date {date} is not now");
    assert_eq!(response.header_count("date"), 1);
}

#[test]
fn rfc9110_8_6_content_length_is_the_exact_body_length() {
    let f = Fixture::new();
    // `Response::parse` fails on a short body and on any byte after the promised length.
    let raw = raw_response(&f.server, "GET", "/movie.mp4", &[]);
    let response = Response::parse(&raw, false).unwrap();
    assert_eq!(response.header("content-length"), Some("10000"));
    assert_eq!(response.header("transfer-encoding"), None);
    assert_eq!(response.body.len(), LEN);
    let empty = TestRoot::new();
    empty.file("empty.mp4", b"");
    let server = TestServer::start(empty.path(), &[]);
    let response = server.get("/empty.mp4", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("0"));
    assert!(response.body.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Range requests (§14)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc9110_14_1_2_int_range_first_last_gives_206_with_those_bytes() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=100-1099")]);
    assert_single_range_206(&response, &f.content, 100, 1099);
    let response = f.get(&[("Range", "bytes=0-0")]);
    assert_single_range_206(&response, &f.content, 0, 0);
}

#[test]
fn rfc9110_14_1_2_int_range_without_last_pos_runs_to_the_end() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=9000-")]);
    assert_single_range_206(&response, &f.content, 9000, LEN - 1);
    let response = f.get(&[("Range", "bytes=0-")]);
    assert_single_range_206(&response, &f.content, 0, LEN - 1);
}

#[test]
fn rfc9110_14_1_2_suffix_range_gives_the_last_n_bytes() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=-500")]);
    assert_single_range_206(&response, &f.content, LEN - 500, LEN - 1);
    let response = f.get(&[("Range", "bytes=-1")]);
    assert_single_range_206(&response, &f.content, LEN - 1, LEN - 1);
}

#[test]
fn rfc9110_14_1_1_last_pos_past_the_end_is_clamped() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=9990-20000")]);
    assert_single_range_206(&response, &f.content, 9990, LEN - 1);
    let response = f.get(&[("Range", "bytes=5-99999999999999999999999999")]);
    assert_single_range_206(&response, &f.content, 5, LEN - 1);
}

#[test]
fn rfc9110_14_1_3_suffix_longer_than_the_file_is_the_whole_file_in_a_206() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=-20000")]);
    assert_single_range_206(&response, &f.content, 0, LEN - 1);
}

#[test]
fn rfc9110_15_5_17_first_pos_at_or_past_the_end_gives_416_with_star_content_range() {
    let f = Fixture::new();
    for range in [
        "bytes=10000-",
        "bytes=20000-30000",
        "bytes=10000-10001, 15000-",
    ] {
        let response = f.get(&[("Range", range)]);
        assert_eq!(response.status, 416, "{range}");
        assert_eq!(
            response.header("content-range"),
            Some("bytes */10000"),
            "{range}"
        );
        assert!(
            response.body.len() < 100,
            "{range}: a 416 carries no file bytes"
        );
    }
}

#[test]
fn rfc9110_14_1_1_unsatisfiable_specs_are_dropped_when_another_is_satisfiable() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=20000-, 10-19")]);
    assert_single_range_206(&response, &f.content, 10, 19);
}

#[test]
fn rfc9110_14_2_unknown_unit_is_ignored_with_200() {
    let f = Fixture::new();
    for range in ["items=0-1", "pages=1", "bits=0-7"] {
        let response = f.get(&[("Range", range)]);
        assert_whole_file_200(&response, &f.content);
    }
}

#[test]
fn rfc9110_14_2_invalid_range_syntax_is_ignored_with_200() {
    let f = Fixture::new();
    for range in [
        "bytes=5-1",
        "bytes=abc",
        "bytes=-",
        "bytes=",
        "bytes 0-1",
        "bytes=0-1,x",
        "bytes=--5",
        "bytes=1-2-3",
        "=0-1",
    ] {
        let response = f.get(&[("Range", range)]);
        assert_eq!(response.status, 200, "{range}");
        assert_whole_file_200(&response, &f.content);
    }
}

#[test]
fn rfc9110_14_1_range_unit_is_case_insensitive() {
    let f = Fixture::new();
    for range in ["BYTES=0-99", "Bytes=0-99", "bYtEs=0-99"] {
        let response = f.get(&[("Range", range)]);
        assert_single_range_206(&response, &f.content, 0, 99);
    }
}

#[test]
fn rfc9110_14_6_several_ranges_give_multipart_byteranges_with_exact_framing() {
    let f = Fixture::new();
    let raw = raw_response(
        &f.server,
        "GET",
        "/movie.mp4",
        &[("Range", "bytes=0-9, 100-199, -5")],
    );
    // `parse` fails if the body is shorter than Content-Length or anything follows it.
    let response = Response::parse(&raw, false).unwrap();
    assert_eq!(response.status, 206);
    assert_eq!(response.header("content-range"), None);
    let content_type = response.header("content-type").unwrap();
    assert!(
        content_type.starts_with("multipart/byteranges; boundary="),
        "{content_type}"
    );
    assert_eq!(
        response.header("content-length"),
        Some(response.body.len().to_string().as_str())
    );
    let parts = response.multipart_parts();
    let expected = [(0, 9), (100, 199), (LEN - 5, LEN - 1)];
    assert_eq!(parts.len(), expected.len());
    for ((range, ctype, bytes), (first, last)) in parts.iter().zip(expected) {
        assert_eq!(range, &format!("bytes {first}-{last}/{LEN}"));
        assert_eq!(ctype, "video/mp4");
        assert!(bytes[..] == f.content[first..=last], "part {range}");
    }
    // Nothing but the parts and their framing: the body is bounded by the parts' sizes.
    let data: usize = parts.iter().map(|p| p.2.len()).sum();
    assert!(response.body.len() < data + 3 * 200 + 100);
}

#[test]
fn rfc9110_14_6_parts_are_sent_in_the_order_requested() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=9000-9099, 0-9, 5000-5009")]);
    assert_eq!(response.status, 206);
    let ranges: Vec<String> = response
        .multipart_parts()
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(
        ranges,
        [
            "bytes 9000-9099/10000",
            "bytes 0-9/10000",
            "bytes 5000-5009/10000"
        ]
    );
}

#[test]
fn rfc9110_14_2_overlapping_ranges_are_coalesced_into_one_plain_206() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=100-300, 200-400, 150-250")]);
    // One coalesced range: a plain 206 with Content-Range, not a one-part multipart.
    assert_single_range_206(&response, &f.content, 100, 400);
    assert_eq!(response.header("content-type"), Some("video/mp4"));
}

#[test]
fn rfc9110_14_2_adjacent_ranges_are_coalesced() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=0-99, 100-199")]);
    assert_single_range_206(&response, &f.content, 0, 199);
    // Coalescing keeps the other parts apart: two parts, the first one merged.
    let response = f.get(&[("Range", "bytes=0-4, 5-9, 20-29")]);
    let parts = response.multipart_parts();
    let ranges: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(ranges, ["bytes 0-9/10000", "bytes 20-29/10000"]);
    assert!(parts[0].2[..] == f.content[0..10]);
    assert!(parts[1].2[..] == f.content[20..30]);
}

#[test]
fn rfc9110_14_2_range_is_ignored_for_head() {
    // §14.2: "A server MUST ignore a Range header field received with a request method that is
    // unrecognized or for which range handling is not defined" — it is defined for GET only.
    let f = Fixture::new();
    for range in ["bytes=0-99", "bytes=0-9,20-29", "bytes=20000-"] {
        let raw = raw_response(&f.server, "HEAD", "/movie.mp4", &[("Range", range)]);
        assert_head_only(&raw);
        let response = Response::parse(&raw, true).unwrap();
        assert_eq!(response.status, 200, "{range}");
        assert_eq!(response.header("content-length"), Some("10000"));
        assert_eq!(response.header("content-range"), None);
        assert_eq!(response.header("content-type"), Some("video/mp4"));
    }
}

#[test]
fn rfc9110_14_2_many_overlapping_ranges_never_amplify_the_response() {
    // cf. CVE-2011-3192: 60 ranges over the whole file must not send the file 60 times.
    let f = Fixture::new();
    let whole: Vec<String> = (0..60).map(|_| "0-".to_string()).collect();
    let sliding: Vec<String> = (0..60)
        .map(|i| format!("{}-{}", i * 100, i * 100 + LEN / 2))
        .collect();
    for specs in [whole, sliding] {
        let header = format!("bytes={}", specs.join(","));
        let response = f.get(&[("Range", &header)]);
        assert_eq!(response.status, 206);
        assert!(
            response.body.len() <= LEN + 1024,
            "{} body bytes for a {LEN}-byte file",
            response.body.len()
        );
    }
}

#[test]
fn rfc9110_14_2_a_thousand_ranges_are_ignored_with_200() {
    let f = Fixture::new();
    let specs: Vec<String> = (0..1000).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
    let header = format!("bytes={}", specs.join(","));
    let response = f.get(&[("Range", &header)]);
    assert_whole_file_200(&response, &f.content);
}

#[test]
fn rfc9110_15_5_17_range_of_an_empty_file_gives_416_bytes_star_zero() {
    let root = TestRoot::new();
    root.file("empty.mp4", b"");
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/empty.mp4", &[("Range", "bytes=0-")]);
    assert_eq!(response.status, 416);
    assert_eq!(response.header("content-range"), Some("bytes */0"));
}

#[test]
fn rfc9110_14_6_range_bodies_are_byte_exact_in_every_mode() {
    // 3 MiB + a bit: crosses the mmap window and many chunk boundaries.
    let root = TestRoot::new();
    let len = 3 * 1024 * 1024 + 123;
    let content = pattern(len, 9);
    old_file(&root, "big.mp4", &content);
    for mode in modes() {
        let server = TestServer::start(root.path(), &["--mode", mode, "--chunk-size", "10000"]);
        let whole = server.get("/big.mp4", &[]);
        assert!(
            whole.status == 200 && whole.body == content,
            "{mode}: whole file"
        );
        let single = server.get("/big.mp4", &[("Range", "bytes=2097000-2100000")]);
        assert_single_range_206(&single, &content, 2_097_000, 2_100_000);
        let multi = server.get(
            "/big.mp4",
            &[("Range", "bytes=-70000, 1-1, 2000000-2200000")],
        );
        assert_eq!(multi.status, 206, "{mode}");
        let expected = [(len - 70000, len - 1), (1, 1), (2_000_000, 2_200_000)];
        let parts = multi.multipart_parts();
        assert_eq!(parts.len(), 3, "{mode}");
        for ((range, _, bytes), (first, last)) in parts.iter().zip(expected) {
            assert_eq!(range, &format!("bytes {first}-{last}/{len}"), "{mode}");
            assert!(bytes[..] == content[first..=last], "{mode}: part {range}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conditional requests (§13)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc9110_13_1_1_if_match_without_the_current_tag_gives_412() {
    let f = Fixture::new();
    for value in ["\"nope\"", "\"a\", \"b\""] {
        let response = f.get(&[("If-Match", value)]);
        assert_eq!(response.status, 412, "{value}");
        assert!(response.body.len() < 100, "a 412 carries no file bytes");
    }
}

#[test]
fn rfc9110_13_1_1_if_match_uses_the_strong_comparison() {
    let f = Fixture::new();
    let etag = f.etag();
    let response = f.get(&[("If-Match", &etag)]);
    assert_whole_file_200(&response, &f.content);
    let listed = format!("\"other\", {etag}");
    assert_eq!(f.get(&[("If-Match", &listed)]).status, 200);
    // A weak tag never matches strongly.
    let weak = format!("W/{etag}");
    assert_eq!(f.get(&[("If-Match", &weak)]).status, 412);
}

#[test]
fn rfc9110_13_1_1_if_match_star_passes_for_an_existing_file() {
    let f = Fixture::new();
    let response = f.get(&[("If-Match", "*")]);
    assert_whole_file_200(&response, &f.content);
}

#[test]
fn rfc9110_13_1_4_if_unmodified_since_before_last_modified_gives_412() {
    let f = Fixture::new();
    assert_eq!(f.get(&[("If-Unmodified-Since", DAY_BEFORE)]).status, 412);
    // Not modified since (equal or later): the request proceeds.
    let response = f.get(&[("If-Unmodified-Since", MTIME_HTTP)]);
    assert_whole_file_200(&response, &f.content);
    assert_eq!(f.get(&[("If-Unmodified-Since", DAY_AFTER)]).status, 200);
}

#[test]
fn rfc9110_13_2_2_if_match_present_means_if_unmodified_since_is_not_evaluated() {
    // Step 2 applies only "when If-Match is not present".
    let f = Fixture::new();
    let etag = f.etag();
    let response = f.get(&[("If-Match", &etag), ("If-Unmodified-Since", DAY_BEFORE)]);
    assert_eq!(response.status, 200);
}

#[test]
fn rfc9110_13_1_2_if_none_match_with_the_current_tag_gives_304_with_validators_and_no_body() {
    let f = Fixture::new();
    let etag = f.etag();
    let raw = raw_response(&f.server, "GET", "/movie.mp4", &[("If-None-Match", &etag)]);
    assert_head_only(&raw);
    let response = Response::parse(&raw, false).unwrap();
    assert_eq!(response.status, 304);
    // §15.4.5: the 304 carries the fields a 200 would have had for caching.
    assert_eq!(response.header("etag"), Some(etag.as_str()));
    assert_eq!(response.header("last-modified"), Some(MTIME_HTTP));
    assert!(response.header("date").is_some());
}

#[test]
fn rfc9110_13_1_2_if_none_match_uses_the_weak_comparison() {
    let f = Fixture::new();
    let etag = f.etag();
    let weak = format!("W/{etag}");
    let response = f.get(&[("If-None-Match", &weak)]);
    assert_eq!(response.status, 304);
    assert!(response.body.is_empty());
}

#[test]
fn rfc9110_13_1_2_if_none_match_list_containing_the_tag_gives_304() {
    let f = Fixture::new();
    let etag = f.etag();
    let list = format!("\"a\", W/\"b\", {etag}, \"c\"");
    assert_eq!(f.get(&[("If-None-Match", &list)]).status, 304);
    // The same list split over several field lines (§5.3).
    let response = f.get(&[("If-None-Match", "\"a\""), ("If-None-Match", &etag)]);
    assert_eq!(response.status, 304);
}

#[test]
fn rfc9110_13_1_2_if_none_match_star_gives_304_for_an_existing_file() {
    let f = Fixture::new();
    assert_eq!(f.get(&[("If-None-Match", "*")]).status, 304);
}

#[test]
fn rfc9110_13_1_2_if_none_match_without_the_tag_gives_200() {
    let f = Fixture::new();
    let response = f.get(&[("If-None-Match", "\"other\", W/\"another\"")]);
    assert_whole_file_200(&response, &f.content);
}

#[test]
fn rfc9110_13_1_2_if_none_match_applies_to_head() {
    let f = Fixture::new();
    let etag = f.etag();
    let raw = raw_response(&f.server, "HEAD", "/movie.mp4", &[("If-None-Match", &etag)]);
    assert_head_only(&raw);
    assert_eq!(Response::parse(&raw, true).unwrap().status, 304);
}

#[test]
fn rfc9110_13_2_2_if_none_match_wins_over_if_modified_since() {
    let f = Fixture::new();
    let etag = f.etag();
    // Tag does not match: 200 even though If-Modified-Since alone would give 304.
    let response = f.get(&[
        ("If-None-Match", "\"other\""),
        ("If-Modified-Since", DAY_AFTER),
    ]);
    assert_whole_file_200(&response, &f.content);
    // Tag matches: 304 even though If-Modified-Since alone would give 200.
    let response = f.get(&[("If-None-Match", &etag), ("If-Modified-Since", DAY_BEFORE)]);
    assert_eq!(response.status, 304);
}

#[test]
fn rfc9110_13_1_3_if_modified_since_at_or_after_last_modified_gives_304() {
    let f = Fixture::new();
    for date in [MTIME_HTTP, DAY_AFTER] {
        let response = f.get(&[("If-Modified-Since", date)]);
        assert_eq!(response.status, 304, "{date}");
        assert_eq!(response.header("last-modified"), Some(MTIME_HTTP));
        assert!(response.body.is_empty());
    }
}

#[test]
fn rfc9110_13_1_3_if_modified_since_before_last_modified_gives_200() {
    let f = Fixture::new();
    let response = f.get(&[("If-Modified-Since", DAY_BEFORE)]);
    assert_whole_file_200(&response, &f.content);
}

#[test]
fn rfc9110_5_6_7_obsolete_date_formats_are_accepted() {
    // Recipients MUST accept the RFC 850 and asctime forms as well as the IMF-fixdate.
    let f = Fixture::new();
    for date in ["Sunday, 09-Sep-01 01:46:40 GMT", "Sun Sep  9 01:46:40 2001"] {
        assert_eq!(f.get(&[("If-Modified-Since", date)]).status, 304, "{date}");
    }
}

#[test]
fn rfc9110_13_1_3_invalid_if_modified_since_is_ignored() {
    let f = Fixture::new();
    let two_members = format!("{DAY_AFTER}, {DAY_AFTER}");
    for date in [
        "yesterday",
        "",
        "Sun, 32 Sep 2001 01:46:40 GMT",
        two_members.as_str(),
    ] {
        let response = f.get(&[("If-Modified-Since", date)]);
        assert_whole_file_200(&response, &f.content);
    }
}

#[test]
fn rfc9110_13_1_4_invalid_if_unmodified_since_is_ignored() {
    let f = Fixture::new();
    for date in ["not a date", "0", "Sat, 08 Sep 2001 25:46:40 GMT"] {
        let response = f.get(&[("If-Unmodified-Since", date)]);
        assert_whole_file_200(&response, &f.content);
    }
}

#[test]
fn rfc9110_13_2_2_a_failed_precondition_wins_over_range() {
    let f = Fixture::new();
    let response = f.get(&[("If-Match", "\"nope\""), ("Range", "bytes=0-9")]);
    assert_eq!(response.status, 412);
    assert_eq!(response.header("content-range"), None);
    let etag = f.etag();
    let response = f.get(&[("If-None-Match", &etag), ("Range", "bytes=0-9")]);
    assert_eq!(response.status, 304);
}

#[test]
fn rfc9110_13_1_5_if_range_with_the_strong_etag_keeps_the_range() {
    let f = Fixture::new();
    let etag = f.etag();
    let response = f.get(&[("Range", "bytes=10-19"), ("If-Range", &etag)]);
    assert_single_range_206(&response, &f.content, 10, 19);
}

#[test]
fn rfc9110_13_1_5_if_range_with_another_etag_sends_the_whole_file() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=10-19"), ("If-Range", "\"stale\"")]);
    assert_whole_file_200(&response, &f.content);
}

#[test]
fn rfc9110_13_1_5_if_range_with_a_weak_etag_sends_the_whole_file() {
    // If-Range needs a strong match; a weak tag never has one.
    let f = Fixture::new();
    let weak = format!("W/{}", f.etag());
    let response = f.get(&[("Range", "bytes=10-19"), ("If-Range", &weak)]);
    assert_whole_file_200(&response, &f.content);
}

#[test]
fn rfc9110_13_1_5_if_range_with_the_exact_last_modified_keeps_the_range() {
    let f = Fixture::new();
    let response = f.get(&[("Range", "bytes=10-19"), ("If-Range", MTIME_HTTP)]);
    assert_single_range_206(&response, &f.content, 10, 19);
}

#[test]
fn rfc9110_13_1_5_if_range_with_another_date_sends_the_whole_file() {
    let f = Fixture::new();
    for date in [SECOND_AFTER, DAY_BEFORE, DAY_AFTER] {
        let response = f.get(&[("Range", "bytes=10-19"), ("If-Range", date)]);
        assert_whole_file_200(&response, &f.content);
    }
}

// ---------------------------------------------------------------------------------------------
// Paths (target resolution; RFC 3986 for the syntax)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc3986_2_1_percent_encoded_space_is_decoded() {
    let root = TestRoot::new();
    root.file("my movie.mp4", b"spaces work");
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/my%20movie.mp4", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"spaces work");
}

#[test]
fn rfc3986_2_5_utf8_file_names_are_served_from_percent_encoded_octets() {
    let root = TestRoot::new();
    root.file("été.mp4", b"summer");
    root.file("映画/予告.webm", b"trailer");
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/%C3%A9t%C3%A9.mp4", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"summer");
    let response = server.get("/%E6%98%A0%E7%94%BB/%E4%BA%88%E5%91%8A.webm", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"trailer");
    assert_eq!(response.header("content-type"), Some("video/webm"));
}

#[test]
fn rfc3986_3_4_query_string_does_not_change_the_file() {
    let f = Fixture::new();
    for target in [
        "/movie.mp4?t=10",
        "/movie.mp4?../../etc/passwd",
        "/movie.mp4?",
    ] {
        let response = f.server.get(target, &[]);
        assert_whole_file_200(&response, &f.content);
    }
}

#[test]
fn rfc3986_5_2_4_dot_dot_segments_are_rejected_with_400() {
    let f = Fixture::new();
    for target in ["/../etc/passwd", "/a/../movie.mp4", "/.."] {
        assert_eq!(f.server.get(target, &[]).status, 400, "{target}");
    }
}

#[test]
fn rfc3986_2_1_percent_encoded_dot_dot_is_rejected_with_400() {
    let f = Fixture::new();
    for target in [
        "/%2e%2e/etc/passwd",
        "/%2E%2E/movie.mp4",
        "/.%2e/x",
        "/x/%2e%2e",
    ] {
        assert_eq!(f.server.get(target, &[]).status, 400, "{target}");
    }
}

#[test]
fn rfc3986_2_2_encoded_slash_or_backslash_is_rejected_with_400() {
    let root = TestRoot::new();
    root.file("dir/file.mp4", b"x");
    let server = TestServer::start(root.path(), &[]);
    for target in [
        "/dir%2ffile.mp4",
        "/dir%2Ffile.mp4",
        "/dir%5cfile.mp4",
        "/%2e%2e%2fetc",
    ] {
        assert_eq!(server.get(target, &[]).status, 400, "{target}");
    }
    assert_eq!(server.get("/dir/file.mp4", &[]).status, 200);
}

#[test]
fn rfc9110_17_3_nul_byte_in_a_path_is_rejected_with_400() {
    let f = Fixture::new();
    for target in ["/movie.mp4%00", "/movie.mp4%00.txt", "/%00"] {
        assert_eq!(f.server.get(target, &[]).status, 400, "{target}");
    }
}

#[test]
fn rfc9110_17_3_symlink_leaving_the_root_is_404() {
    let outside = TestRoot::new();
    outside.file("secret.txt", b"top secret");
    let root = TestRoot::new();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("leak.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("outdir")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../etc/hostname",
        root.path().join("rel"),
    )
    .unwrap();
    let server = TestServer::start(root.path(), &[]);
    for target in ["/leak.txt", "/outdir/secret.txt", "/outdir/", "/rel"] {
        let response = server.get(target, &[]);
        assert_eq!(response.status, 404, "{target}");
        assert!(find(&response.body, b"top secret").is_none(), "{target}");
    }
}

#[test]
fn rfc9110_17_3_symlink_inside_the_root_is_followed() {
    let root = TestRoot::new();
    let content = pattern(1000, 3);
    root.file("real/movie.mp4", &content);
    std::os::unix::fs::symlink("real/movie.mp4", root.path().join("link.mp4")).unwrap();
    std::os::unix::fs::symlink("real", root.path().join("linkdir")).unwrap();
    let server = TestServer::start(root.path(), &[]);
    for target in ["/link.mp4", "/linkdir/movie.mp4"] {
        let response = server.get(target, &[]);
        assert_whole_file_200(&response, &content);
        assert_eq!(response.header("content-type"), Some("video/mp4"));
    }
}

#[test]
fn rfc9110_17_3_directory_index_symlink_leaving_the_root_is_not_served() {
    // A directory's index.html is a file under the root like any other: a symlink that leaves
    // the root must not be followed just because the URL named the directory.
    let outside = TestRoot::new();
    outside.file("secret.html", b"top secret");
    let root = TestRoot::new();
    std::fs::create_dir(root.path().join("dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.html"),
        root.path().join("dir/index.html"),
    )
    .unwrap();
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/dir/", &[]);
    assert!(response.status < 500, "{}", response.status);
    assert!(
        find(&response.body, b"top secret").is_none(),
        "served a file outside the root"
    );
}

#[test]
fn rfc9110_17_3_hidden_files_are_404() {
    let root = TestRoot::new();
    root.file(".git/config", b"[core]");
    root.file(".env", b"PASSWORD=x");
    root.file("dir/.secret.mp4", b"hidden");
    let server = TestServer::start(root.path(), &[]);
    for target in [
        "/.git/config",
        "/.env",
        "/dir/.secret.mp4",
        "/%2eenv",
        "/.git/",
    ] {
        assert_eq!(server.get(target, &[]).status, 404, "{target}");
    }
}

#[test]
fn rfc9110_15_5_5_missing_file_is_404() {
    let f = Fixture::new();
    for target in ["/nope.mp4", "/nope/", "/movie.mp4/child", "/a/b/c"] {
        assert_eq!(f.server.get(target, &[]).status, 404, "{target}");
    }
}

#[test]
fn rfc9110_15_4_2_directory_without_trailing_slash_is_301_to_the_slash_form() {
    let root = TestRoot::new();
    root.file("films/a.mp4", b"a");
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/films", &[]);
    assert_eq!(response.status, 301);
    assert_eq!(response.header("location"), Some("/films/"));
    assert_eq!(server.get("/films/", &[]).status, 200);
}

#[test]
fn rfc3986_4_2_directory_redirect_is_never_a_network_path_reference() {
    // `GET //films` names the same directory as `/films`, but echoing "//films/" in Location
    // would send browsers to the host "films" (an open redirect).
    let root = TestRoot::new();
    root.file("films/a.mp4", b"a");
    let server = TestServer::start(root.path(), &[]);
    for target in ["//films", "///films", "//films//"] {
        let response = server.get(target, &[]);
        if response.status == 301 {
            let location = response.header("location").unwrap();
            assert!(
                location.starts_with('/') && !location.starts_with("//"),
                "{target}: Location {location}"
            );
            assert!(location.ends_with('/'), "{target}: Location {location}");
        } else {
            assert!(response.status < 500, "{target}: {}", response.status);
        }
    }
}

// Paths (docs/architecture.md): a directory answers with its index page (no RFC rule; never a 5xx).
#[test]
fn directory_with_index_html_serves_that_file() {
    let root = TestRoot::new();
    root.file("site/index.html", b"<h1>welcome</h1>");
    root.file("site/other.txt", b"other");
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/site/", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"<h1>welcome</h1>");
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(response.header("etag").is_some());
}

// Paths (docs/architecture.md): else a listing; names are HTML-escaped (RFC 9110 §17 spirit: no injection).
#[test]
fn directory_without_index_gets_an_escaped_html_listing() {
    let root = TestRoot::new();
    root.file("list/a.mp4", b"a");
    root.file("list/<b>.txt", b"b");
    root.file("list/sub/c.mp4", b"c");
    root.file("list/.hidden", b"h");
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/list/", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(response.body.clone()).unwrap();
    assert!(html.contains("a.mp4"), "{html}");
    assert!(html.contains("sub/"), "{html}");
    assert!(html.contains("&lt;b&gt;.txt"), "{html}");
    assert!(!html.contains("<b>"), "unescaped name in {html}");
    assert!(!html.contains(".hidden"), "{html}");
    // The escaped link leads to the file.
    assert!(html.contains("href=\"./%3Cb%3E.txt\""), "{html}");
    assert_eq!(server.get("/list/%3Cb%3E.txt", &[]).body, b"b");
    // HEAD of a listing: same length, no body.
    let raw = raw_response(&server, "HEAD", "/list/", &[]);
    assert_head_only(&raw);
    let head = Response::parse(&raw, true).unwrap();
    assert_eq!(
        head.header("content-length"),
        Some(html.len().to_string().as_str())
    );
}

// RFC 9110 §15.6: 5xx means the server failed; an odd path from a client is a 4xx at worst.
#[test]
fn rfc9110_15_6_odd_paths_never_get_a_5xx() {
    let root = TestRoot::new();
    root.file("dir/file.mp4", b"x");
    let fifo = root.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .map(|s| s.success())
        .unwrap_or(false));
    let server = TestServer::start(root.path(), &[]);
    let long_name = format!("/{}", "a".repeat(300));
    let deep = format!("/{}", "d/".repeat(2000));
    for target in [
        "/%",
        "/%zz",
        "/a%2",
        "/dir/file.mp4/",
        "/dir/file.mp4/x",
        "/fifo",
        "/dir//file.mp4",
        "/./dir/./file.mp4",
        "/%ff%fe.mp4",
        "/dir/%",
        long_name.as_str(),
        deep.as_str(),
        "*",
    ] {
        let raw = raw_response(&server, "GET", target, &[]);
        let response = Response::parse(&raw, false)
            .unwrap_or_else(|e| panic!("{target}: {e}: {:?}", String::from_utf8_lossy(&raw)));
        assert!(response.status < 500, "{target}: {}", response.status);
    }
    // The server is still there.
    assert_eq!(server.get("/dir/file.mp4", &[]).status, 200);
}

// ---------------------------------------------------------------------------------------------
// Connections (RFC 9112 §9)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc9112_9_3_persistent_connection_serves_several_requests() {
    let f = Fixture::new();
    let mut client = Client::connect(&f.server);
    for i in 0..5 {
        let range = format!("bytes={}-{}", i * 100, i * 100 + 9);
        client.send(
            format!("GET /movie.mp4 HTTP/1.1\r\nHost: localhost\r\nRange: {range}\r\n\r\n")
                .as_bytes(),
        );
        let response = client.read_response(false);
        assert_single_range_206(&response, &f.content, i * 100, i * 100 + 9);
        assert_ne!(response.header("connection"), Some("close"));
    }
    client.send(b"GET /movie.mp4 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_whole_file_200(&client.read_response(false), &f.content);
}

#[test]
fn rfc9112_9_3_2_pipelined_requests_are_answered_in_order() {
    let root = TestRoot::new();
    let a = pattern(70_000, 1);
    let b = pattern(5_000, 2);
    root.file("a.mp4", &a);
    root.file("b.webm", &b);
    let server = TestServer::start(root.path(), &[]);
    let mut client = Client::connect(&server);
    // Three requests in one write.
    client.send(
        b"GET /a.mp4 HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /b.webm HTTP/1.1\r\nHost: localhost\r\nRange: bytes=10-19\r\n\r\n\
          GET /a.mp4 HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-1,-2\r\nConnection: close\r\n\r\n",
    );
    let first = client.read_response(false);
    assert_whole_file_200(&first, &a);
    let second = client.read_response(false);
    assert_single_range_206(&second, &b, 10, 19);
    let third = client.read_response(false);
    assert_eq!(third.status, 206);
    let parts = third.multipart_parts();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].2, &a[0..2]);
    assert_eq!(parts[1].2, &a[a.len() - 2..]);
    client.assert_closed_by_server();
}

#[test]
fn rfc9112_9_3_http_1_0_request_gets_a_response_then_the_connection_closes() {
    let f = Fixture::new();
    let mut client = Client::connect(&f.server);
    client.send(b"GET /movie.mp4 HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let response = client.read_response(false);
    assert_whole_file_200(&response, &f.content);
    assert_eq!(response.header("transfer-encoding"), None);
    client.assert_closed_by_server();
}

#[test]
fn rfc9112_9_6_connection_close_closes_after_the_response() {
    let f = Fixture::new();
    let mut client = Client::connect(&f.server);
    client.send(b"GET /movie.mp4 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let response = client.read_response(false);
    assert_whole_file_200(&response, &f.content);
    assert_eq!(response.header("connection"), Some("close"));
    client.assert_closed_by_server();
}

#[test]
fn rfc9112_3_malformed_request_line_gets_400_and_the_server_stays_up() {
    let f = Fixture::new();
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /movie.mp4 HTTP/9.9.9\r\n\r\n",
        b"GET\r\n\r\n",
        b"\x00\x01\x02 / HTTP/1.1\r\n\r\n",
    ] {
        let raw = raw_exchange(f.server.addr, garbage);
        let response = Response::parse(&raw, false)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&raw)));
        assert_eq!(
            response.status,
            400,
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
        assert_whole_file_200(&f.get(&[]), &f.content);
    }
}

#[test]
fn rfc6585_5_oversized_header_section_gets_431_and_the_server_stays_up() {
    let f = Fixture::new();
    let big = "a".repeat(20 * 1024);
    let raw = raw_response(&f.server, "GET", "/movie.mp4", &[("X-Big", &big)]);
    let response = Response::parse(&raw, false)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&raw)));
    assert_eq!(response.status, 431);
    assert_whole_file_200(&f.get(&[]), &f.content);
}

#[test]
fn rfc6585_5_too_many_header_fields_get_431() {
    let f = Fixture::new();
    let status_with_extra_fields = |count: usize| {
        let names: Vec<String> = (0..count).map(|i| format!("X-Field-{i}")).collect();
        let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let raw = raw_response(&f.server, "GET", "/movie.mp4", &headers);
        Response::parse(&raw, false)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&raw)))
            .status
    };
    // The limit is 100 fields (hyper's default): Host, Connection and 98 more are served.
    assert_eq!(status_with_extra_fields(98), 200);
    assert_eq!(status_with_extra_fields(120), 431);
    assert_whole_file_200(&f.get(&[]), &f.content);
}

// ---------------------------------------------------------------------------------------------
// Product routes
// ---------------------------------------------------------------------------------------------

// Product route (tutorial parity): `/video` is the default movie, a full RFC 9110 §14 resource.
#[test]
fn video_route_serves_the_default_movie_and_follows_big_mp4() {
    let root = TestRoot::new();
    let sample = pattern(4_000, 11);
    old_file(&root, "movie/sample.mp4", &sample);
    let server = TestServer::start(root.path(), &[]);
    let response = server.get("/video", &[]);
    assert_whole_file_200(&response, &sample);
    assert_eq!(response.header("content-type"), Some("video/mp4"));
    // big.mp4 wins as soon as it exists, without a restart.
    let big = pattern(6_000, 12);
    old_file(&root, "movie/big.mp4", &big);
    assert_whole_file_200(&server.get("/video", &[]), &big);
}

// RFC 9110 §14.2 on the product route: same representation, same bytes, same validators.
#[test]
fn video_route_honours_ranges_like_the_file_itself() {
    let root = TestRoot::new();
    let sample = pattern(4_000, 11);
    old_file(&root, "movie/sample.mp4", &sample);
    let server = TestServer::start(root.path(), &[]);
    let video = server.get("/video", &[("Range", "bytes=0-99")]);
    let file = server.get("/movie/sample.mp4", &[("Range", "bytes=0-99")]);
    assert_single_range_206(&video, &sample, 0, 99);
    assert_eq!(video.body, file.body);
    assert_eq!(video.header("content-range"), file.header("content-range"));
    assert_eq!(video.header("etag"), file.header("etag"));
}

// RFC 9110 §15.5.5: no movie, no representation.
#[test]
fn video_route_without_movies_is_404() {
    let root = TestRoot::new();
    let server = TestServer::start(root.path(), &[]);
    assert_eq!(server.get("/video", &[]).status, 404);
}

fn builtin_player() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/html/movie_player.html"
    ))
    .unwrap()
}

// Product route: `/` and `/html/movie_player.html` fall back to the page built into the binary.
#[test]
fn front_page_is_the_builtin_player_when_the_root_has_none() {
    let root = TestRoot::new();
    let server = TestServer::start(root.path(), &[]);
    for target in ["/", "/html/movie_player.html"] {
        let response = server.get(target, &[]);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(response.body == builtin_player(), "{target}");
        assert!(find(&response.body, b"src=\"/video\"").is_some());
    }
}

// Product route: a root's own index.html, then its player page, win over the built-in one.
#[test]
fn front_page_prefers_the_roots_own_pages() {
    let root = TestRoot::new();
    root.file("html/movie_player.html", b"<p>custom player</p>");
    let server = TestServer::start(root.path(), &[]);
    assert_eq!(server.get("/", &[]).body, b"<p>custom player</p>");
    assert_eq!(
        server.get("/html/movie_player.html", &[]).body,
        b"<p>custom player</p>"
    );
    root.file("index.html", b"<p>index</p>");
    assert_eq!(server.get("/", &[]).body, b"<p>index</p>");
}

// Product route: `/_reelserve/movies`, the JSON the player reads (RFC 3986 §2.1 encoded URLs).
#[test]
fn movies_api_lists_movies_with_absolute_urls_and_the_default() {
    let root = TestRoot::new();
    root.file("movie/sample.mp4", &[0; 10]);
    root.file("movie/big.mp4", &[0; 20]);
    root.file("movie/my film.webm", &[0; 5]);
    root.file("movie/notes.txt", b"not a movie");
    root.file("movie/.hidden.mp4", b"hidden");
    let server = TestServer::start(root.path(), &["--mode", "mmap"]);
    let response = server.get("/_reelserve/movies", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    // Files of zeros are no movies: their metadata is unknown (null); tests/movie_library.rs
    // checks the fields for real media.
    let unknown = "\"duration_s\":null,\"width\":null,\"height\":null,\"video_codec\":null,\
                   \"audio_codec\":null,\"bitrate\":null,\"faststart\":null,\"subtitles\":[],\
                   \"poster\":null";
    assert_eq!(
        String::from_utf8(response.body).unwrap(),
        format!(
            "{{\"mode\":\"mmap\",\"default\":\"/movie/big.mp4\",\"movies\":[\
             {{\"name\":\"big.mp4\",\"url\":\"/movie/big.mp4\",\"size\":20,\"type\":\"video/mp4\",{unknown}}},\
             {{\"name\":\"my film.webm\",\"url\":\"/movie/my%20film.webm\",\"size\":5,\"type\":\"video/webm\",{unknown}}},\
             {{\"name\":\"sample.mp4\",\"url\":\"/movie/sample.mp4\",\"size\":10,\"type\":\"video/mp4\",{unknown}}}]}}"
        )
    );
    // Every listed URL is servable.
    assert_eq!(server.get("/movie/my%20film.webm", &[]).status, 200);
}

// ---------------------------------------------------------------------------------------------
// Caching (RFC 9111 §5.2 Cache-Control, as sent by reelserve)
// ---------------------------------------------------------------------------------------------

#[test]
fn rfc9111_5_2_2_1_files_are_public_with_max_age_3600_by_default() {
    let f = Fixture::new();
    assert_eq!(f.get(&[]).header("cache-control"), Some("max-age=3600"));
}

#[test]
fn rfc9111_5_2_2_1_cache_max_age_flag_sets_max_age() {
    let f = Fixture::with_args(&["--cache-max-age", "60"]);
    assert_eq!(f.get(&[]).header("cache-control"), Some("max-age=60"));
}

#[test]
fn rfc9111_5_2_2_4_html_pages_are_no_cache() {
    let root = TestRoot::new();
    root.file("page.html", b"<p>hi</p>");
    let server = TestServer::start(root.path(), &[]);
    for target in ["/page.html", "/"] {
        let response = server.get(target, &[]);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("cache-control"),
            Some("no-cache"),
            "{target}"
        );
    }
}

#[test]
fn rfc9110_15_4_5_304_and_206_carry_etag_and_cache_control() {
    let f = Fixture::new();
    let etag = f.etag();
    let not_modified = f.get(&[("If-None-Match", &etag)]);
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(not_modified.header("cache-control"), Some("max-age=3600"));
    let partial = f.get(&[("Range", "bytes=0-0")]);
    assert_eq!(partial.status, 206);
    assert_eq!(partial.header("etag"), Some(etag.as_str()));
    assert_eq!(partial.header("cache-control"), Some("max-age=3600"));
    assert_eq!(partial.header("last-modified"), Some(MTIME_HTTP));
    let multipart = f.get(&[("Range", "bytes=0-0,9-9")]);
    assert_eq!(multipart.status, 206);
    assert_eq!(multipart.header("etag"), Some(etag.as_str()));
    assert_eq!(multipart.header("cache-control"), Some("max-age=3600"));
}
