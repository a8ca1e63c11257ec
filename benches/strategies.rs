//! How fast does each way of sending a file reach a socket? The four `--mode`s as bare
//! strategies, then through the real server.
//!
//! Groups `serve 64KiB file`, `serve 1MiB file`, ... time one strategy sending the whole file
//! over a real loopback TCP connection to a reader thread that drains it (blocking std sockets,
//! no HTTP, no server): the cost of the strategy itself. Every strategy gets the same socket
//! setup, the same file (in the page cache), and pays its per-request work (allocate, map) inside
//! the timed closure, as a server does per response. The reader acknowledges every complete
//! file with one byte, so an iteration ends when the last byte has been *received*, not when it
//! was queued in a socket buffer.
//!
//! Group `server/whole-file` GETs a 16 MiB file from the real `reelserve` binary in each mode over
//! one keep-alive connection: the same question with hyper, tokio and the service in the way.
//!
//! `REELSERVE_BENCH_QUICK=1` runs 64 KiB and 16 MiB only, with short warm-up and measurement.
//! Run: `cargo bench --bench strategies` (add `-- sendfile` to filter, `-- --quick` to shorten).

mod live_server;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use memmap2::Mmap;

use live_server::{make_file, quick, server_modes, LiveServer};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// File sizes, one benchmark group each: a small asset, a player's range request, a short clip,
/// a chunk of a movie.
const SIZES: [usize; 4] = [64 * KIB, MIB, 16 * MIB, 256 * MIB];

/// Sizes in quick mode (`REELSERVE_BENCH_QUICK=1`).
const QUICK_SIZES: [usize; 2] = [64 * KIB, 16 * MIB];

/// From this size on an iteration takes milliseconds: use flat sampling (criterion's linear
/// sampling would run 55 iterations at least).
const FLAT_SAMPLING_FROM: usize = 16 * MIB;

/// Sample count for the biggest files, whose iterations take ~100 ms each.
const LARGE_FILE_SAMPLES: usize = 10;

/// Read size of the draining reader thread (a client's typical `recv` buffer).
const DRAIN_BUFFER: usize = 256 * KIB;

/// Chunk sizes of the `chunked` strategy: the server's default `--chunk-size`, and the 1 MB the
/// tutorial's Express handler sends per request.
const CHUNK_SIZES: [usize; 2] = [64 * KIB, MIB];

/// The file the `server/whole-file` group GETs.
const SERVER_FILE_SIZE: usize = 16 * MIB;

/// Warm-up and measurement per benchmark; the default run (20 strategy benchmarks, 4 server
/// ones) stays around two minutes of measuring on 2 cores.
const WARM_UP: Duration = Duration::from_secs(1);
const MEASUREMENT: Duration = Duration::from_secs(3);
const QUICK_WARM_UP: Duration = Duration::from_millis(300);
const QUICK_MEASUREMENT: Duration = Duration::from_secs(1);

fn sizes() -> &'static [usize] {
    if quick() {
        &QUICK_SIZES
    } else {
        &SIZES
    }
}

fn size_label(size: usize) -> String {
    if size >= MIB && size % MIB == 0 {
        format!("{}MiB", size / MIB)
    } else {
        format!("{}KiB", size / KIB)
    }
}

/// One way of moving a file to a socket.
#[derive(Debug, Clone, Copy)]
enum Strategy {
    /// Read the whole file into a new buffer, then write it (`fs.readFile` + `response.end`).
    ReadAll,
    /// `pread` into one buffer of this size and write it, until done (`createReadStream`). The
    /// buffer is reused: this is the strategy at its best; the server's `chunked` mode also
    /// allocates a buffer and hops to the blocking pool per chunk (see `server/whole-file`).
    Chunked(usize),
    /// Map the file and write from the mapping: one copy, inside the kernel.
    Mmap,
    /// `sendfile(2)` from the file descriptor: no copy through user space.
    #[cfg(target_os = "linux")]
    Sendfile,
}

impl Strategy {
    fn all() -> Vec<Strategy> {
        let mut all = vec![Strategy::ReadAll];
        all.extend(CHUNK_SIZES.map(Strategy::Chunked));
        all.push(Strategy::Mmap);
        #[cfg(target_os = "linux")]
        all.push(Strategy::Sendfile);
        all
    }

    fn name(self) -> String {
        match self {
            Strategy::ReadAll => "read-all".to_string(),
            Strategy::Chunked(size) => format!("chunked/{}", size_label(size)),
            Strategy::Mmap => "mmap".to_string(),
            #[cfg(target_os = "linux")]
            Strategy::Sendfile => "sendfile".to_string(),
        }
    }

    /// Sends all `len` bytes of `file` to `socket`. `scratch` is the reusable chunk buffer.
    fn send(self, file: &File, len: usize, socket: &mut TcpStream, scratch: &mut [u8]) {
        match self {
            Strategy::ReadAll => {
                let mut data = vec![0u8; len];
                file.read_exact_at(&mut data, 0).expect("read file");
                socket.write_all(&data).expect("write");
            }
            Strategy::Chunked(chunk) => {
                let buffer = &mut scratch[..chunk];
                let mut offset = 0;
                while offset < len {
                    let n = chunk.min(len - offset);
                    file.read_exact_at(&mut buffer[..n], offset as u64)
                        .expect("pread");
                    socket.write_all(&buffer[..n]).expect("write");
                    offset += n;
                }
            }
            Strategy::Mmap => {
                // SAFETY: the file is this benchmark's own temporary file; nothing truncates or
                // writes it while it is mapped, so reading the mapping cannot fault.
                let map = unsafe { Mmap::map(file) }.expect("mmap");
                socket.write_all(&map[..len]).expect("write");
            }
            #[cfg(target_os = "linux")]
            Strategy::Sendfile => {
                let mut offset: libc::off64_t = 0;
                while (offset as usize) < len {
                    let left = len - offset as usize;
                    match nix::sys::sendfile::sendfile64(&*socket, file, Some(&mut offset), left) {
                        Ok(0) => panic!("sendfile: file ended early"),
                        Ok(_) => {}
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(error) => panic!("sendfile: {error}"),
                    }
                }
            }
        }
    }
}

/// A loopback TCP connection whose far end is a thread draining fixed-size messages and
/// acknowledging each with one byte.
struct DrainedSocket {
    sender: TcpStream,
    reader: Option<JoinHandle<()>>,
}

impl DrainedSocket {
    fn new(message_len: usize) -> DrainedSocket {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let sender = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let (receiver, _) = listener.accept().expect("accept");
        // The same options for every strategy; NODELAY so the tail of a file is not held back.
        sender.set_nodelay(true).unwrap();
        receiver.set_nodelay(true).unwrap();
        let reader = thread::spawn(move || drain(receiver, message_len));
        DrainedSocket {
            sender,
            reader: Some(reader),
        }
    }

    /// Waits until the reader has received a whole message.
    fn wait_for_ack(&mut self) {
        let mut ack = [0u8; 1];
        self.sender
            .read_exact(&mut ack)
            .expect("reader acknowledged");
    }
}

impl Drop for DrainedSocket {
    fn drop(&mut self) {
        let _ = self.sender.shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Reads messages of exactly `message_len` bytes (never into the next one) and acks each.
fn drain(mut socket: TcpStream, message_len: usize) {
    let mut buffer = vec![0u8; DRAIN_BUFFER];
    loop {
        let mut left = message_len;
        while left > 0 {
            let want = left.min(buffer.len());
            match socket.read(&mut buffer[..want]) {
                Ok(0) => return,
                Ok(n) => left -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
        if socket.write_all(&[1]).is_err() {
            return;
        }
    }
}

fn bench_strategies(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for &size in sizes() {
        let path = dir.path().join(format!("file-{}", size_label(size)));
        make_file(&path, size);
        let file = File::open(&path).expect("open bench file");

        let mut group = c.benchmark_group(format!("serve {} file", size_label(size)));
        group.throughput(Throughput::Bytes(size as u64));
        if size >= FLAT_SAMPLING_FROM {
            group.sampling_mode(SamplingMode::Flat);
        }
        if size >= 256 * MIB {
            group.sample_size(LARGE_FILE_SAMPLES);
        }
        let mut scratch = vec![0u8; CHUNK_SIZES.into_iter().max().unwrap_or(MIB)];
        for strategy in Strategy::all() {
            let mut socket = DrainedSocket::new(size);
            group.bench_function(BenchmarkId::new(strategy.name(), size_label(size)), |b| {
                b.iter(|| {
                    strategy.send(&file, size, &mut socket.sender, &mut scratch);
                    socket.wait_for_ack();
                })
            });
        }
        group.finish();
        drop(file);
        let _ = std::fs::remove_file(&path);
    }
}

fn bench_server(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let name = format!("whole-{}.bin", size_label(SERVER_FILE_SIZE));
    make_file(&dir.path().join(&name), SERVER_FILE_SIZE);
    let path = format!("/{name}");

    let mut group = c.benchmark_group("server/whole-file");
    group.throughput(Throughput::Bytes(SERVER_FILE_SIZE as u64));
    group.sampling_mode(SamplingMode::Flat);
    for mode in server_modes() {
        let server = LiveServer::start(dir.path(), mode);
        let mut client = server.connect();
        // One request outside the timing: the connection is warm and the path works.
        assert_eq!(client.get(&path), SERVER_FILE_SIZE as u64);
        group.bench_function(BenchmarkId::new(mode, size_label(SERVER_FILE_SIZE)), |b| {
            b.iter(|| client.get(&path))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    let (warm_up, measurement) = if quick() {
        (QUICK_WARM_UP, QUICK_MEASUREMENT)
    } else {
        (WARM_UP, MEASUREMENT)
    };
    let criterion = Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measurement);
    if quick() {
        criterion.sample_size(10)
    } else {
        criterion
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_strategies, bench_server
}
criterion_main!(benches);
