"""/ws/notifications/: a user's own mentions, live."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from comments import services
from comments.models import Notification
from wsclient import accepted, ws

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/notifications/"


async def test_anonymous_is_closed_4401():
    async with ws(PATH) as client:
        await accepted(client)
        assert await client.closed() == (4401, [])


async def test_a_wrong_token_is_closed_4401():
    async with ws(PATH, token="0" * 40) as client:
        await accepted(client)
        assert (await client.closed())[0] == 4401


async def test_a_mention_is_pushed_to_the_mentioned_user_only(alice, bob, carol, shared_graph):
    async with ws(PATH, user=bob) as bob_ws, ws(PATH, user=carol) as carol_ws, ws(PATH, user=alice) as alice_ws:
        for client in (bob_ws, carol_ws, alice_ws):
            await accepted(client)
        # carol may not see the graph, so naming her mentions nobody; alice does not notify herself.
        await database_sync_to_async(services.create_comment)(
            user=alice, graph=shared_graph, body="@bob look, and @carol and @alice"
        )
        frame = await bob_ws.frame("notification")
        stored = await database_sync_to_async(Notification.objects.get)(user=bob)
        notification = frame["notification"]
        assert notification["id"] == stored.pk
        assert (notification["kind"], notification["read"]) == ("mention", False)
        assert notification["actor"] == {"id": alice.pk, "username": "alice"}
        assert notification["graph"] == {"id": shared_graph.pk, "name": shared_graph.name}
        assert notification["comment"]["body"] == "@bob look, and @carol and @alice"
        # bob's came through this worker's Redis subscription, so theirs would have too.
        assert await carol_ws.nothing()
        assert await alice_ws.nothing()


async def test_the_session_cookie_works_and_bad_frames_get_errors(alice):
    async with ws(PATH, cookie_user=alice, origin="http://localhost") as client:
        await accepted(client)
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}
        await client.send({"type": "resume", "after_seq": 0})
        assert (await client.frame("error"))["code"] == "unknown_type"
        await client.send_bytes(b"\x00")
        assert (await client.frame("error"))["code"] == "binary_frame"
