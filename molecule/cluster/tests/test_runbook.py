"""The rest of docs/runbook.md on a site spread over hosts, its commands read from the runbook (tests/support/runbook.py).

After test_cluster.py (pytest runs the files by name): the two Daphne hosts with two workers each, every host on the
release that ran before the rolling deploy. In order: the "See the load" commands with viewers connected, on the host
each names; the backup commands on the data host; a restore (playbooks/restore.yml) with viewers connected; new
secrets by the runbook's procedure for a site spread over hosts (site.yml; rotate-secrets.yml refuses such a site);
and last the rollback by hand, host by host, as an operator does it when the controller is out of reach.
"""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import json
import re
import secrets

import pytest
from test_cluster import HEALTHZ, current_release, step_trial

from conftest import DAPHNE_HOSTS, DATA, TWO_HOSTS_MEMBERS, WEB, docker_exec, sockets_per_host, viewers_get_a_comment
from support import runbook
from support.trial import Trial, wait_for

testinfra_hosts = [f"ansible://{WEB}"]
# Every test takes Testinfra's host, so that pytest keeps them in this file's order (it groups tests by the host they
# are parametrized with, those without one first).
pytestmark = pytest.mark.usefixtures("host")

# The hosts of each of the runbook's words for them ("web host", "Daphne host", "data host").
HOSTS = {"web": [WEB], "daphne": DAPHNE_HOSTS, "data": [DATA]}


def healthz() -> dict:
    return json.loads(docker_exec(WEB, HEALTHZ))


def test_the_load_commands_count_every_open_socket_on_the_host_they_name(stack, tokens, playbooks):
    trial = Trial(stack, tokens, "see the load", viewers=20, users=20)
    outputs: dict[tuple[str, str], str] = {}

    async def run() -> dict[str, int]:
        await trial.open_graph()
        try:
            await trial.connect_viewers(60)
            held = await asyncio.to_thread(sockets_per_host, DAPHNE_HOSTS)
            for command in runbook.commands("See the load"):
                assert command.where in HOSTS, f"the runbook does not say where this runs: {command.line}"
                line = command.fill(REDISCLI_AUTH=playbooks.secret("redis_requirepass"))
                for container in HOSTS[command.where]:
                    outputs[(container, command.line)] = await asyncio.to_thread(docker_exec, container, line)
            return held
        finally:
            await asyncio.gather(*(viewer.stop() for viewer in trial.viewers))

    held = asyncio.run(run())
    print("\n" + "\n".join(f"{container}$ {line}\n{out}" for (container, line), out in outputs.items()))

    def output(container: str, starting: str) -> str:
        return outputs[(container, runbook.command("See the load", starting).line)]

    # Web host: every viewer's connection to 443, and the sizes they count against.
    assert int(output(WEB, "ss -Htn").strip()) >= 20
    assert re.search(r"MaxRequestWorkers\s+\d+", output(WEB, "grep -E")), output(WEB, "grep -E")
    # Each Daphne host: sockets per worker process, which add up to the viewers each host holds.
    for container in DAPHNE_HOSTS:
        per_worker = re.findall(r"^\s*(\d+) pid=(\d+)$", output(container, "runuser -u comments -- ss"), re.MULTILINE)
        assert len(per_worker) <= 2, per_worker
        assert sum(int(count) for count, _ in per_worker) == held[container], (per_worker, held)
        status = output(container, "supervisorctl status")
        assert re.search(r"^comments-daphne-00\s+RUNNING", status, re.MULTILINE), status
        assert re.search(r"^comments-daphne-01\s+RUNNING", status, re.MULTILINE), status
    assert sum(held.values()) == 20, held
    # Data host: Redis's clients (each worker and the web host's processes) and memory, PostgreSQL's connections per
    # app host, each over TLS.
    clients = int(output(DATA, "REDISCLI_AUTH=... redis-cli --user default info clients").split(":")[1])
    assert clients >= 4, clients
    assert "used_memory_human:" in output(DATA, "REDISCLI_AUTH=... redis-cli --user default info memory")
    rows = [
        [cell.strip() for cell in row.split("|")]
        for row in output(DATA, "runuser -u postgres -- psql").splitlines()
        if row.strip().startswith("172.29.151.")
    ]
    assert rows, output(DATA, "runuser -u postgres -- psql")
    assert {ssl for _, ssl, _ in rows} == {"t"}, rows


def test_the_backup_commands_write_a_dump_on_the_data_host():
    before = set(docker_exec(DATA, "ls /var/backups/postgresql/").split())
    outputs = {command.line: docker_exec(DATA, command.line) for command in runbook.commands("Backups")}
    print("\n" + "\n".join(f"{DATA}$ {line}\n{out}" for line, out in outputs.items()))
    assert "comments-backup.timer" in outputs["systemctl list-timers comments-backup.timer"]
    assert "backup written" in outputs["journalctl -u comments-backup.service"]
    after = set(docker_exec(DATA, "ls /var/backups/postgresql/").split())
    assert len(after - before) == 1, (before, after)


def test_a_restore_on_a_site_spread_over_hosts_brings_the_backup_back_and_viewers_reload(stack, tokens, playbooks):
    """restore.yml on the split site: maintenance mode on the web and each Daphne host (workers rolled), the dump
    restored on the data host, new epochs once, maintenance mode off; open pages told to reload."""
    trial = Trial(stack, tokens, "restore on a site spread over hosts", viewers=8, users=20)
    figures: dict = {}

    async def run() -> None:
        await trial.open_graph()
        try:
            await trial.connect_viewers(60)
            writer = trial.api("writer-1")
            path = f"/api/v1/graphs/{trial.graph_id}/comments/"
            kept = await asyncio.to_thread(writer.post, path, {"body": "before the backup"})
            assert kept.status == 201, kept.body
            await asyncio.to_thread(docker_exec, DATA, runbook.command("Backups", "systemctl start").line)
            lost = await asyncio.to_thread(writer.post, path, {"body": "after the backup"})
            assert lost.status == 201, lost.body
            await wait_for(lambda: all(lost.body["seq"] in v.applied for v in trial.viewers), 30, "the comment")

            output = await asyncio.to_thread(playbooks.run, "restore.yml", "-e", "restore_backup=latest")
            figures["new epochs"] = re.findall(r"New epochs for \d+ graphs", output)
            # Once for the site's one database, on the web host.
            assert len(figures["new epochs"]) == 1, output[-3000:]

            graph = await asyncio.to_thread(writer.get, f"/api/v1/graphs/{trial.graph_id}/")
            assert graph.status == 200, graph.body
            assert graph.body["epoch"] != trial.epoch
            assert graph.body["last_seq"] == kept.body["seq"]
            gone = await asyncio.to_thread(writer.get, f"/api/v1/comments/{lost.body['id']}/")
            assert gone.status == 404, gone.body
            await wait_for(
                lambda: all(v.epoch == graph.body["epoch"] and v.connected for v in trial.viewers),
                120,
                "viewers to reload",
                trial.status,
            )
            figures["viewers told to reload"] = sum(len(v.resets) for v in trial.viewers)
            assert all(v.resets for v in trial.viewers), trial.status()
        finally:
            await asyncio.gather(*(viewer.stop() for viewer in trial.viewers))

    asyncio.run(run())
    print(f"\nrestore on a site spread over hosts: {json.dumps(figures)}")
    for container in DAPHNE_HOSTS:
        status = docker_exec(container, "supervisorctl status")
        assert status.count(" RUNNING ") == 2, status
    assert healthz()["daphne_members"] == TWO_HOSTS_MEMBERS


def test_rotate_secrets_refuses_a_site_spread_over_hosts_before_changing_anything(playbooks):
    output = playbooks.run("rotate-secrets.yml", expect_failure=True)
    assert "Refuse a site whose parts run on different hosts" in output, output[-3000:]
    changes = re.findall(r"\bchanged=(\d+)", output)
    assert changes, output[-3000:]
    assert set(changes) == {"0"}, output[-3000:]


def test_new_secrets_reach_every_host_of_a_split_site_by_site_yml(stack, tokens, playbooks):
    """The runbook's rotation for a site spread over hosts: new values in the vault, then site.yml."""
    old_redis = playbooks.secret("redis_app_password")
    # Made as the runbook says ("Make your own inventory and secrets": secrets.token_urlsafe(48)).
    for name in ("redis_app_password", "postgresql_app_password", "django_secret_key"):
        playbooks.change_secret(name, secrets.token_urlsafe(48))
    new_redis = playbooks.secret("redis_app_password")
    playbooks.run("site.yml")

    for container in [WEB, *DAPHNE_HOSTS]:
        environment = docker_exec(container, "cat /etc/comments/comments.env")
        assert new_redis in environment, container
        assert old_redis not in environment, container
    refused = docker_exec(DATA, f"REDISCLI_AUTH={old_redis} redis-cli --user comments ping", check=False)
    assert "PONG" not in refused, refused
    accepted = docker_exec(DATA, f"REDISCLI_AUTH={new_redis} redis-cli --user comments ping")
    assert "PONG" in accepted, accepted
    body = healthz()
    assert body["status"] == "ok", body
    assert body["daphne_members"] == TWO_HOSTS_MEMBERS, body

    # The app on the new secrets end to end: a comment POSTed over HTTPS reaches viewers on both Daphne hosts.
    held = viewers_get_a_comment(stack, tokens, "after new secrets", viewers=8, writer="writer-2")
    assert all(count > 0 for count in held.values()), held


def test_the_rollback_by_hand_moves_every_host_and_drops_nothing(stack, tokens):
    """The runbook's rollback for when the controller is out of reach, run on each host as written: the Daphne hosts
    first (each worker drained and restarted on the release), then the web host."""
    commands = runbook.commands("Roll back", block=1)
    current = current_release(WEB)
    # `ls -t`: newest first; the one to go to is the newest that is not live (here the release the deploy brought).
    listing = docker_exec(WEB, commands[0].line).split()
    previous = next(name for name in listing if name != current)
    assert all(current_release(container) == current for container in DAPHNE_HOSTS)

    def by_hand() -> None:
        for container, group in [*((daphne, "daphne") for daphne in DAPHNE_HOSTS), (WEB, "web")]:
            for command in commands:
                if command.where in ("", group):
                    docker_exec(container, command.fill(previous=previous))

    _, figures = step_trial(stack, tokens, "rollback by hand", by_hand, DAPHNE_HOSTS)
    assert {current_release(container) for container in [WEB, *DAPHNE_HOSTS]} == {previous}
    assert set(figures["close_codes"]) <= {"4012"}, figures
    assert healthz()["daphne_members"] == TWO_HOSTS_MEMBERS
