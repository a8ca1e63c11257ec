//! Running real client programs (curl, wget, ffprobe, nginx, node + Chromium) from tests: every
//! run has a hard deadline, a clean environment (no proxy variables, no user config files), and
//! leaves no process behind.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Environment variables that would send a client's loopback traffic somewhere else.
const PROXY_VARIABLES: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "CURL_HOME",
    "WGETRC",
];

/// What a finished program left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with everything the program said unless it exited 0.
    pub fn expect_success(self, what: &str) -> Finished {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        );
        self
    }
}

/// A command with the proxy variables removed, in its own process group (so a deadline can end
/// it together with whatever it started, e.g. node's Chromium).
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command.stdin(Stdio::null()).process_group(0);
    command
}

/// `curl -q -sS --noproxy '*' --max-time 20 ARGS...` (`-q` first: no ~/.curlrc).
pub fn curl(args: &[&str]) -> Finished {
    let mut command = command("curl");
    command
        .args(["-q", "-sS", "--noproxy", "*", "--max-time", "20"])
        .args(args);
    run(command, Duration::from_secs(30))
}

/// Runs `command` to completion, killing its whole process group if it is not done within
/// `deadline` (then it panics with what the program had said so far).
pub fn run(mut command: Command, deadline: Duration) -> Finished {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let stdout = Drain::start(child.stdout.take().unwrap());
    let stderr = Drain::start(child.stderr.take().unwrap());
    let status = wait_or_kill(&mut child, deadline);
    let stdout = stdout.finish();
    let stderr = String::from_utf8_lossy(&stderr.finish()).into_owned();
    match status {
        Some(status) => Finished {
            status,
            stdout,
            stderr,
            elapsed: started.elapsed(),
        },
        None => panic!(
            "{command:?} did not finish within {deadline:?}; killed.\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&stdout)
        ),
    }
}

/// Reads a pipe on a thread. A process that escaped the group (a daemonised helper) could
/// hold the pipe open forever, so [`Drain::finish`] waits for the end only briefly.
struct Drain {
    bytes: Arc<Mutex<Vec<u8>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Drain {
    fn start(mut pipe: impl Read + Send + 'static) -> Drain {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bytes);
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 64 * 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Drain { bytes, thread }
    }

    fn finish(self) -> Vec<u8> {
        let end = Instant::now() + Duration::from_secs(5);
        while !self.thread.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let bytes = std::mem::take(&mut *self.bytes.lock().unwrap());
        bytes
    }
}

/// Waits for `child` (started with [`command`], so it leads its own process group) up to
/// `deadline`. Whether it exits or not, no member of its group is left running: on the deadline
/// the group is killed before the leader is reaped, and after a normal exit any member still
/// alive (a browser its driver failed to close) is killed. While a member lives the group id
/// cannot be reused, so this only ever signals processes this test started.
pub fn wait_or_kill(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let group = child.id();
    let end = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            kill_group_if_alive(group);
            return Some(status);
        }
        if Instant::now() >= end {
            kill_group(group);
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose process group is `group`, from /proc.
pub fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // Field 5 of /proc/PID/stat is the process group; the command name before it is
            // in parentheses and may contain spaces, so count from the last ')'.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(group)
        })
        .collect()
}

fn kill_group_if_alive(group: u32) {
    if !group_members(group).is_empty() {
        kill_group(group);
    }
}

fn kill_group(group: u32) {
    // kill(1) rather than libc::kill keeps the tests free of unsafe.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}

/// A free TCP port on 127.0.0.1 (free when asked: a program told to listen on it may still lose
/// a race, so callers retry on "address in use").
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `addr`, or `deadline` passes.
pub fn wait_for_listener(addr: std::net::SocketAddr, deadline: Duration) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The repository (the crate root), which ships movie/sample.mp4 and the scripts.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// node, Chromium and the installed playwright-core (for the browser tests); a skip outside
/// CI, a failure in it.
pub fn browser_available() -> bool {
    if !crate::common::require("node") || !crate::common::require("chromium") {
        return false;
    }
    let module = repo().join("tests/browser/node_modules/playwright-core/package.json");
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

/// `test-artifacts/` in the repository (git-ignored), created on demand.
pub fn artifacts_dir() -> std::path::PathBuf {
    let dir = repo().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A signing key file in `dir` holding one fixed 32-byte key (hex), for tests of signed links.
pub fn test_key_file(dir: &Path) -> std::path::PathBuf {
    let keys = dir.join("keys");
    std::fs::write(
        &keys,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    keys
}

/// The link that `reelserve sign PATH --base-url BASE_URL --signing-key-file KEYS` prints as
/// its last line.
pub fn sign_link(path: &str, base_url: &str, keys: &Path) -> String {
    let mut sign = command(env!("CARGO_BIN_EXE_reelserve"));
    sign.args(["sign", path, "--base-url", base_url, "--signing-key-file"])
        .arg(keys);
    let signed = run(sign, Duration::from_secs(10)).expect_success("reelserve sign");
    let link = signed
        .stdout_text()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        link.contains("sig="),
        "reelserve sign printed no link: {link}"
    );
    link
}
