"""Counters of the server processes, read inside the bench container (python3 of the host image, no packages).

Prints one JSON object: for each process group (apache, daphne, wsgi, redis, postgres, plain) the CPU seconds
(utime + stime of /proc/<pid>/stat, live processes only), threads, RSS and open descriptors, with the pids.
"""

from __future__ import annotations

import json
import os

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def group_of(comm: str, cmdline: str) -> str | None:
    if cmdline.startswith("(wsgi:"):
        return "wsgi"
    if comm == "apache2":
        return "apache"
    if "bin/daphne" in cmdline:
        return "daphne"
    if comm == "redis-server":
        return "redis"
    if comm in ("postgres", "postmaster"):
        return "postgres"
    if "plain_server.py" in cmdline:
        return "plain"
    return None


def main() -> None:
    groups: dict[str, dict] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            group = group_of(comm, cmdline)
            if group is None:
                continue
            fds = len(os.listdir(f"/proc/{name}/fd"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        entry = groups.setdefault(group, {"cpu": 0.0, "threads": 0, "rss": 0, "fds": 0, "pids": []})
        # fields[11], [12]: utime, stime (fields 14 and 15 of proc(5), counted from the state field as 3).
        entry["cpu"] += (int(fields[11]) + int(fields[12])) / TICKS
        entry["threads"] += int(fields[17])
        entry["rss"] += int(fields[21]) * PAGE
        entry["fds"] += fds
        entry["pids"].append(int(name))
    print(json.dumps(groups))


if __name__ == "__main__":
    main()
