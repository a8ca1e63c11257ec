#!/usr/bin/env python3
"""Is `/video` with 10,000 movies within 2x of a small file's req/s? Serves a root whose movie/
holds N movies (hard links to movie/sample.mp4) and a 236-byte page.html, and runs wrk
alternately against /video and /page.html (medians of --runs runs); also times one GET of the
movie list, /_reelserve/movies, and gives its size.

Both paths are asked for the same `Range: bytes=0-235`, so each response carries 236 bytes of
body and the difference is what /video adds: the movie index (one `stat` of movie/ while it is
unchanged) and the choice of the default movie among N. The server and wrk share the machine.

usage: scripts/movie-index-speed.py [--movies N] [--duration SECS] [--runs N] [--binary PATH]
   e.g. scripts/movie-index-speed.py           # 10,000 movies, 3 runs of 6 s per path
"""
import argparse
import errno
import http.client
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import (ACCESS_LOG_OFF, ROOT, SCRIPTS, BenchError, Launch, Server, free_port,
                   parse_wrk, running)

SAMPLE = ROOT / "movie" / "sample.mp4"
PAGE_BYTES = 236
RANGE = f"bytes=0-{PAGE_BYTES - 1}"
# The server's movie index trusts a scan only if it started this long after the directory's
# mtime (library::RACY_WINDOW, 2 s), plus a margin.
RACY_WINDOW = 2.5
TARGET = 2.0


def make_root(root: Path, movies: int) -> None:
    """ROOT/movie/m00001.mp4... as hard links to the sample (or to one copy of it, when the
    temporary directory is on another file system), and ROOT/page.html of PAGE_BYTES bytes."""
    movie_dir = root / "movie"
    movie_dir.mkdir()
    source = SAMPLE
    for i in range(1, movies + 1):
        target = movie_dir / f"m{i:05d}.mp4"
        try:
            os.link(source, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            shutil.copyfile(source, target)
            source = target
    page = "<!DOCTYPE html>\n<html><head><title>small</title></head><body><p>A small page."
    tail = "</p></body></html>\n"
    (root / "page.html").write_text(page + "." * (PAGE_BYTES - len(page) - len(tail)) + tail)
    settled = movie_dir.stat().st_mtime + RACY_WINDOW
    time.sleep(max(0.0, settled - time.time()))


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, int, float]:
    """Status, body length and seconds of one GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        started = time.monotonic()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, len(body), time.monotonic() - started
    finally:
        conn.close()


def wrk_argv(port: int | str, path: str, seconds: int) -> list[str]:
    report = (SCRIPTS / "wrk" / "report.lua").relative_to(ROOT)
    return ["wrk", "-t2", "-c64", f"-d{seconds}s", "-H", f"Range: {RANGE}", "-s", str(report),
            f"http://127.0.0.1:{port}{path}"]


def requests_per_s(port: int, path: str, seconds: int) -> float:
    out = subprocess.run(wrk_argv(port, path, seconds), check=True, capture_output=True,
                         text=True, timeout=seconds + 60, cwd=ROOT).stdout
    run = parse_wrk(out)
    if run["errors"]:
        raise BenchError(f"wrk saw {run['errors']} errors on {path}")
    return run["requests"] / run["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movies", type=int, default=10_000, help="movies in movie/ (10000)")
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run (6)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per path (3)")
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "reelserve")
    args = parser.parse_args()
    if not args.binary.exists():
        sys.exit(f"no {args.binary}: build it with cargo build --release")
    if not SAMPLE.exists():
        sys.exit(f"no {SAMPLE}: scripts/make-sample-movie.sh makes it")
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (scripts/bench.py --install-peers installs it)")
    argv = ("{tool}", "--root", "{data}", "--addr", "127.0.0.1:{port}", *ACCESS_LOG_OFF)
    server = Server("reelserve", "reelserve", argv)
    rates: dict[str, list[float]] = {"/page.html": [], "/video": []}
    with tempfile.TemporaryDirectory(prefix="movie-index-speed-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        make_root(root, args.movies)
        launch = Launch(port=free_port(), data=root, file=root / "page.html",
                        prefix=Path(tmp) / "server", cert=Path(), key=Path(), workers=0,
                        tls=False, tool=str(args.binary))
        try:
            with running(server, launch, Path(tmp), "/page.html") as up:
                # The first GET waits for the start-up scan of movie/ if it is still running.
                _, _, first_s = get(up.port, "/_reelserve/movies")
                status, list_size, list_s = get(up.port, "/_reelserve/movies")
                if status != 200:
                    raise BenchError(f"/_reelserve/movies: {status}")
                for path in rates:
                    status, size, _ = get(up.port, path, {"Range": RANGE})
                    if (status, size) != (206, PAGE_BYTES):
                        raise BenchError(f"{path}: {status}, {size} bytes; expected 206, "
                                         f"{PAGE_BYTES}")
                    requests_per_s(up.port, path, 1)  # warm up
                for _ in range(args.runs):
                    for path, runs in rates.items():
                        runs.append(requests_per_s(up.port, path, args.duration))
        except BenchError as error:
            sys.exit(f"{error}\n{(Path(tmp) / 'reelserve-http.err').read_text()}")
    small, video = (statistics.median(rates[p]) for p in ("/page.html", "/video"))
    ratio = small / video
    print(f"{args.movies} movies in movie/, wrk -t2 -c64, {args.runs} runs of {args.duration} s "
          f"per path, alternating, Range: {RANGE} (medians):")
    for path, rate in (("/page.html", small), ("/video", video)):
        runs = ", ".join(f"{r:,.0f}" for r in rates[path])
        print(f"  {path:>11}: {rate:>9,.0f} req/s (runs: {runs})")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"  small / video: {ratio:.2f} (target: at most {TARGET:g}x): {verdict}")
    print(f"  /_reelserve/movies: {list_size:,} bytes ({list_size / max(args.movies, 1):.0f} per "
          f"movie), one GET {list_s * 1e3:.1f} ms (the first, right after start-up: "
          f"{first_s * 1e3:.1f} ms)")
    print(f"reproduce: scripts/movie-index-speed.py --movies {args.movies} "
          f"--duration {args.duration} --runs {args.runs}")
    binary = args.binary.relative_to(ROOT) if args.binary.is_relative_to(ROOT) else args.binary
    print(f"  server: {binary} --root DIR --addr 127.0.0.1:PORT {' '.join(ACCESS_LOG_OFF)}")
    for path in rates:
        print(f"  client: {shlex.join(wrk_argv('PORT', path, args.duration))}")


if __name__ == "__main__":
    main()
