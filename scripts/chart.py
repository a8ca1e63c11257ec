#!/usr/bin/env python3
"""What does the comparison look like? Draws results/chart.svg from results/summary.json.

scripts/bench.py calls draw() after every run. On its own:

    scripts/chart.py [SUMMARY_JSON [OUT_SVG]]   (results/summary.json, results/chart.svg)

Two panels, hand-written SVG, Python 3 standard library only:
  1. HTTP/1.1 throughput per scenario: one small bar chart per scenario (each with its own MiB/s
     axis, since a 1 GiB transfer and a 14 KB page differ by orders of magnitude), a bar per
     server, the loopback ceiling (iperf3, 4 streams like S1) as a dashed line where it fits;
  2. peak RSS against concurrent whole-file downloads for each reelserve mode, on a log scale
     (read-all grows with the file size times the downloads; the others stay flat).
"""

import json
import math
import os
import sys
from xml.sax.saxutils import escape

MIB = 1 << 20
GIB = 1 << 30

WIDTH = 1000
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"

COLORS = {
    "reelserve-sendfile": "#1b4f9c",
    "reelserve-mmap": "#4a90d9",
    "reelserve-chunked": "#2ca089",
    "reelserve-read-all": "#8e5bb5",
    "reelserve-sendfile-log": "#6f8fbf",
    "reelserve-sendfile-work-stealing": "#0b2f66",
    "nginx": "#555555",
    "nginx-log": "#999999",
    "caddy": "#1f9e4a",
    "static-web-server": "#b8860b",
    "node-readfile": "#d95f02",
    "node-stream": "#f0a030",
    "node-express-range": "#c7423b",
}
FALLBACK_COLORS = ["#7f7f7f", "#bcbd22", "#17becf", "#e377c2"]
CEILING_COLOR = "#c0392b"

SCENARIO_TITLES = {
    "S1": "S1 whole file",
    "S2": "S2 1 MiB ranges",
    "S3": "S3 64 KiB file",
    "S4": "S4 player page",
    "S5": "S5 seeks",
}


class Svg:
    def __init__(self, width):
        self.width = width
        self.parts = []

    def add(self, element):
        self.parts.append(element)

    def text(self, x, y, content, size=12, anchor="start", weight="normal", fill="#222",
             rotate=None):
        transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{fill}"{transform}>{escape(str(content))}</text>')

    def line(self, x1, y1, x2, y2, stroke="#999", width=1, dash=None):
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                 f'stroke="{stroke}" stroke-width="{width}"{dash_attr}/>')

    def rect(self, x, y, w, h, fill, title=None):
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                 f'fill="{fill}">{tip}</rect>')

    def render(self, height):
        w = self.width
        head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" '
                f'viewBox="0 0 {w} {height}" font-family="{FONT}">',
                f'<rect width="{w}" height="{height}" fill="white"/>']
        return "\n".join(head + self.parts + ["</svg>"]) + "\n"


def nice_ticks(top, count=5):
    """Round tick values from 0 covering `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def short(value):
    """A compact number for bar labels: 987, 12.3k, 1.2M."""
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def color_of(server, index):
    return COLORS.get(server, FALLBACK_COLORS[index % len(FALLBACK_COLORS)])


def throughput_panel(svg, summary, x0, y0, width, height):
    results = [r for r in summary["results"] if r.get("protocol", "http") == "http"]
    scenarios = [s for s in summary["scenarios"] if any(r["scenario"] == s for r in results)]
    servers = [s for s in summary["servers"] if any(r["server"] == s for r in results)]
    svg.text(x0, y0 - 12, "Throughput per scenario — MiB/s, median (higher is better; each "
             "scenario has its own scale)", size=14, weight="bold")
    if not scenarios:
        svg.text(x0 + width / 2, y0 + height / 2, "no wrk results", size=14, anchor="middle")
        return servers
    ceiling, _ = loopback_ceiling(summary)
    gap = 28
    axis_w = 44
    cell_w = (width - gap * (len(scenarios) - 1)) / len(scenarios)
    plot_top, plot_bottom = y0 + 22, y0 + height - 34
    for i, scenario in enumerate(scenarios):
        cx = x0 + i * (cell_w + gap)
        px, pw = cx + axis_w, cell_w - axis_w
        rows = {r["server"]: r for r in results if r["scenario"] == scenario}
        values = {s: rows[s]["median"]["bytes_per_s"] / MIB for s in servers if s in rows}
        top = max(values.values()) if values else 1
        show_ceiling = ceiling > 0 and scenario in ("S1", "S2") and ceiling <= top * 1.6
        ticks = nice_ticks(max(top, ceiling if show_ceiling else 0) * 1.12)
        scale = (plot_bottom - plot_top) / ticks[-1]
        for t in ticks:
            y = plot_bottom - t * scale
            svg.line(px, y, px + pw, y, stroke="#e3e3e3")
            svg.text(px - 5, y + 4, short(t) if t else "0", size=10, anchor="end", fill="#555")
        svg.line(px, plot_top, px, plot_bottom, stroke="#888")
        svg.line(px, plot_bottom, px + pw, plot_bottom, stroke="#888")
        present = [s for s in servers if s in values]
        slot = pw / max(len(present), 1)
        bar_w = min(slot * 0.78, 34)
        for j, server in enumerate(present):
            value = values[server]
            bx = px + j * slot + (slot - bar_w) / 2
            bh = value * scale
            r = rows[server]
            tip = (f"{server} {scenario}: {value:,.0f} MiB/s, "
                   f"{r['median']['requests_per_s']:,.0f} req/s, -c {r['connections']}")
            svg.rect(bx, plot_bottom - bh, bar_w, bh, color_of(server, servers.index(server)), tip)
            label = short(value)
            if r["ratio"] is not None:
                label += f" ({r['ratio']:.2f}×)"
            svg.text(bx + bar_w / 2 + 3.5, plot_bottom - bh - 4, label, size=9.5, rotate=-90,
                     fill="#222")
        if show_ceiling:
            y = plot_bottom - ceiling * scale
            svg.line(px, y, px + pw, y, stroke=CEILING_COLOR, width=1.2, dash="5,4")
        conns = summary["scenarios"][scenario].get("connections")
        title = SCENARIO_TITLES.get(scenario, scenario)
        svg.text(px + pw / 2, plot_bottom + 16, title, size=12, anchor="middle", weight="bold")
        ratio_by = "req/s" if summary["scenarios"][scenario]["ratio_metric"] == "requests_per_s" \
            else "MiB/s"
        svg.text(px + pw / 2, plot_bottom + 30, f"wrk -c {conns}; ratio by {ratio_by}",
                 size=10, anchor="middle", fill="#555")
    return servers


def loopback_ceiling(summary):
    """(MiB/s, streams) iperf3 reached with 4 streams (S1's connection count), else with 1;
    (0, 0) when it was not measured."""
    loopback = summary.get("loopback") or {}
    for streams in (4, 1):
        value = loopback.get(f"streams_{streams}_bytes_per_s")
        if value:
            return value / MIB, streams
    return 0, 0


def legend(svg, servers, loopback, x0, y0, width):
    ceiling, streams = loopback
    x, y = x0, y0
    items = [(server, 22 + len(server) * 7.2) for server in servers]
    if ceiling:
        items.append((None, 300))
    for i, (server, item_w) in enumerate(items):
        if x + item_w > x0 + width:
            x, y = x0, y + 18
        if server is None:
            svg.line(x, y - 4, x + 18, y - 4, stroke=CEILING_COLOR, width=1.5, dash="5,4")
            svg.text(x + 23, y, f"loopback ceiling (iperf3, {streams} stream"
                     f"{'s' if streams > 1 else ''}): {ceiling:,.0f} MiB/s", size=12)
        else:
            svg.rect(x, y - 10, 12, 12, color_of(server, i))
            svg.text(x + 17, y, server, size=12)
        x += item_w + 14
    return y


def memory_panel(svg, summary, x0, y0, width, height):
    settings = summary["settings"]
    big = settings["big_bytes"]
    svg.text(x0, y0 - 12, f"Peak RSS vs concurrent whole-file downloads of a "
             f"{big / MIB:,.0f} MiB file — MiB, log scale (lower is better)", size=14,
             weight="bold")
    levels = settings.get("mem_concurrency") or [1, 4, 16, 64]
    modes = settings.get("mem_modes") or ["read-all", "chunked", "sendfile"]
    points = {(m["mode"], m["concurrency"]): m["peak_rss_kib"] / 1024 for m in summary["memory"]}
    if not points:
        svg.text(x0 + width / 2, y0 + height / 2, "not measured (MEMORY=0)", size=14,
                 anchor="middle")
        return
    axis_w = 56
    px, pw = x0 + axis_w, width - axis_w - 150
    top, bottom = y0 + 10, y0 + height - 30
    lo = max(1.0, min(points.values()))
    hi = max(points.values())
    lo_exp = math.floor(math.log10(lo))
    hi_exp = max(math.ceil(math.log10(hi * 1.3)), lo_exp + 1)

    def y_of(mib):
        frac = (math.log10(max(mib, 10 ** lo_exp)) - lo_exp) / (hi_exp - lo_exp)
        return bottom - frac * (bottom - top)

    for e in range(lo_exp, hi_exp + 1):
        y = y_of(10 ** e)
        svg.line(px, y, px + pw, y, stroke="#e3e3e3")
        label = f"{10 ** e:,}" if e >= 0 else f"{10 ** e:g}"
        svg.text(px - 6, y + 4, label, size=10, anchor="end", fill="#555")
    svg.line(px, top, px, bottom, stroke="#888")
    svg.line(px, bottom, px + pw, bottom, stroke="#888")
    svg.text(x0 + 12, (top + bottom) / 2, "peak RSS (MiB)", size=11, anchor="middle",
             rotate=-90, fill="#555")

    def x_of(i):
        return px + 30 + i * (pw - 60) / max(len(levels) - 1, 1)

    for i, c in enumerate(levels):
        svg.text(x_of(i), bottom + 16, f"×{c}", size=11, anchor="middle")
    svg.text(px + pw / 2, bottom + 30, "concurrent downloads (curl, whole file)", size=11,
             anchor="middle", fill="#555")

    for k, mode in enumerate(modes):
        server = "reelserve-" + mode
        color = color_of(server, k)
        coords = [(x_of(i), y_of(points[(mode, c)]), points[(mode, c)])
                  for i, c in enumerate(levels) if (mode, c) in points]
        if len(coords) > 1:
            path = " ".join(f"{'M' if n == 0 else 'L'}{x:.1f},{y:.1f}"
                            for n, (x, y, _) in enumerate(coords))
            svg.add(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        # Close values (chunked and sendfile both stay small) must not print over each other:
        # the last mode's labels go below its points, the others' above.
        below = k == len(modes) - 1
        for x, y, v in coords:
            svg.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"/>')
            svg.text(x + 7, y + 15 if below else y - 7, f"{v:,.0f}" if v >= 10 else f"{v:.1f}",
                     size=10, fill=color)
        for i, c in enumerate(levels):
            if (mode, c) not in points:
                y = top + 8 + 14 * k
                svg.text(x_of(i), y, f"{mode}: not run", size=10, anchor="middle", fill=color)
        # Legend entry at the right of the plot.
        ly = top + 12 + 20 * k
        svg.line(px + pw + 16, ly - 4, px + pw + 40, ly - 4, stroke=color, width=2.5)
        svg.text(px + pw + 46, ly, mode, size=12)


def draw(summary):
    """The chart of one summary.json, as SVG text."""
    machine, settings = summary["machine"], summary["settings"]

    svg = Svg(WIDTH)
    title = "reelserve vs nginx, Caddy, static-web-server and Node (HTTP/1.1, loopback)"
    svg.text(24, 28, title, size=17, weight="bold")
    subtitle = (f"{machine['nproc']} cores, {machine['cpu_model']}, Linux {machine['kernel']} · "
                f"median of {settings['runs']} × {settings['duration']} s · "
                f"commit {machine['reelserve_commit']}")
    if settings["quick"] or settings["runs"] < 3:
        subtitle += " · SMOKE RUN, not a result"
    svg.text(24, 47, subtitle, size=11, fill="#a33" if settings["quick"] else "#555")

    servers = throughput_panel(svg, summary, 24, 92, WIDTH - 48, 330)
    # The legend wraps onto as many rows as the servers need; the memory panel goes below it.
    legend_bottom = legend(svg, servers, loopback_ceiling(summary), 68, 448, WIDTH - 92)
    memory_top = legend_bottom + 64
    memory_panel(svg, summary, 24, memory_top, WIDTH - 48, 170)
    return svg.render(memory_top + 188)


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else "results/summary.json"
    target = sys.argv[2] if len(sys.argv) > 2 \
        else os.path.join(os.path.dirname(source), "chart.svg")
    with open(source) as f:
        summary = json.load(f)
    with open(target, "w") as f:
        f.write(draw(summary))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
