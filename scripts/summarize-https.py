#!/usr/bin/env python3
"""What did one scripts/compare-https.sh run measure? Medians per row, ratios against nginx on
the same protocol, written as https.json and HTTPS.md.

Usage:
    summarize-https.py RAW_DIR OUT_DIR     # the whole run (compare-https.sh calls this)
    summarize-https.py --line RUN.json     # one line about one measured run (for the log)

The clients report differently: wrk through scripts/wrk/report.lua (one WRK_JSON line, with
percentiles), h2load in its own text (min/max/mean/sd, no percentiles). Both are reduced here
to the same fields; latency is wrk's p99 and h2load's mean, and the table says which.
"""

import json
import pathlib
import re
import statistics
import sys

MIB = 1024 * 1024
GIB = 1024 * MIB

H2LOAD_UNITS = {"us": 1, "ms": 1000, "s": 1_000_000}


def parse_wrk(text):
    line = [l for l in text.splitlines() if l.startswith("WRK_JSON ")]
    if not line:
        raise ValueError("no WRK_JSON line (wrk failed?)")
    w = json.loads(line[-1][len("WRK_JSON "):])
    errors = w["errors"]
    return {
        "requests": w["requests"],
        "bytes": w["bytes"],
        "seconds": w["duration_us"] / 1e6,
        "latency_ms": w["latency_p99_us"] / 1000,
        "latency_kind": "p99",
        "errors": sum(errors.values()),
        "protocol": "http/1.1",
    }


def parse_h2load(text):
    def grab(pattern, cast=float):
        m = re.search(pattern, text, re.MULTILINE)
        if not m:
            raise ValueError(f"h2load output lacks {pattern!r}")
        return cast(m.group(1))

    def duration_us(value):
        m = re.fullmatch(r"([0-9.]+)(us|ms|s)", value)
        return float(m.group(1)) * H2LOAD_UNITS[m.group(2)]

    requests = re.search(
        r"^requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
        re.MULTILINE,
    )
    if not requests:
        raise ValueError("h2load output lacks the requests line")
    latency = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text, re.MULTILINE)
    return {
        "requests": int(requests.group(2)),
        "bytes": grab(r"^traffic: .*?\((\d+)\) total", int),
        "seconds": grab(r"^finished in ([0-9.]+)s"),
        "latency_ms": duration_us(latency.group(3)) / 1000 if latency else None,
        "latency_kind": "mean",
        "errors": sum(int(requests.group(i)) for i in (3, 4, 5)),
        "protocol": grab(r"^Application protocol: (\S+)", str),
    }


def load_run(raw, run_file):
    run = json.loads(run_file.read_text())
    text = (raw / run["output"]).read_text(errors="replace")
    measured = parse_wrk(text) if run["client"] == "wrk" else parse_h2load(text)
    run.update(measured)
    run["mib_per_s"] = run["bytes"] / run["seconds"] / MIB
    run["req_per_s"] = run["requests"] / run["seconds"]
    run["cpu_s_per_gib"] = run["cpu_seconds"] / (run["bytes"] / GIB) if run["bytes"] else None
    return run


def describe(run):
    latency = f"{run['latency_kind']} {run['latency_ms']:.1f} ms" if run["latency_ms"] else "-"
    return (
        f"  {run['server']} {run['scenario']} run {run['run']}: {run['mib_per_s']:.0f} MiB/s, "
        f"{run['req_per_s']:.0f} req/s, {latency}, {run['errors']} errors, "
        f"peak RSS {run['peak_rss_kib'] / 1024:.1f} MiB ({run['protocol']})"
    )


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(raw, out):
    settings = json.loads((raw / "settings.json").read_text())
    runs = [load_run(raw, f) for f in sorted((raw / "runs").glob("*.json"))]
    failures = [
        json.loads(l) for l in (raw / "failures.jsonl").read_text().splitlines() if l.strip()
    ]
    rows = {}
    for run in runs:
        rows.setdefault((run["scenario"], run["server"]), []).append(run)
    table = []
    for (scenario, server), group in sorted(rows.items()):
        table.append(
            {
                "scenario": scenario,
                "server": server,
                "client": group[0]["client"],
                "connections": group[0]["connections"],
                "protocol": group[0]["protocol"],
                "runs": len(group),
                "mib_per_s": median(r["mib_per_s"] for r in group),
                "req_per_s": median(r["req_per_s"] for r in group),
                "latency_ms": median(r["latency_ms"] for r in group),
                "latency_kind": group[0]["latency_kind"],
                "cpu_s_per_gib": median(r["cpu_s_per_gib"] for r in group),
                "peak_rss_mib": max(r["peak_rss_kib"] for r in group) / 1024,
                "errors": sum(r["errors"] for r in group),
            }
        )
    by_key = {(r["scenario"], r["server"]): r for r in table}
    for row in table:
        server, proto = row["server"].rsplit("-", 1)
        nginx = by_key.get((row["scenario"], f"nginx-{proto}"))
        row["vs_nginx"] = (
            row["mib_per_s"] / nginx["mib_per_s"]
            if server != "nginx" and nginx and nginx["mib_per_s"]
            else None
        )
    tls = {}
    for f in sorted((raw / "logs").glob("*-tls.txt")):
        tls[f.name[: -len("-tls.txt")]] = " ".join(l.strip() for l in f.read_text().splitlines())

    out.mkdir(parents=True, exist_ok=True)
    summary = {"settings": settings, "rows": table, "tls": tls, "failures": failures, "runs": runs}
    (out / "https.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "HTTPS.md").write_text(markdown(settings, table, tls, failures))


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def markdown(settings, table, tls, failures):
    s = settings
    lines = [
        "# HTTPS: reelserve and nginx on the same certificate",
        "",
        f"{'Smoke run (QUICK=1): not a measurement. ' if s['quick'] else ''}"
        f"{s['runs']} run(s) of {s['duration_s']} s per row, medians; "
        f"{s['big_bytes'] // MIB} MiB file in the page cache; {s['workers']} server workers; "
        f"{s['nproc']} cores, kernel {s['kernel']} (kernel TLS ULP: "
        f"{'yes' if s['kernel_tls_ulp'] else 'no'}); load average at start "
        f"{', '.join(f'{x:.2f}' for x in s['load_average_at_start'])}; "
        f"reelserve {s['reelserve_commit']}, --mode {s['reelserve_mode']}; nginx "
        f"`ssl_protocols TLSv1.3; sendfile on; tcp_nopush on;`"
        f"{' plus `' + s['nginx_tuning'] + '`' if s.get('nginx_tuning') else ' and its defaults (output_buffers 2 32k, ssl_buffer_size 16k)'}.",
        "",
        "| scenario | server | protocol | client | MiB/s | req/s | latency (ms) | CPU s/GiB "
        "| peak RSS (MiB) | vs nginx |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"S1": "S1 whole file, -c 4", "S2": "S2 1 MiB ranges, -c 64"}
    for r in table:
        ratio = f"{r['vs_nginx']:.2f}" if r["vs_nginx"] is not None else ""
        errors = f" ({r['errors']} errors)" if r["errors"] else ""
        lines.append(
            f"| {names.get(r['scenario'], r['scenario'])} | {r['server'].rsplit('-', 1)[0]} "
            f"| {r['protocol']} | {r['client']} | {fmt(r['mib_per_s'], '.0f')}{errors} "
            f"| {fmt(r['req_per_s'], '.0f')} | {r['latency_kind']} {fmt(r['latency_ms'], '.1f')} "
            f"| {fmt(r['cpu_s_per_gib'], '.2f')} | {r['peak_rss_mib']:.1f} | {ratio} |"
        )
    lines += [
        "",
        "Latency: wrk's p99, h2load's mean (h2load reports no percentiles). S2 over HTTP/2 "
        f"uses one fixed range ({s['h2load_range']}) for every request, because h2load cannot "
        "vary headers; over HTTP/1.1 wrk draws random offsets (scripts/wrk/ranges.lua). "
        "Throughput counts every byte the client read, heads included. Peak RSS is VmHWM, reset "
        "before each run (nginx: master and workers summed).",
    ]
    if tls:
        lines += ["", "What each server negotiated (openssl s_client):", ""]
        lines += [f"- {name}: {text}" for name, text in tls.items()]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {f['server']} {f['scenario']}: {f['error']}" for f in failures]
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--line":
        run_file = pathlib.Path(sys.argv[2])
        print(describe(load_run(run_file.parent.parent, run_file)))
    elif len(sys.argv) == 3:
        summarize(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
