"""Faults to survive: every comment that got a 201 reaches every viewer exactly once, whatever fails.

Each test is one trial (tests/support/trial.py): viewers connected through Apache over TLS to the host's Daphne
workers, a writer posting a comment a second over HTTPS, one fault, then the count. The figures of the last run are
in docs/resilience.md; each test prints its row, and the run ends with the whole table.
"""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import os
import time

from support.live_client import Viewer
from support.reconnect import backoff_delay
from support.trial import ANSWER_HANG_SECONDS, Outcome, Trial, wait_for

# The faults are injected into the scenario's Debian 12 host; the Debian 13 host is left as converged.
testinfra_hosts = ["debian12"]

# Viewers of the Apache restart (a hall of at least 1,000 viewers, docs/resilience.md). Each costs an Apache thread on the host and a
# TLS client here; RESILIENCE_HALL_VIEWERS lowers it on a smaller machine.
HALL_VIEWERS = int(os.environ.get("RESILIENCE_HALL_VIEWERS", "1000"))
# A dead worker's viewers leave the presence lists once their entries expire (PRESENCE_TTL_SECONDS, 20 s by default)
# and a live worker's refresh prunes them; the time it took is reported. Only past this bound it is taken as never.
PRESENCE_GONE_HANG_SECONDS = 90.0
SERVICES = ["postgresql", "redis-server", "supervisor", "apache2"]
DB_PROBE = "runuser -u postgres -- psql -d comments -Atc '\\timing on' -c 'SELECT count(*) FROM comments_event'"


def assert_every_acknowledged_comment_reached_every_viewer_once(outcome: Outcome, trial: Trial) -> None:
    assert outcome.acknowledged > 0, outcome
    assert outcome.lost == 0, f"{outcome.lost} (viewer, comment) pairs lost: {outcome}"
    assert outcome.duplicated == 0, outcome
    assert outcome.raw_duplicates == 0, f"the server sent {outcome.raw_duplicates} events twice: {outcome}"
    assert outcome.delivered == outcome.acknowledged, outcome
    assert trial.notes["extra_applied"] == 0, "viewers applied events that are not stored"
    # Nothing half-written: an answer other than 201 stored nothing, and whatever is stored beyond the 201s was
    # written by a request that got no answer at all (its connection dropped after the commit).
    assert trial.notes["answered_writes_stored_anyway"] == [], trial.notes
    assert len(trial.notes["stored_not_acknowledged"]) == outcome.unknown_committed, trial.notes
    assert trial.notes["connected_at_end"] == len(trial.viewers), "a viewer did not come back"
    assert outcome.recovery_seconds < 120, outcome


def assert_api_answered_clearly(trial: Trial, allowed: set[str]) -> None:
    """Every write got a 201 or one of `allowed` (what the test expects of this fault), and none hung (how fast they
    came is in the table); a 503 is JSON with a `detail` and a Retry-After."""
    for write in trial.writer.writes:
        answer = write.answer
        assert answer is not None
        assert answer.seconds <= ANSWER_HANG_SECONDS, f"an answer hung for {answer.seconds:.1f} s: {answer}"
        if answer.status == 201:
            continue
        if answer.status is None:
            assert "no answer" in allowed, f"no answer while the front end was up: {answer.error}"
            continue
        assert answer.status != 500
        assert f"{answer.status}" in allowed, f"answered {answer.status}: {answer.body}"
        if answer.status == 503:
            assert answer.body["code"] == "unavailable", answer.body
            assert answer.body["detail"], answer.body
            assert int(answer.headers["retry-after"]) > 0, answer.headers


def present(viewer: Viewer, username: str) -> bool:
    return viewer.presence is not None and any(u["username"] == username for u in viewer.presence["viewers"])


def run(trial: Trial, inject, **options) -> Outcome:
    return asyncio.run(trial.run(inject, **options))


async def restarted(trial: Trial, name: str, old_pid: int, timeout: float = 30) -> None:
    """Wait until supervisor runs the worker `name` again under another pid."""

    def running() -> bool:
        pid = trial.stack.workers().get(name)
        return pid is not None and pid != old_pid

    async def poll() -> bool:
        return await asyncio.to_thread(running)

    begun = time.monotonic()
    while not await poll():
        assert time.monotonic() - begun < timeout, f"supervisor did not restart {name}"
        await asyncio.sleep(0.5)


# --- The rules the client keeps ---


def test_the_client_backs_off_like_the_page():
    """Anywhere between 0 and min(30 s, 0.5 s x 2^attempts), as live-socket.js: full jitter, growing, capped."""
    delays = [[backoff_delay(attempt) for _ in range(200)] for attempt in range(8)]
    for attempt, samples in enumerate(delays):
        ceiling = min(30.0, 0.5 * 2**attempt)
        assert all(0 <= d <= ceiling for d in samples)
        assert max(samples) - min(samples) > ceiling / 2, "no jitter"


# --- Daphne ---


def test_a_killed_daphne_worker_loses_nothing_and_its_viewers_presence_expires(stack, tokens):
    trial = Trial(stack, tokens, "kill -9 of one Daphne worker")
    witness: list[Viewer] = []

    async def inject(t: Trial) -> None:
        # A viewer who closes the tab with the worker (it does not reconnect): its presence must expire by itself.
        before = await asyncio.to_thread(stack.worker_connections)
        viewer = t.viewer(0, user="witness", reconnect=False)
        witness.append(viewer)
        viewer.start()
        await wait_for(lambda: viewer.connected, 20, "the witness to connect")
        pids = {pid for _, pid in await asyncio.to_thread(stack.worker_connections) - before}
        assert len(pids) == 1, f"cannot tell the witness's worker: {pids}"
        await wait_for(lambda: all(present(v, "witness") for v in t.viewers), 15, "the witness in presence")
        t.notes["killed_pid"] = pid = pids.pop()
        t.notes["worker"] = next(name for name, p in stack.workers().items() if p == pid)
        t.notes["sockets_on_it"] = stack.sockets_by_worker()[pid] - 1
        t.fault_started()
        await stack.arun(f"kill -9 {pid}")

    async def watch(t: Trial) -> None:
        await wait_for(
            lambda: all(not present(v, "witness") for v in t.viewers), PRESENCE_GONE_HANG_SECONDS, "presence to expire"
        )
        t.notes["presence_gone_seconds"] = round(time.monotonic() - t.t0, 1)
        await restarted(t, t.notes["worker"], t.notes["killed_pid"])
        await witness[0].stop()

    outcome = run(trial, inject, watch=watch)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, set())
    assert outcome.reconnects >= 1, "no viewer was on the killed worker"
    print(f"\nthe killed worker's witness left every presence list after {trial.notes['presence_gone_seconds']} s")


def test_a_drained_daphne_worker_sends_its_viewers_elsewhere_with_4012(stack, tokens):
    trial = Trial(stack, tokens, "Daphne worker drained (SIGUSR1)")

    async def inject(t: Trial) -> None:
        counts = await asyncio.to_thread(stack.sockets_by_worker)
        name, pid = max(stack.workers().items(), key=lambda item: counts.get(item[1], 0))
        t.notes.update(worker=name, drained_pid=pid, sockets_on_it=counts.get(pid, 0))
        t.fault_started()
        await stack.arun(f"supervisorctl signal USR1 {name}")

    async def watch(t: Trial) -> None:
        await restarted(t, t.notes["worker"], t.notes["drained_pid"])

    outcome = run(trial, inject, watch=watch)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, set())
    # Every socket of the drained worker was told "going away" (4012); none was cut without a close frame.
    assert outcome.close_codes.get("4012", 0) >= trial.notes["sockets_on_it"] > 0, (outcome, trial.notes)
    assert set(outcome.close_codes) == {"4012"}, outcome.close_codes


# --- Redis ---


def test_a_redis_restart_loses_no_comment(stack, tokens):
    trial = Trial(stack, tokens, "Redis restarted")

    async def inject(t: Trial) -> None:
        await stack.arun("systemctl restart redis-server")

    outcome = run(trial, inject)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, set())


def test_redis_unreachable_for_20_seconds_loses_no_comment(stack, tokens):
    """Redis frozen (SIGSTOP): connections stay open and nothing answers, as behind a dead link; writes go on."""
    trial = Trial(stack, tokens, "Redis unreachable 20 s (SIGSTOP)")

    async def inject(t: Trial) -> None:
        await stack.arun("systemctl kill --kill-whom=main --signal=SIGSTOP redis-server")
        try:
            await asyncio.sleep(20)
        finally:
            await stack.arun("systemctl kill --kill-whom=main --signal=SIGCONT redis-server")

    outcome = run(trial, inject)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, set())


# --- PostgreSQL ---


def test_postgresql_down_answers_503_and_loses_nothing(stack, tokens):
    trial = Trial(stack, tokens, "PostgreSQL stopped 10 s, started")

    async def inject(t: Trial) -> None:
        await stack.arun("systemctl stop postgresql")
        try:
            await asyncio.sleep(10)
        finally:
            await stack.arun("systemctl start postgresql")

    outcome = run(trial, inject)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, {"503"})
    assert outcome.answers.get("503 unavailable", 0) >= 1, "the outage was not seen by the writer"


# --- Apache ---


def test_an_apache_graceful_reload_loses_nothing(stack, tokens):
    trial = Trial(stack, tokens, "Apache graceful reload")

    async def inject(t: Trial) -> None:
        await stack.arun("systemctl reload apache2")

    outcome = run(trial, inject)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, set())


def test_an_apache_restart_brings_every_viewer_of_a_hall_back(stack, tokens):
    trial = Trial(stack, tokens, f"Apache restart, {HALL_VIEWERS} viewers", viewers=HALL_VIEWERS, users=100)

    async def inject(t: Trial) -> None:
        await stack.arun("systemctl restart apache2")

    async def during(t: Trial) -> None:
        # The database stays responsive through the reconnect storm: a query on the events table, timed by psql
        # itself, every second for the 30 s after Apache is back.
        t.notes["db_query_ms"] = samples = []
        for _ in range(30):
            out = await stack.arun(DB_PROBE)
            samples.append(float(out.split("Time:")[1].split()[0]))
            await asyncio.sleep(1)

    async def watch(t: Trial) -> None:
        # ... and so do writes: the slowest 201 of the minute after.
        storm = [
            w.answer.seconds
            for w in t.writer.writes
            if w.answer is not None and w.answer.status == 201 and t.t_end <= w.answer.started <= t.t_end + 60
        ]
        t.notes["slowest_write_in_storm_seconds"] = round(max(storm), 2)
        t.notes["slowest_db_query_in_storm_ms"] = max(t.notes.pop("db_query_ms"))

    outcome = run(trial, inject, during=during, watch=watch, connect_timeout=240, catch_up_timeout=120)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, {"no answer"})
    assert outcome.reconnects >= HALL_VIEWERS, "not every viewer was dropped and came back"
    # How responsive the database and the API stayed through the storm is reported (docs/resilience.md), not asserted:
    # on a shared 2-core machine it says more about the neighbours than about the stack.
    print(
        f"\nduring the storm: slowest 201 {trial.notes['slowest_write_in_storm_seconds']} s, "
        f"slowest events query {trial.notes['slowest_db_query_in_storm_ms']} ms"
    )


# --- The host ---


def test_a_rebooted_host_comes_back_and_its_viewers_resume(stack, tokens):
    trial = Trial(stack, tokens, "host rebooted (docker restart)")

    async def inject(t: Trial) -> None:
        # SIGRTMIN+3 is systemd's "reboot": services stop in order, as on a real host; then the container starts.
        await asyncio.to_thread(stack.docker, "restart", "--signal", "SIGRTMIN+3", "--time", "60", stack.container)

    async def watch(t: Trial) -> None:
        for name in SERVICES:
            assert stack.host.service(name).is_running, f"{name} did not come back"
            assert stack.host.service(name).is_enabled, name
        workers = int(stack.host.ansible.get_variables()["comments_daphne_workers"])
        assert len(stack.workers()) == workers, "supervisor does not run every Daphne worker"

    outcome = run(trial, inject, watch=watch, catch_up_timeout=120)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, {"no answer", "503"})


def test_at_boot_the_app_starts_after_its_database_and_redis(stack):
    """Daphne's workers (supervisor) are ordered after PostgreSQL and Redis: none of them serves a viewer before the
    stores it reads are up (the boot order of the trial above, as systemd enforces it)."""
    after = stack.run("systemctl show --property=After --value supervisor.service").split()
    assert "postgresql.service" in after, after
    assert "redis-server.service" in after, after


# --- A restored database ---


def test_after_a_restore_a_resuming_viewer_is_told_to_reload(stack, tokens):
    trial = Trial(stack, tokens, "database restored (new_epochs)")

    async def inject(t: Trial) -> None:
        # What a restore does to the live path: the app stopped, the database given back (here: as it was), every
        # graph a new epoch, the app started.
        workers = " ".join(sorted(stack.workers()))
        await stack.arun(f"supervisorctl stop {workers}")
        await stack.arun("/usr/local/bin/comments-manage new_epochs")
        await stack.arun(f"supervisorctl start {workers}")

    async def watch(t: Trial) -> None:
        graph = await asyncio.to_thread(t.api("writer-0").get, f"/api/v1/graphs/{t.graph_id}/")
        t.notes["new_epoch"] = graph.body["epoch"]
        old = await asyncio.to_thread(
            t.api("writer-0").get, f"/api/v1/graphs/{t.graph_id}/events/?after_seq=0&epoch={t.epoch}"
        )
        t.notes["events_with_old_epoch"] = f"{old.status} {old.body.get('code')}"

    outcome = run(trial, inject, watch=watch)
    assert_every_acknowledged_comment_reached_every_viewer_once(outcome, trial)
    assert_api_answered_clearly(trial, set())
    assert trial.notes["new_epoch"] != trial.epoch
    assert trial.notes["events_with_old_epoch"] == "409 epoch_changed"
    for viewer in trial.viewers:
        assert [reset["epoch"] for reset in viewer.resets] == [trial.notes["new_epoch"]], viewer.name
        assert viewer.reloads == 1
