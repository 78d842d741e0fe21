"""Maintenance mode (docs/runbook.md, "Maintenance mode"), turned on and off by playbooks/maintenance.yml (the task file
restore.yml uses) on the converged host, with viewers connected through Apache over TLS: while it is on, a page and
an API write get 503 with Retry-After, a new WebSocket is accepted and closed with 4012 (going away), and every open
viewer is closed with 4012 and keeps retrying; once it is off everything answers again and the viewers come back."""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import websockets

from support.api import Api
from support.live_client import Viewer
from support.playbooks import run_playbook
from support.tls import insecure_tls

testinfra_hosts = ["debian12"]
HOST = testinfra_hosts[0]
VIEWERS = 8
GOING_AWAY = 4012
FLAG = "/var/lib/comments/maintenance"


async def wait_for(condition, timeout: float, what: str) -> float:
    """Wait until `condition()` holds (bounded); the seconds it took."""
    begun = time.monotonic()
    while not condition():
        assert time.monotonic() - begun < timeout, f"timed out after {timeout:.0f} s waiting for {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - begun


def page(base_url: str, path: str) -> tuple[int, dict[str, str], str]:
    """GET a page as a browser does: status, headers (lower-case names), body."""
    request = urllib.request.Request(base_url + path, headers={"Accept": "text/html"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, context=insecure_tls(), timeout=10) as answer:  # noqa: S310
            status, headers, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    return status, {name.lower(): value for name, value in headers.items()}, body.decode("utf-8", "replace")


async def handshake_close_code(ws_url: str, token: str) -> int | None:
    """Open a WebSocket as a script does and read until the server closes it: its close code."""
    async with websockets.connect(
        ws_url, ssl=insecure_tls(), additional_headers={"Authorization": f"Token {token}"}, open_timeout=10
    ) as socket:
        try:
            async with asyncio.timeout(10):
                while True:
                    await socket.recv()
        except websockets.ConnectionClosed:
            pass
        return socket.close_code


def maintenance(on: bool):
    return run_playbook("maintenance.yml", "--limit", HOST, "-e", f"comments_maintenance={str(on).lower()}")


def test_maintenance_mode_answers_503_and_going_away_then_opens_again(host, base_url, tokens):
    figures: dict = {}
    owner = Api(base_url, tokens["writer-0"])
    made = owner.post(
        "/api/v1/graphs/",
        {"name": "Maintenance", "public": True, "elements": {"nodes": [{"data": {"id": "TP53"}}], "edges": []}},
    )
    assert made.status == 201, made.body or made.error
    graph_id, epoch = made.body["id"], made.body["epoch"]
    port = base_url.rsplit(":", 1)[1]
    ws_url = f"wss://127.0.0.1:{port}/ws/graphs/{graph_id}/"
    comments = f"/api/v1/graphs/{graph_id}/comments/"

    async def scenario() -> None:
        viewers = [
            Viewer(ws_url, Api(base_url, tokens[f"viewer-{n % 4}"]), graph_id, 0, epoch, name=f"viewer#{n}")
            for n in range(VIEWERS)
        ]
        for viewer in viewers:
            viewer.start()
        try:
            await wait_for(lambda: all(v.connected for v in viewers), 60, "the viewers to connect")
            # Positive control: before maintenance the site answers.
            assert (await asyncio.to_thread(page, base_url, "/"))[0] == 200

            begun = time.monotonic()
            on = await asyncio.to_thread(maintenance, True)
            assert on.rc == 0, on.output[-5000:]
            figures["maintenance on (playbook seconds, workers rolled)"] = round(on.seconds, 1)
            assert host.file(FLAG).exists

            # Every viewer open before was closed with going away (the workers were rolled), and none was told a
            # final code: each keeps retrying.
            closed = [v for v in viewers if any(code == GOING_AWAY and when >= begun for when, code in v.closes)]
            figures["open viewers closed with 4012"] = f"{len(closed)} of {VIEWERS}"
            assert len(closed) == VIEWERS, [v.closes for v in viewers]
            assert all(v.denied is None for v in viewers)

            # A page: the maintenance page, 503 with Retry-After, never cached.
            status, headers, body = await asyncio.to_thread(page, base_url, f"/graphs/{graph_id}/")
            assert (status, headers.get("retry-after")) == (503, "60"), (status, headers)
            assert headers["content-type"].startswith("text/html"), headers
            assert "Back in a moment" in body
            assert headers.get("cache-control") == "no-store", headers
            # An API write: 503 with Retry-After, JSON in the API's error shape; nothing written.
            write = await asyncio.to_thread(owner.post, comments, {"body": "during maintenance"})
            assert (write.status, write.headers.get("retry-after")) == (503, "60"), (write.status, write.headers)
            assert write.headers["content-type"].startswith("application/json"), write.headers
            assert write.body["code"] == "maintenance", write.body
            # A new WebSocket, through Apache and a Daphne worker: accepted, then closed with going away.
            code = await handshake_close_code(ws_url, tokens["viewer-0"])
            figures["new WebSocket in maintenance"] = code
            assert code == GOING_AWAY
            # /healthz still reaches the app (the state of the parts during the maintenance).
            assert (await asyncio.to_thread(page, base_url, "/healthz"))[0] == 200

            off = await asyncio.to_thread(maintenance, False)
            assert off.rc == 0, off.output[-5000:]
            opened = time.monotonic()
            figures["maintenance off (playbook seconds)"] = round(off.seconds, 1)
            assert not host.file(FLAG).exists
            assert (await asyncio.to_thread(page, base_url, f"/graphs/{graph_id}/"))[0] == 200
            written = await asyncio.to_thread(owner.post, comments, {"body": "after maintenance"})
            assert written.status == 201, written.body
            # The viewers come back at their next try (back-off at most 30 s) and get what was written meanwhile.
            await wait_for(lambda: all(v.connected for v in viewers), 90, "the viewers to come back")
            await wait_for(lambda: all(written.body["seq"] in v.applied for v in viewers), 30, "the comment")
            figures["all viewers back after off (s)"] = round(time.monotonic() - opened, 1)
            figures["going-away closes per viewer during maintenance"] = sorted(
                sum(1 for when, code in v.closes if code == GOING_AWAY and when >= begun) for v in viewers
            )
        finally:
            await asyncio.gather(*(v.stop() for v in viewers))
            if host.file(FLAG).exists:  # a failed check above must not leave the host in maintenance for the next
                await asyncio.to_thread(maintenance, False)

    asyncio.run(scenario())
    print(f"\nmaintenance mode: {json.dumps(figures)}")


BACKUP_DIR = "/var/backups/postgresql"


def dumps(host) -> set[str]:
    return set(host.run(f"ls {BACKUP_DIR}").stdout.split())


def test_a_restore_takes_a_safety_dump_first_which_brings_back_what_the_restore_replaced(host, base_url, tokens):
    """restore.yml (runbook, "Restore"): a safety dump of the database as it is before the drop, never picked by
    `latest`; restoring it by name is the way back."""
    figures: dict = {}
    owner = Api(base_url, tokens["writer-0"])
    made = owner.post(
        "/api/v1/graphs/", {"name": "Safety dump", "public": True, "elements": {"nodes": [{"data": {"id": "A"}}]}}
    )
    assert made.status == 201, made.body or made.error
    comments = f"/api/v1/graphs/{made.body['id']}/comments/"
    kept = owner.post(comments, {"body": "in the backup"})
    assert kept.status == 201, kept.body
    before = dumps(host)
    taken = host.run("systemctl start comments-backup.service")
    assert taken.rc == 0, taken.stderr
    (backup,) = dumps(host) - before
    replaced = owner.post(comments, {"body": "after the backup: replaced by the restore, kept in the safety dump"})
    assert replaced.status == 201, replaced.body

    restore = run_playbook("restore.yml", "--limit", HOST, "-e", "restore_backup=latest")
    assert restore.rc == 0, restore.output[-5000:]
    figures["restore playbook seconds"] = round(restore.seconds)
    (safety,) = dumps(host) - before - {backup}
    figures["safety dump"] = safety
    assert safety.startswith("comments-before-restore-"), safety
    assert f"Restoring {BACKUP_DIR}/{backup} over comments" in restore.output  # latest is the backup, not the safety
    assert safety in restore.output  # the play says where the safety dump is
    assert owner.get(f"/api/v1/comments/{kept.body['id']}/").status == 200
    assert owner.get(f"/api/v1/comments/{replaced.body['id']}/").status == 404
    assert not host.file(FLAG).exists

    back = run_playbook("restore.yml", "--limit", HOST, "-e", f"restore_backup={safety}")
    assert back.rc == 0, back.output[-5000:]
    assert owner.get(f"/api/v1/comments/{replaced.body['id']}/").status == 200
    # That restore took a safety dump of its own; `latest` is still the timer's dump.
    assert len({name for name in dumps(host) if name.startswith("comments-before-restore-")} - before) == 2
    host.run(f"rm -f {BACKUP_DIR}/comments-before-restore-*.dump")
    print(f"\nsafety dump: {json.dumps(figures)}")
