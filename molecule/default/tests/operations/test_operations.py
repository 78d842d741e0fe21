"""Operations (docs/security.md): check mode tells the truth, a backup restores, the secrets rotate without an outage.

The tests run in this order on one converged host: check mode; the backup timer; a backup taken, the database
dropped and restored by playbooks/restore.yml, with viewers connected; playbooks/rotate-secrets.yml with viewers
connected and a writer posting. Figures are printed (-s) for docs/security.md and the closing note.
"""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import collections
import json
import shlex
import time
import urllib.request

from support.api import Api
from support.live_client import Viewer, Writer, stored_events
from support.playbooks import run_playbook, scenario_secrets
from support.tls import insecure_tls

# The host these checks operate on; the scenario's other host (Debian 13) stays as converged.
testinfra_hosts = ["debian12"]
HOST = testinfra_hosts[0]
MANAGE = "/usr/local/bin/comments-manage"

VIEWERS = 20
ELEMENTS = {"nodes": [{"data": {"id": "TP53"}}], "edges": []}
BACKUP_DIR = "/var/backups/postgresql"


async def wait_for(condition, timeout: float, what: str) -> None:
    """Wait until `condition()` holds (bounded)."""
    begun = time.monotonic()
    while not condition():
        assert time.monotonic() - begun < timeout, f"timed out after {timeout:.0f} s waiting for {what}"
        await asyncio.sleep(0.1)


class Audience:
    """A graph and its viewers, connected through Apache over TLS as pages are."""

    def __init__(self, base_url: str, tokens: dict[str, str], title: str) -> None:
        self.base_url = base_url
        self.tokens = tokens
        self.owner = Api(base_url, tokens["writer-0"])
        made = self.owner.post("/api/v1/graphs/", {"name": title, "public": True, "elements": ELEMENTS})
        assert made.status == 201, made.body or made.error
        self.graph_id, self.epoch = made.body["id"], made.body["epoch"]
        self.viewers: list[Viewer] = []

    def api(self, user: str) -> Api:
        return Api(self.base_url, self.tokens[user])

    async def connect(self, count: int) -> None:
        port = self.base_url.rsplit(":", 1)[1]
        for number in range(count):
            user = f"viewer-{number % 4}"
            viewer = Viewer(
                f"wss://127.0.0.1:{port}/ws/graphs/{self.graph_id}/",
                self.api(user),
                self.graph_id,
                0,
                self.epoch,
                name=f"{user}#{number}",
            )
            self.viewers.append(viewer)
            viewer.start()
        await wait_for(lambda: all(v.connected for v in self.viewers), 60, "the viewers to connect")

    async def caught_up(self, seq: int, timeout: float = 60) -> None:
        await wait_for(lambda: all(v.last_seq >= seq for v in self.viewers), timeout, f"every viewer at seq {seq}")

    async def close(self) -> None:
        await asyncio.gather(*(v.stop() for v in self.viewers))


def get_ok(api: Api, path: str, timeout: float = 120) -> dict:
    """GET until it answers 200 (bounded): right after a restart the app's first request loads Django."""
    begun = time.monotonic()
    while True:
        answer = api.get(path)
        if answer.status == 200:
            return answer.body
        assert time.monotonic() - begun < timeout, f"GET {path}: {answer.status} {answer.body or answer.error}"
        time.sleep(1)


def post_comments(api: Api, graph_id: int, count: int, label: str) -> list[int]:
    seqs = []
    for number in range(count):
        answer = api.post(f"/api/v1/graphs/{graph_id}/comments/", {"body": f"{label} #{number}"})
        assert answer.status == 201, answer.body or answer.error
        seqs.append(answer.body["seq"])
    return seqs


def comments_table(host) -> set[tuple[str, str]]:
    """Every stored comment and event of the database, as (kind, identity) pairs."""
    rows = sql(
        host,
        "SELECT 'comment ' || id || ' ' || md5(body) FROM comments_comment "
        "UNION ALL SELECT 'event ' || graph_id || ':' || seq || ' ' || kind FROM comments_event",
    )
    return set(rows.splitlines())


# --- Check mode ---


def test_check_mode_on_the_converged_hosts_changes_nothing_and_fails_nothing(host):
    # The whole inventory, as an operator checks a site: site.yml builds the release on the controller first, which a
    # --limit to the host would leave out. The faults before this left the Debian 12 host as Ansible made it.
    run = run_playbook("site.yml", "--check", "--diff")
    assert run.rc == 0, run.output[-5000:]
    for name in host.ansible.get_variables()["groups"]["all"]:
        recap = run.recap(name)
        print(f"\ncheck mode on the converged host {name}: {recap} in {run.seconds:.0f} s")
        assert recap.failed == 0, run.output[-5000:]
        assert recap.unreachable == 0, run.output[-5000:]
        assert recap.changed == 0, run.output[-8000:]


# --- Backups ---


def test_the_backup_timer_is_scheduled(host):
    timer = host.service("comments-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert host.file(BACKUP_DIR).mode == 0o700
    assert host.file(BACKUP_DIR).user == "postgres"


def test_a_restored_backup_brings_back_every_comment_and_viewers_reload(host, base_url, tokens):
    figures = {}

    async def scenario() -> None:
        audience = Audience(base_url, tokens, "Operations: backup and restore")
        try:
            await audience.connect(VIEWERS)
            backed_up = await asyncio.to_thread(
                post_comments, audience.api("writer-1"), audience.graph_id, 20, "before the backup"
            )
            await audience.caught_up(backed_up[-1])
            in_backup = await asyncio.to_thread(comments_table, host)
            figures["comments in the backup"] = int(sql(host, "SELECT count(*) FROM comments_comment"))
            figures["events in the backup"] = int(sql(host, "SELECT count(*) FROM comments_event"))

            before = set(host.run(f"ls {BACKUP_DIR}").stdout.split())
            taken = await asyncio.to_thread(host.run, "systemctl start comments-backup.service")
            assert taken.rc == 0, taken.stderr
            dumps = set(host.run(f"ls {BACKUP_DIR}").stdout.split()) - before
            assert len(dumps) == 1, dumps
            figures["dump"] = dumps.pop()

            # Written after the backup: lost by the restore, and their seqs will be given again to other comments.
            lost = await asyncio.to_thread(
                post_comments, audience.api("writer-2"), audience.graph_id, 3, "after the backup"
            )
            await audience.caught_up(lost[-1])
            figures["comments before the disaster"] = int(sql(host, "SELECT count(*) FROM comments_comment"))

            dropped = await asyncio.to_thread(host.run, "runuser -u postgres -- dropdb --force comments")
            assert dropped.rc == 0, dropped.stderr
            raw_before = {v.name: v.raw_events for v in audience.viewers}
            reached_before = {v.name: len(v.reached) for v in audience.viewers}

            restore = await asyncio.to_thread(
                run_playbook, "restore.yml", "--limit", HOST, "-e", "restore_backup=latest"
            )
            assert restore.rc == 0, restore.output[-5000:]
            figures["restore playbook seconds"] = round(restore.seconds)
            assert figures["dump"] in restore.output

            # Every comment and event of the backup is back, and nothing else.
            assert await asyncio.to_thread(comments_table, host) == in_backup
            figures["comments after the restore"] = int(sql(host, "SELECT count(*) FROM comments_comment"))
            figures["events after the restore"] = int(sql(host, "SELECT count(*) FROM comments_event"))

            graph = await asyncio.to_thread(get_ok, audience.owner, f"/api/v1/graphs/{audience.graph_id}/")
            new_epoch = graph["epoch"]
            assert new_epoch != audience.epoch
            assert graph["last_seq"] == backed_up[-1]
            old = await asyncio.to_thread(
                audience.owner.get, f"/api/v1/graphs/{audience.graph_id}/events/?after_seq=0&epoch={audience.epoch}"
            )
            assert (old.status, old.body.get("code")) == (409, "epoch_changed")

            # New comments reuse the lost ones' seqs: a viewer that resumed with the old epoch would take them for
            # the lost ones. Each viewer was told to reload instead, and then got exactly the new comments.
            fresh = await asyncio.to_thread(
                post_comments, audience.api("writer-3"), audience.graph_id, 3, "after the restore"
            )
            assert fresh[0] == backed_up[-1] + 1
            await wait_for(
                lambda: all(v.epoch == new_epoch and v.connected for v in audience.viewers), 120, "viewers to reload"
            )
            await audience.caught_up(fresh[-1])
            # The reload reads the graph and its comments over REST (the new ones included): no stored event of the
            # old life, nor any other, comes as a live frame in their place.
            for viewer in audience.viewers:
                assert [reset["epoch"] for reset in viewer.resets] == [new_epoch], viewer.name
                assert viewer.reloads == 1, viewer.name
                assert viewer.last_seq == fresh[-1], viewer.name
                assert viewer.raw_events - raw_before[viewer.name] <= len(fresh), viewer.name
                # What it applied live since the disaster is stored now (the reload read the rest over REST). Seqs of
                # the lost comments come again with the new ones: another life of the graph, which the reload began;
                # the client keeps its seq bookkeeping across it, so a repeat of a seq is not a duplicate.
                since = {seq for _, seq in viewer.reached[reached_before[viewer.name] :]}
                assert since <= {*backed_up, *fresh}, viewer.name
            stored = await asyncio.to_thread(stored_events, audience.owner, audience.graph_id)
            assert [e["seq"] for e in stored] == [*backed_up, *fresh]
            figures["viewers told to reload (reset)"] = sum(len(v.resets) for v in audience.viewers)
        finally:
            await audience.close()

    asyncio.run(scenario())
    print(f"\nbackup and restore: {json.dumps(figures)}")


# --- Secrets ---


def signed_before(host) -> tuple[str, str]:
    """A signed value and a signed-in session of writer-0, both signed with the current SECRET_KEY."""
    code = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core import signing
user = get_user_model().objects.get(username="writer-0")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(json.dumps([signing.dumps("made before the rotation"), session.session_key]))
"""
    made = host.run(shlex.join([MANAGE, "shell", "-c", code]))
    assert made.rc == 0, made.stderr
    return tuple(json.loads(made.stdout.strip().splitlines()[-1]))


def me_with_session(base_url: str, session_key: str) -> tuple[int, str]:
    request = urllib.request.Request(  # noqa: S310 (the test's own https URL)
        f"{base_url}/api/v1/me/", headers={"Cookie": f"sessionid={session_key}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, context=insecure_tls(), timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()).get("username", "")
    except urllib.error.HTTPError as error:
        return error.code, ""


def redis_answers(host, password: str) -> str:
    out = host.run(shlex.join(["env", f"REDISCLI_AUTH={password}", "redis-cli", "--user", "comments", "ping"]))
    return (out.stdout + out.stderr).strip()


def postgresql_lets_in(host, password: str) -> bool:
    out = host.run(
        shlex.join(
            ["env", f"PGPASSWORD={password}", "psql", "-h", "127.0.0.1", "-U", "comments", "-d", "comments", "-Atc",
             "SELECT 1"]
        )
    )  # fmt: skip
    return out.rc == 0


def test_secrets_rotate_while_viewers_watch_and_a_writer_writes(host, base_url, tokens):
    secrets = scenario_secrets()
    names = ["django_secret_key", "postgresql_app_password", "redis_app_password"]
    old = {name: (secrets / name).read_text().split()[0] for name in names}
    signed, session_key = signed_before(host)
    assert me_with_session(base_url, session_key) == (200, "writer-0")
    assert redis_answers(host, old["redis_app_password"]) == "PONG"
    assert postgresql_lets_in(host, old["postgresql_app_password"])
    # The operator's part: new values in the inventory (here: the password lookups make new ones).
    for name in names:
        (secrets / name).rename(secrets / f"{name}.before-rotation")
    figures = {}

    async def scenario() -> None:
        audience = Audience(base_url, tokens, "Operations: secrets rotation")
        try:
            await audience.connect(VIEWERS)
            writer = Writer(
                [audience.api(f"writer-{i}") for i in range(4, 8)], audience.graph_id, 1.5, limit=600, label="rotation"
            )
            writer.start()
            await asyncio.sleep(2)
            rotation = await asyncio.to_thread(run_playbook, "rotate-secrets.yml", "--limit", HOST)
            await asyncio.sleep(2)
            await writer.stop()
            assert rotation.rc == 0, rotation.output[-5000:]
            figures["rotation playbook seconds"] = round(rotation.seconds)
            acked = writer.acknowledged()
            stored = await asyncio.to_thread(stored_events, audience.owner, audience.graph_id)
            await audience.caught_up(stored[-1]["seq"])
            answers = collections.Counter(
                w.answer.status if w.answer.status is not None else w.answer.error for w in writer.writes
            )
            closes = collections.Counter(code for v in audience.viewers for _, code in v.closes)
            figures.update(
                writes_attempted=len(writer.writes),
                writes_succeeded=len(acked),
                answers={str(k): n for k, n in answers.items()},
                viewers=len(audience.viewers),
                sockets_closed_by_code={str(k): n for k, n in closes.items()},
                events_lost=sum(len(set(acked) - set(v.applied)) for v in audience.viewers),
            )
            print(f"\nrotation: {json.dumps(figures)}")
            assert len(acked) == len(writer.writes), figures
            assert figures["events_lost"] == 0, figures
            # The only drops are the drains of the workers' restarts (4012, "reconnect elsewhere"), and every viewer
            # is connected again, none refused.
            assert set(closes) <= {4012}, figures
            assert all(v.connected and v.denied is None for v in audience.viewers), figures
            assert all(not v.errors for v in audience.viewers), [v.errors for v in audience.viewers if v.errors]
        finally:
            await audience.close()

    asyncio.run(scenario())

    new = {name: (secrets / name).read_text().split()[0] for name in names}
    assert all(new[name] != old[name] for name in names)
    assert "WRONGPASS" in redis_answers(host, old["redis_app_password"])
    assert redis_answers(host, new["redis_app_password"]) == "PONG"
    assert not postgresql_lets_in(host, old["postgresql_app_password"])
    assert postgresql_lets_in(host, new["postgresql_app_password"])
    assert sql(host, "SELECT count(*) FROM pg_roles WHERE rolname = 'comments_rotation'") == "0"
    env = host.file("/etc/comments/comments.env").content_string
    assert new["django_secret_key"] in env
    assert old["postgresql_app_password"] not in env
    # What the old key signed is still good: a signed value, and the session made before (sessions are signed).
    check = f"from django.core import signing; signing.loads({signed!r})"
    loaded = host.run(shlex.join([MANAGE, "shell", "-c", check]))
    assert loaded.rc == 0, loaded.stderr
    assert me_with_session(base_url, session_key) == (200, "writer-0")


def sql(host, query: str) -> str:
    """One value from the app's database, as the postgres superuser over the socket."""
    result = host.run(shlex.join(["runuser", "-u", "postgres", "--", "psql", "-d", "comments", "-Atc", query]))
    assert result.rc == 0, result.stderr
    return result.stdout.strip()
