"""Scale-out and zero-drop deploys (docs/architecture.md), on five hosts: web (Apache + mod_wsgi), two Daphne hosts, a third
Daphne host added by a step, and one host with Redis and PostgreSQL.

The checks run in order, as an operator would: each part runs where the inventory says and nowhere else; viewers held
by different Daphne hosts all get a comment; then, with viewers connected and a writer posting, the runbook's
procedures: add a Daphne host and a worker (site.yml), roll a real second release (deploy.yml), roll back
(rollback.yml), remove the host and the worker (site.yml). Each is one trial (tests/support/trial.py): what every
socket went through, what every viewer received, and what /healthz answered meanwhile. The figures are printed and
kept in build/cluster.json; docs/architecture.md has those of the last run.
"""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import collections
import json
import time
from pathlib import Path

import pytest

from conftest import (
    ADDED_HOST,
    DAPHNE_HOSTS,
    DATA,
    ROOT,
    TWO_HOSTS_MEMBERS,
    WEB,
    docker_exec,
    release_archive,
    sockets_per_host,
    sockets_per_port,
    sockets_per_worker,
    viewers_get_a_comment,
)
from support import runbook
from support.api import Api
from support.trial import ANSWER_HANG_SECONDS, Trial

# Every check runs from the controller and reaches the hosts with docker exec; Testinfra's host is the web host.
testinfra_hosts = [f"ansible://{WEB}"]

VIEWERS = 40
# The release every host ran before the rolling deploy: where the rollback must return.
RELEASES: dict[str, str] = {}
# The runbook's health check (read from docs/runbook.md), with the scenario's public name resolved to the web host.
HEALTHZ = runbook.command("Health and logs", "curl").line.replace("comments.example.org", "comments.cluster.test")
FIGURES: dict[str, dict] = {}


def current_release(container: str) -> str:
    return docker_exec(container, "readlink /srv/comments/current").strip().rsplit("/", 1)[-1]


class Health:
    """/healthz through Apache, asked every half second while a step runs."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.answers: collections.Counter = collections.Counter()
        self.stopping = False

    async def poll(self) -> None:
        while not self.stopping:
            answer = await asyncio.to_thread(self.api.get, "/healthz")
            self.answers[str(answer.status) if answer.status else f"no answer ({answer.error[:40]})"] += 1
            await asyncio.sleep(0.5)


def step_trial(stack, tokens, name: str, step, hosts: list[str]) -> tuple[Trial, dict]:
    """Viewers and a writer through Apache, `step` run in a thread meanwhile, and the figures of every socket."""
    # A comment a second for as long as the step takes (a playbook run: minutes on a busy machine), bounded.
    trial = Trial(stack, tokens, name, viewers=VIEWERS, users=20, rate=1.0, writes=3600)
    figures: dict = {"step": name}
    # A slow /healthz on a loaded machine is reported, not failed: only an answer slower than the hang bound is none.
    health = Health(Api(stack.base_url, tokens["writer-0"], timeout=ANSWER_HANG_SECONDS))

    async def inject(t: Trial) -> None:
        figures["sockets_before"] = await asyncio.to_thread(sockets_per_host, hosts)
        figures["hellos_before"] = sum(len(v.hellos) for v in t.viewers)
        poller = asyncio.get_running_loop().create_task(health.poll())
        begun = time.monotonic()
        try:
            await asyncio.to_thread(step)
        finally:
            health.stopping = True
            await poller
        figures["step_seconds"] = round(time.monotonic() - begun, 1)

    async def watch(t: Trial) -> None:
        figures["sockets_after"] = await asyncio.to_thread(sockets_per_host, list(dict.fromkeys([*hosts, ADDED_HOST])))
        figures["never_closed"] = sum(1 for v in t.viewers if len(v.hellos) == 1 and not v.closes)

    outcome = asyncio.run(trial.run(inject, watch=watch, after=3.0))
    figures.update(
        viewers=outcome.viewers,
        acknowledged=outcome.acknowledged,
        lost=outcome.lost,
        duplicated=outcome.duplicated,
        reconnects=outcome.reconnects,
        close_codes=outcome.close_codes,
        healthz=dict(health.answers),
        answers=outcome.answers,
    )
    FIGURES[name] = figures
    print(f"\n{name}: {json.dumps(figures)}")
    out = ROOT / "build"
    out.mkdir(exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(FIGURES, indent=2))
    assert outcome.acknowledged > 0, outcome
    assert outcome.lost == 0, f"{outcome.lost} (viewer, comment) pairs lost: {figures}"
    assert outcome.duplicated == 0, figures
    assert outcome.delivered == outcome.acknowledged, outcome
    assert trial.notes["connected_at_end"] == len(trial.viewers), figures
    assert set(health.answers) == {"200"}, f"/healthz did not answer 200 throughout: {figures}"
    return trial, figures


# --- Where each part runs ---


def test_apache_runs_on_the_web_host_only():
    assert docker_exec(WEB, "systemctl is-active apache2").strip() == "active"
    for container in [*DAPHNE_HOSTS, DATA]:
        assert docker_exec(container, "systemctl is-active apache2", check=False).strip() != "active"


@pytest.mark.parametrize("container", DAPHNE_HOSTS)
def test_each_daphne_host_runs_its_workers_on_its_private_address(container):
    status = docker_exec(container, "supervisorctl status")
    workers = [line for line in status.splitlines() if line.startswith("comments-daphne-")]
    assert len(workers) == 2, status
    assert all(" RUNNING " in line for line in workers), status
    listening = docker_exec(container, "ss -Htln '( sport >= :9099 and sport <= :9163 )'")
    address = {"cluster-daphne1": "172.29.151.11", "cluster-daphne2": "172.29.151.12"}[container]
    # One socket per worker, on the host's private address only.
    bound = sorted(line.split()[3] for line in listening.splitlines())
    assert bound == [f"{address}:9099", f"{address}:9100"], listening


def test_redis_and_postgresql_answer_the_app_hosts_on_the_private_address_only():
    listening = docker_exec(DATA, "ss -Htln")
    for port in (6379, 5432):
        local = [line.split()[3] for line in listening.splitlines()]
        bound = {address.rsplit(":", 1)[0] for address in local if address.endswith(f":{port}")}
        assert bound <= {"127.0.0.1", "172.29.151.20", "[::1]", "::1"}, (port, bound)
        assert "172.29.151.20" in bound, (port, bound)
    # Redis refuses a client without the password, from an app host too.
    probe = "timeout 3 bash -c 'exec 3<>/dev/tcp/172.29.151.20/6379; printf \"PING\\r\\n\" >&3; head -n 1 <&3'"
    assert "NOAUTH" in docker_exec("cluster-daphne1", probe, check=False)


def test_the_app_hosts_reach_postgresql_over_tls_only():
    hba = docker_exec(DATA, "cat /etc/postgresql/*/main/pg_hba.conf")
    for address in ("172.29.151.10", "172.29.151.11", "172.29.151.12"):
        assert f"hostssl  comments  comments  {address}/32  scram-sha-256" in hba, hba
    # A request that reads the database from the web host (mod_wsgi keeps its connection a while).
    docker_exec(WEB, HEALTHZ)
    remote = docker_exec(
        DATA,
        'runuser -u postgres -- psql -Atc "SELECT a.client_addr, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s '
        "USING (pid) WHERE a.datname = 'comments' AND a.client_addr IS NOT NULL AND a.client_addr <> '127.0.0.1'\"",
    )
    rows = [line.split("|") for line in remote.splitlines() if line]
    assert rows, "no app host connected to PostgreSQL"
    assert all(ssl == "t" for _, ssl in rows), rows


def test_healthz_reports_every_daphne_host_with_the_production_host_name():
    """The runbook's check: the public name resolved to the host itself, as an operator on the host runs it."""
    body = json.loads(docker_exec(WEB, HEALTHZ))
    assert body["status"] == "ok", body
    assert body["daphne_members"] == TWO_HOSTS_MEMBERS, body


def test_viewers_held_by_different_daphne_hosts_all_receive_a_comment(stack, tokens):
    held = viewers_get_a_comment(stack, tokens, "to every host", viewers=20, writer="writer-0")
    print(f"\nsockets per Daphne host: {held}")
    # bybusyness: each new tunnel goes to the member holding the fewest.
    assert all(count >= 5 for count in held.values()), held
    assert sum(held.values()) == 20, held


# --- The runbook's procedures, with viewers connected ---


def test_adding_a_daphne_host_and_a_worker_leaves_every_open_socket_connected(stack, tokens, playbooks):
    # The runbook's two ways to add capacity, in one run: a third Daphne host (one inventory line) and a third worker
    # on the first Daphne host (comments_daphne_workers).
    def add() -> None:
        playbooks.add_daphne_host(ADDED_HOST, workers={DAPHNE_HOSTS[0]: 3})
        playbooks.run("site.yml")

    trial, figures = step_trial(stack, tokens, "add a Daphne host and a worker", add, DAPHNE_HOSTS)
    assert figures["reconnects"] == 0, figures
    assert figures["never_closed"] == VIEWERS, figures
    assert sum(figures["sockets_before"].values()) == VIEWERS, figures
    # The new members serve new sockets: they hold none of the old ones, and bybusyness sends them the next ones
    # (the third host's two workers and the first host's third worker).
    body = json.loads(docker_exec(WEB, HEALTHZ))
    assert body["daphne_members"].get("172.29.151.13:9099") == "ok", body
    assert body["daphne_members"].get("172.29.151.13:9100") == "ok", body
    assert body["daphne_members"].get("172.29.151.11:9101") == "ok", body
    assert len(body["daphne_members"]) == 7, body
    newcomers = Trial(stack, tokens, "newcomers", viewers=14, users=20)

    async def connect() -> dict[str, int]:
        newcomers.graph_id, newcomers.epoch = trial.graph_id, trial.epoch
        try:
            await newcomers.connect_viewers(60)
            added = await asyncio.to_thread(sockets_per_port, ADDED_HOST)
            first = await asyncio.to_thread(sockets_per_port, DAPHNE_HOSTS[0])
            return {
                "172.29.151.13:9099": added[9099],
                "172.29.151.13:9100": added[9100],
                "172.29.151.11:9101": first[9101],
            }
        finally:
            await asyncio.gather(*(viewer.stop() for viewer in newcomers.viewers))

    # After the graceful reload Apache counts busyness afresh (the old generation keeps the old tunnels): the 14
    # newcomers spread over the 7 members, and each new member takes its share.
    on_new_members = asyncio.run(connect())
    FIGURES["add a Daphne host and a worker"]["newcomers_on_new_members"] = on_new_members
    assert all(count >= 1 for count in on_new_members.values()), on_new_members


def test_a_rolling_deploy_of_a_second_release_drops_nothing(stack, tokens, playbooks, tmp_path: Path):
    hosts = [*DAPHNE_HOSTS, ADDED_HOST]
    before = {container: current_release(container) for container in [WEB, *hosts]}
    archive, version = release_archive(tmp_path)
    assert version not in before.values()
    assert len(set(before.values())) == 1, before
    RELEASES["before"] = next(iter(before.values()))

    def deploy() -> None:
        playbooks.run("deploy.yml", env={"COMMENTS_RELEASE_ARCHIVE": str(archive)})

    _, figures = step_trial(stack, tokens, "rolling deploy", deploy, hosts)
    after = {container: current_release(container) for container in [WEB, *hosts]}
    figures.update(release_before=sorted(set(before.values())), release_after=sorted(set(after.values())))
    assert set(after.values()) == {version}, after
    # Every worker of every Daphne host was restarted: each socket was told to reconnect (4012), none cut.
    codes = figures["close_codes"]
    assert set(codes) <= {"4012"}, codes
    assert figures["never_closed"] == 0, figures


def test_a_rollback_returns_to_the_previous_release_and_drops_nothing(stack, tokens, playbooks):
    hosts = [*DAPHNE_HOSTS, ADDED_HOST]
    before = {container: current_release(container) for container in [WEB, *hosts]}

    def rollback() -> None:
        playbooks.run("rollback.yml")

    _, figures = step_trial(stack, tokens, "rollback", rollback, hosts)
    after = {container: current_release(container) for container in [WEB, *hosts]}
    figures["release_after"] = sorted(set(after.values()))
    assert len(set(after.values())) == 1, after
    assert set(after.values()).isdisjoint(before.values()), (before, after)
    if "before" in RELEASES:  # this run deployed: back to what ran before it
        assert set(after.values()) == {RELEASES["before"]}, after
    assert set(figures["close_codes"]) <= {"4012"}, figures
    for container in hosts:
        workers = sockets_per_worker(container)
        assert len(workers) <= (3 if container == DAPHNE_HOSTS[0] else 2), workers


def test_removing_a_worker_and_a_daphne_host_moves_their_sockets_and_loses_nothing(stack, tokens, playbooks):
    """The runbook's removals: the added host drained by hand and taken out of the group, the extra worker taken
    away by the variable; their viewers are told to reconnect (4012) and resume on the others."""

    def remove() -> None:
        # The runbook's drain of a host, run on it (the runbook reaches it with ssh).
        drain = runbook.command("Scale out", "ssh daphne3 ", block=2).line.removeprefix("ssh daphne3 ")
        docker_exec(ADDED_HOST, drain)
        playbooks.remove_added()
        playbooks.run("site.yml")

    _, figures = step_trial(stack, tokens, "remove a worker and a Daphne host", remove, [*DAPHNE_HOSTS, ADDED_HOST])
    assert set(figures["close_codes"]) <= {"4012"}, figures
    body = json.loads(docker_exec(WEB, HEALTHZ))
    assert body["daphne_members"] == TWO_HOSTS_MEMBERS, body
    assert sockets_per_host([ADDED_HOST])[ADDED_HOST] == 0, figures
    assert len(sockets_per_worker(DAPHNE_HOSTS[0])) <= 2, figures
