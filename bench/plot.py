"""The PNG of a full benchmark run: reach-all (p50, with p99 as a band) against viewers, for the deployed stack,
Daphne directly and the plain `websockets` server (bench/run.py calls plot() with its report)."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

LABELS = {
    "stack": "deployed stack (Apache TLS -> Daphne -> Redis)",
    "daphne": "Daphne directly (no Apache)",
    "plain": "plain websockets server",
}


def plot(report: dict, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for name, runs in report["phases"].get("fanout", {}).items():
        points = [(r["viewers"], r["reach_all_ms"]["p50"], r["reach_all_ms"]["p99"]) for r in runs]
        points = [p for p in points if p[1] is not None]
        if not points:
            continue
        xs = [p[0] for p in points]
        line = axes.plot(xs, [p[1] for p in points], marker="o", label=f"{LABELS.get(name, name)}: p50")[0]
        axes.plot(xs, [p[2] for p in points], linestyle="--", color=line.get_color(), alpha=0.6, label="p99")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("viewers of one graph")
    axes.set_ylabel("reach-all: POST to the last viewer's frame (ms)")
    axes.set_title(f"Fan-out of one comment, {report['started'][:10]}, {report['machine']['cpus']} CPUs")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
