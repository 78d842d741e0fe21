"""Shared steps of the failover checks: the hosts, the accounts the clients use, and the Patroni cluster's state."""

# Testinfra checks are plain pytest asserts; the docker CLI is run with this test's arguments.
# ruff: noqa: S101, S603, S607

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# What the scenarios share is the package tests/support (the live client, the API client, the fault trial, ...).
sys.path.insert(0, str(ROOT / "tests"))

from support.live_client import accounts_script  # noqa: E402 - found through sys.path above
from support.trial import Stack  # noqa: E402 - idem

MANAGE = "/usr/local/bin/comments-manage"
APP = "failover-app"
DB_HOSTS = {"failover-db1": "172.29.152.21", "failover-db2": "172.29.152.22", "failover-db3": "172.29.152.23"}
PATRONI_API_PORT = 8008
VIEWER_USERS = 20
WRITER_USERS = 6

ACCOUNTS = accounts_script(
    [f"viewer-{i:03d}" for i in range(VIEWER_USERS)] + [f"writer-{i}" for i in range(WRITER_USERS)]
)


def docker_exec(container: str, command: str, check: bool = True, timeout: float = 120) -> str:
    """A shell command on one of the scenario's containers."""
    done = subprocess.run(
        ["docker", "exec", container, "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"{container}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def running(container: str) -> bool:
    done = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", container], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() == "true"


def cluster_state() -> dict:
    """Patroni's view of the cluster (GET /cluster), asked from the app host as an operator's check would, of the
    first member that answers: {"members": [{"name", "role", "state", "lag", "timeline", ...}]}."""
    for name, address in DB_HOSTS.items():
        if not running(name):
            continue
        out = docker_exec(APP, f"curl -sf --max-time 3 http://{address}:{PATRONI_API_PORT}/cluster", check=False)
        if out.strip():
            return json.loads(out)
    return {"members": []}


def roles() -> dict[str, str]:
    """Member name -> role (leader, sync_standby, replica) of the members Patroni shows as running or streaming."""
    return {
        member["name"]: member["role"]
        for member in cluster_state().get("members", [])
        if member.get("state") in ("running", "streaming")
    }


def leader() -> str | None:
    return next((name for name, role in roles().items() if role == "leader"), None)


def wait_for_cluster(members: int, timeout: float = 300) -> tuple[dict[str, str], float]:
    """Wait (bounded) until the cluster has a leader, a synchronous standby and `members` members running; returns the
    roles and the seconds it took."""
    begun = time.monotonic()
    seen: dict[str, str] = {}
    while time.monotonic() - begun < timeout:
        seen = roles()
        if len(seen) == members and "leader" in seen.values() and "sync_standby" in seen.values():
            return seen, time.monotonic() - begun
        time.sleep(1)
    raise AssertionError(f"after {timeout:.0f} s the cluster is {cluster_state()}")


def psql(container: str, sql: str) -> str:
    """A query as the postgres superuser over the member's own socket (no password), unaligned, tuples only."""
    quoted = sql.replace("'", "'\\''")
    return docker_exec(container, f"runuser -u postgres -- psql -XAtq -d comments -c '{quoted}'").strip()


@pytest.fixture(scope="module")
def stack(host) -> Stack:
    variables = host.ansible.get_variables()
    return Stack(host, container=APP, https_port=int(variables["molecule_https_port"]))


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """API tokens by username."""
    made = subprocess.run(
        ["docker", "exec", APP, MANAGE, "shell", "-c", ACCOUNTS], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout.strip().splitlines()[-1])
