#!/usr/bin/env python3
"""What did a comparison run find? Turns the raw output of scripts/compare.sh into medians.

Usage: scripts/summarize.py RAW_DIR OUT_DIR

Reads RAW_DIR (results/raw/<timestamp>/: machine.json, runs/*.json, ttfb/*.json, memory/*.json,
iperf3.json, notes.jsonl, failures.jsonl) and writes OUT_DIR/summary.json and OUT_DIR/RESULTS.md.
Python 3 standard library only.
"""

import glob
import json
import os
import statistics
import sys

GIB = 1 << 30
MIB = 1 << 20

# Scenario titles and the metric their "vs nginx" ratio uses: bytes for the big transfers,
# requests for the small ones (where response heads differ in size between servers).
SCENARIOS = {
    "S1": ("whole big file", "bytes_per_s"),
    "S2": ("random 1 MiB ranges", "bytes_per_s"),
    "S3": ("64 KiB file", "requests_per_s"),
    "S4": ("player page (/)", "requests_per_s"),
    "S5": ("browser-like seeks (256 KiB, Connection: close)", "requests_per_s"),
}

SERVER_ORDER = [
    "reelserve-sendfile",
    "reelserve-mmap",
    "reelserve-chunked",
    "reelserve-read-all",
    "nginx",
    "node-readfile",
    "node-stream",
    "node-express-range",
]

BASELINE = "nginx"


def load_json(path):
    with open(path) as f:
        return json.load(f)


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def derive(run):
    """One wrk run -> the numbers the report uses."""
    wrk = run["wrk"]
    seconds = wrk["duration_us"] / 1e6
    gib = wrk["bytes"] / GIB
    return {
        "bytes_per_s": wrk["bytes"] / seconds,
        "requests_per_s": wrk["requests"] / seconds,
        "latency_p50_ms": wrk["latency_p50_us"] / 1e3,
        "latency_p99_ms": wrk["latency_p99_us"] / 1e3,
        "cpu_s_per_gib": run["cpu_seconds"] / gib if gib > 0 else None,
        "peak_rss_kib": run["peak_rss_kib"],
        "errors": sum(wrk["errors"].values()),
        "requests": wrk["requests"],
        "bytes": wrk["bytes"],
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def server_key(name):
    return (SERVER_ORDER.index(name) if name in SERVER_ORDER else len(SERVER_ORDER), name)


def summarize(raw, out_dir):
    meta = load_json(os.path.join(raw, "machine.json"))
    runs = [load_json(p) for p in sorted(glob.glob(os.path.join(raw, "runs", "*.json")))]

    grouped = {}
    for run in runs:
        grouped.setdefault((run["server"], run["scenario"]), []).append(run)

    results = []
    for (server, scenario), group in sorted(grouped.items(), key=lambda kv: (kv[0][1], server_key(kv[0][0]))):
        derived = [derive(r) for r in group]
        med = {k: median([d[k] for d in derived]) for k in derived[0] if k != "errors"}
        med["errors"] = sum(d["errors"] for d in derived)
        results.append({
            "server": server,
            "scenario": scenario,
            "connections": group[0]["connections"],
            "threads": group[0]["threads"],
            "runs": len(group),
            "median": med,
            "min_bytes_per_s": min(d["bytes_per_s"] for d in derived),
            "max_bytes_per_s": max(d["bytes_per_s"] for d in derived),
            "peak_rss_reset": all(r.get("peak_rss_reset", False) for r in group),
        })
    baseline = {r["scenario"]: r for r in results if r["server"] == BASELINE}
    for r in results:
        metric = SCENARIOS.get(r["scenario"], ("", "bytes_per_s"))[1]
        base = baseline.get(r["scenario"])
        r["ratio_metric"] = metric
        r["ratio_vs_nginx"] = (
            r["median"][metric] / base["median"][metric]
            if base and base["median"][metric] else None
        )

    ttfb = {}
    for p in sorted(glob.glob(os.path.join(raw, "ttfb", "*.json"))):
        t = load_json(p)
        ttfb.setdefault(t["server"], []).append(t["curl"])
    ttfb_rows = [{
        "server": server,
        "runs": len(samples),
        "ttfb_median_s": median([s["time_starttransfer"] for s in samples]),
        "ttfb_min_s": min(s["time_starttransfer"] for s in samples),
        "ttfb_max_s": max(s["time_starttransfer"] for s in samples),
        "total_median_s": median([s["time_total"] for s in samples]),
    } for server, samples in sorted(ttfb.items(), key=lambda kv: server_key(kv[0]))]

    memory = []
    for p in glob.glob(os.path.join(raw, "memory", "*.json")):
        m = load_json(p)
        m["bytes_per_s"] = m["bytes"] / m["seconds"] if m["seconds"] > 0 else None
        memory.append(m)
    memory.sort(key=lambda m: (server_key("reelserve-" + m["mode"]), m["concurrency"]))

    # The loopback ceiling: iperf3 with one stream and with four (S1's connection count).
    loopback = None
    for name, streams in (("iperf3.json", 1), ("iperf3-P4.json", 4)):
        path = os.path.join(raw, name)
        if not os.path.exists(path):
            continue
        loopback = loopback or {"tool": "iperf3"}
        try:
            end = load_json(path)["end"]["sum_received"]
            loopback[f"streams_{streams}_bytes_per_s"] = end["bits_per_second"] / 8
        except (KeyError, ValueError) as error:
            loopback[f"streams_{streams}_error"] = str(error)

    servers = sorted({r["server"] for r in results} | set(ttfb), key=server_key)
    scenarios = [s for s in meta["settings"]["scenarios"] if s in SCENARIOS]
    return {
        # Relative to the directory holding OUT_DIR (the repository for the default results/).
        "raw_dir": os.path.relpath(os.path.abspath(raw), os.path.dirname(os.path.abspath(out_dir))),
        "machine": meta["machine"],
        "settings": meta["settings"],
        "loopback": loopback,
        "scenarios": {
            s: {
                "title": SCENARIOS[s][0],
                "ratio_metric": SCENARIOS[s][1],
                "connections": next((r["connections"] for r in results if r["scenario"] == s), None),
            }
            for s in scenarios
        },
        "servers": servers,
        "results": results,
        "ttfb": ttfb_rows,
        "memory": memory,
        "notes": load_jsonl(os.path.join(raw, "notes.jsonl")),
        "failures": load_jsonl(os.path.join(raw, "failures.jsonl")),
    }


# ----------------------------------------------------------------------------------------------
# RESULTS.md


def fmt_num(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def fmt_size(n):
    if n >= GIB and n % GIB == 0:
        return f"{n // GIB} GiB"
    if n >= MIB:
        return f"{n / MIB:g} MiB"
    return f"{n / 1024:g} KiB"


def headline(r):
    """The scenario's headline value, as text."""
    m = r["median"]
    if r["ratio_metric"] == "bytes_per_s":
        return f"{fmt_num(m['bytes_per_s'] / MIB)} MiB/s"
    return f"{fmt_num(m['requests_per_s'])} req/s"


def scenario_label(summary, s):
    info = summary["scenarios"][s]
    title = info["title"]
    if s == "S1":
        title = f"whole {fmt_size(summary['settings']['big_bytes'])} file"
    return f"{s} {title}"


def markdown(summary):
    st = summary["settings"]
    mc = summary["machine"]
    out = []
    w = out.append
    w("# reelserve compared: nginx and the tutorial's Node servers")
    w("")
    if st["quick"] or st["runs"] < 3:
        w(f"> **Smoke run, not a result.** QUICK={int(st['quick'])}, {st['runs']} run(s) of "
          f"{st['duration']} per scenario, big file {fmt_size(st['big_bytes'])}; the machine's load "
          f"average at the start was {', '.join(f'{x:.2f}' for x in mc['load_average_at_start'])}. "
          "Numbers from such a run only show that the pipeline works; run the full comparison "
          "(`scripts/compare.sh`) on a quiet machine before quoting any of them.")
        w("")
    w(f"Produced by `scripts/compare.sh` at {mc['timestamp']} from commit `{mc['reelserve_commit']}`: "
      f"every server in turn on loopback, the same files, wrk with {st['wrk_threads']} threads, "
      f"medians of {st['runs']} run(s) of {st['duration']} each. reelserve and nginx use "
      f"{st['workers']} workers; Node is one event loop (plus libuv's pool). Raw output: "
      f"`{summary['raw_dir']}/` (not committed).")
    w("")
    w("## Machine")
    w("")
    w("| nproc | kernel | CPU | RAM | load at start | loopback ceiling (iperf3) |")
    w("|---|---|---|---|---|---|")
    lb = summary["loopback"] or {}
    ceilings = [
        f"{lb[key] / GIB:.2f} GiB/s with {n} stream{'s' if n > 1 else ''}"
        for n, key in ((1, "streams_1_bytes_per_s"), (4, "streams_4_bytes_per_s")) if key in lb
    ]
    ceiling = "; ".join(ceilings) or "not measured"
    w(f"| {mc['nproc']} | {mc['kernel']} | {mc['cpu_model']} | {mc['mem_total_gib']} GiB | "
      f"{', '.join(f'{x:.2f}' for x in mc['load_average_at_start'])} | {ceiling} |")
    w("")
    versions = ", ".join(f"{k}: {v}" for k, v in mc["versions"].items() if v)
    w(f"Tools: {versions}.")
    w("")
    w("The client (wrk) and the server share the machine's cores, and loopback is a memory copy, "
      "not a NIC: the ceiling above is what one TCP stream can move here at all.")
    w("")

    results = summary["results"]
    scenarios = list(summary["scenarios"])
    by = {(r["server"], r["scenario"]): r for r in results}
    servers = [s for s in summary["servers"] if any((s, sc) in by for sc in scenarios)]
    if results:
        w("## Overview (medians; ratio against nginx in the same run)")
        w("")
        w("S1 and S2 are compared by throughput, S3–S5 by requests per second. "
          "– : not run (see the notes) or failed.")
        w("")
        w("| server | " + " | ".join(
            f"{scenario_label(summary, s)}, -c {summary['scenarios'][s]['connections'] or '–'}"
            for s in scenarios) + " |")
        w("|---|" + "---|" * len(scenarios))
        for server in servers:
            cells = []
            for s in scenarios:
                r = by.get((server, s))
                if r is None:
                    cells.append("–")
                else:
                    cells.append(f"{headline(r)} ({fmt_ratio(r['ratio_vs_nginx'])})")
            w(f"| {server} | " + " | ".join(cells) + " |")
        w("")

        for s in scenarios:
            rows = [r for r in results if r["scenario"] == s]
            if not rows:
                continue
            w(f"### {scenario_label(summary, s)}, wrk -t{rows[0]['threads']} "
              f"-c{summary['scenarios'][s]['connections']}")
            w("")
            w("| server | MiB/s | req/s | p50 ms | p99 ms | server CPU s/GiB | peak RSS MiB | "
              "errors | vs nginx | runs |")
            w("|---|---|---|---|---|---|---|---|---|---|")
            for r in sorted(rows, key=lambda r: server_key(r["server"])):
                m = r["median"]
                conns = "" if r["connections"] == summary["scenarios"][s]["connections"] \
                    else f" (-c {r['connections']})"
                w(f"| {r['server']}{conns} | {fmt_num(m['bytes_per_s'] / MIB)} | "
                  f"{fmt_num(m['requests_per_s'])} | {fmt_num(m['latency_p50_ms'], 2)} | "
                  f"{fmt_num(m['latency_p99_ms'], 2)} | {fmt_num(m['cpu_s_per_gib'], 2)} | "
                  f"{fmt_num(m['peak_rss_kib'] / 1024, 1)} | {m['errors']} | "
                  f"{fmt_ratio(r['ratio_vs_nginx'])} | {r['runs']} |")
            w("")

    if summary["ttfb"]:
        w(f"## Time to first byte of the whole {fmt_size(st['big_bytes'])} file (curl, one request at a time)")
        w("")
        w("| server | TTFB median ms | min–max ms | whole download median s | runs |")
        w("|---|---|---|---|---|")
        for t in summary["ttfb"]:
            w(f"| {t['server']} | {fmt_num(t['ttfb_median_s'] * 1e3, 1)} | "
              f"{fmt_num(t['ttfb_min_s'] * 1e3, 1)}–{fmt_num(t['ttfb_max_s'] * 1e3, 1)} | "
              f"{fmt_num(t['total_median_s'], 2)} | {t['runs']} |")
        w("")

    if summary["memory"] or any(n["scenario"].startswith("memory") for n in summary["notes"]):
        levels = st["mem_concurrency"]
        w(f"## Peak RSS vs concurrent whole-file downloads ({fmt_size(st['big_bytes'])} file, curl)")
        w("")
        w("A fresh reelserve per cell; VmHWM after all downloads finished. MiB.")
        w("")
        w("| mode | " + " | ".join(f"×{c}" for c in levels) + " |")
        w("|---|" + "---|" * len(levels))
        mem = {(m["mode"], m["concurrency"]): m for m in summary["memory"]}
        for mode in st["mem_modes"]:
            cells = []
            for c in levels:
                m = mem.get((mode, c))
                if m is None:
                    cells.append("not run")
                else:
                    done = "" if m["complete"] == c else f" ({m['complete']}/{c} complete)"
                    cells.append(f"{fmt_num(m['peak_rss_kib'] / 1024, 1)}{done}")
            w(f"| {mode} | " + " | ".join(cells) + " |")
        w("")

    if summary["notes"]:
        w("## Notes: what was not run, and caps")
        w("")
        seen = set()
        for n in summary["notes"]:
            key = (n["server"], n["scenario"], n["note"])
            if key in seen:
                continue
            seen.add(key)
            w(f"- **{n['server']} {n['scenario']}**: {n['note']}")
        w("")
    w("Peak RSS of nginx is the sum over its master and worker processes (shared pages counted "
      "more than once). CPU is user+system time of the server's processes during the run, per GiB "
      "that wrk read (heads included).")
    w("")
    if summary["failures"]:
        w("## Failures")
        w("")
        for f in summary["failures"]:
            w(f"- **{f['server']} {f['scenario']}**: {f['error']}")
        w("")
    w("## Reproduce")
    w("")
    w("```sh")
    w("scripts/compare.sh                 # full: 1 GiB, 3 runs of 10 s; writes results/")
    w("QUICK=1 scripts/compare.sh         # smoke: 256 MiB, 1 run of 3 s")
    w("```")
    w("")
    w("![throughput per scenario and peak RSS vs concurrency](chart.svg)")
    w("")
    return "\n".join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: summarize.py RAW_DIR OUT_DIR")
    raw, out_dir = sys.argv[1], sys.argv[2]
    summary = summarize(raw, out_dir)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(markdown(summary))
    print(f"wrote {out_dir}/summary.json and {out_dir}/RESULTS.md")


if __name__ == "__main__":
    main()
