//! Running on the open internet, with real clients against the real binary: signed, expiring
//! links (curl, `reelserve sign`), per-client connection limits (curl bound to 127.0.0.2),
//! CORS headers and preflights, and the Prometheus metrics listener (`promtool check metrics`).

mod common;
mod external;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use external::{curl, Finished};
use reelserve::signed_link::{ClientNet, Grant, KeyRing};

/// Two 32-byte keys, hex and base64, as an operator would write them.
const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_B: &str = "c2Vjb25kIGtleSBzZWNvbmQga2V5IHNlY29uZCBrZXkh";

/// A root with a movie, its subtitles, a file outside the movie's scope and robots.txt.
fn movie_root() -> (TestRoot, Vec<u8>) {
    let root = TestRoot::new();
    let movie = pattern(100_000, 7);
    root.file("movie/a.mp4", &movie);
    root.file("movie/a.en.vtt", b"WEBVTT\n");
    root.file("movie/b.mp4", b"another movie");
    root.file("secret.txt", b"not for you");
    root.file("robots.txt", b"User-agent: *\nDisallow: /\n");
    (root, movie)
}

fn key_file(dir: &Path, keys: &[&str]) -> PathBuf {
    let path = dir.join(format!("keys-{}", keys.len()));
    std::fs::write(&path, keys.join("\n") + "\n").unwrap();
    path
}

/// `reelserve sign ARGS...` and its last line of output (the link).
fn sign(args: &[&str]) -> String {
    let mut command = external::command(env!("CARGO_BIN_EXE_reelserve"));
    command.arg("sign").args(args);
    let run = external::run(command, Duration::from_secs(10)).expect_success("reelserve sign");
    let out = run.stdout_text();
    out.lines().last().unwrap_or_default().to_string()
}

/// A link for `path` on `server`, made by `reelserve sign` with `keys`.
fn signed_url(server: &TestServer, keys: &Path, path: &str, extra: &[&str]) -> String {
    let base = server.url("");
    let mut args = vec![
        path,
        "--base-url",
        &base,
        "--signing-key-file",
        keys.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sign(&args)
}

/// The query of a link made in-process, for tokens `reelserve sign` would not make (expired).
fn query_for(keys: &[&str], grant: &Grant) -> String {
    KeyRing::parse(&keys.join("\n")).unwrap().sign(grant)
}

/// The query of a link for `/movie/`, signed with [`KEY_A`], that expired a minute ago.
fn expired_query() -> String {
    query_for(
        &[KEY_A],
        &Grant {
            expires: now() - 60,
            scope: "/movie/".into(),
            client: None,
        },
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// curl with the response head in the output, parsed.
fn fetch(url: &str, args: &[&str]) -> Response {
    let mut all = vec!["-i"];
    all.extend_from_slice(args);
    all.push(url);
    let run = curl(&all);
    assert!(run.status.success(), "curl {url} failed: {}", run.stderr);
    Response::parse(&run.stdout, args.contains(&"-I"))
        .unwrap_or_else(|e| panic!("{e}: {}", run.stdout_text()))
}

fn body_text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

#[test]
fn a_signed_link_gives_200_and_206_and_is_private() {
    let (root, movie) = movie_root();
    let keys = key_file(root.path(), &[KEY_A, KEY_B]);
    let server = TestServer::start(root.path(), &["--signing-key-file", keys.to_str().unwrap()]);
    let url = signed_url(&server, &keys, "/movie/a.mp4", &[]);
    assert!(url.contains("exp=") && url.contains("sig="), "{url}");

    let whole = fetch(&url, &[]);
    assert_eq!(whole.status, 200, "{}", body_text(&whole));
    assert_eq!(whole.body, movie);
    let cache = whole.header("cache-control").unwrap_or_default();
    assert!(cache.starts_with("private"), "Cache-Control: {cache}");

    let part = fetch(&url, &["-H", "Range: bytes=100-199"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 100-199/100000"));
    assert_eq!(part.body, &movie[100..200]);

    // Conditionals still work under a token: the ETag revalidates to a 304.
    let etag = whole.header("etag").unwrap().to_string();
    let revalidated = fetch(&url, &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(revalidated.status, 304);
}

#[test]
fn refused_links_say_why_and_are_logged() {
    let (root, _) = movie_root();
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(root.path(), &["--signing-key-file", keys.to_str().unwrap()]);
    let url = signed_url(&server, &keys, "/movie/a.mp4", &[]);
    let query = url.split_once('?').unwrap().1.to_string();

    // No token at all.
    let missing = fetch(&server.url("/movie/a.mp4"), &[]);
    assert_eq!(missing.status, 403);
    assert!(body_text(&missing).contains("needs a signed link"));

    // The signature altered (first character of it changed).
    let at = url.find("sig=").unwrap() + 4;
    let mut bytes = url.clone().into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let forged = fetch(&String::from_utf8(bytes).unwrap(), &[]);
    assert_eq!(forged.status, 403);
    assert!(
        body_text(&forged).contains("signature"),
        "{}",
        body_text(&forged)
    );

    // The expiry pushed back by a day, and the scope widened: both break the signature.
    let exp: u64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("exp="))
        .unwrap()
        .parse()
        .unwrap();
    let later = query.replace(&format!("exp={exp}"), &format!("exp={}", exp + 86_400));
    let tampered_expiry = fetch(&server.url(&format!("/movie/a.mp4?{later}")), &[]);
    assert_eq!(tampered_expiry.status, 403);
    assert!(body_text(&tampered_expiry).contains("signature"));
    let wider = query.replace("scope=/movie/a.mp4", "scope=/");
    assert_ne!(wider, query);
    let tampered_scope = fetch(&server.url(&format!("/secret.txt?{wider}")), &[]);
    assert_eq!(tampered_scope.status, 403);
    assert!(body_text(&tampered_scope).contains("signature"));

    // A genuine token on another path.
    let elsewhere = fetch(&server.url(&format!("/movie/b.mp4?{query}")), &[]);
    assert_eq!(elsewhere.status, 403);
    assert!(body_text(&elsewhere).contains("does not cover this path"));
    let climbing = fetch(
        &server.url(&format!("/movie/a.mp4/../../secret.txt?{query}")),
        &["--path-as-is"],
    );
    assert!(matches!(climbing.status, 400 | 403), "{}", climbing.status);

    // Expired a minute ago: 410 Gone.
    let expired = expired_query();
    let gone = fetch(&server.url(&format!("/movie/a.mp4?{expired}")), &[]);
    assert_eq!(gone.status, 410);
    assert!(body_text(&gone).contains("expired"));

    // Malformed tokens.
    for bad in [
        "exp=soon&scope=/&sig=AAAA",
        "exp=1&scope=/",
        "exp=99999999999999999999999&scope=/&sig=x",
    ] {
        let refused = fetch(&server.url(&format!("/movie/a.mp4?{bad}")), &[]);
        assert_eq!(refused.status, 403, "{bad}");
        assert!(body_text(&refused).contains("malformed"), "{bad}");
    }

    // The exempt paths need no token.
    assert_eq!(fetch(&server.url("/robots.txt"), &[]).status, 200);

    let reasons = [
        "missing",
        "tampered",
        "out_of_scope",
        "expired",
        "malformed",
    ];
    // Log lines leave through the log's own thread: wait for the last ones.
    let log = server.wait_log(|log| reasons.iter().all(|reason| log.contains(reason)));
    for reason in reasons {
        assert!(
            log.contains("signed link refused") && log.contains(reason),
            "no {reason} in the log:\n{log}"
        );
    }
}

#[test]
fn a_64_kib_query_string_gets_a_clear_4xx() {
    let (root, _) = movie_root();
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(root.path(), &["--signing-key-file", keys.to_str().unwrap()]);
    let huge = format!("/movie/a.mp4?sig={}", "A".repeat(64 * 1024));
    let raw = raw_exchange(
        server.addr,
        format!("GET {huge} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let response = Response::parse(&raw, false).unwrap();
    assert!(
        (400..500).contains(&response.status),
        "status {}",
        response.status
    );
    // The server is still there.
    assert_eq!(fetch(&server.url("/robots.txt"), &[]).status, 200);
}

#[test]
fn a_link_bound_to_an_address_refuses_other_clients() {
    let (root, movie) = movie_root();
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(root.path(), &["--signing-key-file", keys.to_str().unwrap()]);
    let url = signed_url(&server, &keys, "/movie/", &["--ip", "127.0.0.1"]);
    let url = url.replacen("/movie/?", "/movie/a.mp4?", 1);

    let from_1 = fetch(&url, &["--interface", "127.0.0.1"]);
    assert_eq!(from_1.status, 200);
    assert_eq!(from_1.body, movie);
    let from_2 = fetch(&url, &["--interface", "127.0.0.2"]);
    assert_eq!(from_2.status, 403);
    assert!(body_text(&from_2).contains("another client address"));

    // A network covers its members.
    let net = signed_url(&server, &keys, "/movie/a.mp4", &["--ip", "127.0.0.0/8"]);
    assert_eq!(fetch(&net, &["--interface", "127.0.0.2"]).status, 200);
}

#[test]
fn keys_rotate_second_key_verifies_and_sighup_retires_one() {
    let (root, _) = movie_root();
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("server-keys");
    std::fs::write(&both, format!("{KEY_A}\n{KEY_B}\n")).unwrap();
    let only_b = key_file(dir.path(), &[KEY_B]);
    let server = TestServer::start(root.path(), &["--signing-key-file", both.to_str().unwrap()]);

    let by_first = signed_url(&server, &both, "/movie/a.mp4", &[]);
    let by_second = signed_url(&server, &only_b, "/movie/a.mp4", &[]);
    assert_ne!(by_first, by_second);
    assert_eq!(fetch(&by_first, &[]).status, 200);
    assert_eq!(
        fetch(&by_second, &[]).status,
        200,
        "a link signed with the second key"
    );

    // Retire KEY_B: rewrite the file, SIGHUP, wait for the reload.
    std::fs::write(&both, format!("{KEY_A}\n")).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_log(&server, "signing keys reloaded");
    let refused = fetch(&by_second, &[]);
    assert_eq!(refused.status, 403);
    assert!(body_text(&refused).contains("signature"));
    assert_eq!(fetch(&by_first, &[]).status, 200);

    // A broken file on SIGHUP keeps the keys in force.
    std::fs::write(&both, "not a key\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    wait_for_log(&server, "NOT reloaded");
    assert_eq!(fetch(&by_first, &[]).status, 200);
}

fn wait_for_log(server: &TestServer, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the server binary with `args`, expecting it to refuse to start.
fn startup_error(root: &Path, args: &[&str]) -> String {
    let mut command = external::command(env!("CARGO_BIN_EXE_reelserve"));
    command
        .arg("--root")
        .arg(root)
        .args(["--addr", "127.0.0.1:0"])
        .args(args);
    let run: Finished = external::run(command, Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(2), "stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "it started: {}", run.stdout_text());
    run.stderr
}

#[test]
fn unusable_key_files_are_clear_startup_errors() {
    let root = TestRoot::new();
    let dir = root.path();
    let missing = startup_error(dir, &["--signing-key-file", "/nonexistent/keys"]);
    assert!(
        missing.contains("cannot read signing key file /nonexistent/keys"),
        "{missing}"
    );
    std::fs::write(dir.join("empty"), "\n# nothing yet\n").unwrap();
    let empty = startup_error(
        dir,
        &["--signing-key-file", dir.join("empty").to_str().unwrap()],
    );
    assert!(empty.contains("holds no key"), "{empty}");
    std::fs::write(dir.join("short"), "c2hvcnQga2V5\n").unwrap();
    let short = startup_error(
        dir,
        &["--signing-key-file", dir.join("short").to_str().unwrap()],
    );
    assert!(
        short.contains("line 1") && short.contains("too short"),
        "{short}"
    );
    std::fs::write(dir.join("bad"), format!("{KEY_A}\nthis is not base64!\n")).unwrap();
    let bad = startup_error(
        dir,
        &["--signing-key-file", dir.join("bad").to_str().unwrap()],
    );
    assert!(
        bad.contains("line 2") && bad.contains("neither hex nor base64"),
        "{bad}"
    );
    let cors = startup_error(dir, &["--cors-origin", "player.example/"]);
    assert!(cors.contains("is not an origin"), "{cors}");
}

#[test]
fn sign_prints_the_link_last_and_refuses_without_a_key() {
    let root = TestRoot::new();
    let keys = key_file(root.path(), &[KEY_A]);
    let link = sign(&[
        "/movie/my film.mp4",
        "--ttl",
        "45m",
        "--ip",
        "2001:db8::/64",
        "--base-url",
        "https://films.example/",
        "--signing-key-file",
        keys.to_str().unwrap(),
    ]);
    assert!(
        link.starts_with("https://films.example/movie/my%20film.mp4?exp="),
        "{link}"
    );
    assert!(link.contains("&ip=2001%3Adb8%3A%3A/64&"), "{link}");
    let query = link.split_once('?').unwrap().1;
    let granted = reelserve::signed_link::verify(
        Some(query),
        "/movie/my%20film.mp4",
        "2001:db8::7".parse().unwrap(),
        now(),
        &KeyRing::parse(KEY_A).unwrap(),
    )
    .unwrap();
    assert!(granted.expires >= now() + 44 * 60 && granted.expires <= now() + 45 * 60);
    assert_eq!(granted.client, ClientNet::parse("2001:db8::/64"));

    let mut command = external::command(env!("CARGO_BIN_EXE_reelserve"));
    command
        .args(["sign", "/a"])
        .env_remove("REELSERVE_SIGNING_KEY_FILE");
    let run = external::run(command, Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stderr.contains("--signing-key-file"), "{}", run.stderr);
}

#[test]
fn the_player_page_through_a_signed_root_passes_its_token_on() {
    let root = TestRoot::new();
    root.file("movie/a.mp4", &pattern(5000, 1));
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(root.path(), &["--signing-key-file", keys.to_str().unwrap()]);
    let url = signed_url(&server, &keys, "/", &[]);
    let page = fetch(&url, &[]);
    assert_eq!(page.status, 200);
    assert!(body_text(&page).contains("/html/movie_player.js"));
    // The page's script (served without a token, like the favicon) signs every URL it builds.
    let script = fetch(&server.url("/html/movie_player.js"), &[]);
    assert_eq!(script.status, 200);
    assert!(
        body_text(&script).contains("signed(\"/_reelserve/movies\")"),
        "the page does not sign its URLs"
    );
    assert_eq!(
        page.header("cache-control"),
        Some("private, no-cache"),
        "a signed page is private and still revalidated"
    );
    // What the page's script builds: the same query on the list and on the movie.
    let query = url.split_once('?').unwrap().1;
    let list = fetch(&server.url(&format!("/_reelserve/movies?{query}")), &[]);
    assert_eq!(list.status, 200);
    assert!(body_text(&list).contains("/movie/a.mp4"));
    let movie = fetch(
        &server.url(&format!("/movie/a.mp4?{query}")),
        &["-H", "Range: bytes=0-9"],
    );
    assert_eq!(movie.status, 206);
}

#[test]
fn a_directory_redirect_keeps_the_signed_query() {
    let (root, _) = movie_root();
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(root.path(), &["--signing-key-file", keys.to_str().unwrap()]);
    let url = signed_url(&server, &keys, "/movie", &[]);
    let redirect = fetch(&url, &[]);
    assert_eq!(redirect.status, 301);
    let query = url.split_once('?').unwrap().1;
    assert_eq!(
        redirect.header("location"),
        Some(&*format!("/movie/?{query}"))
    );
    let followed = curl(&["-L", "-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert_eq!(followed.stdout_text(), "200", "{}", followed.stderr);
}

/// A listing opened through a signed link carries the token on its links, so it can be browsed:
/// every link of the page works with it, and none works without it.
#[test]
fn a_listing_opened_through_a_signed_link_carries_the_token_on() {
    let (root, _) = movie_root();
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(root.path(), &["--signing-key-file", keys.to_str().unwrap()]);
    let url = signed_url(&server, &keys, "/movie/", &["--scope", "/movie/"]);
    let listing = fetch(&url, &[]);
    assert_eq!(listing.status, 200);
    let html = body_text(&listing);
    let query = url.split_once('?').unwrap().1.replace('&', "&amp;");
    let link = format!("./a.mp4?{query}");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    let movie = fetch(
        &server.url(&format!("/movie/{}", &link[2..].replace("&amp;", "&"))),
        &[],
    );
    assert_eq!(movie.status, 200);
    assert_eq!(fetch(&server.url("/movie/a.mp4"), &[]).status, 403);
}

/// A keep-alive connection from `source` that has been served one response.
fn served_connection(server: SocketAddr, source: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Ok((response, _)) = Response::parse_prefix(&raw, false) {
            assert_eq!(response.status, 200, "a held connection was not served");
            return stream;
        }
        let n = stream
            .read(&mut buf)
            .expect("response to a held connection");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn per_ip_limit_answers_429_to_the_excess_and_serves_others() {
    let (root, _) = movie_root();
    let server = TestServer::start(
        root.path(),
        &["--max-connections-per-ip", "8", "--max-connections", "12"],
    );
    let robots = server.url("/robots.txt");

    // 20 connections from 127.0.0.2: the first 8 are served and stay open...
    let held: Vec<TcpStream> = (0..8)
        .map(|_| served_connection(server.addr, "127.0.0.2"))
        .collect();
    // ...the next 12 are answered 429 with Retry-After, and closed.
    for attempt in 0..12 {
        let refused = fetch(&robots, &["--interface", "127.0.0.2"]);
        assert_eq!(refused.status, 429, "connection {}", attempt + 9);
        assert!(refused.header("retry-after").is_some());
        assert!(body_text(&refused).contains("too many connections"));
    }
    // 127.0.0.1 is served at once: the 12 refusals took none of the 12 --max-connections
    // slots (8 are held).
    let started = Instant::now();
    let other = fetch(&robots, &["--interface", "127.0.0.1", "--max-time", "2"]);
    assert_eq!(other.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Once 127.0.0.2 lets go, it is served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = fetch(&robots, &["--interface", "127.0.0.2"]);
        if again.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "127.0.0.2 still refused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_cors_flag_nothing_changes() {
    let (root, _) = movie_root();
    let server = TestServer::start(root.path(), &[]);
    let get = fetch(
        &server.url("/movie/a.mp4"),
        &["-H", "Origin: http://player.test"],
    );
    assert_eq!(get.status, 200);
    assert!(get.header("access-control-allow-origin").is_none());
    assert!(get.header("vary").is_none());
    let preflight = fetch(
        &server.url("/movie/a.mp4"),
        &[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: http://player.test",
            "-H",
            "Access-Control-Request-Method: GET",
        ],
    );
    assert_eq!(preflight.status, 405);
}

#[test]
fn cors_allows_listed_origins_and_answers_their_preflights() {
    let (root, _) = movie_root();
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(
        root.path(),
        &[
            "--cors-origin",
            "http://player.test",
            "--cors-origin",
            "http://other.test:8080",
            "--signing-key-file",
            keys.to_str().unwrap(),
        ],
    );
    let url = signed_url(&server, &keys, "/movie/a.mp4", &[]);

    let allowed = fetch(
        &url,
        &["-H", "Origin: http://player.test", "-H", "Range: bytes=0-9"],
    );
    assert_eq!(allowed.status, 206);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://player.test")
    );
    assert_eq!(allowed.header("vary"), Some("Origin"));
    assert_eq!(
        allowed.header("access-control-expose-headers"),
        Some("Content-Range, Accept-Ranges, Content-Length, ETag")
    );

    let stranger = fetch(&url, &["-H", "Origin: http://evil.test"]);
    assert_eq!(stranger.status, 200);
    assert!(stranger.header("access-control-allow-origin").is_none());
    assert_eq!(stranger.header("vary"), Some("Origin"));

    // A preflight carries no token and needs none.
    let preflight = |origin: &str| {
        fetch(
            &server.url("/movie/a.mp4"),
            &[
                "-X",
                "OPTIONS",
                "-H",
                &format!("Origin: {origin}"),
                "-H",
                "Access-Control-Request-Method: GET",
                "-H",
                "Access-Control-Request-Headers: range",
            ],
        )
    };
    let answered = preflight("http://other.test:8080");
    assert_eq!(answered.status, 204);
    assert_eq!(
        answered.header("access-control-allow-origin"),
        Some("http://other.test:8080")
    );
    assert_eq!(
        answered.header("access-control-allow-methods"),
        Some("GET, HEAD")
    );
    assert_eq!(
        answered.header("access-control-allow-headers"),
        Some("Range, If-Range, If-None-Match, If-Modified-Since")
    );
    assert!(answered.header("access-control-max-age").is_some());
    // Another origin's preflight is not answered as one (here the missing token refuses it;
    // without signed links it is the usual 405): the browser blocks the request.
    let unanswered = preflight("http://evil.test");
    assert_eq!(unanswered.status, 403);
    assert!(unanswered.header("access-control-allow-origin").is_none());

    // Refusals carry the CORS fields too, so a player can read why.
    let refused = fetch(
        &server.url("/movie/a.mp4"),
        &["-H", "Origin: http://player.test"],
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("http://player.test")
    );
}

#[test]
fn cors_star_allows_every_origin() {
    let (root, _) = movie_root();
    let server = TestServer::start(root.path(), &["--cors-origin", "*"]);
    let get = fetch(
        &server.url("/movie/a.mp4"),
        &["-H", "Origin: https://anyone.example"],
    );
    assert_eq!(get.header("access-control-allow-origin"), Some("*"));
}

/// The metrics address from the server's log.
fn metrics_url(server: &TestServer) -> String {
    wait_for_log(server, "metrics on http://");
    let log = server.log();
    let start = log.find("metrics on http://").unwrap() + "metrics on ".len();
    let url = log[start..].split_whitespace().next().unwrap();
    url.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// `name{labels} value` from an exposition, 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn scrape(url: &str) -> String {
    let run = curl(&[url]);
    assert!(run.status.success(), "{}", run.stderr);
    run.stdout_text()
}

#[test]
fn metrics_are_on_their_own_port_and_move_with_requests() {
    let (root, _) = movie_root();
    sparse(&root, "movie/big.bin", 256 << 20);
    let keys = key_file(root.path(), &[KEY_A]);
    let server = TestServer::start(
        root.path(),
        &[
            "--metrics-addr",
            "127.0.0.1:0",
            "--signing-key-file",
            keys.to_str().unwrap(),
            "--max-connections-per-ip",
            "2",
        ],
    );
    let metrics = metrics_url(&server);
    assert!(metrics.ends_with("/metrics"), "{metrics}");
    let before = scrape(&metrics);

    let url = signed_url(&server, &keys, "/movie/", &[]);
    let query = url.split_once('?').unwrap().1;
    assert_eq!(
        fetch(&server.url(&format!("/movie/a.mp4?{query}")), &[]).status,
        200
    );
    assert_eq!(
        fetch(
            &server.url(&format!("/movie/a.mp4?{query}")),
            &["-H", "Range: bytes=0-0"]
        )
        .status,
        206
    );
    assert_eq!(
        fetch(&server.url(&format!("/movie/none.mp4?{query}")), &[]).status,
        404
    );
    assert_eq!(fetch(&server.url("/movie/a.mp4"), &[]).status, 403);
    let expired = expired_query();
    assert_eq!(
        fetch(&server.url(&format!("/movie/a.mp4?{expired}")), &[]).status,
        410
    );
    // A download cut short: read a little of a big file and hang up.
    {
        let mut stream = connect(server.addr);
        stream
            .write_all(format!("GET /movie/big.bin?{query} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 65536];
        let _ = stream.read(&mut buf).unwrap();
    }
    // Two held connections, a third refused with 429 (once the earlier ones are gone).
    wait_until(&metrics, |text| {
        sample(text, "reelserve_open_connections") == 0.0
    });
    let held: Vec<TcpStream> = (0..2)
        .map(|_| served_connection(server.addr, "127.0.0.1"))
        .collect();
    let holding = scrape(&metrics);
    assert_eq!(
        sample(&holding, "reelserve_open_connections"),
        2.0,
        "{holding}"
    );
    assert_eq!(fetch(&server.url("/robots.txt"), &[]).status, 429);

    // The metrics are not on the public port.
    drop(held);
    // Access lines are counted as the writer writes them, within a second (buffered).
    let lines = "reelserve_access_log_lines_total";
    let after = wait_until(&metrics, |text| {
        sample(text, "reelserve_responses_cut_short_total") >= 1.0
            && sample(text, "reelserve_open_connections") == 0.0
            && sample(text, lines) - sample(&before, lines) >= 7.0
    });
    let public = fetch(&server.url("/metrics"), &[]);
    assert_ne!(public.status, 200);

    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert!(
        moved("reelserve_requests_total{class=\"2xx\"}") >= 2.0,
        "{after}"
    );
    assert!(moved("reelserve_requests_total{class=\"4xx\"}") >= 2.0);
    assert_eq!(
        moved("reelserve_refusals_total{status=\"403\",reason=\"missing\"}"),
        1.0
    );
    assert_eq!(
        moved("reelserve_refusals_total{status=\"410\",reason=\"expired\"}"),
        1.0
    );
    assert_eq!(
        moved("reelserve_refusals_total{status=\"429\",reason=\"too_many_connections\"}"),
        1.0
    );
    assert!(moved("reelserve_file_bytes_total{path=\"sendfile\"}") >= 100_000.0);
    assert!(moved("reelserve_time_to_first_byte_seconds_count") >= 4.0);
    // Seven requests on the public port were logged above (the 429 is refused before any
    // request); none was dropped.
    assert_eq!(moved("reelserve_access_log_dropped_total"), 0.0);
    // Anything else on the metrics port is the server's own 404, with its safety fields.
    let elsewhere = fetch(&metrics.replace("/metrics", "/movie/a.mp4"), &[]);
    assert_eq!(elsewhere.status, 404);
    assert_eq!(elsewhere.header("x-content-type-options"), Some("nosniff"));

    if require("promtool") {
        let mut check = external::command("promtool");
        check.args(["check", "metrics"]);
        let file = root.path().join("scrape.txt");
        std::fs::write(&file, &after).unwrap();
        check.stdin(std::fs::File::open(&file).unwrap());
        let run = external::run(check, Duration::from_secs(10));
        assert!(
            run.status.success(),
            "promtool check metrics: {}\n{}\n{after}",
            run.stderr,
            run.stdout_text()
        );
    }
}

/// Every way file bytes leave is counted under its own `path`: `writev` from a mapping
/// (`--mode mmap`) and copies through user space (`--mode chunked`, `--mode read-all`);
/// `sendfile` is counted in the test above.
#[test]
fn metrics_count_file_bytes_by_the_path_they_took() {
    let (root, movie) = movie_root();
    for (mode, path) in [
        ("mmap", "writev_mapped"),
        ("chunked", "copied"),
        ("read-all", "copied"),
    ] {
        let server = TestServer::start(
            root.path(),
            &["--metrics-addr", "127.0.0.1:0", "--mode", mode],
        );
        let metrics = metrics_url(&server);
        let got = fetch(&server.url("/movie/a.mp4"), &[]);
        assert_eq!((got.status, got.body.len()), (200, movie.len()), "{mode}");
        let series = format!("reelserve_file_bytes_total{{path=\"{path}\"}}");
        let after = wait_until(&metrics, |text| sample(text, &series) >= movie.len() as f64);
        assert_eq!(
            sample(&after, "reelserve_file_bytes_total{path=\"sendfile\"}"),
            0.0,
            "{mode}: {after}"
        );
    }
}

/// Scrapes until `settled` holds (5 s at most); returns that scrape.
fn wait_until(metrics: &str, settled: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = scrape(metrics);
        if settled(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "metrics did not settle:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sparse(root: &TestRoot, name: &str, len: u64) {
    let file = std::fs::File::create(root.path().join(name)).unwrap();
    file.set_len(len).unwrap();
}
