"""Markdown tables of one benchmark report (bench/results/*.json), for docs/performance.md.

Usage: .venv/bin/python bench/report.py bench/results/full-YYYYMMDD-HHMMSS.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def ratio(a, b) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def fanout_table(report: dict) -> list[str]:
    fan = report["phases"]["fanout"]
    plain = {r["viewers"]: r for r in fan.get("plain", [])}
    lines = [
        "| server | viewers | connected | connect s | reach-all p50 | p99 | max | x plain (p50) | CPU µs/msg "
        "| x plain (CPU) | missing | dup | out of order | presence frames/viewer (max) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("stack", "daphne", "plain"):
        for r in fan.get(name, []):
            p = plain.get(r["viewers"], {})
            lines.append(
                f"| {name} | {fmt(r['viewers'])} | {fmt(r['connect']['open'])} | {fmt(r['connect']['seconds'])} "
                f"| {fmt(r['reach_all_ms']['p50'], ' ms')} | {fmt(r['reach_all_ms']['p99'], ' ms')} "
                f"| {fmt(r['reach_all_ms']['max'], ' ms')} "
                f"| {ratio(r['reach_all_ms']['p50'], p.get('reach_all_ms', {}).get('p50')) if name != 'plain' else ''} "
                f"| {fmt(r['cpu']['us_per_delivered'])} "
                f"| {ratio(r['cpu']['us_per_delivered'], p.get('cpu', {}).get('us_per_delivered')) if name != 'plain' else ''} "
                f"| {fmt(r['missing'] + r['gaps'])} | {fmt(r['dups'])} | {fmt(r.get('out_of_order'))} "
                f"| {fmt(r['presence']['frames_per_viewer_max'])} |"
            )
    return lines


def per_socket_table(report: dict) -> list[str]:
    lines = [
        "| server, viewers | process | processes | threads | RSS MB | fds | threads/socket | RSS KB/socket | fds/socket |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in report["phases"]["fanout"].items():
        for r in runs[-1:]:
            for proc, s in r["per_socket"].items():
                lines.append(
                    f"| {name}, {fmt(r['viewers'])} | {proc} | {s['processes']} | {fmt(s['threads'])} "
                    f"| {fmt(s['rss_mb'])} | {fmt(s['fds'])} | {fmt(s['threads_per_socket'])} "
                    f"| {fmt(s['rss_kb_per_socket'])} | {fmt(s['fds_per_socket'])} |"
                )
    return lines


def main() -> None:
    report = json.loads(Path(sys.argv[1]).read_text())
    out = [f"Run {report['started']} to {report.get('finished')}, {report.get('seconds')} s, {report['machine']}", ""]
    out += ["### Fan-out", "", *fanout_table(report), ""]
    out += ["### Per socket (largest hall of each server)", "", *per_socket_table(report), ""]
    w = report["phases"].get("writes")
    if w:
        out += [
            "### Writes",
            "",
            "| path | p50 sequential (keep-alive) | p99 | comments/s at 16 | p50 at 16 | p99 at 16 | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in w.items():
            s, c = r["sequential"], r["concurrency_16"]
            out.append(
                f"| {name} | {fmt(s['p50_ms'], ' ms')} | {fmt(s['p99_ms'], ' ms')} | {fmt(c['comments_per_s'])} "
                f"| {fmt(c['p50_ms'], ' ms')} | {fmt(c['p99_ms'], ' ms')} | {c['errors']} |"
            )
        out.append("")
    for r in report["phases"]["fanout"].get("stack", []):
        if "hold" in r:
            h = {k: v for k, v in r["hold"].items() if k not in ("curve", "per_socket", "after_graceful")}
            out += ["### Hold", "", "```", json.dumps(h, indent=1), "```", ""]
            out += ["per socket at the end: " + json.dumps(r["hold"]["per_socket"]), ""]
            out += ["after graceful: " + json.dumps(r["hold"].get("after_graceful")), ""]
            out += ["curve (s, open): " + ", ".join(f"{t}:{n}" for t, n in r["hold"]["curve"][::6]), ""]
        storm = r.get("storm")
        if not storm:
            continue
        s = {k: v for k, v in storm.items() if k not in ("curve", "connect")}
        out += ["### Storm", "", "```", json.dumps(s, indent=1), "```", ""]
        out += ["curve (s, open): " + ", ".join(f"{t}:{n}" for t, n in storm["curve"][::4]), ""]
    out += ["failures: " + json.dumps(report["failures"])]
    print("\n".join(out))


if __name__ == "__main__":
    main()
