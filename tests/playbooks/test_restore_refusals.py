"""playbooks/restore.yml refuses, before it changes anything, a --limit that leaves out part of the site it restores
(docs/runbook.md, "Restore a backup"). Run on the controller alone against the example production inventory, whose
hosts do not exist: a task that tried to reach one would show as unreachable."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "inventories" / "production"
DB_HOSTS = ["db1.example.org", "db2.example.org", "db3.example.org"]
SITE = ["web1.example.org", "daphne1.example.org", "daphne2.example.org", *DB_HOSTS]
REFUSAL = "Refuse a --limit that leaves out app or db hosts of the site"
NO_BACKUP_NAMED = "Fail without a backup to restore"


@dataclass
class Run:
    rc: int
    result: dict
    stderr: str

    def tasks(self) -> list[tuple[str, str, dict]]:
        """(task name, host, result) of every task that ran, in order."""
        return [
            (task["task"]["name"], host, outcome)
            for play in self.result["plays"]
            for task in play["tasks"]
            for host, outcome in task["hosts"].items()
        ]


def restore(inventory: Path, *args: str) -> Run:
    """ansible-playbook playbooks/restore.yml with the repository's configuration and the JSON callback."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",  # not profile_tasks, which prints beside the JSON
        "ANSIBLE_NOCOLOR": "1",
    }
    command = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), "playbooks/restore.yml", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    return Run(done.returncode, json.loads(done.stdout), done.stderr)


def assert_no_host_touched(run: Run) -> None:
    stats = run.result["stats"]
    assert all(host["unreachable"] == 0 and host["changed"] == 0 for host in stats.values()), stats


def test_a_limit_to_the_db_hosts_is_refused_naming_the_app_hosts_left_out():
    run = restore(PRODUCTION, "--limit", "db", "-e", "restore_backup=latest")
    assert run.rc != 0
    ran = run.tasks()
    # The refusal is the only task that ran, once, and nothing came after it.
    assert [name for name, _, _ in ran] == [REFUSAL], ran
    assert ran[0][1] in DB_HOSTS
    outcome = ran[0][2]
    assert outcome["failed"]
    assert (
        "leaves out these hosts of it: web: web1.example.org; daphne: daphne1.example.org, daphne2.example.org;"
        in (outcome["msg"])
    )
    assert "db: none;" in outcome["msg"]
    assert "Nothing was changed." in outcome["msg"]
    assert_no_host_touched(run)
    assert set(run.result["stats"]) <= set(DB_HOSTS)


def test_a_limit_to_the_app_hosts_is_refused_naming_the_db_host_left_out():
    run = restore(PRODUCTION, "--limit", "web:daphne", "-e", "restore_backup=latest")
    assert run.rc != 0
    ran = run.tasks()
    assert {name for name, _, _ in ran} == {REFUSAL}, ran
    assert "web: none; daphne: none; db: db1.example.org, db2.example.org, db3.example.org;" in ran[0][2]["msg"]
    assert_no_host_touched(run)


def test_from_the_repository_a_limit_that_leaves_out_the_backup_host_is_refused():
    run = restore(PRODUCTION, "--limit", "web:daphne:db", "-e", "restore_from=repository")
    assert run.rc != 0
    ran = run.tasks()
    assert {name for name, _, _ in ran} == {REFUSAL}, ran
    assert "backup (from the repository): backup1.example.org." in ran[0][2]["msg"]
    assert_no_host_touched(run)


@pytest.mark.parametrize("limit", [None, "comments", ",".join(SITE)])
def test_the_whole_site_passes_the_check(limit):
    # Positive control: with the whole site the refusal passes, and the play goes on to its next check, which fails
    # on the controller too because no backup is named (so no host is reached here either).
    run = restore(PRODUCTION, *(["--limit", limit] if limit else []))
    assert run.rc != 0
    ran = run.tasks()
    assert [outcome.get("failed", False) for name, _, outcome in ran if name == REFUSAL] == [False], ran
    assert any(name == NO_BACKUP_NAMED and outcome.get("failed") for name, _, outcome in ran), ran
    assert_no_host_touched(run)


def test_an_inventory_without_groups_is_one_site_per_host(tmp_path):
    # All-in-one hosts (the demo, molecule/default): each host is a site of its own, so a limit to one is whole.
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("comments:\n  hosts:\n    debian12:\n    debian13:\n")
    run = restore(inventory, "--limit", "debian12")
    ran = run.tasks()
    assert [outcome.get("failed", False) for name, _, outcome in ran if name == REFUSAL] == [False], ran
    assert any(name == NO_BACKUP_NAMED and host == "debian12" and outcome.get("failed") for name, host, outcome in ran)
    assert_no_host_touched(run)
