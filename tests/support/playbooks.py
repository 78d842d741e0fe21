"""Running this repository's playbooks from a Molecule scenario's tests, as an operator runs them against production:
ansible-playbook with the scenario's inventory and Molecule's Ansible configuration, the output kept for the report.
"""

# The tests' own ansible-playbook command line; its result is checked by the caller.

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"


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
            # Without colours: Molecule's environment may force them on a failed host's line.
            re.sub(r"\x1b\[[0-9;]*m", "", self.output),
            re.MULTILINE,
        )
        if not found:
            raise AssertionError(f"no recap for {host}:\n{self.output[-3000:]}")
        return Recap(*(int(n) for n in found.groups()))


def ephemeral_directory() -> Path:
    """The running scenario's Molecule directory: its inventory, ansible.cfg and generated secrets."""
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def scenario_secrets() -> Path:
    """Where the test hosts' password lookups keep the scenario's secrets (molecule_secrets_dir)."""
    return ephemeral_directory() / "secrets"


def run_playbook(
    name: str,
    *args: str,
    inventories: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> PlaybookRun:
    """ansible-playbook playbooks/<name> with the scenario's inventory (plus `inventories`) and Molecule's Ansible
    configuration, from the repository root; `args` are the operator's own (--limit, -e, --check)."""
    ephemeral = ephemeral_directory()
    command = ["ansible-playbook"]
    for source in [str(ephemeral / "inventory"), *(inventories or [])]:
        command += ["-i", source]
    command += [str(PLAYBOOKS / name), *args]
    environment = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ephemeral / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        **(env or {}),
    }
    begun = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=timeout, check=False, cwd=ROOT
    )
    return PlaybookRun(done.returncode, done.stdout + done.stderr, time.monotonic() - begun)
