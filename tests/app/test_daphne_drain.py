"""Draining a real Daphne worker (live/drain.py): SIGUSR1 tells its sockets to come back elsewhere (4012), then
the worker stops by itself; clients that reconnect to another worker and resume lose nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import urllib.error
import urllib.request

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

import daphne_workers
from comments import services
from daphne_workers import frame_where
from test_daphne_defects import close_code, socket_to, tokens

pytestmark = [pytest.mark.daphne, pytest.mark.django_db(transaction=True)]


def accepting(port: int) -> int:
    """The status of the worker's /-/accepting, which Apache's health check asks (200 takes sockets, 503 drains)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/accepting", timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def comment(user, graph, body: str) -> int:
    return services.create_comment(user=user, graph=graph, body=body).seq


async def test_a_drained_worker_sends_its_viewers_elsewhere_and_stops(workers, alice, bob, shared_graph):
    (draining, first), (_, second) = workers
    alice_token, bob_token = await tokens(alice, bob)
    async with (
        socket_to(first, shared_graph.pk, alice_token) as alice_ws,
        socket_to(first, shared_graph.pk, bob_token) as bob_ws,
    ):
        for socket in (alice_ws, bob_ws):
            await frame_where(socket, lambda frame: frame["type"] == "hello")
        assert await database_sync_to_async(comment)(alice, shared_graph, "before the drain") == 1
        assert (await frame_where(bob_ws, lambda frame: frame["type"] == "event"))["seq"] == 1

        assert await asyncio.to_thread(accepting, first) == 200
        draining.send_signal(signal.SIGUSR1)
        # From the start of the drain Apache's health check sees 503, whatever Host it sends: no new sockets come.
        for _ in range(20):
            if await asyncio.to_thread(accepting, first) == 503:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("/-/accepting did not answer 503 while the worker drains")
        assert await asyncio.to_thread(accepting, second) == 200
        bound = daphne_workers.DRAIN_SPREAD + 5
        assert await close_code(alice_ws, timeout=bound) == 4012
        assert await close_code(bob_ws, timeout=bound) == 4012
        # A socket that arrives while it drains is sent away too (if the worker still answers at all).
        try:
            async with socket_to(first, shared_graph.pk, bob_token) as late:
                assert await close_code(late, timeout=bound) == 4012
        except (OSError, WebSocketException):
            pass  # it has stopped (or is stopping) already

    # Meanwhile the discussion goes on; bob comes back on the other worker and resumes from what he had.
    assert await database_sync_to_async(comment)(alice, shared_graph, "during the drain") == 2
    async with connect(
        f"ws://127.0.0.1:{second}/ws/graphs/{shared_graph.pk}/",
        additional_headers={"Authorization": f"Token {bob_token}"},
    ) as again:
        await frame_where(again, lambda frame: frame["type"] == "hello")
        await again.send(json.dumps({"type": "resume", "after_seq": 1}))
        event = await frame_where(again, lambda frame: frame["type"] == "event")
        assert (event["seq"], event["comment"]["body"]) == (2, "during the drain")

    # The drained worker stopped by itself, in an orderly way.
    try:
        code = draining.wait(timeout=daphne_workers.DRAIN_SPREAD + daphne_workers.DRAIN_GRACE + 10)
    except subprocess.TimeoutExpired:
        pytest.fail("the drained worker did not stop")
    assert code == 0
