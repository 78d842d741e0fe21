#!/usr/bin/env python3
"""Summarise every JUnit XML report of a `make test` run in one pytest-style line.

`make test` runs several test runners (pytest for the app, Testinfra through Molecule,
Playwright through pytest, lint checks); each writes a JUnit XML file into build/junit/.
This script adds them up and prints, as its very last line, the line pytest itself would print:

    ==== 1 failed, 140 passed, 2 skipped, 1 error in 1800.12s ====

With --stages it first prints the stage-time table (build/stages.tsv, one
"name<TAB>status<TAB>seconds<TAB>reports" line per stage, written by scripts/stage.sh). A stage
that failed without a failing test case in the reports it wrote (say, a Molecule converge that
broke before verify ran) counts as one error, so the summary never reads "all passed" for a
failed run.

Exit status: 0 when there were tests and none failed or errored and every stage passed, else 1.
Only the standard library is used: this runs even when the virtualenv could not be built.
"""

from __future__ import annotations

import argparse
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Counts:
    """Outcome counts, in the order pytest prints them."""

    failed: int = 0
    passed: int = 0
    skipped: int = 0
    xfailed: int = 0
    errors: int = 0
    broken_files: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        self.failed += other.failed
        self.passed += other.passed
        self.skipped += other.skipped
        self.xfailed += other.xfailed
        self.errors += other.errors
        self.broken_files += other.broken_files

    @property
    def total(self) -> int:
        return self.failed + self.passed + self.skipped + self.xfailed + self.errors


def count_report(path: Path) -> Counts:
    """Count the test cases of one JUnit XML file (pytest's flavour, or any other)."""
    counts = Counts()
    try:
        # Our own runners' reports, not untrusted input.
        root = ET.parse(path).getroot()  # noqa: S314
    except (ET.ParseError, OSError):
        # A runner killed mid-write leaves a broken file: that is an error, not "no tests".
        counts.errors += 1
        counts.broken_files.append(str(path))
        return counts
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        if "failure" in tags:
            counts.failed += 1
        elif "error" in tags:
            counts.errors += 1
        elif "skipped" in tags:
            skipped = case.find("skipped")
            if skipped is not None and skipped.get("type") == "pytest.xfail":
                counts.xfailed += 1
            else:
                counts.skipped += 1
        else:
            counts.passed += 1
    return counts


@dataclass
class Stage:
    """One line of build/stages.tsv."""

    name: str
    status: str
    seconds: float
    reports: list[str]


def read_stages(path: Path) -> list[Stage]:
    """Read the stages in the order they ran; a missing file means no stages."""
    stages = []
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                reports = [r for r in parts[3].split(",") if r]
                stages.append(Stage(parts[0], parts[1], float(parts[2]), reports))
    return stages


def summary_line(counts: Counts, seconds: float) -> str:
    """Format the counts exactly as pytest's closing line does."""
    parts = []
    for number, word in (
        (counts.failed, "failed"),
        (counts.passed, "passed"),
        (counts.skipped, "skipped"),
        (counts.xfailed, "xfailed"),
        (counts.errors, "error" if counts.errors == 1 else "errors"),
    ):
        if number:
            parts.append(f"{number} {word}")
    body = ", ".join(parts) if parts else "no tests ran"
    return f"==== {body} in {seconds:.2f}s ===="


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", type=Path, help="JUnit XML files (default: build/junit/*.xml)")
    parser.add_argument("--stages", type=Path, help="stage-time table written by scripts/stage.sh")
    parser.add_argument("--since", type=float, help="start of the run (epoch seconds); default: sum of stages")
    args = parser.parse_args(argv)

    reports = args.reports or sorted(Path("build/junit").glob("*.xml"))
    stages = read_stages(args.stages) if args.stages else []

    per_file: list[tuple[Path, Counts]] = [(path, count_report(path)) for path in reports]
    counts = Counts()
    for _, file_counts in per_file:
        counts.add(file_counts)

    if stages:
        print()
        print(f"{'stage':<16} {'status':<7} {'time':>9}")
        for stage in stages:
            print(f"{stage.name:<16} {stage.status:<7} {stage.seconds:>8.1f}s")
        print(f"{'total':<16} {'':<7} {sum(s.seconds for s in stages):>8.1f}s")
    if per_file:
        print()
        print(f"{'report':<32} {'passed':>7} {'failed':>7} {'skipped':>8} {'errors':>7}")
        for path, c in per_file:
            print(f"{path.name:<32} {c.passed:>7} {c.failed:>7} {c.skipped + c.xfailed:>8} {c.errors:>7}")
    for broken in counts.broken_files:
        print(f"unreadable report: {broken}")

    by_name = {path.name: c for path, c in per_file}
    failed_stages = [stage.name for stage in stages if stage.status != "ok"]
    for stage in stages:
        if stage.status == "ok":
            continue
        if not any(by_name[r].failed or by_name[r].errors for r in stage.reports if r in by_name):
            # The stage broke outside any test case; make the summary say so.
            counts.errors += 1
    if failed_stages:
        print(f"failed stages: {', '.join(failed_stages)}")

    seconds = time.time() - args.since if args.since is not None else sum(s.seconds for s in stages)
    print()
    print(summary_line(counts, seconds))
    ok = counts.total > 0 and counts.failed == 0 and counts.errors == 0 and not failed_stages
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
