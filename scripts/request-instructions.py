#!/usr/bin/env python3
"""How many instructions does reelserve spend per small request? Counted by valgrind's
callgrind, which does not depend on the machine's load, unlike CPU time. Runs the server under
callgrind twice, with one worker and the access log off, once for a few keep-alive GETs of a
small page on one connection and once for N more, and prints the difference per request (so
start-up and shutdown cancel out). valgrind lacks openat2(2), so the server resolves paths with
its portable fallback there, which costs a few thousand instructions more than on a real run.

usage: scripts/request-instructions.py [BINARY] [N]   (default target/release/reelserve, 5000)
BINARY may also be target/release/examples/bare_hyper (`cargo build --release --examples`), the
floor: a hyper server on the same runtime that opens, stats, reads and closes the file.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = b"<!doctype html><title>a small page</title><p>" + b"x" * 180 + b"</p>\n"
WARMUP = 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_response(sock, pending):
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection")
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest[length:]


def instructions(binary, root, requests):
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        outfile = os.path.join(out, "callgrind.out")
        if Path(binary).name == "bare_hyper":
            arguments = [f"127.0.0.1:{port}", root, "1"]
        else:
            arguments = ["--root", root, "--addr", f"127.0.0.1:{port}", "--workers", "1",
                         "--access-log", "off", "--log-level", "warn"]
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}", binary,
             *arguments],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    if time.time() > deadline:
                        raise SystemExit("the server did not start under valgrind")
                    time.sleep(0.2)
            pending = b""
            request = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
            for _ in range(requests):
                sock.sendall(request)
                pending = read_response(sock, pending)
            sock.close()
        finally:
            server.terminate()
            server.wait(timeout=120)
        for line in open(outfile):
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit("no totals in callgrind's output")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "reelserve")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    with tempfile.TemporaryDirectory() as root:
        Path(root, "index.html").write_bytes(PAGE)
        base = instructions(binary, root, WARMUP)
        more = instructions(binary, root, WARMUP + count)
    print(f"{(more - base) / count:,.0f} instructions per small GET "
          f"({count} keep-alive requests of a {len(PAGE)}-byte page, one worker, log off)")


if __name__ == "__main__":
    main()
