"""Shared steps of the fault checks: the accounts they use, commands on the host, and the table of figures."""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import json
import os
import secrets
import shlex
import time
from pathlib import Path

import pytest

from support.live_client import accounts_script
from support.trial import RESULTS, Stack, format_table

MANAGE = "/usr/local/bin/comments-manage"
VIEWER_USERS = 100
WRITER_USERS = 6

# One command makes the accounts the clients use (idempotent) and prints their tokens as JSON: viewer-000..099 for
# the viewers (at most 10 sockets each, well under WEBSOCKET_MAX_PER_USER on any worker), writer-0..5 for the writer
# (each well under the per-user comment rate), and "witness", whose one socket shows a dead worker's presence expire.
ACCOUNTS = accounts_script(
    [f"viewer-{i:03d}" for i in range(VIEWER_USERS)] + [f"writer-{i}" for i in range(WRITER_USERS)] + ["witness"]
)


@pytest.fixture(scope="module")
def stack(host) -> Stack:
    variables = host.ansible.get_variables()
    return Stack(host, container=variables["inventory_hostname"], https_port=int(variables["molecule_https_port"]))


@pytest.fixture(scope="module")
def tokens(stack: Stack) -> dict[str, str]:
    """API tokens by username, after the demo data is loaded as in molecule/default."""
    password = os.environ.get("COMMENTS_DEMO_PASSWORD") or secrets.token_urlsafe(12)
    loaded = stack.host.run(shlex.join(["env", f"DEMO_PASSWORD={password}", MANAGE, "load_demo"]))
    assert loaded.rc == 0, loaded.stderr
    made = stack.host.run(shlex.join([MANAGE, "shell", "-c", ACCOUNTS]))
    assert made.rc == 0, made.stderr
    return json.loads(made.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session", autouse=True)
def fault_table():
    """Print every fault's figures at the end of the run, and keep them as JSON beside the JUnit reports."""
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    yield
    if not RESULTS:
        return
    table = format_table(RESULTS)
    print(f"\n\nFaults survived (molecule/default, faults, {started}):\n{table}\n")
    out = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[4])) / "build"
    out.mkdir(exist_ok=True)
    (out / "resilience.json").write_text(
        json.dumps({"started": started, "results": [r.as_dict() for r in RESULTS]}, indent=2)
    )
    (out / "resilience.md").write_text(table + "\n")
