"""Presence: who is viewing a graph, across workers, without ghosts (live/presence.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import override_settings
from redis import asyncio as aioredis

import servers
from live import presence
from wsclient import TIMEOUT, viewer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("presence_settled")]


def people(*users) -> list[dict]:
    return [{"id": user.pk, "username": user.username} for user in sorted(users, key=lambda user: user.username)]


async def presence_frame(client, expected: list[dict] | None = None, timeout: float = TIMEOUT) -> list[dict]:
    """The viewers of the next presence frame, or of the first one equal to `expected`."""
    frames = await client.until(
        lambda frame: frame["type"] == "presence" and (expected is None or frame["viewers"] == expected),
        timeout=timeout,
        presence=True,
    )
    return frames[-1]["viewers"]


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


class FakeSocket:
    """A socket of another worker's tracker: it only collects frames."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    async def send_frame(self, text: str) -> None:
        self.frames.append(text)


async def test_viewers_joining_and_leaving_are_announced(alice, bob, shared_graph):
    async with viewer(shared_graph, alice) as (alice_ws, _):
        assert await presence_frame(alice_ws) == people(alice)
        async with viewer(shared_graph, bob) as (bob_ws, _):
            assert await presence_frame(bob_ws) == people(alice, bob)
            assert await presence_frame(alice_ws) == people(alice, bob)
        assert await presence_frame(alice_ws) == people(alice)


async def test_a_user_with_two_tabs_is_listed_once_and_a_second_tab_changes_nothing(alice, bob, shared_graph):
    async with viewer(shared_graph, alice) as (first_tab, _):
        assert await presence_frame(first_tab) == people(alice)
        async with viewer(shared_graph, alice) as (second_tab, _):
            assert await presence_frame(second_tab) == people(alice)
            async with viewer(shared_graph, bob):
                # The first tab's next list is the one with bob: the second tab sent it no repeat of the first.
                assert await presence_frame(first_tab) == people(alice, bob)
        # One tab of alice left, and bob: the list changes only when bob leaves.
        assert await presence_frame(first_tab) == people(alice)


async def test_anonymous_viewers_see_the_list_but_are_not_in_it(alice, make_graph):
    graph = await database_sync_to_async(make_graph)(alice, public=True)
    async with viewer(graph) as (anonymous, _):
        assert await presence_frame(anonymous) == []
        async with viewer(graph, alice):
            assert await presence_frame(anonymous) == people(alice)


async def test_viewers_on_another_worker_are_listed(alice, bob, shared_graph):
    other = presence.PresenceTracker(settings.REDIS_URL, process_id="other-worker", coalesce=0.01)
    socket = FakeSocket()
    try:
        async with viewer(shared_graph, alice) as (alice_ws, _):
            assert await presence_frame(alice_ws) == people(alice)
            other.join(shared_graph.pk, socket, bob)
            assert await presence_frame(alice_ws) == people(alice, bob)
            # The other worker's sockets get the same list.
            await wait_for(lambda: socket.frames and json.loads(socket.frames[-1])["viewers"] == people(alice, bob))
            other.leave(shared_graph.pk, socket)
            assert await presence_frame(alice_ws) == people(alice)
    finally:
        await other.close()


async def wait_for(condition, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_dead_workers_viewers_vanish_after_the_ttl(alice, bob, shared_graph, redis_client):
    # A worker that died: its entry expires in 2 s of Redis time and nobody refreshes it.
    seconds, micros = await redis_client.time()
    await redis_client.hset(presence.hash_key(shared_graph.pk, "dead-worker"), str(bob.pk), "bob")
    await redis_client.zadd(presence.workers_key(shared_graph.pk), {"dead-worker": seconds + micros / 1e6 + 2})
    with override_settings(PRESENCE_TTL_SECONDS=2, PRESENCE_REFRESH_SECONDS=1):
        async with viewer(shared_graph, alice) as (alice_ws, _):
            assert await presence_frame(alice_ws) == people(alice, bob)
            # Gone after the TTL plus at most one refresh of a live worker.
            assert await presence_frame(alice_ws, people(alice), timeout=2 + 1 + 2) == people(alice)
    assert not await redis_client.zscore(presence.workers_key(shared_graph.pk), "dead-worker")


async def test_a_worker_removes_its_entries_when_its_last_viewer_leaves(alice, shared_graph, redis_client):
    tracker = None
    async with viewer(shared_graph, alice) as (alice_ws, _):
        assert await presence_frame(alice_ws) == people(alice)
        tracker = presence.tracker()
        key = presence.hash_key(shared_graph.pk, tracker.process_id)
        assert await redis_client.hgetall(key) == {str(alice.pk): "alice"}
        ttl = await redis_client.ttl(key)
        assert 0 < ttl <= settings.PRESENCE_TTL_SECONDS
    # The tracker writes, then stops: nothing of this worker is left in Redis, and no task is left running.
    await wait_for(lambda: not tracker.running)
    assert not await redis_client.exists(key, presence.workers_key(shared_graph.pk))


async def test_a_worker_that_was_pruned_during_a_stall_comes_back(alice, bob, shared_graph, redis_client):
    with override_settings(PRESENCE_REFRESH_SECONDS=1):
        async with viewer(shared_graph, alice) as (alice_ws, _):
            assert await presence_frame(alice_ws) == people(alice)
            # Another worker pruned us (our loop stalled past the TTL, or Redis restarted and lost everything).
            await redis_client.flushdb()
            other = presence.PresenceTracker(settings.REDIS_URL, process_id="other-worker", coalesce=0.01)
            other.join(shared_graph.pk, FakeSocket(), bob)
            try:
                # Our next refresh writes alice back and tells everyone (lists go out at most once a second, so
                # the moment when only bob was listed may be coalesced away).
                bound = 1 + settings.PRESENCE_MIN_INTERVAL_SECONDS + 2
                assert await presence_frame(alice_ws, people(alice, bob), timeout=bound) == people(alice, bob)
                workers = await redis_client.zrange(presence.workers_key(shared_graph.pk), 0, -1)
                assert len(workers) == 2, workers
            finally:
                await other.close()


async def test_presence_recovers_when_its_redis_restarts_empty(alice, bob, shared_graph, caplog):
    """A Redis restart loses every presence key; the workers' next refresh writes them back and tells the others."""
    port = servers.free_port()

    def start_redis() -> subprocess.Popen:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        servers.wait_for_port(port)
        return process

    def last_viewers(socket: FakeSocket):
        return json.loads(socket.frames[-1])["viewers"] if socket.frames else None

    redis_process = start_redis()
    worker = presence.PresenceTracker(f"redis://127.0.0.1:{port}/0", process_id="w1", refresh=0.5, coalesce=0.01)
    alice_socket, bob_socket = FakeSocket(), FakeSocket()
    try:
        worker.join(shared_graph.pk, alice_socket, alice)
        await wait_for(lambda: last_viewers(alice_socket) == people(alice))
        redis_process.terminate()
        redis_process.wait(timeout=10)
        worker.join(shared_graph.pk, bob_socket, bob)  # while Redis is down
        await wait_for(lambda: "Presence update failed" in caplog.text)
        redis_process = start_redis()
        await wait_for(lambda: last_viewers(alice_socket) == last_viewers(bob_socket) == people(alice, bob))
    finally:
        await worker.close()
        redis_process.terminate()
        redis_process.wait(timeout=10)


async def test_a_handler_that_raises_closes_4011_and_leaves_no_ghost(alice, bob, shared_graph, monkeypatch):
    """One rule for every consumer: whatever a handler raises, a documented close code and nothing left behind."""
    from live.consumers import GraphConsumer

    async def broken(self, content):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(GraphConsumer, "client_ping", broken)
    async with viewer(shared_graph, alice) as (alice_ws, _), viewer(shared_graph, bob) as (bob_ws, _):
        assert await presence_frame(alice_ws, people(alice, bob)) == people(alice, bob)
        await bob_ws.send({"type": "ping"})
        assert (await bob_ws.closed())[0] == 4011
        assert await presence_frame(alice_ws, people(alice)) == people(alice)


async def test_a_presence_frame_names_a_bounded_number_of_viewers_and_counts_them_all(
    alice, bob, carol, shared_graph, make_graph
):
    graph = await database_sync_to_async(make_graph)(alice, public=True)
    with override_settings(PRESENCE_MAX_LISTED=2):
        async with viewer(graph, alice) as (alice_ws, _), viewer(graph, bob), viewer(graph, carol):
            frames = await alice_ws.until(
                lambda frame: frame["type"] == "presence" and frame["count"] == 3, presence=True
            )
            assert frames[-1] == {"type": "presence", "count": 3, "viewers": people(alice, bob)}
