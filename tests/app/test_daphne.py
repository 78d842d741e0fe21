"""Two real Daphne processes, as deployed: viewers on different workers hear the same comment and see each other,
and a worker killed with SIGKILL leaves no ghost in the presence list for longer than the TTL.
"""

from __future__ import annotations

import os
import signal

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient
from websockets.asyncio.client import connect

import daphne_workers
from daphne_workers import frame_where
from wsclient import token_for

pytestmark = [pytest.mark.daphne, pytest.mark.django_db(transaction=True)]

PRESENCE_TTL = daphne_workers.PRESENCE_TTL
PRESENCE_REFRESH = daphne_workers.PRESENCE_REFRESH
TIMEOUT = daphne_workers.TIMEOUT


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
            assert hello == {"type": "hello", "user": people(user)[0], "last_seq": 0, "epoch": shared_graph.epoch}

        # Presence across the two processes.
        for socket in (alice_ws, bob_ws):
            await frame_where(
                socket, lambda frame: frame == {"type": "presence", "count": 2, "viewers": people(alice, bob)}
            )

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
            lambda frame: frame == {"type": "presence", "count": 1, "viewers": people(alice)},
            timeout=PRESENCE_TTL + PRESENCE_REFRESH + 5,
        )
        # The surviving worker still relays.
        await database_sync_to_async(post_comment)(bob, shared_graph, "Still here")
        event = await frame_where(alice_ws, lambda frame: frame["type"] == "event")
        assert (event["seq"], event["comment"]["author"]["username"]) == (2, "bob")
