"""The live socket through real Daphne processes over TCP: bad frames, lost access, replays, lost broadcasts.

Daphne refuses application close codes other than 1000 and 3000-4999 (the client then sees 1011), and an exception
in a consumer reaches the client as 1011: in-process tests with WebsocketCommunicator show neither.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import daphne_workers
from comments import services
from daphne_workers import TIMEOUT, frame_where
from graphs.models import Graph
from wsclient import token_for

pytestmark = [pytest.mark.daphne, pytest.mark.django_db(transaction=True)]


def socket_to(port: int, graph_id: int | str, token: str | None = None):
    headers = {"Authorization": f"Token {token}"} if token else {}
    return connect(f"ws://127.0.0.1:{port}/ws/graphs/{graph_id}/", additional_headers=headers, max_size=None)


async def close_code(socket, timeout: float = TIMEOUT) -> int:
    """Wait for the server to close the socket (skipping frames); its close code."""
    async with asyncio.timeout(timeout):
        try:
            while True:
                await socket.recv()
        except ConnectionClosed:
            pass
    return socket.close_code


async def tokens(*users) -> list[str]:
    return [await database_sync_to_async(token_for)(user) for user in users]


def viewers_of(frame: dict) -> list[str]:
    return [viewer["username"] for viewer in frame["viewers"]]


async def test_a_frame_over_64_kib_closes_4009_through_daphne(workers, bob, shared_graph):
    (_, port), _ = workers
    (token,) = await tokens(bob)
    async with socket_to(port, shared_graph.pk, token) as socket:
        await frame_where(socket, lambda frame: frame["type"] == "hello")
        await socket.send('{"type":"ping","pad":"' + "x" * (65 * 1024) + '"}')
        assert await close_code(socket) == 4009


async def test_a_flood_of_frames_closes_4008_through_daphne(workers, bob, shared_graph):
    (_, port), _ = workers
    (token,) = await tokens(bob)
    async with socket_to(port, shared_graph.pk, token) as socket:
        await frame_where(socket, lambda frame: frame["type"] == "hello")
        for _ in range(200):
            await socket.send('{"type":"ping"}')
        assert await close_code(socket) == 4008


async def test_deep_nesting_is_an_error_frame_and_leaves_no_ghost(workers, alice, bob, shared_graph):
    (_, port), (_, other_port) = workers
    alice_token, bob_token = await tokens(alice, bob)
    async with socket_to(other_port, shared_graph.pk, alice_token) as witness:
        await frame_where(witness, lambda frame: frame["type"] == "presence" and viewers_of(frame) == ["alice"])
        async with socket_to(port, shared_graph.pk, bob_token) as socket:
            await frame_where(witness, lambda frame: frame["type"] == "presence" and "bob" in viewers_of(frame))
            await socket.send("[" * 5000)
            error = await frame_where(socket, lambda frame: frame["type"] == "error")
            assert error["code"] == "invalid_json"
            assert "nested deeper than 32" in error["message"]
            # The socket lives on.
            await socket.send('{"type":"ping"}')
            assert await frame_where(socket, lambda frame: frame["type"] != "presence") == {"type": "pong"}
        # bob left: nobody keeps him listed.
        await frame_where(witness, lambda frame: frame["type"] == "presence" and viewers_of(frame) == ["alice"])


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ('{"type":"comment.create","client_id":"c1","body":"NUL \\u0000 here"}', "body"),
        ('{"type":"comment.create","client_id":"c1","body":"half \\ud800 a character"}', "body"),
        ('{"type":"comment.create","client_id":"c\\u0000","body":"fine"}', "client_id"),
        ('{"type":"comment.create","client_id":"c1","body":"x","nodes":["\\udfff"]}', "nodes.0"),
        ('{"type":"resume\\ud800","after_seq":0}', "type"),
    ],
    ids=["nul-in-body", "lone-surrogate-in-body", "nul-in-client-id", "lone-surrogate-in-node-id", "surrogate-type"],
)
async def test_text_that_cannot_be_stored_is_an_invalid_error_naming_the_field(
    workers, bob, shared_graph, frame, field
):
    (_, port), _ = workers
    (token,) = await tokens(bob)
    async with socket_to(port, shared_graph.pk, token) as socket:
        await frame_where(socket, lambda frame: frame["type"] == "hello")
        await socket.send(frame)
        error = await frame_where(socket, lambda frame: frame["type"] == "error")
        assert (error["code"], list(error["errors"])) == ("invalid", [field])
        await socket.send('{"type":"ping"}')
        assert await frame_where(socket, lambda frame: frame["type"] != "presence") == {"type": "pong"}
    graph = await database_sync_to_async(Graph.objects.get)(pk=shared_graph.pk)
    assert graph.last_seq == 0


async def test_outsiders_get_the_same_close_code_for_a_private_graph_and_a_missing_one(workers, carol, shared_graph):
    (_, port), _ = workers
    (token,) = await tokens(carol)
    codes = {}
    for name, graph_id, user_token in [
        ("outsider, private", shared_graph.pk, token),
        ("outsider, missing", 987654, token),
        ("anonymous, private", shared_graph.pk, None),
        ("anonymous, missing", 987654, None),
    ]:
        async with socket_to(port, graph_id, user_token) as socket:
            codes[name] = await close_code(socket)
    assert codes == {
        "outsider, private": 4404,
        "outsider, missing": 4404,
        "anonymous, private": 4401,
        "anonymous, missing": 4401,
    }


def _delete_and_edit(alice, graph) -> tuple[int, int]:
    secret = services.create_comment(user=alice, graph=graph, body="the secret password is swordfish").comment
    services.toggle_reaction(user=alice, comment=secret, reaction="+1")
    services.delete_comment(user=alice, comment=secret)
    edited = services.create_comment(user=alice, graph=graph, body="first draft naming @bob").comment
    services.edit_comment(user=alice, comment=edited, body="final text")
    return secret.pk, edited.pk


async def test_a_deleted_or_edited_body_is_gone_from_every_replay(workers, alice, bob, shared_graph):
    (_, port), _ = workers
    secret_id, edited_id = await database_sync_to_async(_delete_and_edit)(alice, shared_graph)
    (token,) = await tokens(bob)
    async with socket_to(port, shared_graph.pk, token) as socket:
        await frame_where(socket, lambda frame: frame["type"] == "hello")
        await socket.send(json.dumps({"type": "resume", "after_seq": 0}))
        frames = [await frame_where(socket, lambda frame: frame["type"] == "event") for _ in range(5)]
    assert [frame["seq"] for frame in frames] == [1, 2, 3, 4, 5]
    replayed = json.dumps(frames)
    rest = APIClient()
    rest.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    log = await database_sync_to_async(rest.get)(f"/api/v1/graphs/{shared_graph.pk}/events/?after_seq=0")
    for text in (replayed, log.content.decode()):
        assert "swordfish" not in text
        assert "first draft" not in text
    # The events stay, numbered, as tombstones of the deleted comment and with the newest body of the edited one.
    by_comment = {(frame["comment"]["id"], frame["event"]): frame["comment"] for frame in frames}
    assert by_comment[(secret_id, "comment.created")]["body"] is None
    assert by_comment[(secret_id, "reaction.changed")]["deleted"] is True
    assert by_comment[(edited_id, "comment.created")]["body"] == "final text"
    assert by_comment[(edited_id, "comment.created")]["mentions"] == []


def _make_private_without_announcing(graph_id: int) -> None:
    # An update that bypasses the model's announcement: exactly what a lost pub/sub message looks like to a worker.
    Graph.objects.filter(pk=graph_id).update(public=False)


async def test_access_is_checked_again_on_a_timer_when_the_announcement_is_lost(workers, alice, bob, make_graph):
    (_, port), _ = workers
    graph = await database_sync_to_async(make_graph)(alice, public=True)
    (token,) = await tokens(bob)
    async with socket_to(port, graph.pk, token) as stranger, socket_to(port, graph.pk) as anonymous:
        for socket in (stranger, anonymous):
            await frame_where(socket, lambda frame: frame["type"] == "hello")
        await database_sync_to_async(_make_private_without_announcing)(graph.pk)
        bound = daphne_workers.ACCESS_RECHECK * 1.25 + 5
        assert await close_code(stranger, timeout=bound) == 4404
        assert await close_code(anonymous, timeout=bound) == 4401


def _deactivate(user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def _delete_tokens(user) -> None:
    for token in Token.objects.filter(user=user):
        token.delete()


@pytest.mark.parametrize("revoke", [_deactivate, _delete_tokens], ids=["user-deactivated", "token-deleted"])
async def test_a_revoked_account_loses_its_open_sockets_on_every_worker(workers, alice, bob, shared_graph, revoke):
    (_, first), (_, second) = workers
    alice_token, bob_token = await tokens(alice, bob)
    async with (
        socket_to(first, shared_graph.pk, bob_token) as bob_first,
        socket_to(second, shared_graph.pk, bob_token) as bob_second,
        socket_to(first, shared_graph.pk, alice_token) as alice_ws,
    ):
        for socket in (bob_first, bob_second, alice_ws):
            await frame_where(socket, lambda frame: frame["type"] == "hello")
        user = await database_sync_to_async(get_user_model().objects.get)(pk=bob.pk)
        await database_sync_to_async(revoke)(user)
        # Well within the timed re-check's bound: the announcement did it.
        assert await close_code(bob_first, timeout=TIMEOUT) == 4401
        assert await close_code(bob_second, timeout=TIMEOUT) == 4401
        # Nor does the token open a new socket (the worker's cache of valid tokens forgot it).
        async with socket_to(first, shared_graph.pk, bob_token) as again:
            assert await close_code(again) == 4401
        await alice_ws.send('{"type":"ping"}')
        assert await frame_where(alice_ws, lambda frame: frame["type"] == "pong") == {"type": "pong"}


async def test_one_user_may_hold_only_so_many_sockets_per_worker(workers, bob, shared_graph):
    (_, port), _ = workers
    (token,) = await tokens(bob)
    limit = daphne_workers.MAX_SOCKETS_PER_USER
    opened = [await socket_to(port, shared_graph.pk, token).__aenter__() for _ in range(limit)]
    try:
        for socket in opened:
            await frame_where(socket, lambda frame: frame["type"] == "hello")
        async with socket_to(port, shared_graph.pk, token) as one_too_many:
            assert await close_code(one_too_many) == 4429
        # Closing one makes room again.
        await opened.pop().close()
        async with socket_to(port, shared_graph.pk, token) as again:
            assert (await frame_where(again, lambda frame: frame["type"] == "hello"))["user"]["username"] == "bob"
    finally:
        for socket in opened:
            await socket.close()


def _comment_whose_broadcast_is_lost(user, graph) -> int:
    from django.test import override_settings

    # Published nowhere the workers listen: exactly what a broadcast lost during a Redis reconnect looks like to them.
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
        return services.create_comment(user=user, graph=graph, body="the last word before a quiet spell").seq


async def test_a_lost_broadcast_arrives_without_waiting_for_the_next_comment(workers, alice, bob, shared_graph):
    (_, port), _ = workers
    (token,) = await tokens(bob)
    async with socket_to(port, shared_graph.pk, token) as socket:
        await frame_where(socket, lambda frame: frame["type"] == "hello")
        seq = await database_sync_to_async(_comment_whose_broadcast_is_lost)(alice, shared_graph)
        event = await frame_where(socket, lambda frame: frame["type"] == "event", timeout=daphne_workers.CATCH_UP + 5)
        assert (event["seq"], event["comment"]["body"]) == (seq, "the last word before a quiet spell")
