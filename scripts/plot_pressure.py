#!/usr/bin/env python3
"""Turns ch06_pressure's JSON into an SVG: hit rate vs pool size, one panel per
workload, one line per eviction policy plus Belady's bound (dashed).

    build/bin/ch06_pressure models/stories260K.bin -z models/tok512.bin --json pressure.json
    python3 scripts/plot_pressure.py pressure.json chapters/06_lru_eviction/pressure.svg

Python 3 standard library only (no matplotlib): the SVG is written by hand.
The output goes to a temporary file renamed into place.
"""
import json
import math
import os
import sys
import tempfile

PANEL_W, PANEL_H = 430, 300
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 58, 16, 34, 46
COLUMNS = 2
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
LEGEND_H = 30


def escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def load(path):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    workloads = report.get("workloads")
    if not isinstance(workloads, list) or not workloads:
        raise ValueError(f"{path}: no 'workloads' list (is it ch06_pressure --json output?)")
    for w in workloads:
        rows = w.get("rows")
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"{path}: workload {w.get('workload', '?')!r} has no rows")
        for r in rows:
            for key in ("pool_blocks", "policy", "hit_rate", "belady_hit_rate"):
                if key not in r:
                    raise ValueError(f"{path}: a row of {w.get('workload', '?')!r} has no {key!r}")
            if not r["pool_blocks"] >= 1:
                raise ValueError(f"{path}: pool_blocks must be at least 1, got {r['pool_blocks']}")
    return report


def panel(workload, x0, y0, policies):
    """One workload's panel at (x0, y0): axes, grid, a polyline per policy and Belady."""
    rows = workload["rows"]
    pools = sorted({r["pool_blocks"] for r in rows})
    lo, hi = math.log(pools[0]), math.log(pools[-1])
    span = hi - lo if hi > lo else 1.0
    plot_w = PANEL_W - MARGIN_L - MARGIN_R
    plot_h = PANEL_H - MARGIN_T - MARGIN_B

    def x(pool):  # log scale: each halving of the pool is the same step
        return x0 + MARGIN_L + (math.log(pool) - lo) / span * plot_w if hi > lo else \
            x0 + MARGIN_L + plot_w / 2

    def y(rate):
        return y0 + MARGIN_T + (1.0 - rate) * plot_h

    out = [f'<text x="{x0 + PANEL_W / 2:.1f}" y="{y0 + 20}" text-anchor="middle" '
           f'font-weight="bold">{escape(workload["workload"])}</text>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        ty = y(tick)
        out.append(f'<line x1="{x0 + MARGIN_L}" y1="{ty:.1f}" x2="{x0 + MARGIN_L + plot_w}" '
                   f'y2="{ty:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 + MARGIN_L - 6}" y="{ty + 4:.1f}" text-anchor="end">'
                   f'{int(tick * 100)}%</text>')
    for pool in pools:
        tx = x(pool)
        out.append(f'<line x1="{tx:.1f}" y1="{y(0):.1f}" x2="{tx:.1f}" y2="{y(0) + 4:.1f}" '
                   f'stroke="#333"/>')
        out.append(f'<text x="{tx:.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">{pool}</text>')
    out.append(f'<rect x="{x0 + MARGIN_L}" y="{y(1):.1f}" width="{plot_w}" height="{plot_h}" '
               f'fill="none" stroke="#333"/>')
    out.append(f'<text x="{x0 + MARGIN_L + plot_w / 2:.1f}" y="{y0 + PANEL_H - 8}" '
               f'text-anchor="middle">KV pool (blocks, log scale)</text>')
    out.append(f'<text transform="translate({x0 + 14},{y0 + MARGIN_T + plot_h / 2:.1f}) '
               f'rotate(-90)" text-anchor="middle">prompt hit rate</text>')

    def polyline(points, color, dashed):
        coords = " ".join(f"{x(p):.1f},{y(r):.1f}" for p, r in points)
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        marks = "".join(f'<circle cx="{x(p):.1f}" cy="{y(r):.1f}" r="2.5" fill="{color}"/>'
                        for p, r in points)
        return (f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"'
                f'{dash}/>' + marks)

    for i, policy in enumerate(policies):
        points = sorted((r["pool_blocks"], r["hit_rate"]) for r in rows if r["policy"] == policy)
        if points:
            out.append(polyline(points, COLORS[i % len(COLORS)], False))
    # Last, so the bound stays visible where a policy reaches it.
    belady = sorted({(r["pool_blocks"], r["belady_hit_rate"]) for r in rows})
    out.append(polyline(belady, "#000", True))
    return out


def render(report):
    workloads = report["workloads"]
    policies = []
    for w in workloads:
        for r in w["rows"]:
            if r["policy"] not in policies:
                policies.append(r["policy"])
    rows_of_panels = math.ceil(len(workloads) / COLUMNS)
    width = PANEL_W * min(COLUMNS, len(workloads))
    height = LEGEND_H + PANEL_H * rows_of_panels
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    legend = [(p, COLORS[i % len(COLORS)], False) for i, p in enumerate(policies)]
    legend.append(("Belady (offline optimum)", "#000", True))
    lx = 16
    for name, color, dashed in legend:
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out.append(f'<line x1="{lx}" y1="16" x2="{lx + 24}" y2="16" stroke="{color}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 30}" y="20">{escape(name)}</text>')
        lx += 40 + 7 * len(name)
    for i, w in enumerate(workloads):
        out += panel(w, PANEL_W * (i % COLUMNS), LEGEND_H + PANEL_H * (i // COLUMNS), policies)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_atomically(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temp, 0o666 & ~umask)  # mkstemp's 0600 is for secrets, not a plot
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print("usage: plot_pressure.py PRESSURE.json OUT.svg", file=sys.stderr)
        return 0 if len(argv) == 2 and argv[1] in ("-h", "--help") else 2
    source, target = argv[1], argv[2]
    try:
        if os.path.exists(target) and os.path.samefile(source, target):
            raise ValueError(f"the output {target!r} is the input")
        write_atomically(target, render(load(source)))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
