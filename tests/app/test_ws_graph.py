"""/ws/graphs/<id>/ through the real ASGI application and the real Redis pub/sub channel layer (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from comments import broadcast, services
from comments.models import Event
from live import queries
from live.consumers import graph as graph_consumer
from wsclient import accepted, token_for, viewer, ws

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("presence_settled")]


async def post(user, graph, body="hello", **fields) -> Event:
    """A comment written by the one writer, as the REST API writes it."""
    return await database_sync_to_async(services.create_comment)(user=user, graph=graph, body=body, **fields)


def stored(event: Event) -> dict:
    return Event.objects.get(pk=event.pk).as_message()


# --- who may connect ---


async def test_anonymous_on_a_private_graph_is_closed_4401(shared_graph):
    async with ws(f"/ws/graphs/{shared_graph.pk}/") as client:
        await accepted(client)
        assert (await client.closed())[0] == 4401


async def test_an_outsider_is_closed_4404_as_for_a_graph_that_does_not_exist(carol, shared_graph):
    async with ws(f"/ws/graphs/{shared_graph.pk}/", user=carol) as client:
        await accepted(client)
        assert await client.closed() == (4404, [])


async def test_anonymous_on_a_graph_that_does_not_exist_is_closed_4401_as_for_a_private_one(shared_graph):
    async with ws("/ws/graphs/999999/") as client:
        await accepted(client)
        assert (await client.closed())[0] == 4401


@pytest.mark.parametrize("graph_id", ["999999", "99999999999999999999999"])
async def test_a_graph_that_does_not_exist_is_closed_4404(alice, graph_id):
    async with ws(f"/ws/graphs/{graph_id}/", user=alice) as client:
        await accepted(client)
        assert (await client.closed())[0] == 4404


async def test_an_unknown_path_is_closed_4404(alice):
    async with ws("/ws/nothing-here/", user=alice) as client:
        await accepted(client)
        assert (await client.closed())[0] == 4404


@pytest.mark.parametrize(
    "authorization", [b"Token not-a-real-token", b"Token \xff\xfe", b"Bearer abc", b"Token", b"Token a b"]
)
async def test_a_bad_authorization_header_is_closed_4401_even_on_a_public_graph(alice, make_graph, authorization):
    graph = await database_sync_to_async(make_graph)(alice, public=True)
    async with ws(f"/ws/graphs/{graph.pk}/", authorization=authorization) as client:
        await accepted(client)
        assert (await client.closed())[0] == 4401


async def test_an_inactive_users_token_is_refused(bob, shared_graph):
    token = await database_sync_to_async(token_for)(bob)
    bob.is_active = False
    await database_sync_to_async(bob.save)()
    async with ws(f"/ws/graphs/{shared_graph.pk}/", token=token) as client:
        await accepted(client)
        assert (await client.closed())[0] == 4401


async def test_the_token_header_authenticates(bob, shared_graph):
    async with viewer(shared_graph, bob) as (_client, hello):
        assert hello == {
            "type": "hello",
            "user": {"id": bob.pk, "username": "bob"},
            "last_seq": 0,
            "epoch": shared_graph.epoch,
        }


async def test_the_session_cookie_authenticates_a_page_of_an_allowed_host(alice, shared_graph):
    async with ws(f"/ws/graphs/{shared_graph.pk}/", cookie_user=alice, origin="http://testserver") as client:
        await accepted(client)
        hello = await client.frame("hello")
        assert hello["user"] == {"id": alice.pk, "username": "alice"}


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://testserver.evil.example", "http://[bad"])
async def test_a_foreign_origin_is_refused_at_the_handshake(alice, shared_graph, origin):
    async with ws(f"/ws/graphs/{shared_graph.pk}/", cookie_user=alice, origin=origin) as client:
        # Closed before accepting: the handshake fails with HTTP 403 and the cookie was never used.
        assert (await client.output())["type"] == "websocket.close"


@pytest.mark.parametrize(
    ("allowed_hosts", "debug", "origin", "opens"),
    [
        ([".example.org"], False, "https://comments.example.org:8443", True),
        ([".example.org"], False, "http://testserver", False),
        ([], True, "http://localhost:8000", True),  # Django's DEBUG default for an empty ALLOWED_HOSTS
        ([], False, "http://localhost:8000", False),
    ],
)
async def test_the_origin_is_checked_against_allowed_hosts_of_the_moment(
    alice, shared_graph, allowed_hosts, debug, origin, opens
):
    with override_settings(ALLOWED_HOSTS=allowed_hosts, DEBUG=debug):
        async with ws(f"/ws/graphs/{shared_graph.pk}/", user=alice, origin=origin) as client:
            assert (await client.output())["type"] == ("websocket.accept" if opens else "websocket.close")


async def test_no_origin_is_allowed_for_scripts(alice, shared_graph):
    async with viewer(shared_graph, alice) as (_, hello):
        assert hello["user"]["username"] == "alice"


async def test_anonymous_viewers_of_a_public_graph_hear_it_but_may_not_comment(alice, make_graph):
    graph = await database_sync_to_async(make_graph)(alice, public=True)
    async with viewer(graph) as (client, hello):
        assert hello["user"] is None
        await post(alice, graph, "for everyone")
        assert (await client.frame("event"))["comment"]["body"] == "for everyone"
        await client.send({"type": "comment.create", "client_id": "a1", "body": "me too"})
        error = await client.frame("error")
        assert (error["code"], error["client_id"]) == ("forbidden", "a1")
    assert await database_sync_to_async(Event.objects.filter(graph=graph).count)() == 1


# --- events ---


async def test_every_viewer_receives_a_comment_as_stored(alice, bob, shared_graph):
    async with viewer(shared_graph, alice) as (alice_ws, _), viewer(shared_graph, bob) as (bob_ws, _):
        event = await post(alice, shared_graph, "MDM2 binds TP53", nodes=["TP53", "MDM2"], edges=["e1"])
        frames = [await alice_ws.frame("event"), await bob_ws.frame("event")]
    expected = await database_sync_to_async(stored)(event)
    assert frames == [expected, expected]
    assert expected["seq"] == 1
    assert expected["event"] == "comment.created"
    assert expected["comment"]["anchor"] == {"kind": "subgraph", "nodes": ["TP53", "MDM2"], "edges": ["e1"]}


async def test_events_of_other_graphs_are_not_heard(alice, bob, shared_graph, make_graph):
    other = await database_sync_to_async(make_graph)(alice, name="other")
    async with viewer(shared_graph, bob) as (bob_ws, _), viewer(other, alice) as (witness, _):
        await post(alice, other, "elsewhere")
        assert (await witness.frame("event"))["comment"]["body"] == "elsewhere"
        await post(alice, shared_graph, "here")
        assert (await bob_ws.frame("event"))["comment"]["body"] == "here"


async def test_resume_after_a_disconnect_misses_nothing_and_repeats_nothing(alice, bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, hello):
        assert hello["last_seq"] == 0
        await post(alice, shared_graph, "1")
        assert (await client.frame("event"))["seq"] == 1
    # While bob is away.
    await post(alice, shared_graph, "2")
    await post(alice, shared_graph, "3")

    async def write_live():
        for body in ("4", "5", "6"):
            await post(alice, shared_graph, body)

    async with viewer(shared_graph, bob) as (client, hello):
        assert hello["last_seq"] == 3
        await client.send({"type": "resume", "after_seq": 1})
        # New comments arrive while the resume is being answered.
        writer = asyncio.create_task(write_live())
        frames = await client.until(lambda frame: frame.get("seq") == 6)
        await writer
        assert [(frame["type"], frame["seq"]) for frame in frames] == [("event", seq) for seq in range(2, 7)]
        assert [frame["comment"]["body"] for frame in frames] == ["2", "3", "4", "5", "6"]
        # Nothing repeated after it either: the next frame is the next event.
        await post(alice, shared_graph, "7")
        assert (await client.frame())["seq"] == 7


async def test_resume_streams_a_long_backlog_in_order_while_live_events_wait(alice, bob, shared_graph, monkeypatch):
    # Small batches, so that a short backlog crosses several of them (500 a batch in production).
    monkeypatch.setattr(graph_consumer, "RESUME_BATCH", 4)
    backlog = 15

    def write_backlog():
        for number in range(backlog):
            services.create_comment(user=alice, graph=shared_graph, body=f"old {number}")

    await database_sync_to_async(write_backlog)()
    async with viewer(shared_graph, bob) as (client, hello):
        assert hello["last_seq"] == backlog
        await client.send({"type": "resume", "after_seq": 0})
        writer = asyncio.create_task(post(alice, shared_graph, "new"))
        frames = await client.until(lambda frame: frame.get("seq") == backlog + 1)
        await writer
        assert [frame["seq"] for frame in frames] == list(range(1, backlog + 2))
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}


async def test_resume_catches_up_from_the_database_when_broadcasts_were_lost(alice, bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, _):
        # An in-memory layer with nobody listening: the announcements of these two are lost (a Redis hiccup).
        with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
            await post(alice, shared_graph, "lost 1")
            await post(alice, shared_graph, "lost 2")
        await client.send({"type": "resume", "after_seq": 0})
        frames = [await client.frame("event"), await client.frame("event")]
        assert [frame["comment"]["body"] for frame in frames] == ["lost 1", "lost 2"]
        await client.send({"type": "resume", "after_seq": 2})  # up to date: nothing is sent again
        await post(alice, shared_graph, "3")
        assert (await client.frame())["seq"] == 3


async def test_a_gap_in_the_live_stream_is_filled_from_the_database(alice, bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, _):
        # Two events whose broadcasts have not arrived (their worker is slow), then a third that has.
        with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
            first = await post(alice, shared_graph, "one")
            second = await post(alice, shared_graph, "two")
        await post(alice, shared_graph, "three")
        frames = [await client.frame("event") for _ in range(3)]
        assert [frame["seq"] for frame in frames] == [1, 2, 3]
        assert frames[0] == await database_sync_to_async(stored)(first)
        # The slow worker's broadcasts arrive at last, out of order: both are dropped.
        layer = get_channel_layer()
        for late in (second, first):
            text = broadcast.encode(late.as_message())
            await layer.group_send(
                broadcast.graph_group(shared_graph.pk),
                {"type": "graph.event", "graph": shared_graph.pk, "seq": late.seq, "text": text},
            )
        await post(alice, shared_graph, "four")
        assert (await client.frame())["seq"] == 4


async def test_resume_rejects_a_bad_after_seq_and_stays_open(bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, _):
        for bad in (-1, "3", True, None, 5):
            await client.send({"type": "resume", "after_seq": bad})
            error = await client.frame("error")
            assert error["code"] == "invalid"
            assert "after_seq" in error["errors"]
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}


# --- posting over the socket ---


async def test_comment_create_is_acked_and_broadcast_once(alice, bob, shared_graph):
    async with viewer(shared_graph, alice) as (alice_ws, _), viewer(shared_graph, bob) as (bob_ws, _):
        await alice_ws.send({"type": "comment.create", "client_id": "c-1", "body": "on a node", "nodes": ["MDM2"]})
        ack = await alice_ws.frame("ack")
        assert (ack["client_id"], ack["seq"]) == ("c-1", 1)
        assert ack["comment"]["author"] == {"id": alice.pk, "username": "alice"}
        assert ack["comment"]["anchor"] == {"kind": "node", "nodes": ["MDM2"], "edges": []}
        own = await alice_ws.frame("event")
        assert (own["seq"], own["comment"]) == (1, ack["comment"])
        assert (await bob_ws.frame("event"))["seq"] == 1
        # A reply, and the author is the socket's user whatever the frame says.
        await bob_ws.send(
            {
                "type": "comment.create",
                "client_id": "c-2",
                "body": "agreed",
                "parent": ack["comment"]["id"],
                "author": 1,
            }
        )
        reply = await bob_ws.frame("ack")
        assert reply["comment"]["author"]["username"] == "bob"
        assert reply["comment"]["parent"] == ack["comment"]["id"]
        # Alice's next frame is the reply's event: her own comment's event was not sent twice.
        assert (await alice_ws.frame())["seq"] == 2


async def test_comment_create_errors_keep_the_socket_open(alice, shared_graph):
    thread = await post(alice, shared_graph, "thread")
    reply = await post(alice, shared_graph, "reply", parent=thread.comment_id)
    async with viewer(shared_graph, alice) as (client, _):
        cases = [
            ({"body": "x", "nodes": ["NOPE"]}, "nodes"),
            ({"body": "x", "edges": "e1"}, "edges"),
            ({"body": "   "}, "body"),
            ({"body": "x" * 10_001}, "body"),
            ({}, "body"),
            ({"body": "x", "parent": reply.comment_id}, "parent"),
            ({"body": "x", "parent": thread.comment_id, "nodes": ["TP53"]}, "parent"),
            ({"body": "x", "parent": "1"}, "parent"),
        ]
        for fields, field in cases:
            await client.send({"type": "comment.create", "client_id": "bad", **fields})
            error = await client.frame("error")
            assert (error["code"], error["client_id"]) == ("invalid", "bad"), error
            assert field in error["errors"], error
        for client_id in (None, "", "x" * 65, 7):
            await client.send({"type": "comment.create", "client_id": client_id, "body": "fine"})
            error = await client.frame("error")
            assert error["code"] == "invalid"
            assert "client_id" in error["errors"]
        await client.send({"type": "comment.create", "client_id": "ok", "body": "fine"})
        assert (await client.frame("ack"))["seq"] == 3
    assert await database_sync_to_async(Event.objects.filter(graph=shared_graph).count)() == 3


async def test_comment_create_on_a_graph_deleted_meanwhile_is_not_found(alice, shared_graph):
    async with viewer(shared_graph, alice) as (client, _):
        # Deleted behind the socket's back (the access check it would get has not come yet).
        await database_sync_to_async(type(shared_graph).objects.filter(pk=shared_graph.pk).delete)()
        await client.send({"type": "comment.create", "client_id": "late", "body": "anyone?"})
        error = await client.frame("error")
        assert (error["code"], error["client_id"]) == ("not_found", "late")


# --- bad input and limits ---


async def test_ping_gets_pong(bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, _):
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}


async def test_bad_frames_get_errors_and_the_socket_stays_open(bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, _):
        await client.send_text("{not json")
        assert (await client.frame("error"))["code"] == "invalid_json"
        for frame in ("[1, 2]", '"ping"', '{"no": "type"}', '{"type": 3}'):
            await client.send_text(frame)
            assert (await client.frame("error"))["code"] == "invalid_frame"
        for kind in ("shout", "__class__", "presence", "hello.there"):
            await client.send({"type": kind})
            assert (await client.frame("error"))["code"] == "unknown_type"
        await client.send_bytes(b"\x00\x01")
        assert (await client.frame("error"))["code"] == "binary_frame"
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}


async def test_a_frame_up_to_64_kib_is_read(bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, _):
        frame = json.dumps({"type": "ping", "pad": ""})
        await client.send_text(frame[:-2] + "x" * (64 * 1024 - len(frame)) + '"}')
        assert await client.frame() == {"type": "pong"}


@pytest.mark.parametrize("filler", ["x", "🧬"])  # 64 KiB + 1 byte of ASCII; fewer characters than bytes
async def test_a_frame_over_64_kib_closes_4009(bob, shared_graph, filler):
    async with viewer(shared_graph, bob) as (client, _):
        size = 64 * 1024 + 1
        text = '{"type":"ping","pad":"' + filler * (size // len(filler.encode())) + '"}'
        assert len(text.encode()) > size
        await client.send_text(text)
        assert (await client.closed())[0] == 4009


# The bucket refills at WEBSOCKET_RATE_PER_SECOND while the frames arrive, so how many pass before the first refusal
# depends on how fast this machine sends them; with no refill it is the burst exactly.
FLOOD_BURST = 40


@override_settings(WEBSOCKET_RATE_PER_SECOND=0, WEBSOCKET_RATE_BURST=FLOOD_BURST)
async def test_flooding_is_rate_limited_then_closed_4008(bob, shared_graph):
    async with viewer(shared_graph, bob) as (client, _):
        for _ in range(200):
            await client.send({"type": "ping"})
        code, frames = await client.closed()
    assert code == 4008
    kinds = [frame.get("code", frame["type"]) for frame in frames if frame["type"] != "presence"]
    assert kinds.count("rate_limited") == 1
    pongs = kinds.index("rate_limited")
    assert pongs == FLOOD_BURST
    assert set(kinds[:pongs]) == {"pong"}


# --- losing access ---


def rest(api, user, method: str, path: str, data: dict | None = None) -> int:
    """A REST call as the user's script makes it; returns the status."""
    return getattr(api(user), method)(path, data, format="json").status_code


async def test_a_viewer_who_loses_access_is_closed_4404_and_hears_nothing_more(api, alice, bob, shared_graph):
    group = await database_sync_to_async(lambda: shared_graph.shared_with.get())()
    async with viewer(shared_graph, bob) as (bob_ws, _), viewer(shared_graph, alice) as (owner_ws, _):
        await post(alice, shared_graph, "before")
        assert (await bob_ws.frame("event"))["seq"] == 1
        path = f"/api/v1/graphs/{shared_graph.pk}/share/{group.pk}/"
        assert await database_sync_to_async(rest)(api, alice, "delete", path) == 200
        await post(alice, shared_graph, "after")
        assert [frame["seq"] for frame in await owner_ws.until(lambda f: f["seq"] == 2)] == [1, 2]
        assert await bob_ws.closed() == (4404, [])


async def test_a_member_removed_from_the_group_is_closed_4404(api, alice, bob, shared_graph):
    group = await database_sync_to_async(lambda: shared_graph.shared_with.get())()
    async with viewer(shared_graph, bob) as (bob_ws, _), viewer(shared_graph, alice) as (owner_ws, _):
        path = f"/api/v1/groups/{group.pk}/members/{bob.pk}/"
        assert await database_sync_to_async(rest)(api, alice, "delete", path) == 200
        assert await bob_ws.closed() == (4404, [])
        await owner_ws.send({"type": "ping"})
        assert await owner_ws.frame() == {"type": "pong"}


async def test_a_graph_made_private_closes_its_anonymous_viewers_4401(api, alice, bob, make_graph):
    graph = await database_sync_to_async(make_graph)(alice, public=True)
    async with viewer(graph) as (anonymous, _), viewer(graph, bob) as (stranger, _), viewer(graph, alice) as (owner, _):
        path = f"/api/v1/graphs/{graph.pk}/"
        assert await database_sync_to_async(rest)(api, alice, "patch", path, {"public": False}) == 200
        assert (await anonymous.closed())[0] == 4401
        assert (await stranger.closed())[0] == 4404
        await owner.send({"type": "ping"})
        assert await owner.frame() == {"type": "pong"}


async def test_a_deleted_graph_closes_its_viewers_4404(api, alice, shared_graph):
    async with viewer(shared_graph, alice) as (client, _):
        path = f"/api/v1/graphs/{shared_graph.pk}/"
        assert await database_sync_to_async(rest)(api, alice, "delete", path) == 204
        assert (await client.closed())[0] == 4404


async def test_an_outsider_cannot_hear_a_private_graph(alice, carol, shared_graph, make_graph):
    public = await database_sync_to_async(make_graph)(alice, name="public", public=True)
    async with viewer(public, carol) as (outsider, _), viewer(shared_graph, alice) as (witness, _):
        await post(alice, shared_graph, "secret")
        assert (await witness.frame("event"))["comment"]["body"] == "secret"
        # The witness got it, so a wrongly subscribed socket of this worker would have it queued by now.
        assert await outsider.nothing()


async def test_sockets_asking_for_the_same_stored_events_at_once_share_one_query(alice, shared_graph, monkeypatch):
    for body in ("1", "2", "3"):
        await post(alice, shared_graph, body)
    asked = []
    real = queries._stored_frames

    def counting(*args):
        asked.append(args)
        return real(*args)

    monkeypatch.setattr(queries, "_stored_frames", counting)
    results = await asyncio.gather(*(queries.stored_frames(shared_graph.pk, 0, 2, 500) for _ in range(50)))
    assert len(asked) == 1
    assert all(result == results[0] for result in results)
    assert [seq for seq, _ in results[0]] == [1, 2]
    # Once done, the next ask queries again: nothing is cached beyond the moment.
    await queries.stored_frames(shared_graph.pk, 0, 2, 500)
    assert len(asked) == 2


async def test_comment_create_over_the_rate_is_throttled_and_writes_nothing(bob, shared_graph, settings):
    import uuid

    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "comments.user": "2/min"}
    async with viewer(shared_graph, bob) as (client, _):
        for number in (1, 2):
            await client.send({"type": "comment.create", "client_id": f"c{number}", "body": "hi"})
            # The event of the comment before may come first (the fan-out); this comment's own event never does.
            frames = await client.until(lambda frame: frame["type"] == "ack")
            assert frames[-1]["seq"] == number
            assert [frame["seq"] for frame in frames[:-1]] in ([], [number - 1]), frames
        await client.send({"type": "comment.create", "client_id": "c3", "body": "one too many"})
        error = await client.until(lambda frame: frame["type"] == "error")
        assert (error[-1]["code"], error[-1]["client_id"]) == ("throttled", "c3")
        assert 1 <= error[-1]["retry_after"] <= 60
    assert await database_sync_to_async(lambda: Event.objects.filter(graph=shared_graph).count())() == 2


# --- epochs: another life of the stream ---


async def test_a_resume_from_another_epoch_is_told_to_reload_not_given_wrong_events(alice, bob, shared_graph):
    from django.core.management import call_command

    await post(alice, shared_graph, "one")
    async with viewer(shared_graph, bob) as (client, hello):
        assert (hello["last_seq"], hello["epoch"]) == (1, shared_graph.epoch)
        # Same epoch: an ordinary resume.
        await client.send({"type": "resume", "after_seq": 0, "epoch": hello["epoch"]})
        assert (await client.frame("event"))["seq"] == 1
    # The database is restored from a backup: the operator gives the streams new epochs.
    await database_sync_to_async(call_command)("new_epochs")
    await post(alice, shared_graph, "two")
    async with viewer(shared_graph, bob) as (client, hello):
        assert hello["epoch"] != shared_graph.epoch
        await client.send({"type": "resume", "after_seq": 1, "epoch": shared_graph.epoch})
        assert await client.frame() == {"type": "reset", "epoch": hello["epoch"], "last_seq": 2}
        # Then live as usual, with nothing replayed.
        await post(alice, shared_graph, "three")
        assert (await client.frame())["seq"] == 3


async def test_resuming_in_the_url_sends_the_missed_events_before_any_live_one(alice, bob, shared_graph):
    for body in ("one", "two", "three"):
        await post(alice, shared_graph, body)
    async with ws(f"/ws/graphs/{shared_graph.pk}/?after_seq=1&epoch={shared_graph.epoch}", user=bob) as client:
        await accepted(client)
        hello = await client.frame("hello")
        assert hello["last_seq"] == 3
        assert [(await client.frame("event"))["seq"] for _ in range(2)] == [2, 3]
        await post(alice, shared_graph, "four")
        assert (await client.frame("event"))["seq"] == 4


@pytest.mark.parametrize("query", ["after_seq=-1", "after_seq=x", "after_seq=99999999999999999999", "after_seq=9"])
async def test_a_bad_resume_in_the_url_is_an_invalid_error_and_the_socket_stays(bob, shared_graph, query):
    async with ws(f"/ws/graphs/{shared_graph.pk}/?{query}", user=bob) as client:
        await accepted(client)
        await client.frame("hello")
        error = await client.frame("error")
        assert (error["code"], list(error["errors"])) == ("invalid", ["after_seq"])
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}


async def test_resuming_in_the_url_from_another_epoch_is_a_reset(bob, shared_graph):
    async with ws(f"/ws/graphs/{shared_graph.pk}/?after_seq=0&epoch=an-older-life", user=bob) as client:
        await accepted(client)
        hello = await client.frame("hello")
        assert await client.frame() == {"type": "reset", "epoch": hello["epoch"], "last_seq": 0}
