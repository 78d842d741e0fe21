"""Profile the Daphne workers while comments fan out to connected viewers (what bounds reach-all and CPU).

Run like bench/run.py, inside the bench container's network namespace, against a deployed bench container, with
py-spy installed on this machine (`pip install py-spy` into any virtualenv; it is not a pinned dependency):

    pid=$(docker inspect --format '{{.State.Pid}}' comments-bench)
    nsenter --target "$pid" --net -- .venv/bin/python bench/profile_fanout.py --viewers 1000 --py-spy /path/to/py-spy

Connects the viewers through Apache, waits until they are open, then records each Daphne worker with py-spy for
--seconds while one comment is POSTed every 100 ms. Writes the collapsed stacks and a summary (self and inclusive
share of samples per function) to bench/results/profile-fanout-<time>-<pid>.txt.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run


def summarize(raw: Path, top: int = 25) -> str:
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"samples: {total}", "--- self"]
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in own.most_common(top)]
    lines.append("--- inclusive")
    lines += [f"{100 * n / total:5.1f}% {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def host_pids(container: str) -> list[int]:
    """Host pids of the container's Daphne workers (py-spy runs on the host, outside the container)."""
    out = subprocess.run(
        ["docker", "top", container, "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines()[1:] if "bin/daphne --fd 0" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--container", default="comments-bench")
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--py-spy", dest="py_spy", required=True)
    args = parser.parse_args()
    bench = run.Bench("smoke", run.Container(args.container))
    bench.size = {**bench.size, "users": args.viewers}
    bench.prepare()
    bench.load = run.Load(4)
    try:
        target = bench.targets["stack"]
        connected = bench.connect(target, args.viewers, 30 + args.viewers / 25, 600)
        run.log(f"{connected['open']} viewers open; recording {args.seconds}s")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        outputs = []
        spies = []
        for pid in host_pids(args.container):
            raw = run.BENCH / "results" / f"profile-fanout-{stamp}-{pid}.raw"
            outputs.append((pid, raw))
            spies.append(
                subprocess.Popen(
                    [
                        args.py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(args.seconds),
                        "--rate",
                        "100",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(raw),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        end = time.monotonic() + args.seconds
        posted = 0
        while time.monotonic() < end:
            target.post(bench.marker())
            posted += 1
            time.sleep(0.1)
        for spy in spies:
            spy.wait(timeout=args.seconds + 30)
        for pid, raw in outputs:
            text = (
                f"# py-spy record --pid {pid} (Daphne worker) --duration {args.seconds} --rate 100 --nonblocking\n"
                f"# {connected['open']} viewers through Apache, {posted} comments POSTed every 100 ms\n"
                + summarize(raw)
            )
            raw.with_suffix(".txt").write_text(text + "\n")
            raw.unlink()
            run.log(f"wrote {raw.with_suffix('.txt').relative_to(run.ROOT)}")
    finally:
        bench.load.stop()
        bench.stop_plain()
        every_cpu = "0-1"
        subprocess.run(
            ["docker", "update", "--cpuset-cpus", every_cpu, args.container], check=False, capture_output=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
