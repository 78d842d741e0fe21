"""PostgreSQL with automatic failover (docs/architecture.md, "PostgreSQL with failover"; docs/resilience.md): three db
hosts in one Patroni cluster over etcd, synchronous replication, the app finding the leader by itself (libpq's
multi-host connection string with target_session_attrs=read-write).

The checks run in order: the cluster's shape (three etcd members, a leader, a synchronous standby, the app host's
connection string), a comment acknowledged with 201 is already on the synchronous standby; then two faults under
500 viewers and a writer posting every 100 ms, each one trial (tests/support/trial.py): the leader's PostgreSQL killed
(kill -9 of the postmaster), then the leader's whole host gone at once (docker kill: no goodbye to etcd, no reset
to the app's connections). After each, every viewer must have applied every acknowledged comment exactly once; how long
writes were refused (the first 201 after the fault) and what the writer got meanwhile are printed and kept in
build/failover.json, never asserted. The host killed comes back and rejoins as a replica.
"""

# Testinfra checks are plain pytest asserts; the docker CLI is run with this test's arguments.
# ruff: noqa: S101, S603, S607

from __future__ import annotations

import asyncio
import json
import subprocess
import time

from conftest import (
    APP,
    DB_HOSTS,
    ROOT,
    docker_exec,
    leader,
    psql,
    roles,
    running,
    wait_for_cluster,
)
from support import runbook
from support.playbooks import run_playbook
from support.trial import Trial, wait_for

# Every check runs from the controller and reaches the hosts with docker exec; Testinfra's host is the app host.
testinfra_hosts = [f"ansible://{APP}"]

VIEWERS = 500
# A comment every 100 ms, bounded: a trial lasts about a minute.
WRITE_RATE = 10.0
WRITES = 3000
FIGURES: dict[str, dict] = {}


def record(name: str, figures: dict) -> None:
    FIGURES[name] = figures
    print(f"\n{name}: {json.dumps(figures)}")
    out = ROOT / "build"
    out.mkdir(exist_ok=True)
    (out / "failover.json").write_text(json.dumps(FIGURES, indent=2))


def app_processes() -> dict[str, list[int]]:
    """The pids of every process of the app host that talks to the database: Daphne's workers and mod_wsgi's daemons."""
    return {
        "daphne": sorted(int(pid) for pid in docker_exec(APP, "pgrep -f '[b]in/daphne '", check=False).split()),
        "mod_wsgi": sorted(int(pid) for pid in docker_exec(APP, "pgrep -f '[w]sgi:comments'", check=False).split()),
    }


async def new_viewers_connect(trial: Trial, count: int) -> float:
    """`count` more viewers open the graph (each handshake reads the database in a Daphne worker: its token, its
    access, its catch-up); returns the seconds until all were connected."""
    # Over the writers' accounts, which hold no socket: the trial's users are near WEBSOCKET_MAX_PER_USER per worker.
    fresh = [trial.viewer(VIEWERS + number, user=f"writer-{number % 6}") for number in range(count)]
    for viewer in fresh:
        viewer.start()
    try:
        return await wait_for(
            lambda: all(v.connected for v in fresh),
            120,
            "new viewers after the fault",
            lambda: f"closes {[v.closes for v in fresh if not v.connected][:5]}",
        )
    finally:
        await asyncio.gather(*(viewer.stop() for viewer in fresh))


def fault_trial(stack, tokens, name: str, inject) -> dict:
    """500 viewers and a writer through Apache, the fault, and what every viewer and the writer got; then new
    viewers connect, through the same Daphne workers and mod_wsgi daemons as before the fault (no restart)."""
    trial = Trial(stack, tokens, name, viewers=VIEWERS, users=20, rate=WRITE_RATE, writes=WRITES)
    figures: dict = {"fault": name}
    processes = app_processes()

    async def watch(t: Trial) -> None:
        figures["new_viewers_connected_in_seconds"] = round(await new_viewers_connect(t, 20), 1)

    # The fault's time (trial.t0) is when it is injected: a switchover's or a kill's command is part of it.
    async def fault(_: Trial) -> None:
        figures["leader_before"] = await asyncio.to_thread(leader)
        figures.update(await asyncio.to_thread(inject, figures["leader_before"]))

    outcome = asyncio.run(
        trial.run(fault, before=5.0, after=5.0, watch=watch, connect_timeout=180, catch_up_timeout=120)
    )
    probe = trial.first_ack_after(trial.t_end)
    refused = [
        w
        for w in trial.writer.writes
        if w.answer is not None and w.answer.status != 201 and w.answer.started >= trial.t0
    ]
    figures.update(
        viewers=outcome.viewers,
        acknowledged=outcome.acknowledged,
        delivered_to_each=outcome.delivered,
        lost=outcome.lost,
        duplicated=outcome.duplicated,
        # From the fault to the first 201 of a request sent after it: how long writes were refused.
        writes_back_after_seconds=round(probe.answer.started - trial.t0, 1) if probe else None,
        recovery_seconds=outcome.recovery_seconds,
        answers=outcome.answers,
        refused_during_fault=len(refused),
        slowest_answer_seconds=outcome.slowest_answer_seconds,
        unknown_committed=outcome.unknown_committed,
        reconnects=outcome.reconnects,
        close_codes=outcome.close_codes,
        leader_after=leader(),
    )
    record(name, figures)
    assert outcome.acknowledged > 0, figures
    assert outcome.lost == 0, f"{outcome.lost} (viewer, acknowledged comment) pairs lost: {figures}"
    assert outcome.duplicated == 0, figures
    assert outcome.delivered == outcome.acknowledged, figures
    assert figures["leader_after"] in DB_HOSTS, figures
    # Every process followed the new leader by itself: none was restarted.
    assert app_processes() == processes, (processes, app_processes())
    return figures


# --- The cluster's shape ---


def test_etcd_has_three_healthy_members_on_the_db_hosts_private_addresses():
    for name, address in DB_HOSTS.items():
        health = json.loads(docker_exec(APP, f"curl -sf --max-time 5 http://{address}:2379/health"))
        assert health["health"] == "true", (name, health)
    members = json.loads(
        docker_exec(APP, "curl -sf --max-time 5 -X POST http://172.29.152.21:2379/v3/cluster/member/list")
    )
    assert sorted(m["name"] for m in members["members"]) == sorted(DB_HOSTS)
    assert sorted(url for m in members["members"] for url in m["clientURLs"]) == sorted(
        f"http://{address}:2379" for address in DB_HOSTS.values()
    )


def test_the_db_hosts_form_one_cluster_with_a_leader_and_a_synchronous_standby():
    seen, seconds = wait_for_cluster(3)
    print(f"\ncluster: {seen} (settled in {seconds:.1f} s)")
    assert sorted(seen.values()) == ["leader", "replica", "sync_standby"]
    for name in DB_HOSTS:
        # Debian's layout: the cluster shows in pg_lsclusters, run by Patroni's unit, not Debian's.
        assert docker_exec(name, "systemctl is-active patroni@15-main").strip() == "active"
        assert docker_exec(name, "pg_lsclusters -h").split()[:2] == ["15", "main"]


def test_the_app_host_lists_every_member_and_keeps_the_one_that_accepts_writes():
    env = docker_exec(APP, "grep ^DATABASE_URL= /etc/comments/comments.env")
    assert "@172.29.152.21,172.29.152.22,172.29.152.23:5432/comments?target_session_attrs=read-write" in env
    # The app's own connection, made as every process makes it, lands on the leader.
    address = (
        docker_exec(
            APP,
            "/usr/local/bin/comments-manage shell -c "
            '"from django.db import connection; connection.ensure_connection(); print(connection.connection.info.host)"',
        )
        .strip()
        .splitlines()[-1]
    )
    assert DB_HOSTS[leader()] == address


def test_an_acknowledged_comment_is_already_on_the_synchronous_standby(stack, tokens):
    trial = Trial(stack, tokens, "synchronous standby", viewers=0)
    asyncio.run(trial.open_graph())
    posted = trial.api("writer-0").post(f"/api/v1/graphs/{trial.graph_id}/comments/", {"body": "on two hosts"})
    assert posted.status == 201, posted.body
    standby = next(name for name, role in roles().items() if role == "sync_standby")
    # Read at once on the standby (hot standby): a synchronous commit returned only after the standby had it.
    graph_id = int(trial.graph_id)
    count = psql(
        standby,
        f"SELECT count(*) FROM comments_comment WHERE body = 'on two hosts' AND graph_id = {graph_id}",  # noqa: S608
    )
    assert count == "1", (standby, count)


def test_the_runbooks_commands_show_the_leader_and_etcds_health():
    section = "The database cluster (Patroni)"
    wait_for_cluster(3)
    listing = docker_exec(leader(), runbook.command(section, "patronictl").line)
    assert "Leader" in listing, listing
    assert "Sync Standby" in listing, listing
    health = docker_exec(leader(), runbook.command(section, "curl").line)
    assert json.loads(health)["health"] == "true", health


def test_a_switchover_as_the_runbook_says_moves_the_leader_and_loses_no_acknowledged_comment(stack, tokens):
    wait_for_cluster(3)
    switchover = runbook.command("The database cluster (Patroni)", "patronictl", block=1)

    def switch(leader_name: str) -> dict:
        standby = next(name for name, role in roles().items() if role == "sync_standby")
        docker_exec(leader_name, switchover.fill(leader=leader_name, standby=standby))
        return {"switched_to": standby}

    figures = fault_trial(stack, tokens, "switchover", switch)
    assert figures["leader_after"] == figures["switched_to"], figures
    wait_for_cluster(3)


# --- Inventories that cannot keep a quorum, refused before any host changes ---


def refused(run, *, message: str) -> None:
    assert run.rc != 0, run.output[-3000:]
    assert message in " ".join(run.output.split()), run.output[-3000:]
    for name in [APP, *DB_HOSTS]:
        assert run.recap(name).changed == 0, (name, run.output[-3000:])


def test_an_even_number_of_db_hosts_is_refused_before_any_host_changes(tmp_path):
    # The app host added to the group db: four members, where losing two stops etcd (no majority of four).
    extra = tmp_path / "four-db-hosts.yml"
    extra.write_text("db:\n  hosts:\n    failover-app:\n")
    run = run_playbook("site.yml", inventories=[str(extra)])
    refused(run, message="the group db needs an odd number of hosts, three or more (it has 4:")


def test_etcd_members_that_are_not_the_db_hosts_are_refused_before_any_host_changes():
    members = {"failover-db1": "172.29.152.21", "failover-db2": "172.29.152.22", "failover-db3": "10.9.9.9"}
    run = run_playbook("site.yml", "-e", json.dumps({"comments_etcd_members": members}))
    refused(run, message="etcd's members (comments_etcd_members) must be exactly those hosts at those addresses")


# --- Faults under viewers and a writer ---


def test_killing_the_leaders_postgresql_loses_and_repeats_no_acknowledged_comment(stack, tokens):
    wait_for_cluster(3)

    def kill_postgresql(leader_name: str) -> dict:
        pid = docker_exec(leader_name, "head -1 /var/lib/postgresql/15/main/postmaster.pid").strip()
        docker_exec(leader_name, f"kill -9 {pid}")
        return {"killed": f"postmaster {pid} on {leader_name}"}

    fault_trial(stack, tokens, "postgresql killed on the leader", kill_postgresql)
    roles_after, seconds = wait_for_cluster(3)
    print(f"\nafter the kill: {roles_after}, whole again in {seconds:.1f} s")


def test_losing_the_leaders_host_loses_and_repeats_no_acknowledged_comment_and_it_rejoins(stack, tokens):
    wait_for_cluster(3)
    lost: list[str] = []

    def kill_host(leader_name: str) -> dict:
        # The host is gone at once: no process stops cleanly, etcd and the app's connections get no goodbye.
        subprocess.run(["docker", "kill", leader_name], check=True, capture_output=True, timeout=60)
        lost.append(leader_name)
        return {"killed": f"host {leader_name}"}

    try:
        figures = fault_trial(stack, tokens, "leader host lost", kill_host)
        assert figures["leader_after"] != figures["leader_before"], figures
    finally:
        # The host comes back (its units start at boot) and rejoins as a replica of the new leader (pg_rewind).
        for name in lost:
            if not running(name):
                subprocess.run(["docker", "start", name], check=True, capture_output=True, timeout=120)
    begun = time.monotonic()
    roles_after, _ = wait_for_cluster(3, timeout=600)
    rejoined = round(time.monotonic() - begun, 1)
    print(f"\n{lost[0]} back as {roles_after[lost[0]]} in {rejoined} s after its start: {roles_after}")
    FIGURES["leader host lost"]["rejoined_as"] = roles_after[lost[0]]
    FIGURES["leader host lost"]["rejoined_after_seconds"] = rejoined
    record("leader host lost", FIGURES["leader host lost"])
    assert roles_after[lost[0]] in ("replica", "sync_standby")
