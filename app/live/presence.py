"""Who is viewing a graph right now, across every Daphne worker, without ghosts.

The work is done once per worker process, not once per socket:

- Each worker keeps its own viewers in memory (graph -> open sockets -> user) in one `PresenceTracker`.
- It writes them to Redis as one hash per graph and worker, `presence:<graph>:<worker>` (user id -> username),
  and lists itself in the graph's sorted set `presence:<graph>:workers`, scored by the Redis time at which its
  entry expires. Every PRESENCE_REFRESH_SECONDS it rewrites both (score = now + PRESENCE_TTL_SECONDS); a rewrite
  that finds its entries gone or different (Redis restarted, or others pruned it during a stall) announces them.
- A worker that dies stops refreshing: its score falls behind Redis' clock and the next refresh of any worker
  still showing that graph prunes it and tells the others. Its viewers are gone at most TTL + REFRESH seconds
  after its last refresh (the hash also expires by itself, so a graph nobody views leaves nothing behind).
- When a worker's set of users of a graph changes it publishes `presence.changed` on the channel-layer group
  `presence.<graph>`. Only the trackers are members of that group (one channel per worker), so a change costs one
  message per worker, not one per socket. Each worker then reads the graph's viewers once (one Lua script: prune
  expired workers, union of the live hashes), encodes the frame once and sends the same text to its sockets of
  that graph - only if the list changed (a second tab of the same user changes nothing), or to a socket that has
  not had a list yet.
- Bursts are coalesced: joins and leaves only mark a graph; the tracker's one task writes and reads after a short
  pause (PRESENCE_COALESCE_SECONDS), so a thousand sockets connecting at once cost a few Redis calls, not
  thousands.

The two scripts are live/lua/presence_write.lua and live/lua/presence_viewers.lua. Time is Redis' clock (`TIME`
inside the scripts), so workers on hosts with skewed clocks agree on expiry. The viewers script builds the hash names
from the sorted set's members, which a single Redis (our deployment) allows; Redis Cluster would need the keys of one
graph in one hash slot.

Anonymous viewers of a public graph get the frames but are not listed: presence lists people.

Bounded for a lecture hall: a frame carries the number of people viewing and the first PRESENCE_MAX_LISTED of them
by name (never 5,000 names), and a graph's list is sent to its sockets at most once per PRESENCE_MIN_INTERVAL
seconds however many join or leave, so joins cost O(1) frames per viewer per second. A socket that has had no list
yet gets the current one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings
from redis import asyncio as aioredis

logger = logging.getLogger(__name__)

# How many Lua arguments one Redis call takes at a time (Lua's unpack() is limited to a few thousand values).
_CHUNK = 1000

# The Lua scripts run inside Redis, beside this module in lua/: each file says what its KEYS and ARGV are and what it
# returns. Read once, at import.
_LUA = Path(__file__).parent / "lua"
# This worker's hash of a graph written, its entry in the graph's workers refreshed, expired workers pruned.
WRITE_SCRIPT = (_LUA / "presence_write.lua").read_text(encoding="utf-8")
# Expired workers pruned, and every live worker's viewers of the graph.
VIEWERS_SCRIPT = (_LUA / "presence_viewers.lua").read_text(encoding="utf-8")


def workers_key(graph_id: int) -> str:
    return f"presence:{graph_id}:workers"


def hash_prefix(graph_id: int) -> str:
    return f"presence:{graph_id}:"


def hash_key(graph_id: int, process_id: str) -> str:
    return f"{hash_prefix(graph_id)}{process_id}"


def announce_group(graph_id: int) -> str:
    """The channel-layer group of the trackers (not the sockets) of workers showing this graph."""
    return f"presence.{graph_id}"


class Viewer(Protocol):
    """What the tracker needs of a socket: a way to send it a ready-encoded frame."""

    async def send_frame(self, text: str) -> None: ...


@dataclass(eq=False)
class LocalGraph:
    """This worker's sockets on one graph."""

    # socket -> (user id, username), or None for an anonymous viewer
    sockets: dict[Viewer, tuple[str, str] | None] = field(default_factory=dict)
    # (user id, username) -> number of this worker's sockets of that user on the graph (tabs)
    users: Counter = field(default_factory=Counter)
    # What this worker last wrote to Redis for the graph (user id -> username).
    written: dict[str, str] = field(default_factory=dict)
    # Sockets that have not received a presence frame yet.
    waiting: set[Viewer] = field(default_factory=set)
    last_text: str | None = None
    # When the list last went to every socket of the graph (event-loop time).
    last_sent_at: float = float("-inf")

    def fields(self) -> dict[str, str]:
        return dict(self.users.keys())  # {user id: username}


class PresenceTracker:
    """The viewers of every graph shown by this worker, kept in Redis for the other workers. One per event loop."""

    def __init__(
        self,
        redis_url: str,
        *,
        process_id: str | None = None,
        ttl: float = 20,
        refresh: float = 5,
        coalesce: float = 0.1,
        max_listed: int = 50,
        min_interval: float = 1.0,
    ) -> None:
        self.redis_url = redis_url
        self.process_id = process_id or uuid.uuid4().hex
        self.ttl = max(1, int(ttl))
        self.refresh = refresh
        self.coalesce = coalesce
        self.max_listed = max_listed
        self.min_interval = min_interval
        # Graphs whose changed list waits for its PRESENCE_MIN_INTERVAL, and when the earliest may go.
        self.deferred: set[int] = set()
        self._deferred_due = float("inf")
        self.graphs: dict[int, LocalGraph] = {}
        self.changed: set[int] = set()  # graphs whose local users changed: write them and announce
        self.stale: set[int] = set()  # graphs whose viewers must be read again and sent
        self.subscribed: set[int] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None
        self._redis = None
        self._layer = None
        self._channel: str | None = None
        self._refresh_due = 0.0

    @property
    def running(self) -> bool:
        """Whether the tracker's task runs (it stops when this worker shows no graph)."""
        return self._task is not None

    # --- called by the consumers (synchronous: no socket ever waits for Redis to join or leave) ---

    def join(self, graph_id: int, socket: Viewer, user) -> None:
        local = self.graphs.setdefault(graph_id, LocalGraph())
        key = (str(user.pk), user.username) if user.is_authenticated else None
        local.sockets[socket] = key
        local.waiting.add(socket)
        if key is not None:
            local.users[key] += 1
            if local.users[key] == 1:
                self.changed.add(graph_id)
        self.stale.add(graph_id)
        self._kick()

    def leave(self, graph_id: int, socket: Viewer) -> None:
        local = self.graphs.get(graph_id)
        if local is None or socket not in local.sockets:
            return
        key = local.sockets.pop(socket)
        local.waiting.discard(socket)
        if key is not None:
            local.users[key] -= 1
            if local.users[key] <= 0:
                del local.users[key]
                self.changed.add(graph_id)
        self._kick()

    # --- the tracker's own task ---

    def _kick(self) -> None:
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"presence {self.process_id}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            try:
                await self._start()
            except Exception:
                logger.warning("Presence cannot reach Redis; retrying", exc_info=True)
                await asyncio.sleep(1)
                return
            self._refresh_due = loop.time() + self.refresh
            while True:
                due = min(self._refresh_due, self._deferred_due)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, due - loop.time()))
                # Let a burst of joins and leaves settle into one write and one frame.
                await asyncio.sleep(self.coalesce)
                self._wake.clear()
                try:
                    if loop.time() >= self._refresh_due:
                        self._refresh_due = loop.time() + self.refresh
                        await self.sweep()
                    await self._flush()
                except Exception:
                    # Redis unreachable: keep the sockets, and soon rewrite everything (the sweep) and resend.
                    logger.warning("Presence update failed; retrying", exc_info=True)
                    self._refresh_due = loop.time() + min(1.0, self.refresh)
                    self.stale.update(self.graphs)
                    continue
                if not self.graphs and not self.changed:
                    return
        finally:
            await self._stop()
            self._task = None
            if self.graphs or self.changed:
                # A socket joined while we were stopping.
                self._kick()

    async def _start(self) -> None:
        self._redis = aioredis.from_url(self.redis_url)
        self._write = self._redis.register_script(WRITE_SCRIPT)
        self._viewers = self._redis.register_script(VIEWERS_SCRIPT)
        self._layer = get_channel_layer()
        self._channel = await self._layer.new_channel("presence.")
        self._reader = asyncio.get_running_loop().create_task(self._read(self._channel))

    async def _stop(self) -> None:
        """Leave nothing running once no socket of this worker views any graph (and in tests, between loops)."""
        for graph_id in list(self.subscribed):
            try:
                await self._layer.group_discard(announce_group(graph_id), self._channel)
            except Exception:
                logger.warning("Could not leave %s", announce_group(graph_id), exc_info=True)
        self.subscribed.clear()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _read(self, channel: str) -> None:
        while True:
            message = await self._layer.receive(channel)
            if message.get("type") == "presence.changed" and message.get("process") != self.process_id:
                self.stale.add(message["graph"])
                self._wake.set()

    async def _announce(self, graph_id: int) -> None:
        await self._layer.group_send(
            announce_group(graph_id), {"type": "presence.changed", "graph": graph_id, "process": self.process_id}
        )

    async def _write_graph(self, graph_id: int, current: dict[str, str], *, replace: bool) -> tuple[int, int, int]:
        local = self.graphs.get(graph_id)
        written = {} if replace or local is None else local.written
        to_set = {user_id: name for user_id, name in current.items() if written.get(user_id) != name}
        to_delete = [] if replace else [user_id for user_id in written if user_id not in current]
        args: list[str | int] = [self.process_id, self.ttl, "replace" if replace else "update", len(to_set), _CHUNK]
        for user_id, name in to_set.items():
            args += [user_id, name]
        args += to_delete
        result = await self._write(keys=[hash_key(graph_id, self.process_id), workers_key(graph_id)], args=args)
        if local is not None:
            local.written = dict(current)
        return tuple(result)

    async def _flush(self) -> None:
        """Write what changed here, follow the graphs shown here, and send fresh lists where they changed."""
        for graph_id in list(self.changed):
            # Taken off first: a join while we write marks the graph again for the next round.
            self.changed.discard(graph_id)
            local = self.graphs.get(graph_id)
            current = local.fields() if local is not None else {}
            if local is not None and current == local.written:
                continue
            try:
                await self._write_graph(graph_id, current, replace=False)
                await self._announce(graph_id)
            except BaseException:
                self.changed.add(graph_id)
                raise
            self.stale.add(graph_id)
        for graph_id, local in list(self.graphs.items()):
            if not local.sockets and graph_id not in self.changed:
                del self.graphs[graph_id]
        for graph_id in set(self.graphs) - self.subscribed:
            await self._layer.group_add(announce_group(graph_id), self._channel)
            self.subscribed.add(graph_id)
        for graph_id in self.subscribed - set(self.graphs):
            await self._layer.group_discard(announce_group(graph_id), self._channel)
            self.subscribed.discard(graph_id)
        now = asyncio.get_running_loop().time()
        if now >= self._deferred_due:
            self.stale.update(self.deferred)
            self.deferred.clear()
            self._deferred_due = float("inf")
        for graph_id in list(self.stale):
            self.stale.discard(graph_id)
            if graph_id in self.graphs:
                await self._send_viewers(graph_id)

    async def sweep(self) -> None:
        """Refresh this worker's entries, prune workers that stopped refreshing, and announce what changed."""
        for graph_id, local in list(self.graphs.items()):
            if graph_id in self.changed:
                continue  # _flush writes it next and announces the change; a rewrite here would hide it
            added, pruned, changed = await self._write_graph(graph_id, local.fields(), replace=True)
            if pruned or added or changed:
                # Someone's viewers vanished, or ours came back (pruned during a stall, or Redis restarted).
                await self._announce(graph_id)
                self.stale.add(graph_id)

    async def viewers(self, graph_id: int) -> list[dict]:
        """Everyone viewing the graph on a live worker, once each, sorted by name."""
        pruned, *flat = await self._viewers(keys=[workers_key(graph_id)], args=[hash_prefix(graph_id)])
        if pruned:
            await self._announce(graph_id)
        people = {int(flat[i]): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        return [
            {"id": user_id, "username": name} for user_id, name in sorted(people.items(), key=lambda p: (p[1], p[0]))
        ]

    async def _send_viewers(self, graph_id: int) -> None:
        viewers = await self.viewers(graph_id)
        local = self.graphs.get(graph_id)
        if local is None:
            return
        frame = {"type": "presence", "count": len(viewers), "viewers": viewers[: self.max_listed]}
        text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
        now = asyncio.get_running_loop().time()
        if text == local.last_text:
            targets = list(local.waiting)
        elif now - local.last_sent_at < self.min_interval:
            # Changed again too soon: the new sockets get it now, the others with the next round.
            targets = list(local.waiting)
            self.deferred.add(graph_id)
            self._deferred_due = min(self._deferred_due, local.last_sent_at + self.min_interval)
        else:
            targets = list(local.sockets)
            local.last_text = text
            local.last_sent_at = now
        local.waiting.difference_update(targets)
        for socket in targets:
            try:
                await socket.send_frame(text)
            except Exception:
                logger.debug("Could not send presence to %r", socket, exc_info=True)

    async def close(self) -> None:
        """Forget every local viewer and stop (for tests and orderly shutdown)."""
        for local in self.graphs.values():
            local.sockets.clear()
            local.users.clear()
        self.changed.update(self.graphs)
        if self._task is not None:
            self._kick()
            await asyncio.gather(self._task, return_exceptions=True)


_trackers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PresenceTracker] = weakref.WeakKeyDictionary()


def tracker() -> PresenceTracker:
    """The tracker of the running event loop (Daphne runs one loop per process)."""
    loop = asyncio.get_running_loop()
    found = _trackers.get(loop)
    if found is None:
        found = _trackers[loop] = PresenceTracker(
            settings.REDIS_URL,
            ttl=settings.PRESENCE_TTL_SECONDS,
            refresh=settings.PRESENCE_REFRESH_SECONDS,
            coalesce=settings.PRESENCE_COALESCE_SECONDS,
            max_listed=settings.PRESENCE_MAX_LISTED,
            min_interval=settings.PRESENCE_MIN_INTERVAL_SECONDS,
        )
    return found


async def shutdown() -> None:
    """Stop the running loop's tracker, if it has one, after it has taken its viewers out of Redis."""
    found = _trackers.get(asyncio.get_running_loop())
    if found is not None:
        await found.close()
