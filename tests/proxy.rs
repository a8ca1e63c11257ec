//! reelserve behind a caching proxy: a real nginx, configured with the configuration printed
//! in docs/deployment.md (read out of that file, so the documented example is the tested one),
//! caches ranges of a movie; a repeated range is a cache HIT with identical bytes and never
//! reaches reelserve. Also: what scaling out needs from the validators.
//!
//! nginx runs unprivileged-port, in the foreground (`daemon off; master_process off`), with its
//! own prefix, temp and cache directories in a temporary directory, and is killed on drop.

mod access_log;
mod common;
mod external;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};

use common::*;
use external::curl;

const MIB: usize = 1024 * 1024;

/// The nginx binary: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH).
fn nginx_binary() -> Option<PathBuf> {
    if have("nginx") {
        return Some(PathBuf::from("nginx"));
    }
    let debian = Path::new("/usr/sbin/nginx");
    if debian.exists() {
        return Some(debian.to_path_buf());
    }
    require("nginx");
    None
}

/// Whether `nginx` was built with the slice module the documented configuration uses. Debian's
/// nginx (scripts/install-test-deps.sh) has it, so in CI an nginx without it is a failure.
fn has_slice_module(nginx: &Path) -> bool {
    let mut command = external::command(nginx);
    command.arg("-V");
    let version = external::run(command, Duration::from_secs(10));
    let has = version.stderr.contains("with-http_slice_module");
    if !has && std::env::var_os("CI").is_some() {
        panic!(
            "{} has no slice module; CI installs Debian's nginx, which has",
            nginx.display()
        );
    }
    has
}

/// The ```nginx block of docs/deployment.md.
fn documented_config() -> String {
    let doc = std::fs::read_to_string(external::repo().join("docs/deployment.md")).unwrap();
    let start = doc
        .find("```nginx\n")
        .expect("an ```nginx block in docs/deployment.md")
        + 9;
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

/// Replaces `from` (which must occur exactly once: a changed document must fail here, not
/// silently test something else) with `to`.
fn replace_once(config: &str, from: &str, to: &str) -> String {
    assert_eq!(
        config.matches(from).count(),
        1,
        "expected `{from}` once in the documented nginx config:\n{config}"
    );
    config.replace(from, to)
}

/// How the proxy caches ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caching {
    /// The documented configuration: 1 MiB slices.
    Slices,
    /// The documented fallback for an nginx without the slice module: one cache entry per
    /// distinct client Range.
    PerRange,
}

/// The documented configuration, pointed at `upstreams` (round robin), listening on `port`, caching in
/// `prefix/cache`.
fn proxy_config(caching: Caching, prefix: &Path, port: u16, upstreams: &[SocketAddr]) -> String {
    let mut config = documented_config();
    config = replace_once(
        &config,
        "/var/cache/nginx/reelserve",
        prefix.join("cache").to_str().unwrap(),
    );
    config = replace_once(&config, "listen 80;", &format!("listen 127.0.0.1:{port};"));
    config = replace_once(
        &config,
        "server 127.0.0.1:8000;",
        &upstreams
            .iter()
            .map(|upstream| format!("server {upstream};"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    if caching == Caching::PerRange {
        config = replace_once(&config, "slice 1m;", "");
        config = replace_once(
            &config,
            "proxy_cache_key $uri$is_args$args$slice_range;",
            "proxy_cache_key $uri$is_args$args$http_range;",
        );
        config = replace_once(
            &config,
            "proxy_set_header Range $slice_range;",
            "proxy_set_header Range $http_range; proxy_set_header If-Range $http_if_range;",
        );
    }
    let p = prefix.to_str().unwrap();
    // The main context a packaged nginx.conf would have, made for a foreground test process.
    format!(
        "daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid {p}/nginx.pid;\n\
         error_log {p}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
             access_log {p}/access.log;\n\
             client_body_temp_path {p}/tmp/body;\n\
             proxy_temp_path {p}/tmp/proxy;\n\
             fastcgi_temp_path {p}/tmp/fastcgi;\n\
             uwsgi_temp_path {p}/tmp/uwsgi;\n\
             scgi_temp_path {p}/tmp/scgi;\n\
         {config}\n\
         }}\n"
    )
}

/// A running nginx; killed on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    prefix: tempfile::TempDir,
}

impl Nginx {
    fn start(nginx: &Path, caching: Caching, upstreams: &[SocketAddr]) -> Nginx {
        let mut last_error = String::new();
        // The free port may be taken between asking and binding: try a few.
        for _ in 0..3 {
            let prefix = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(prefix.path().join("tmp")).unwrap();
            let port = external::free_port();
            let config = prefix.path().join("nginx.conf");
            std::fs::write(
                &config,
                proxy_config(caching, prefix.path(), port, upstreams),
            )
            .unwrap();
            let error_log = prefix.path().join("error.log");
            let mut command = external::command(nginx);
            command
                .arg("-p")
                .arg(prefix.path())
                .arg("-c")
                .arg(&config)
                // Before it reads the config, nginx logs to its compiled-in path unless told.
                .arg("-e")
                .arg(&error_log)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(prefix.path().join("stderr")).unwrap());
            let mut child = command.spawn().expect("start nginx");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(addr).is_ok() {
                    return Nginx {
                        child,
                        addr,
                        prefix,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_error = format!(
                "{}{}",
                std::fs::read_to_string(&error_log).unwrap_or_default(),
                std::fs::read_to_string(prefix.path().join("stderr")).unwrap_or_default()
            );
            if !last_error.contains("Address already in use") {
                break;
            }
        }
        panic!("nginx did not start:\n{last_error}");
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl -i` through the proxy, optionally with a Range.
fn get(url: &str, range: Option<&str>) -> Response {
    let mut args = vec!["-i"];
    if let Some(range) = range {
        args.extend(["-r", range]);
    }
    args.push(url);
    let finished = curl(&args).expect_success("curl through nginx");
    Response::parse(&finished.stdout, false)
        .unwrap_or_else(|e| panic!("{e}: {:?}", finished.stdout_text()))
}

fn assert_range(response: &Response, content: &[u8], first: usize, last: usize, cache: &str) {
    assert_eq!(response.status, 206, "{:?}", response.headers);
    assert_eq!(
        response.header("content-range"),
        Some(&*format!("bytes {first}-{last}/{}", content.len()))
    );
    assert!(
        response.body == content[first..=last],
        "bytes {first}-{last} through the proxy differ from the file"
    );
    assert_eq!(
        response.header("x-cache-status"),
        Some(cache),
        "{:?}",
        response.headers
    );
}

/// Body bytes in `curl -i` output, whatever the framing said.
fn received_body_bytes(raw: &[u8]) -> usize {
    find(raw, b"\r\n\r\n").map_or(0, |head| raw.len() - head - 4)
}

fn assert_no_errors(proxy: &Nginx) {
    let log = proxy.error_log();
    assert!(
        !["[error]", "[crit]", "[alert]", "[emerg]"]
            .iter()
            .any(|level| log.contains(level)),
        "nginx logged errors:\n{log}"
    );
}

/// Upstream requests for `path` once the log has settled (a HIT must add none).
fn upstream_requests(server: &TestServer, path: &str) -> Vec<access_log::Access> {
    std::thread::sleep(Duration::from_millis(200));
    access_log::for_path(&server.settled_log(), path)
}

#[test]
fn nginx_slice_cache_serves_a_repeated_range_without_asking_reelserve() {
    let Some(nginx) = nginx_binary() else { return };
    if !require("curl") {
        return;
    }
    if !has_slice_module(&nginx) {
        // The documented configuration needs it; the per-range test below still runs.
        eprintln!("skipping: this nginx has no slice module");
        return;
    }
    let root = TestRoot::new();
    let content = pattern(3 * MIB + 5, 21);
    root.file("movie/clip.mp4", &content);
    let server = TestServer::start(root.path(), &[]);
    let proxy = Nginx::start(&nginx, Caching::Slices, &[server.addr]);
    let clip = proxy.url("/movie/clip.mp4");

    let first = get(&clip, Some("1000-1999"));
    assert_range(&first, &content, 1000, 1999, "MISS");
    let direct = server.get("/movie/clip.mp4", &[]);
    assert_eq!(first.header("etag"), direct.header("etag"));
    let upstream = upstream_requests(&server, "/movie/clip.mp4");
    // The MISS fetched exactly one slice (plus our direct GET above).
    assert_eq!(upstream.len(), 2, "{upstream:?}");
    assert_eq!((upstream[0].status, upstream[0].bytes), (206, MIB as u64));

    let second = get(&clip, Some("1000-1999"));
    assert_range(&second, &content, 1000, 1999, "HIT");
    assert_eq!(second.body, first.body);
    // Another range inside the cached slice is a HIT too: the cache stores slices, not ranges.
    let inside = get(&clip, Some("500000-500099"));
    assert_range(&inside, &content, 500_000, 500_099, "HIT");
    let upstream = upstream_requests(&server, "/movie/clip.mp4");
    assert_eq!(upstream.len(), 2, "a HIT reached reelserve: {upstream:?}");

    // The whole movie through the proxy: slice 0 from the cache, the other three fetched.
    let whole = get(&clip, None);
    assert_eq!(whole.status, 200);
    assert!(
        whole.body == content,
        "whole file through the proxy differs"
    );
    let upstream = upstream_requests(&server, "/movie/clip.mp4");
    assert_eq!(upstream.len(), 2 + 3, "{upstream:?}");
    assert!(
        upstream.iter().all(|a| a.complete && a.status < 400),
        "{upstream:?}"
    );
    assert_no_errors(&proxy);
}

#[test]
fn nginx_per_range_cache_serves_a_repeated_range_without_asking_reelserve() {
    let Some(nginx) = nginx_binary() else { return };
    if !require("curl") {
        return;
    }
    let root = TestRoot::new();
    let content = pattern(2 * MIB, 22);
    root.file("movie/clip.mp4", &content);
    let server = TestServer::start(root.path(), &[]);
    let proxy = Nginx::start(&nginx, Caching::PerRange, &[server.addr]);
    let clip = proxy.url("/movie/clip.mp4");

    let first = get(&clip, Some("1500000-1600000"));
    assert_range(&first, &content, 1_500_000, 1_600_000, "MISS");
    let second = get(&clip, Some("1500000-1600000"));
    assert_range(&second, &content, 1_500_000, 1_600_000, "HIT");
    assert_eq!(second.body, first.body);
    let upstream = upstream_requests(&server, "/movie/clip.mp4");
    assert_eq!(upstream.len(), 1, "a HIT reached reelserve: {upstream:?}");
    assert_eq!((upstream[0].status, upstream[0].bytes), (206, 100_001));
    assert_no_errors(&proxy);
}

// ---- scaling out -----------------------------------------------------------------------------

/// Writes `content` to `root/relative` with the given mtime, as `rsync -t` or an image would.
fn copy_with_mtime(root: &TestRoot, relative: &str, content: &[u8], mtime: SystemTime) {
    let path = root.file(relative, content);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

/// Two instances behind a load balancer serving byte-identical copies with identical mtimes
/// (docs/deployment.md §2) must describe them with the same validators, or a player's
/// `If-Range` sent to the other instance turns a seek into a full download (and nginx's slice
/// module refuses to join slices from the two).
#[test]
fn instances_serving_identical_copies_agree_on_the_etag() {
    if !require("curl") {
        return;
    }
    let content = pattern(MIB, 23);
    let mtime = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    let (root_a, root_b) = (TestRoot::new(), TestRoot::new());
    copy_with_mtime(&root_a, "movie/clip.mp4", &content, mtime);
    copy_with_mtime(&root_b, "movie/clip.mp4", &content, mtime);
    let a = TestServer::start(root_a.path(), &[]);
    let b = TestServer::start(root_b.path(), &[]);

    let from_a = get(&format!("http://{}/movie/clip.mp4", a.addr), Some("0-99"));
    let etag = from_a.header("etag").unwrap().to_string();
    assert_eq!(
        from_a.header("last-modified"),
        get(&format!("http://{}/movie/clip.mp4", b.addr), Some("0-99")).header("last-modified")
    );
    // The player got its first bytes from instance A; its next request lands on B.
    let finished = curl(&[
        "-i",
        "-r",
        "100-199",
        "-H",
        &format!("If-Range: {etag}"),
        &format!("http://{}/movie/clip.mp4", b.addr),
    ])
    .expect_success("curl If-Range");
    let from_b = Response::parse(&finished.stdout, false).unwrap();
    assert_eq!(
        (from_b.status, from_b.header("etag")),
        (206, Some(etag.as_str())),
        "instance B answered the If-Range for A's ETag with {} and ETag {:?} ({} bytes instead \
         of 100): identical files, identical mtimes, different ETags",
        from_b.status,
        from_b.header("etag"),
        from_b.body.len()
    );
}

/// The documented slice cache in front of two instances (round robin) that serve identical
/// copies: the slices of one movie come from both, and nginx joins them only if both
/// instances send the same ETag ("etag mismatch in slice response" otherwise, and the client
/// gets a truncated body).
#[test]
fn nginx_slice_cache_joins_slices_from_two_instances() {
    let Some(nginx) = nginx_binary() else { return };
    if !require("curl") || !has_slice_module(&nginx) {
        return;
    }
    let content = pattern(3 * MIB, 24);
    let mtime = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
    let (root_a, root_b) = (TestRoot::new(), TestRoot::new());
    copy_with_mtime(&root_a, "movie/clip.mp4", &content, mtime);
    copy_with_mtime(&root_b, "movie/clip.mp4", &content, mtime);
    let a = TestServer::start(root_a.path(), &[]);
    let b = TestServer::start(root_b.path(), &[]);
    let proxy = Nginx::start(&nginx, Caching::Slices, &[a.addr, b.addr]);

    let finished = curl(&["-i", &proxy.url("/movie/clip.mp4")]);
    let (from_a, from_b) = (
        upstream_requests(&a, "/movie/clip.mp4").len(),
        upstream_requests(&b, "/movie/clip.mp4").len(),
    );
    assert!(
        from_a > 0 && from_b > 0,
        "round robin used one instance only"
    );
    let got = Response::parse(&finished.stdout, false);
    assert!(
        finished.status.success() && got.as_ref().is_ok_and(|r| r.body == content),
        "whole movie through a slice cache over two instances: curl {} ({}), {} of {} bytes; \
         nginx error log:\n{}",
        finished.status,
        finished.stderr.trim(),
        received_body_bytes(&finished.stdout),
        content.len(),
        proxy.error_log()
    );
    assert_no_errors(&proxy);
}

/// Signed links behind the documented cache (README, "Putting it on the internet"): answers to
/// signed requests say `Cache-Control: private` and every link is its own cache key, so the
/// proxy passes them through and stores nothing. Correct bytes, every request reaches
/// reelserve, and a request without a link is refused through the proxy too.
#[test]
fn signed_links_pass_through_the_cache_and_are_never_stored() {
    let Some(nginx) = nginx_binary() else { return };
    if !require("curl") || !has_slice_module(&nginx) {
        return;
    }
    let root = TestRoot::new();
    let content = pattern(2 * MIB + 7, 5);
    root.file("movie/clip.mp4", &content);
    let keys = root.file(
        "keys",
        b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    );
    let keys = keys.to_str().unwrap();
    let server = TestServer::start(root.path(), &["--signing-key-file", keys]);
    let proxy = Nginx::start(&nginx, Caching::Slices, &[server.addr]);
    let mut sign = external::command(env!("CARGO_BIN_EXE_reelserve"));
    sign.args(["sign", "/movie/clip.mp4", "--base-url", &proxy.url("")]);
    sign.args(["--signing-key-file", keys]);
    let link = external::run(sign, Duration::from_secs(10))
        .expect_success("reelserve sign")
        .stdout_text()
        .lines()
        .last()
        .unwrap()
        .to_string();

    for _ in 0..2 {
        let response = get(&link, Some("1000-1999"));
        assert_range(&response, &content, 1000, 1999, "MISS");
        assert!(response
            .header("cache-control")
            .is_some_and(|c| c.starts_with("private")));
    }
    // The stats that settle the log need a link here: wait for the lines, then for a flush
    // interval more (the access log writes at least once a second) so a third would show.
    server.wait_log(|log| access_log::for_path(log, "/movie/clip.mp4").len() >= 2);
    std::thread::sleep(Duration::from_millis(1200));
    let upstream = access_log::for_path(&server.log(), "/movie/clip.mp4");
    assert_eq!(
        upstream.len(),
        2,
        "a signed answer was served from the cache: {upstream:?}"
    );
    assert_eq!(get(&proxy.url("/movie/clip.mp4"), Some("0-9")).status, 403);
    assert_no_errors(&proxy);
}
