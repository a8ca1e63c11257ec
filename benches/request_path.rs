//! What does a request cost before and around the file bytes? The sans-IO decisions every
//! request goes through (`Range`, preconditions, path decoding), for the headers players send and
//! for hostile ones, then a whole small GET through the real server, and the same GET through a
//! server in this process, where a counting allocator says how many allocations it costs.
//!
//! The hostile cases are there to show the work stays linear and small: a 16 KiB header (the
//! server's head limit) must cost microseconds, never milliseconds.
//!
//! Run: `cargo bench --bench request_path` (`REELSERVE_BENCH_QUICK=1` for short measurements).

mod live_server;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use reelserve::conditional::{self, MethodKind, RequestPreconditions, Validators};
use reelserve::range;
use reelserve::resolve;

use live_server::{make_file, quick, server_modes, KeepAliveClient, LiveServer};

/// Length of the representation ranges are resolved against: a 1 GiB movie.
const MOVIE_LEN: u64 = 1 << 30;

/// The file of the round-trip group.
const SMALL_FILE_SIZE: usize = 1024;

/// Warm-up and measurement per benchmark (about 20 benchmarks: ~1.5 minutes by default).
const WARM_UP: Duration = Duration::from_millis(500);
const MEASUREMENT: Duration = Duration::from_secs(2);
const QUICK_WARM_UP: Duration = Duration::from_millis(200);
const QUICK_MEASUREMENT: Duration = Duration::from_millis(500);

/// `Range` values: (kind, label, header).
fn range_headers() -> Vec<(&'static str, &'static str, String)> {
    let many_overlapping: Vec<String> = (0..range::MAX_RANGE_SPECS)
        .map(|i| format!("{}-", i * 10))
        .collect();
    let too_many: Vec<String> = (0..=range::MAX_RANGE_SPECS)
        .map(|i| format!("{}-{}", i * 2, i * 2))
        .collect();
    vec![
        // What a <video> element sends first, then on every seek.
        ("typical", "open-ended", "bytes=0-".to_string()),
        ("typical", "seek", "bytes=734003200-".to_string()),
        (
            "typical",
            "closed-1MiB",
            "bytes=1048576-2097151".to_string(),
        ),
        ("typical", "suffix", "bytes=-1000000".to_string()),
        // The shapes of CVE-2011-3192 and friends.
        (
            "hostile",
            "64-overlapping",
            format!("bytes={}", many_overlapping.join(",")),
        ),
        (
            "hostile",
            "65-specs-rejected",
            format!("bytes={}", too_many.join(",")),
        ),
        (
            "hostile",
            "16KiB-whitespace",
            format!("bytes={}0-1", " ".repeat(16 * 1024)),
        ),
        (
            "hostile",
            "4KiB-digits",
            format!("bytes={}-", "9".repeat(4096)),
        ),
    ]
}

fn bench_range(c: &mut Criterion) {
    let mut group = c.benchmark_group("range/parse+resolve");
    for (kind, label, header) in range_headers() {
        group.throughput(Throughput::Bytes(header.len() as u64));
        group.bench_function(BenchmarkId::new(kind, label), |b| {
            b.iter(|| {
                let resolved = range::parse(black_box(header.as_bytes()))
                    .map(|set| set.resolve(black_box(MOVIE_LEN)));
                black_box(resolved)
            })
        });
    }
    group.finish();
}

fn bench_conditional(c: &mut Criterion) {
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let validators = Validators::from_file_identity(None, MOVIE_LEN, Some(modified));
    let etag = validators.etag_header();
    let date = httpdate::fmt_http_date(modified);
    let now = modified + Duration::from_secs(3600);
    let other_tags: Vec<String> = (0..200).map(|i| format!("\"other-tag-{i}\"")).collect();
    let long_list = other_tags.join(", ");
    let etag_last = format!("{long_list}, {etag}");
    let garbage_date = "x".repeat(8 * 1024);

    // (kind, label, preconditions)
    let cases: Vec<(&str, &str, RequestPreconditions)> = vec![
        ("typical", "none", RequestPreconditions::default()),
        (
            "typical",
            "if-none-match-304",
            RequestPreconditions {
                if_none_match: Some(&etag),
                ..Default::default()
            },
        ),
        (
            "typical",
            "if-modified-since-304",
            RequestPreconditions {
                if_modified_since: Some(&date),
                ..Default::default()
            },
        ),
        (
            "typical",
            "if-range-etag",
            RequestPreconditions {
                if_range: Some(&etag),
                has_range: true,
                ..Default::default()
            },
        ),
        (
            "hostile",
            "if-none-match-200-tags",
            RequestPreconditions {
                if_none_match: Some(&long_list),
                ..Default::default()
            },
        ),
        (
            "hostile",
            "if-match-201st-tag",
            RequestPreconditions {
                if_match: Some(&etag_last),
                ..Default::default()
            },
        ),
        (
            "hostile",
            "8KiB-garbage-dates",
            RequestPreconditions {
                if_unmodified_since: Some(&garbage_date),
                if_modified_since: Some(&garbage_date),
                if_range: Some(&garbage_date),
                has_range: true,
                ..Default::default()
            },
        ),
    ];

    let mut group = c.benchmark_group("conditional/evaluate");
    for (kind, label, preconditions) in &cases {
        group.bench_function(BenchmarkId::new(*kind, *label), |b| {
            b.iter(|| {
                conditional::evaluate(
                    MethodKind::Get,
                    black_box(preconditions),
                    black_box(&validators),
                    now,
                )
            })
        });
    }
    group.finish();
}

fn bench_decode_path(c: &mut Criterion) {
    let paths: Vec<(&str, &str, String)> = vec![
        ("typical", "plain", "/movie/big.mp4".to_string()),
        (
            "typical",
            "utf8-escaped",
            "/films/Le%20Voyage%20dans%20la%20Lune%20%E2%80%94%201902.mp4".to_string(),
        ),
        (
            "hostile",
            "4KiB-escapes",
            format!("/{}", "%41".repeat(1365)),
        ),
        ("hostile", "deep-dots", "/a/./b//c".repeat(1000)),
        (
            "hostile",
            "dotdot-rejected",
            "/movie/%2e%2e/%2e%2e/etc/passwd".to_string(),
        ),
    ];
    let mut group = c.benchmark_group("resolve/decode_path");
    for (kind, label, path) in &paths {
        group.throughput(Throughput::Bytes(path.len() as u64));
        group.bench_function(BenchmarkId::new(*kind, *label), |b| {
            b.iter(|| resolve::decode_path(black_box(path)))
        });
    }
    group.finish();
}

/// A whole `GET` of a 1 KiB file on a keep-alive connection, in every mode: parsing, service,
/// head, body, and the round trip over loopback. For a file this small the per-response setup
/// (a mapping, a blocking-pool hop) is all there is.
fn bench_round_trip(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    make_file(&dir.path().join("small.bin"), SMALL_FILE_SIZE);

    let mut group = c.benchmark_group("server/small-get");
    group.throughput(Throughput::Elements(1));
    for mode in server_modes() {
        let server = LiveServer::start(dir.path(), mode);
        let mut client = server.connect();
        assert_eq!(client.get("/small.bin"), SMALL_FILE_SIZE as u64);
        group.bench_function(BenchmarkId::new(mode, "1KiB"), |b| {
            b.iter(|| client.get("/small.bin"))
        });
    }
    group.finish();
}

/// Counts every allocation this process makes (the server below runs in it), then hands the
/// work to the system allocator.
struct CountingAllocator;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// allocator contract holds exactly as it does for `System`; the counter is a relaxed atomic.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System` (every allocation here does), with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc_zeroed` is `System::alloc_zeroed`'s.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with `layout`; the caller guarantees `new_size`.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator;

/// reelserve (`sendfile` mode, access log off) serving from a thread of this process, so the
/// counting allocator sees its allocations.
struct InProcessServer {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessServer {
    fn start(root: &std::path::Path, extra: &[&str]) -> InProcessServer {
        use clap::Parser;
        let mut args = vec!["reelserve", "--addr", "127.0.0.1:0", "--workers", "2"];
        args.extend([
            "--access-log",
            "off",
            "--log-level",
            "warn",
            "--shutdown-timeout",
            "1",
        ]);
        args.extend(["--root", root.to_str().expect("UTF-8 temp path")]);
        args.extend(extra);
        let config = reelserve::Config::try_parse_from(args).expect("bench configuration");
        let server = reelserve::Server::bind(config).expect("bind the in-process server");
        let addr = server.local_addr().expect("bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = server.run(async {
                let _ = stopped.await;
            });
        });
        InProcessServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Allocations per small GET, server and hyper included (the client allocates nothing), then
/// the time of one: the cost of the request path in user space, without a second process.
fn bench_allocations(c: &mut Criterion) {
    const REQUESTS: u64 = 2_000;
    let dir = tempfile::tempdir().expect("temp dir");
    make_file(&dir.path().join("small.bin"), SMALL_FILE_SIZE);
    let request = b"GET /small.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut group = c.benchmark_group("server/in-process-small-get");
    group.throughput(Throughput::Elements(1));
    for (label, extra) in [
        ("default", &[][..]),
        ("open-file-cache", &["--open-file-cache", "60"][..]),
    ] {
        let server = InProcessServer::start(dir.path(), extra);
        let mut client = KeepAliveClient::connect(server.addr);
        // Warm: the connection's mapping and buffers exist before counting.
        for _ in 0..100 {
            client.send(request);
        }
        let before = ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..REQUESTS {
            client.send(request);
        }
        let after = ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "allocations per small GET ({label}): {:.1}",
            (after - before) as f64 / REQUESTS as f64
        );
        group.bench_function(BenchmarkId::new(label, "1KiB"), |b| {
            b.iter(|| client.send(request))
        });
        drop(client);
    }
    group.finish();
}

fn config() -> Criterion {
    let (warm_up, measurement) = if quick() {
        (QUICK_WARM_UP, QUICK_MEASUREMENT)
    } else {
        (WARM_UP, MEASUREMENT)
    };
    Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_range, bench_conditional, bench_decode_path, bench_round_trip,
        bench_allocations
}
criterion_main!(benches);
