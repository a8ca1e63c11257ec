#!/usr/bin/env python3
"""What did a benchmark run find? Medians, ratios and RESULTS.md, for scripts/bench.py.

Imported by bench.py, which hands it every measured run. Run on its own, it writes RESULTS.md
and chart.svg again from a summary.json (after a change to the report's layout, say):

    scripts/bench_report.py [SUMMARY_JSON]      (default: results/summary.json)

One row of the summary is a (server, protocol, scenario) triple with the medians of its runs and
its ratio against its baseline server (nginx, or nginx with its access log on) on the same
protocol in the same run. Python 3 standard library only.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

GIB = 1 << 30
MIB = 1 << 20


def derive(run: dict) -> dict:
    """One measured run -> the numbers the report uses."""
    gib = run["bytes"] / GIB
    requests = run["requests"]
    cpu = run["cpu_user_s"] + run["cpu_system_s"]
    return {
        "bytes_per_s": run["bytes"] / run["seconds"],
        "requests_per_s": requests / run["seconds"],
        "latency_p50_ms": run["latency_p50_ms"],
        "latency_p99_ms": run["latency_p99_ms"],
        "latency_mean_ms": run["latency_mean_ms"],
        "cpu_s_per_gib": cpu / gib if gib else None,
        "machine_cpu_s_per_gib": run["machine_cpu_s"] / gib if gib else None,
        "user_us_per_request": run["cpu_user_s"] / requests * 1e6 if requests else None,
        "kernel_us_per_request": run["cpu_system_s"] / requests * 1e6 if requests else None,
        "switches_per_request": run["voluntary_switches"] / requests if requests else None,
        "peak_rss_kib": run["peak_rss_kib"],
        "requests": requests,
        "bytes": run["bytes"],
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(meta: dict, *, runs: list[dict], ttfb: list[dict], idle: list[dict],
              memory: list[dict], loopback: dict | None, negotiated: dict, notes: list[dict],
              failures: list[dict], raw_dir: str, scenarios: dict, protocols: dict,
              server_order: list[str], baselines: dict, reference: str) -> dict:
    """The whole run as one JSON-able dict (summary.json)."""
    proto_order = list(protocols)
    scen_order = list(scenarios)

    def server_key(name):
        return server_order.index(name) if name in server_order else len(server_order)

    grouped: dict[tuple, list[dict]] = {}
    for run in runs:
        grouped.setdefault((run["server"], run["protocol"], run["scenario"]), []).append(run)
    results = []
    for (server, protocol, scenario), group in sorted(
            grouped.items(), key=lambda kv: (proto_order.index(kv[0][1]),
                                             scen_order.index(kv[0][2]), server_key(kv[0][0]))):
        derived = [derive(r) for r in group]
        results.append({
            "server": server,
            "protocol": protocol,
            "scenario": scenario,
            "client": group[0]["client"],
            "negotiated": group[0]["negotiated"],
            "connections": group[0]["connections"],
            "threads": group[0]["client_threads"],
            "runs": len(group),
            "median": {k: median(d[k] for d in derived) for k in derived[0]},
            "errors": sum(r["errors"] for r in group),
            "min_bytes_per_s": min(d["bytes_per_s"] for d in derived),
            "max_bytes_per_s": max(d["bytes_per_s"] for d in derived),
            "peak_rss_reset": all(r["peak_rss_reset"] for r in group),
        })
    by_key = {(r["server"], r["protocol"], r["scenario"]): r for r in results}
    for r in results:
        metric = scenarios[r["scenario"]][1]
        baseline = baselines.get(r["server"], "nginx")
        base = by_key.get((baseline, r["protocol"], r["scenario"]))
        r["ratio_metric"] = metric
        r["baseline"] = baseline if r["server"] != baseline else None
        r["ratio"] = (r["median"][metric] / base["median"][metric]
                      if r["baseline"] and base and base["median"][metric] else None)

    ttfb_rows = []
    for server in sorted({t["server"] for t in ttfb}, key=server_key):
        samples = [t for t in ttfb if t["server"] == server]
        ttfb_rows.append({
            "server": server,
            "runs": len(samples),
            "ttfb_median_s": median(s["time_starttransfer"] for s in samples),
            "ttfb_min_s": min(s["time_starttransfer"] for s in samples),
            "ttfb_max_s": max(s["time_starttransfer"] for s in samples),
            "total_median_s": median(s["time_total"] for s in samples),
        })
    for m in memory:
        m["bytes_per_s"] = m["bytes"] / m["seconds"] if m["seconds"] > 0 else None

    settings = meta["settings"]
    return {
        "raw_dir": raw_dir,
        "machine": meta["machine"],
        "settings": settings,
        "reference": reference,
        "loopback": loopback,
        "protocols": {p: protocols[p] for p in proto_order if p in settings["protocols"]},
        "scenarios": {
            s: {
                "title": scenarios[s][0],
                "ratio_metric": scenarios[s][1],
                "per_request_cpu": scenarios[s][2],
                "connections": next((r["connections"] for r in results if r["scenario"] == s),
                                    None),
            }
            for s in scen_order if s in settings["scenarios"]
        },
        "servers": sorted({r["server"] for r in results} | {t["server"] for t in ttfb}
                          | {i["server"] for i in idle}, key=server_key),
        "results": results,
        "ttfb": ttfb_rows,
        "idle": sorted(idle, key=lambda i: server_key(i["server"])),
        "memory": sorted(memory, key=lambda m: (server_key("reelserve-" + m["mode"]),
                                                m["concurrency"])),
        "negotiated": negotiated,
        "notes": notes,
        "failures": failures,
    }


# ----------------------------------------------------------------------------------------------
# Targets: what the default reelserve row must reach, computed from the same run.


def targets(summary: dict) -> list[tuple[str, str, str, bool | None]]:
    """(what, measured, target, met) rows; met is None when the run did not measure it."""
    ref = summary["reference"]
    by = {(r["server"], r["protocol"], r["scenario"]): r for r in summary["results"]}
    rows = []

    def ratio_row(what, server, scenario, at_least, protocol="http"):
        r = by.get((server, protocol, scenario))
        if r is None or r["ratio"] is None:
            rows.append((what, "not measured", f"≥ {at_least:.2f}×", None))
        else:
            rows.append((what, f"{r['ratio']:.2f}× {r['baseline']}", f"≥ {at_least:.2f}×",
                         r["ratio"] >= at_least))

    ratio_row(f"S4 page, access log off on both ({ref})", ref, "S4", 1.0)
    ratio_row(f"S4 page, access log on on both ({ref}-log vs nginx-log)", f"{ref}-log", "S4", 1.0)
    for s in ("S1", "S2", "S3"):
        ratio_row(f"{s} vs nginx", ref, s, 1.10)

    mine, nginx = by.get((ref, "http", "S1")), by.get(("nginx", "http", "S1"))
    if mine and nginx:
        m, n = mine["median"], nginx["median"]
        rows.append(("S1 server CPU s/GiB (whole machine in brackets)",
                     f"{m['cpu_s_per_gib']:.3f} ({m['machine_cpu_s_per_gib']:.2f}) vs nginx "
                     f"{n['cpu_s_per_gib']:.3f} ({n['machine_cpu_s_per_gib']:.2f})",
                     "≤ nginx's", m["cpu_s_per_gib"] <= n["cpu_s_per_gib"]))
    else:
        rows.append(("S1 server CPU s/GiB", "not measured", "≤ nginx's", None))

    s4 = by.get((ref, "http", "S4"))
    if s4:
        m = s4["median"]
        rows.append(("S4 user-space CPU per request",
                     f"{m['user_us_per_request']:.2f} µs "
                     f"(kernel {m['kernel_us_per_request']:.2f})",
                     "≤ 4 µs", m["user_us_per_request"] <= 4))
    else:
        rows.append(("S4 user-space CPU per request", "not measured", "≤ 4 µs", None))

    for peer in ("caddy", "static-web-server"):
        ratios = []
        for s in summary["scenarios"]:
            a, b = by.get((ref, "http", s)), by.get((peer, "http", s))
            if a and b and b["median"][a["ratio_metric"]]:
                ratios.append((s, a["median"][a["ratio_metric"]] / b["median"][a["ratio_metric"]]))
        if ratios:
            rows.append((f"ahead of {peer} in every scenario",
                         ", ".join(f"{s} {x:.2f}×" for s, x in ratios), "> 1.00× each",
                         all(x > 1 for _, x in ratios)))
        else:
            rows.append((f"ahead of {peer} in every scenario", "not measured", "> 1.00× each",
                         None))

    at64 = [r["median"]["peak_rss_kib"] for r in summary["results"]
            if r["server"] == ref and r["connections"] == 64]
    rows.append(("peak RSS at 64 connections (largest over the scenarios)",
                 f"{max(at64) / 1024:.1f} MiB" if at64 else "not measured", "≤ 32 MiB",
                 max(at64) <= 32 * 1024 if at64 else None))
    idle = next((i for i in summary["idle"] if i["server"] == ref), None)
    rows.append(("memory per idle keep-alive connection",
                 f"{idle['bytes_per_connection']:,.0f} B" if idle else "not measured",
                 "≤ 7,500 B", idle["bytes_per_connection"] <= 7500 if idle else None))
    return rows


# ----------------------------------------------------------------------------------------------
# RESULTS.md


def num(x, digits=0):
    return "–" if x is None else f"{x:,.{digits}f}"


def ratio_text(r):
    return "–" if r["ratio"] is None else f"{r['ratio']:.2f}×"


def size_text(n):
    if n >= GIB and n % GIB == 0:
        return f"{n // GIB} GiB"
    if n >= MIB:
        return f"{n / MIB:g} MiB"
    return f"{n / 1024:g} KiB"


def headline(r):
    m = r["median"]
    if r["ratio_metric"] == "bytes_per_s":
        return f"{num(m['bytes_per_s'] / MIB)} MiB/s"
    return f"{num(m['requests_per_s'])} req/s"


def scenario_label(summary, s):
    title = summary["scenarios"][s]["title"]
    if s == "S1":
        title = f"whole {size_text(summary['settings']['big_bytes'])} file"
    return f"{s} {title}"


def markdown(summary: dict) -> str:
    st, mc = summary["settings"], summary["machine"]
    out: list[str] = []
    w = out.append
    load = ", ".join(f"{x:.2f}" for x in mc["load_average_at_start"])
    w("# reelserve compared: nginx, Caddy, static-web-server and the tutorial's Node servers")
    w("")
    if st["quick"] or st["runs"] < 3:
        w(f"> **Smoke run, not a result.** {st['runs']} run(s) of {st['duration']} s per row, big "
          f"file {size_text(st['big_bytes'])}; load average at the start {load}. Numbers from "
          "such a run only show that the pipeline works; run the full comparison "
          "(`scripts/bench.py`) on a quiet machine before quoting any of them.")
        w("")
    w(f"Produced by `scripts/bench.py` at {mc['timestamp']} from commit "
      f"`{mc['reelserve_commit']}`: every server in turn on loopback, the same files, "
      f"{st['client_threads']} client threads, medians of {st['runs']} run(s) of "
      f"{st['duration']} s each. reelserve and nginx use {st['workers']} workers; Caddy and "
      "static-web-server their defaults (one thread per core); Node is one event loop. Raw "
      f"output: `{summary['raw_dir']}/` (not committed).")
    w("")
    w("## Machine")
    w("")
    w("| nproc | kernel | CPU | RAM | load at start | loopback ceiling (iperf3) |")
    w("|---|---|---|---|---|---|")
    lb = summary["loopback"] or {}
    ceiling = "; ".join(
        f"{lb[key] / GIB:.2f} GiB/s with {n} stream{'s' if n > 1 else ''}"
        for n, key in ((1, "streams_1_bytes_per_s"), (4, "streams_4_bytes_per_s")) if key in lb
    ) or "not measured"
    w(f"| {mc['nproc']} | {mc['kernel']} | {mc['cpu_model']} | {mc['mem_total_gib']} GiB | "
      f"{load} | {ceiling} |")
    w("")
    w("Tools: " + ", ".join(f"{k}: {v}" for k, v in mc["versions"].items()) + ".")
    w("")

    w(f"## Targets ({summary['reference']}, ratios from this run)")
    w("")
    w("| what | measured | target | met |")
    w("|---|---|---|---|")
    for what, measured, target, met in targets(summary):
        w(f"| {what} | {measured} | {target} | "
          f"{'–' if met is None else ('yes' if met else '**no**')} |")
    w("")

    results = summary["results"]
    for protocol, plabel in summary["protocols"].items():
        rows = [r for r in results if r["protocol"] == protocol]
        if not rows:
            continue
        scenarios = [s for s in summary["scenarios"] if any(r["scenario"] == s for r in rows)]
        by = {(r["server"], r["scenario"]): r for r in rows}
        w(f"## {plabel}: overview (medians; ratio against the row's baseline in the same run)")
        w("")
        w("S1 and S2 are compared by throughput, the others by requests per second; the "
          "baseline is nginx, and nginx with its access log on for the `-log` rows. – : not run "
          "(see the notes) or failed.")
        w("")
        w("| server | " + " | ".join(
            f"{scenario_label(summary, s)}, -c {summary['scenarios'][s]['connections']}"
            for s in scenarios) + " |")
        w("|---|" + "---|" * len(scenarios))
        for server in summary["servers"]:
            if not any((server, s) in by for s in scenarios):
                continue
            cells = [f"{headline(by[server, s])} ({ratio_text(by[server, s])})"
                     if (server, s) in by else "–" for s in scenarios]
            w(f"| {server} | " + " | ".join(cells) + " |")
        w("")
        for s in scenarios:
            detail(w, summary, [r for r in rows if r["scenario"] == s], plabel)

    if summary["ttfb"]:
        w(f"## Time to first byte of the whole {size_text(st['big_bytes'])} file "
          "(curl, one request at a time)")
        w("")
        w("| server | TTFB median ms | min–max ms | whole download median s | runs |")
        w("|---|---|---|---|---|")
        for t in summary["ttfb"]:
            w(f"| {t['server']} | {num(t['ttfb_median_s'] * 1e3, 1)} | "
              f"{num(t['ttfb_min_s'] * 1e3, 1)}–{num(t['ttfb_max_s'] * 1e3, 1)} | "
              f"{num(t['total_median_s'], 2)} | {t['runs']} |")
        w("")

    if summary["idle"]:
        w("## Idle keep-alive connections")
        w("")
        w("Each connection makes one `HEAD /` and then stays open; RSS (summed over the server's "
          "processes) before and one second after the last one.")
        w("")
        w("| server | connections | RSS before MiB | RSS after MiB | bytes per connection |")
        w("|---|---|---|---|---|")
        for i in summary["idle"]:
            w(f"| {i['server']} | {i['connections']:,} | {num(i['rss_before_kib'] / 1024, 1)} | "
              f"{num(i['rss_after_kib'] / 1024, 1)} | {num(i['bytes_per_connection'])} |")
        w("")

    if summary["memory"] or any(n["scenario"].startswith("memory") for n in summary["notes"]):
        levels = st["mem_concurrency"]
        w(f"## Peak RSS vs concurrent whole-file downloads ({size_text(st['big_bytes'])} file, "
          "curl)")
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
                    cells.append(f"{num(m['peak_rss_kib'] / 1024, 1)}{done}")
            w(f"| {mode} | " + " | ".join(cells) + " |")
        w("")

    if summary["negotiated"]:
        w("## TLS: what each server negotiated (openssl s_client)")
        w("")
        for name, text in summary["negotiated"].items():
            w(f"- {name}: {text}")
        w("")

    listed(w, "Notes: what was not run, and caps", summary["notes"], "note")
    w("Peak RSS of nginx is the sum over its master and worker processes (shared pages counted "
      "more than once). Server CPU is user+system time of the server's processes during the "
      "run, per GiB the client read (heads included); whole-machine CPU is every core's busy "
      "time (/proc/stat), the client's included. Latency: wrk's percentiles; h2load reports "
      f"only a mean. S2 over HTTP/2 repeats one range ({st['h2load_range']}): h2load cannot "
      "vary headers per request.")
    w("")
    listed(w, "Failures", summary["failures"], "error")
    w("## Reproduce")
    w("")
    w("```sh")
    w("scripts/bench.py            # full: 1 GiB, 3 runs of 10 s; writes results/")
    w("scripts/bench.py --quick    # smoke: 256 MiB, 1 run of 3 s; writes results/quick/")
    w("```")
    w("")
    w("![throughput per scenario and peak RSS vs concurrency](chart.svg)")
    w("")
    return "\n".join(out)


def listed(w, title, entries, text_key):
    """A section of notes or failures, one bullet per server and scenario."""
    if entries:
        w(f"## {title}")
        w("")
        for e in entries:
            w(f"- **{e['server']} {e['scenario']}**: {e[text_key]}")
        w("")


def detail(w, summary, rows, plabel):
    """The table of one scenario over one protocol."""
    s = rows[0]["scenario"]
    per_request = summary["scenarios"][s]["per_request_cpu"]
    client = rows[0]["client"]
    w(f"### {scenario_label(summary, s)}, {plabel}, {client} -t{rows[0]['threads']} "
      f"-c{summary['scenarios'][s]['connections']}")
    w("")
    latency = "p50 ms | p99 ms" if client == "wrk" else "mean latency ms"
    extra = " user µs/req | kernel µs/req | switches/req |" if per_request else ""
    head = (f"| server | MiB/s | req/s | {latency} | server CPU s/GiB | machine CPU s/GiB |"
            f"{extra} peak RSS MiB | errors | ratio | runs |")
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        m = r["median"]
        conns = "" if r["connections"] == summary["scenarios"][s]["connections"] \
            else f" (-c {r['connections']})"
        lat = (f"{num(m['latency_p50_ms'], 2)} | {num(m['latency_p99_ms'], 2)}"
               if client == "wrk" else num(m["latency_mean_ms"], 2))
        cpu = (f" {num(m['user_us_per_request'], 2)} | {num(m['kernel_us_per_request'], 2)} | "
               f"{num(m['switches_per_request'], 3)} |" if per_request else "")
        ratio = ratio_text(r) + (f" {r['baseline']}" if r["ratio"] is not None else "")
        w(f"| {r['server']}{conns} | {num(m['bytes_per_s'] / MIB)} | {num(m['requests_per_s'])} "
          f"| {lat} | {num(m['cpu_s_per_gib'], 3)} | {num(m['machine_cpu_s_per_gib'], 2)} |{cpu} "
          f"{num(m['peak_rss_kib'] / 1024, 1)} | {r['errors']} | {ratio} | {r['runs']} |")
    w("")


def main() -> None:
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    import chart

    source = Path(sys.argv[1] if len(sys.argv) == 2 else "results/summary.json")
    summary = json.loads(source.read_text())
    (source.parent / "RESULTS.md").write_text(markdown(summary))
    (source.parent / "chart.svg").write_text(chart.draw(summary))
    print(f"wrote {source.parent}/RESULTS.md and {source.parent}/chart.svg")


if __name__ == "__main__":
    main()
