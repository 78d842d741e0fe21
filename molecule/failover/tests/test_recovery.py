"""The Patroni cluster and its backup repository (docs/runbook.md, "Restore from the backup repository" and "Disaster
recovery: every db host lost"): the WAL of whichever member leads reaches the repository; a point-in-time restore
through playbooks/restore.yml makes the cluster anew as of a time between two comments; and every db host lost at
once, then rebuilt by site.yml, comes back from the repository with what was acknowledged up to a minute before the
loss. Runs after test_failover.py (the cluster has failed over by then: the archive must follow the new leader).
"""

# Testinfra checks are plain pytest asserts; the docker CLI is run with this test's arguments.
# ruff: noqa: S101, S603, S607

from __future__ import annotations

import asyncio
import datetime
import json
import re
import subprocess
import time

from conftest import APP, DB_HOSTS, ROOT, docker_exec, roles, running, wait_for_cluster
from support import runbook
from support.live_client import Writer, stored_events
from support.playbooks import run_playbook
from support.trial import Trial, wait_for

testinfra_hosts = [f"ansible://{APP}"]

BACKUP = "failover-backup"
STANZA = "comments"
FIGURES: dict[str, dict] = {}


def record(name: str, figures: dict) -> None:
    FIGURES[name] = figures
    print(f"\n{name}: {json.dumps(figures)}")
    out = ROOT / "build"
    out.mkdir(exist_ok=True)
    (out / "failover-recovery.json").write_text(json.dumps(FIGURES, indent=2))


def long_exec(container: str, command: str, timeout: float = 1200) -> str:
    done = subprocess.run(
        ["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{container}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def utc_now() -> str:
    """The hosts' clock (the containers share the controller's), as restore_target_time takes it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def test_the_wal_of_whichever_member_leads_reaches_the_repository():
    wait_for_cluster(3)
    check = long_exec(BACKUP, f"runuser -u postgres -- pgbackrest --stanza={STANZA} check 2>&1")
    assert "completed successfully" in check, check
    info = json.loads(long_exec(BACKUP, f"runuser -u postgres -- pgbackrest --stanza={STANZA} --output=json info"))[0]
    assert info["status"]["code"] == 0, info["status"]
    assert any(backup["type"] == "full" for backup in info["backup"]), info["backup"]


def test_a_point_in_time_restore_makes_the_cluster_anew_as_of_that_time(stack, tokens):
    """restore.yml -e restore_from=repository -e restore_target_time=...: comment A (before the time) is back, comment
    B (after it) is not, every member is back (a leader, a synchronous standby), and open pages get the new epoch."""
    wait_for_cluster(3)
    trial = Trial(stack, tokens, "point-in-time restore of the cluster", viewers=8, users=20)
    figures: dict = {}

    async def run() -> None:
        await trial.open_graph()
        try:
            await trial.connect_viewers(60)
            writer = trial.api("writer-1")
            path = f"/api/v1/graphs/{trial.graph_id}/comments/"
            before = await asyncio.to_thread(writer.post, path, {"body": "before the time"})
            assert before.status == 201, before.body
            await asyncio.sleep(1.5)
            target = utc_now()
            await asyncio.sleep(1.5)
            after = await asyncio.to_thread(writer.post, path, {"body": "after the time"})
            assert after.status == 201, after.body
            await wait_for(lambda: all(after.body["seq"] in v.applied for v in trial.viewers), 30, "the comment")

            begun = time.monotonic()
            run = await asyncio.to_thread(
                run_playbook,
                "restore.yml",
                "-e",
                json.dumps({"restore_from": "repository", "restore_target_time": target}),
            )
            assert run.rc == 0, run.output[-6000:]
            figures.update(target=target, restore_seconds=round(time.monotonic() - begun, 1))
            assert len(re.findall(r"New epochs for \d+ graphs", run.output)) == 1, run.output[-3000:]
            assert "Safety backup" in run.output, run.output[-3000:]

            graph = await asyncio.to_thread(writer.get, f"/api/v1/graphs/{trial.graph_id}/")
            assert graph.status == 200, graph.body
            assert graph.body["epoch"] != trial.epoch
            assert graph.body["last_seq"] == before.body["seq"], (graph.body, before.body, after.body)
            kept = await asyncio.to_thread(writer.get, f"/api/v1/comments/{before.body['id']}/")
            assert kept.status == 200, kept.body
            gone = await asyncio.to_thread(writer.get, f"/api/v1/comments/{after.body['id']}/")
            assert gone.status == 404, gone.body
            figures["viewers_reload_seconds"] = round(
                await wait_for(
                    lambda: all(v.epoch == graph.body["epoch"] and v.connected for v in trial.viewers),
                    120,
                    "viewers to reload",
                    trial.status,
                ),
                1,
            )
        finally:
            await asyncio.gather(*(viewer.stop() for viewer in trial.viewers))

    asyncio.run(run())
    seen, seconds = wait_for_cluster(3, timeout=600)
    figures.update(members_after=seen, cluster_whole_after_seconds=round(seconds, 1))
    record("point-in-time restore", figures)
    # The new cluster archives again, on its new timeline.
    check = long_exec(BACKUP, f"runuser -u postgres -- pgbackrest --stanza={STANZA} check 2>&1")
    assert "completed successfully" in check, check


def wipe(container: str) -> None:
    """A new host, as far as the site's state goes: etcd's data, the Patroni member's configuration and cluster, the
    pgBackRest configuration and certificate gone (Debian's packages stay installed)."""
    docker_exec(container, "systemctl stop 'patroni@*' etcd pgbackrest", check=False)
    docker_exec(
        container,
        "pg_dropcluster 15 main 2>/dev/null; rm -rf /var/lib/etcd/comments /etc/patroni/15-main.yml /etc/pgbackrest "
        "/var/lib/postgresql/15 /etc/postgresql/15",
    )


def test_every_db_host_lost_then_rebuilt_from_the_repository_keeps_what_was_acknowledged_a_minute_before(stack, tokens):
    wait_for_cluster(3)
    trial = Trial(stack, tokens, "every db host lost", viewers=0)
    asyncio.run(trial.open_graph())
    figures: dict = {}

    async def write_then_lose_every_db_host() -> tuple[Writer, float]:
        writer = Writer([trial.api(f"writer-{i}") for i in range(6)], trial.graph_id, 10.0, limit=900, label="loss")
        writer.start()
        # 75 s of writes, so that some were acknowledged more than a minute before the loss.
        await asyncio.sleep(75)
        lost_at = time.monotonic()
        await asyncio.to_thread(
            subprocess.run, ["docker", "kill", *DB_HOSTS], check=True, capture_output=True, timeout=120
        )
        await asyncio.sleep(3)
        await writer.stop()
        return writer, lost_at

    writer, lost_at = asyncio.run(write_then_lose_every_db_host())
    acknowledged = [w for w in writer.writes if w.answer is not None and w.answer.status == 201]
    assert acknowledged, "no comment acknowledged before the loss"

    # New hosts in their place: the containers started again and their state wiped, then the runbook's procedure.
    for name in DB_HOSTS:
        subprocess.run(["docker", "start", name], check=True, capture_output=True, timeout=120)
    for name in DB_HOSTS:
        assert running(name)
        wipe(name)
    begun = time.monotonic()
    run = run_playbook("site.yml", timeout=1800)
    assert run.rc == 0, run.output[-6000:]
    figures["site_yml_seconds"] = round(time.monotonic() - begun, 1)
    seen, _ = wait_for_cluster(3, timeout=600)
    epochs = docker_exec(APP, runbook.command("Disaster recovery: every db host lost", "comments-manage").line)
    assert "New epochs for" in epochs, epochs

    stored = {
        event["comment"]["body"] for event in stored_events(trial.api("writer-0"), trial.graph_id) if "comment" in event
    }
    back = [w for w in acknowledged if w.body in stored]
    missing = [w for w in acknowledged if w.body not in stored]
    answered_at = {id(w): w.answer.started + w.answer.seconds for w in acknowledged}
    figures.update(
        acknowledged=len(acknowledged),
        back=len(back),
        missing=len(missing),
        # How long before the loss the newest acknowledged comment that did not come back was acknowledged; none
        # missing: 0.
        loss_window_seconds=round(max((lost_at - answered_at[id(w)] for w in missing), default=0.0), 1),
        members_after=seen,
    )
    record("every db host lost", figures)
    too_old = [w for w in missing if lost_at - answered_at[id(w)] > 60]
    assert not too_old, f"{len(too_old)} comments acknowledged more than 60 s before the loss are gone: {figures}"
    assert sorted(seen.values()) == ["leader", "replica", "sync_standby"]
    assert set(roles()) == set(DB_HOSTS)
