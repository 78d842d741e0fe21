"""Two real Daphne processes, as deployed: viewers on different workers hear the same comment and see each other,
and a worker killed with SIGKILL leaves no ghost in the presence list for longer than the TTL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework.test import APIClient
from websockets.asyncio.client import connect

import servers
from wsclient import token_for

pytestmark = [pytest.mark.daphne, pytest.mark.django_db(transaction=True)]

APP_DIR = Path(__file__).resolve().parents[2] / "app"
TESTS_DIR = Path(__file__).resolve().parent
# Small presence timings for the workers under test, so that a dead worker's ghost goes within seconds.
PRESENCE_TTL = 3
PRESENCE_REFRESH = 1
TIMEOUT = 15.0


@contextmanager
def daphne(env: dict, log: Path):
    """A Daphne process serving config.asgi on a free loopback port; stopped by PID at the end."""
    port = servers.free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=APP_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            servers.wait_for_port(port, timeout=30)
        except RuntimeError:
            raise RuntimeError(f"Daphne did not start:\n{log.read_text(errors='replace')}") from None
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def workers(transactional_db, postgres_port, redis_url, tmp_path):
    """Two Daphne workers on the test database (data committed by transactional tests) and the test Redis."""
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings_test",
        "PYTHONPATH": os.pathsep.join([str(APP_DIR), str(TESTS_DIR)]),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{postgres_port}/{database['NAME']}",
        "REDIS_URL": redis_url,
        "PRESENCE_TTL_SECONDS": str(PRESENCE_TTL),
        "PRESENCE_REFRESH_SECONDS": str(PRESENCE_REFRESH),
    }
    with ExitStack() as stack:
        yield [stack.enter_context(daphne(env, tmp_path / f"daphne-{n}.log")) for n in (1, 2)]


async def frame_where(socket, predicate, timeout: float = TIMEOUT) -> dict:
    """The first frame for which predicate is true (earlier ones are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await socket.recv())
            if predicate(frame):
                return frame


def people(*users) -> list[dict]:
    return [{"id": user.pk, "username": user.username} for user in sorted(users, key=lambda user: user.username)]


def post_comment(user, graph, body: str) -> int:
    """Post as a script does, over REST with a token; returns the comment's id."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    response = client.post(f"/api/v1/graphs/{graph.pk}/comments/", {"body": body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


async def test_viewers_on_two_workers_hear_a_comment_and_see_each_other(workers, alice, bob, shared_graph):
    (_first, first_port), (second, second_port) = workers
    alice_token = await database_sync_to_async(token_for)(alice)
    bob_token = await database_sync_to_async(token_for)(bob)
    path = f"/ws/graphs/{shared_graph.pk}/"
    async with (
        connect(
            f"ws://127.0.0.1:{first_port}{path}", additional_headers={"Authorization": f"Token {alice_token}"}
        ) as alice_ws,
        connect(
            f"ws://127.0.0.1:{second_port}{path}", additional_headers={"Authorization": f"Token {bob_token}"}
        ) as bob_ws,
    ):
        for socket, user in ((alice_ws, alice), (bob_ws, bob)):
            hello = await frame_where(socket, lambda frame: frame["type"] == "hello")
            assert hello == {"type": "hello", "user": people(user)[0], "last_seq": 0}

        # Presence across the two processes.
        for socket in (alice_ws, bob_ws):
            await frame_where(socket, lambda frame: frame == {"type": "presence", "viewers": people(alice, bob)})

        comment_id = await database_sync_to_async(post_comment)(alice, shared_graph, "Seen by both workers")
        for socket in (alice_ws, bob_ws):
            event = await frame_where(socket, lambda frame: frame["type"] == "event")
            assert (event["seq"], event["event"], event["comment"]["id"]) == (1, "comment.created", comment_id)
            assert event["comment"]["body"] == "Seen by both workers"

        # bob's worker dies without a word: its viewers leave the list within the TTL (plus one refresh).
        os.kill(second.pid, signal.SIGKILL)
        second.wait(timeout=10)
        await frame_where(
            alice_ws,
            lambda frame: frame == {"type": "presence", "viewers": people(alice)},
            timeout=PRESENCE_TTL + PRESENCE_REFRESH + 5,
        )
        # The surviving worker still relays.
        await database_sync_to_async(post_comment)(bob, shared_graph, "Still here")
        event = await frame_where(alice_ws, lambda frame: frame["type"] == "event")
        assert (event["seq"], event["comment"]["author"]["username"]) == (2, "bob")
