#!/usr/bin/env python3
"""Does pacing cost server CPU? Serves one file with reelserve unpaced and paced
(`--limit-rate`), downloads it with curl several times each, and prints the server's CPU seconds
(user + system, from /proc/PID/stat) per GiB sent, medians, side by side from one run.

The kernel paces (SO_MAX_PACING_RATE), so a paced download should cost no more CPU per byte
than an unpaced one: the same sendfile path, only spread over more time.

usage: scripts/pacing-cpu.py [--size MIB] [--rate RATE] [--runs N] [--binary PATH]
   e.g. scripts/pacing-cpu.py                  # 256 MiB, paced at 64m after 1m, 3 runs
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import (ACCESS_LOG_OFF, ROOT, BenchError, Launch, Server, cpu_seconds, free_port,
                   running)

GIB = 1 << 30


def download(port: int, name: str) -> tuple[float, int]:
    started = time.monotonic()
    out = subprocess.run(
        ["curl", "-q", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{size_download}",
         f"http://127.0.0.1:{port}/{name}"],
        check=True, capture_output=True, text=True, timeout=600)
    return time.monotonic() - started, int(out.stdout)


def measure(binary: Path, root: Path, name: str, extra: list[str], runs: int) -> dict:
    argv = ("{tool}", "--root", "{data}", "--addr", "127.0.0.1:{port}", *ACCESS_LOG_OFF, *extra)
    server = Server("reelserve", "reelserve", argv)
    with tempfile.TemporaryDirectory(prefix="pacing-cpu-") as tmp:
        launch = Launch(port=free_port(), data=root, file=root / name, prefix=Path(tmp) / "server",
                        cert=Path(), key=Path(), workers=0, tls=False, tool=str(binary))
        try:
            with running(server, launch, Path(tmp), f"/{name}") as up:
                download(up.port, name)  # warm: the file's pages and the server's first mapping
                per_gib, seconds = [], []
                for _ in range(runs):
                    before = sum(cpu_seconds([up.pid]))
                    took, size = download(up.port, name)
                    per_gib.append((sum(cpu_seconds([up.pid])) - before) / (size / GIB))
                    seconds.append(took)
        except BenchError as error:
            sys.exit(f"{error}\n{(Path(tmp) / 'reelserve-http.err').read_text()}")
    return {"cpu_s_per_gib": statistics.median(per_gib), "seconds": statistics.median(seconds),
            "runs": per_gib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="file size in MiB (256)")
    parser.add_argument("--rate", default="64m", help="--limit-rate of the paced run (64m)")
    parser.add_argument("--runs", type=int, default=3, help="downloads per server (3)")
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "reelserve")
    args = parser.parse_args()
    if not args.binary.exists():
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if not shutil.which("curl"):
        sys.exit("curl is needed")
    with tempfile.TemporaryDirectory() as root:
        name = "movie.bin"
        with open(Path(root) / name, "wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(args.size):
                out.write(block)
        unpaced = measure(args.binary, Path(root), name, [], args.runs)
        paced = measure(args.binary, Path(root), name,
                        ["--limit-rate", args.rate, "--limit-rate-after", "1m"], args.runs)
    print(f"{args.size} MiB file, {args.runs} downloads each (medians), server CPU per GiB sent:")
    for label, result in (("unpaced", unpaced), (f"paced at {args.rate}", paced)):
        runs = ", ".join(f"{r:.3f}" for r in result["runs"])
        print(f"  {label:>16}: {result['cpu_s_per_gib']:.3f} s/GiB in {result['seconds']:.1f} s"
              f" per download (runs: {runs})")
    print(f"  paced / unpaced: {paced['cpu_s_per_gib'] / unpaced['cpu_s_per_gib']:.2f}")


if __name__ == "__main__":
    main()
