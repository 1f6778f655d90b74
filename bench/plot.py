"""Draw a backup benchmark result (bench/results/*.json from bench_backup.py) as one picture.

Three panels: wall seconds per step with the page cache dropped, the same warm, and the
repository size and peak RSS of each tool (relative to the better peer, so 1.0 is that peer's
figure). One bar per tool; a dashed line marks pannier's target in each group. With
matplotlib installed (scripts/install-bench-deps.sh puts it in the project's venv) the
picture is a PNG; without it, a plain SVG written by this script.

Usage::

    python bench/plot.py [RESULT.json] [-o docs/performance.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_RESULT = BENCH_DIR / "results" / "latest.json"
DEFAULT_OUTPUT = BENCH_DIR.parent / "docs" / "performance.png"
STEPS = ("initial", "no-change", "mutation", "restore")
#: pannier's figure over the better peer's must not exceed these (as in bench_backup.py).
TARGETS = {
    "initial": 0.6,
    "no-change": 0.3,
    "mutation": 0.4,
    "restore": 0.7,
    "repo size": 1.0,
    "peak RSS": 1.2,
}
COLOURS = {"pannier": "#2a7ab0", "restic": "#d98c2b", "borg": "#5a9e4b"}
Panels = list[tuple[str, list[str], dict[str, list[float | None]]]]


def panels(result: dict[str, Any]) -> Panels:
    """The three panels as (title, category labels, {tool: one value or None per category})."""
    records = result["records"]
    tools = [t for t in ("pannier", "restic", "borg") if any(r["tool"] == t for r in records)]
    out: Panels = []
    modes = [m for m in ("cold", "warm") if any(r["mode"] == m for r in records)]
    for mode in modes:
        values: dict[str, list[float | None]] = {}
        for tool in tools:
            row: list[float | None] = []
            for step in STEPS:
                found = [
                    r["measure"]["wall"]
                    for r in records
                    if r["tool"] == tool
                    and r["step"] == step
                    and r["mode"] == mode
                    and r["measure"]["returncode"] in (0, 1)
                ]
                row.append(found[0] if found else None)
            values[tool] = row
        title = "wall seconds, page cache dropped" if mode == "cold" else "wall seconds, warm"
        out.append((title, list(STEPS), values))
    mode = modes[0] if modes else "cold"
    size: dict[str, float] = {}
    rss: dict[str, float] = {}
    for r in records:
        if r["mode"] != mode:
            continue
        if r["step"] == "mutation":
            size[r["tool"]] = r["repo_bytes"]
        rss[r["tool"]] = max(rss.get(r["tool"], 0), r["measure"]["peak_rss"])
    rel: dict[str, list[float | None]] = {}
    for tool in tools:
        row = []
        for table in (size, rss):
            peers = [v for t, v in table.items() if t != "pannier"]
            best = min(peers) if peers else None
            row.append(table[tool] / best if tool in table and best else None)
        rel[tool] = row
    out.append((f"relative to the better peer ({mode})", ["repo size", "peak RSS"], rel))
    return out


def plot_png(data: Panels, subtitle: str, output: Path) -> None:
    """Draw ``data`` with matplotlib into a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(5 * len(data), 4.2))
    if len(data) == 1:
        axes = [axes]
    for ax, (title, labels, values) in zip(axes, data, strict=True):
        width = 0.8 / max(1, len(values))
        for i, (tool, row) in enumerate(values.items()):
            xs = [j + (i - (len(values) - 1) / 2) * width for j in range(len(labels))]
            ys = [v if v is not None else 0.0 for v in row]
            bars = ax.bar(xs, ys, width, label=tool, color=COLOURS.get(tool, "#888888"))
            for bar, v in zip(bars, row, strict=True):
                text = "n/a" if v is None else f"{v:.1f}" if v >= 10 else f"{v:.2f}"
                ax.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        # The target: the largest figure pannier may have, from the better peer's.
        for j, label in enumerate(labels):
            peers = [v for t, row in values.items() if t != "pannier" and (v := row[j])]
            if peers and label in TARGETS:
                y = min(peers) * TARGETS[label]
                ax.hlines(
                    y,
                    j - 0.45,
                    j + 0.45,
                    colors="black",
                    linestyles="dashed",
                    lw=1,
                    label="target" if j == 0 else None,
                )
        ax.set_xticks(range(len(labels)), labels)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)


def plot_svg(data: Panels, subtitle: str, output: Path) -> None:
    """Draw ``data`` as a plain SVG bar chart (no dependency)."""
    pw, ph, top, bottom = 320, 260, 40, 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{pw * len(data)}" height="{ph + 30}" '
        'font-family="sans-serif" font-size="10">',
        f'<text x="8" y="14" font-size="11">{subtitle}</text>',
    ]
    for k, (title, labels, values) in enumerate(data):
        x0 = k * pw + 20
        peak = max((v for row in values.values() for v in row if v is not None), default=1.0)
        scale = (ph - top - bottom) / (peak or 1.0)
        base = ph
        parts.append(f'<text x="{x0}" y="{top - 8 + 20}">{title}</text>')
        group = (pw - 40) / len(labels)
        width = group * 0.8 / max(1, len(values))
        for j, label in enumerate(labels):
            parts.append(f'<text x="{x0 + j * group + 4}" y="{base + 14}">{label}</text>')
            for i, (tool, row) in enumerate(values.items()):
                v = row[j]
                h = 0.0 if v is None else v * scale
                x = x0 + j * group + i * width
                colour = COLOURS.get(tool, "#888888")
                parts.append(
                    f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{width - 1:.1f}" '
                    f'height="{h:.1f}" fill="{colour}"><title>{tool} {v}</title></rect>'
                )
                text = "n/a" if v is None else f"{v:.2f}"
                parts.append(
                    f'<text x="{x:.1f}" y="{base - h - 2:.1f}" font-size="7">{text}</text>'
                )
        for i, tool in enumerate(values):
            colour = COLOURS.get(tool, "#888888")
            parts.append(
                f'<rect x="{x0 + i * 70}" y="{top + 20}" width="8" height="8" fill="{colour}"/>'
            )
            parts.append(f'<text x="{x0 + i * 70 + 11}" y="{top + 28}">{tool}</text>')
    parts.append("</svg>")
    output.write_text("\n".join(parts) + "\n")


def subtitle_of(result: dict[str, Any]) -> str:
    """A one-line description of the run: dataset, machine, date."""
    d = result["dataset"]
    return (
        f"{d['bytes'] / 1e9:.2f} GB, {d['files']} files; {result['machine']['cpus']} CPUs; "
        f"run {result['started']}; cold = {result['cold_method']}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: read a result, write the picture (PNG, or SVG without matplotlib)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", nargs="?", type=Path, default=DEFAULT_RESULT)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text())
    data = panels(result)
    output: Path = args.output
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        output = output.with_suffix(".svg")
        plot_svg(data, subtitle_of(result), output)
    else:
        plot_png(data, subtitle_of(result), output)
    print(f"plot: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
