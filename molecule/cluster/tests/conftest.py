"""Shared steps of the cluster checks: the hosts, the accounts the clients use, and the playbooks run as steps."""

# Testinfra checks are plain pytest asserts; the docker and ansible-playbook CLIs are run with this test's arguments.
# ruff: noqa: S101, S603, S607

from __future__ import annotations

import asyncio
import collections
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# What the scenarios share is the package tests/support (the live client, the API client, the fault trial, ...),
# imported as `support.<module>` by this folder.
sys.path.insert(0, str(ROOT / "tests"))

from support.live_client import accounts_script  # noqa: E402 - found through sys.path above
from support.playbooks import ephemeral_directory, run_playbook, scenario_secrets  # noqa: E402 - idem
from support.trial import Stack, Trial, wait_for  # noqa: E402 - idem

MANAGE = "/usr/local/bin/comments-manage"
WEB = "cluster-web"
DAPHNE_HOSTS = ["cluster-daphne1", "cluster-daphne2"]
ADDED_HOST = "cluster-daphne3"
DATA = "cluster-data"
# /healthz's daphne_members with the scenario's own two Daphne hosts, two workers each, all answering.
TWO_HOSTS_MEMBERS = {f"172.29.151.{host}:{port}": "ok" for host in (11, 12) for port in (9099, 9100)}
VIEWER_USERS = 20
WRITER_USERS = 6

# One command makes the accounts the clients use (idempotent) and prints their tokens as JSON.
ACCOUNTS = accounts_script(
    [f"viewer-{i:03d}" for i in range(VIEWER_USERS)] + [f"writer-{i}" for i in range(WRITER_USERS)]
)

# Established WebSocket connections on a Daphne host's socket (as the app user: root in a container may not read
# another user's descriptors).
# (The workers' sockets are ports 9099 + N, one per worker.)
SOCKETS = "runuser -u comments -- ss -Htnp state established '( sport >= :9099 and sport <= :9163 )'"


def docker_exec(container: str, command: str, check: bool = True) -> str:
    """A shell command on one of the scenario's containers."""
    done = subprocess.run(
        ["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert done.returncode == 0, f"{container}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def sockets_per_host(hosts: list[str]) -> dict[str, int]:
    """Open WebSockets held by each Daphne host's workers."""
    return {host: len(docker_exec(host, SOCKETS, check=False).splitlines()) for host in hosts}


def sockets_per_port(host: str) -> collections.Counter:
    """Open WebSockets of one Daphne host by the worker's port (9099 + N): one balancer member each."""
    out = docker_exec(host, SOCKETS, check=False)
    return collections.Counter(int(line.split()[2].rsplit(":", 1)[1]) for line in out.splitlines() if line.strip())


def sockets_per_worker(host: str) -> collections.Counter:
    out = docker_exec(host, SOCKETS, check=False)
    return collections.Counter(part.split("pid=")[1].split(",")[0] for part in out.split() if "pid=" in part)


def viewers_get_a_comment(stack: Stack, tokens: dict[str, str], name: str, viewers: int, writer: str) -> dict[str, int]:
    """`viewers` viewers of a new graph connect through Apache, `writer` POSTs a comment over HTTPS, and each viewer
    must get it; returns the sockets each Daphne host held meanwhile."""
    trial = Trial(stack, tokens, name, viewers=viewers, users=20)

    async def run() -> dict[str, int]:
        await trial.open_graph()
        try:
            await trial.connect_viewers(60)
            held = await asyncio.to_thread(sockets_per_host, DAPHNE_HOSTS)
            posted = await asyncio.to_thread(
                trial.api(writer).post, f"/api/v1/graphs/{trial.graph_id}/comments/", {"body": name}
            )
            assert posted.status == 201, posted.body
            await wait_for(lambda: all(posted.body["seq"] in v.applied for v in trial.viewers), 30, "the comment")
            return held
        finally:
            await asyncio.gather(*(viewer.stop() for viewer in trial.viewers))

    return asyncio.run(run())


class Playbooks:
    """The repository's playbooks, run against the scenario's hosts as the runbook runs them against production's."""

    def __init__(self) -> None:
        ephemeral = ephemeral_directory()
        self.inventory = [str(ephemeral / "inventory")]
        self.added = ephemeral / "cluster-added-host.yml"
        self.secrets = scenario_secrets()
        self.log = ROOT / "build" / "cluster"
        self.log.mkdir(parents=True, exist_ok=True)
        # The inventory as an earlier run left it (a verify run again on kept instances, after the host was added).
        if self.added.exists():
            self.inventory.append(str(self.added))

    def add_daphne_host(self, name: str, workers: dict[str, int] | None = None) -> None:
        """The runbook's "add a Daphne host": one line in the group daphne (here a second inventory source); and its
        "add workers": comments_daphne_workers for a host."""
        text = f"---\ndaphne:\n  hosts:\n    {name}:\n"
        for host, count in (workers or {}).items():
            text += f"    {host}:\n      comments_daphne_workers: {count}\n"
        self.added.write_text(text)
        if str(self.added) not in self.inventory:
            self.inventory.append(str(self.added))

    def remove_added(self) -> None:
        """Back to the scenario's own inventory: the added host out of the group daphne, the workers as they were."""
        self.added.unlink(missing_ok=True)
        if str(self.added) in self.inventory:
            self.inventory.remove(str(self.added))

    def run(self, playbook: str, *args: str, env: dict[str, str] | None = None, expect_failure: bool = False) -> str:
        """Run a playbook; its output (stdout and stderr) is returned and kept in build/cluster/<playbook>.log."""
        done = run_playbook(playbook, *args, inventories=self.inventory[1:], env=env)
        log = self.log / f"{Path(playbook).stem}.log"
        log.write_text(f"$ ansible-playbook {playbook} {shlex.join(args)}\n{done.output}")
        if expect_failure:
            assert done.rc != 0, f"{playbook} did not fail (log: {log})"
        else:
            assert done.rc == 0, f"{playbook} failed (log: {log}):\n{done.output[-6000:]}"
        return done.output

    def secret(self, name: str) -> str:
        """A secret of the scenario's inventory (its "vault": files the password lookups of molecule.yml read)."""
        return (self.secrets / name).read_text().split()[0]

    def change_secret(self, name: str, value: str) -> None:
        """What the operator does in the vault: the inventory gives the new value from the next run on."""
        (self.secrets / name).write_text(value + "\n")


@pytest.fixture(scope="session")
def playbooks() -> Playbooks:
    return Playbooks()


@pytest.fixture(scope="module")
def stack(host) -> Stack:
    variables = host.ansible.get_variables()
    return Stack(host, container=WEB, https_port=int(variables["molecule_https_port"]))


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    """API tokens by username."""
    made = subprocess.run(
        ["docker", "exec", WEB, MANAGE, "shell", "-c", ACCOUNTS], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout.strip().splitlines()[-1])


def release_archive(tmp: Path) -> tuple[Path, str]:
    """A real second release: app/ with a harmless marker, built by scripts/build-release.sh from a copy of the tree."""
    (tmp / "scripts").mkdir(parents=True)
    (tmp / "requirements").mkdir()
    subprocess.run(["cp", "-a", str(ROOT / "app"), str(tmp / "app")], check=True)
    subprocess.run(["cp", "-a", str(ROOT / "requirements" / "app.txt"), str(tmp / "requirements")], check=True)
    subprocess.run(["cp", "-a", str(ROOT / "scripts" / "build-release.sh"), str(tmp / "scripts")], check=True)
    with (tmp / "app" / "config" / "__init__.py").open("a") as init:
        init.write("# The cluster scenario's second release (molecule/cluster/tests/test_cluster.py).\n")
    built = subprocess.run(
        [str(tmp / "scripts" / "build-release.sh")], capture_output=True, text=True, check=True, timeout=120
    )
    release = json.loads(built.stdout)
    return Path(release["archive"]), release["version"]
