"""What the operations checks share: the accounts they use, commands on the host, and running a playbook of this
repository against the scenario's host as an operator would (ansible-playbook with Molecule's inventory)."""

# Testinfra checks are plain pytest asserts; ansible-playbook is run with arguments of the test's own.
# ruff: noqa: S101, S603

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# The live client (tests/live_client.py) is shared by every test folder that needs a page-like client.
sys.path.insert(0, str(ROOT / "tests"))

from live_client import accounts_script  # noqa: E402 - found through sys.path above

MANAGE = "/usr/local/bin/comments-manage"
# Writers: each stays under the per-user comment rate (30/min by default): the restore's writes use writer-1..3,
# the rotation's writer-4..7.
USERS = [f"viewer-{i}" for i in range(4)] + [f"writer-{i}" for i in range(8)]

# The accounts the clients use (idempotent), printed with their API tokens as JSON.
ACCOUNTS = accounts_script(USERS)


@dataclass
class Recap:
    """One host's line of a play recap."""

    ok: int
    changed: int
    unreachable: int
    failed: int


@dataclass
class PlaybookRun:
    rc: int
    output: str
    seconds: float

    def recap(self, host: str) -> Recap:
        found = re.search(
            rf"^{re.escape(host)}\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
            self.output,
            re.MULTILINE,
        )
        assert found, f"no recap for {host}:\n{self.output[-3000:]}"
        return Recap(*(int(n) for n in found.groups()))


def run_playbook(name: str, *args: str) -> PlaybookRun:
    """ansible-playbook playbooks/<name> against the scenario's inventory, with Molecule's Ansible configuration."""
    ephemeral = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    env = dict(os.environ, ANSIBLE_CONFIG=str(ephemeral / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    command = ["ansible-playbook", "-i", str(ephemeral / "inventory"), str(ROOT / "playbooks" / name), *args]
    begun = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    return PlaybookRun(done.returncode, done.stdout + done.stderr, time.monotonic() - begun)


def secrets_dir() -> Path:
    """Where the scenario's password lookups keep its secrets (molecule.yml: molecule_secrets_dir)."""
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets"


@pytest.fixture(scope="module")
def hostname(host) -> str:
    return host.ansible.get_variables()["inventory_hostname"]


@pytest.fixture(scope="module")
def base_url(host) -> str:
    return f"https://127.0.0.1:{int(host.ansible.get_variables()['molecule_https_port'])}"


@pytest.fixture(scope="module")
def tokens(host) -> dict[str, str]:
    made = host.run(shlex.join([MANAGE, "shell", "-c", ACCOUNTS]))
    assert made.rc == 0, made.stderr
    return json.loads(made.stdout.strip().splitlines()[-1])


def sql(host, query: str) -> str:
    """One value from the app's database, as the postgres superuser over the socket."""
    result = host.run(shlex.join(["runuser", "-u", "postgres", "--", "psql", "-d", "comments", "-Atc", query]))
    assert result.rc == 0, result.stderr
    return result.stdout.strip()
