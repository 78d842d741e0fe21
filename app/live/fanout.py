"""One subscription per graph per worker, and a direct write of each event to the worker's sockets of that graph.

With the pub/sub channel layer, every socket joining a graph's group gets its own copy of each message: the layer's
reader puts the bytes into one unbounded queue per socket, and each socket's task wakes, decodes its copy and sends
it. For a hall of a thousand viewers that is a thousand task switches and decodes for one comment. Here the worker
hears the graph once (one channel of its own in the group `graph.<id>`), decodes each message once, and writes the
frame, encoded once by the writer, straight to every local socket whose stream is in order.

Order and exactly-once stay the consumer's (live/consumers/graph.py, `GraphConsumer.deliver`): a socket that is busy
(connecting, resuming, filling a gap from the database) queues the event and replays its queue in seq order when it
is done; an event it has already sent is dropped.

`graph.access` (a graph made private, unshared, deleted) is checked once for all the worker's viewers of that graph
by the access watcher (live/access.py), in one query.

Redis pub/sub loses what is published while a subscriber reconnects, and says nothing. So every
FANOUT_CATCH_UP_SECONDS the fan-out reads the last seq of every graph it shows (one query) and has each socket that is
behind fetch the missing events from the database: the last comments before a quiet spell arrive within that bound
instead of waiting for the next comment to reveal the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from comments import broadcast
from config import metrics
from live import access
from live.pool import pooled_read
from live.tasks import PerLoop, cancel_all

logger = logging.getLogger(__name__)


class Listener(Protocol):
    last_sent: int

    async def deliver(self, message: dict) -> None: ...

    async def catch_up(self, seq: int) -> None: ...


@pooled_read
def last_seqs(graph_ids: list[int]) -> dict[int, int]:
    from graphs.models import Graph

    return dict(Graph.objects.filter(pk__in=graph_ids).values_list("pk", "last_seq"))


class FanOut:
    """This worker's sockets by graph, fed from one subscription per graph."""

    def __init__(self) -> None:
        self.sockets: dict[int, set[Listener]] = {}
        self._subscribed: dict[int, asyncio.Task] = {}
        self._layer = None
        self._channel: str | None = None
        self._channel_ready: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None
        self._catching_up: asyncio.Task | None = None

    async def join(self, graph_id: int, socket: Listener) -> None:
        """Add a socket; returns once this worker hears the graph (so nothing published later can be missed)."""
        self.sockets.setdefault(graph_id, set()).add(socket)
        await self._ensure_channel()
        subscribing = self._subscribed.get(graph_id)
        if subscribing is None or (subscribing.done() and subscribing.exception() is not None):
            subscribing = self._subscribed[graph_id] = asyncio.ensure_future(
                self._layer.group_add(broadcast.graph_group(graph_id), self._channel)
            )
        await asyncio.shield(subscribing)

    def leave(self, graph_id: int, socket: Listener) -> None:
        """Remove a socket (synchronous: runs even while its consumer is being cancelled)."""
        sockets = self.sockets.get(graph_id)
        if sockets is None:
            return
        sockets.discard(socket)
        if not sockets:
            del self.sockets[graph_id]
            subscribed = self._subscribed.pop(graph_id, None)
            if subscribed is not None:
                # Unsubscribe in the background; a socket joining meanwhile subscribes again.
                with contextlib.suppress(RuntimeError):  # no running loop: the process is going away
                    asyncio.get_running_loop().create_task(self._unsubscribe(graph_id, subscribed))

    async def _unsubscribe(self, graph_id: int, subscribed: asyncio.Task) -> None:
        with contextlib.suppress(Exception):
            await subscribed
        if graph_id in self.sockets:
            return  # someone joined again
        try:
            await self._layer.group_discard(broadcast.graph_group(graph_id), self._channel)
        except Exception:
            logger.warning("Could not leave %s", broadcast.graph_group(graph_id), exc_info=True)

    async def _ensure_channel(self) -> None:
        if self._channel_ready is None or (self._channel_ready.done() and self._channel_ready.exception()):
            self._channel_ready = asyncio.ensure_future(self._open_channel())
        await asyncio.shield(self._channel_ready)

    async def _open_channel(self) -> None:
        self._layer = get_channel_layer()
        self._channel = await self._layer.new_channel("fanout.")
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name="graph fan-out")
        self._catching_up = loop.create_task(self._catch_up_regularly(), name="graph fan-out catch-up")

    async def _catch_up_regularly(self) -> None:
        while True:
            await asyncio.sleep(settings.FANOUT_CATCH_UP_SECONDS)
            try:
                await self.catch_up()
            except Exception:
                logger.warning("Catch-up failed; trying again next round", exc_info=True)

    async def catch_up(self) -> None:
        """Have every socket that is behind its graph's last seq fetch what it missed."""
        if not self.sockets:
            return
        latest = await last_seqs(list(self.sockets))
        for graph_id, sockets in list(self.sockets.items()):
            seq = latest.get(graph_id)
            if seq is None:
                continue  # deleted: its `graph.access` (or the watcher's re-check) closes the sockets
            for socket in list(sockets):
                if socket.last_sent < seq:
                    await socket.catch_up(seq)

    async def _read(self) -> None:
        while True:
            message = await self._layer.receive(self._channel)
            try:
                await self.dispatch(message)
            except Exception:
                logger.exception("Fan-out of %s failed", message.get("type"))

    async def dispatch(self, message: dict) -> None:
        kind = message.get("type")
        graph_id = _graph_of(message)
        if kind == "graph.event" and graph_id is not None:
            sockets = list(self.sockets.get(graph_id, ()))
            metrics.count_delivered(len(sockets))
            for socket in sockets:
                await socket.deliver(message)
            metrics.observe_lag(message)
        elif kind == "graph.access" and graph_id is not None:
            await access.watcher().check_graph(graph_id)

    async def close(self) -> None:
        """Stop reading (tests, between event loops)."""
        await cancel_all((self._reader, self._catching_up))
        self._reader = self._catching_up = self._channel_ready = None
        self._subscribed.clear()
        self.sockets.clear()


def _graph_of(message: dict) -> int | None:
    graph_id = message.get("graph")
    return graph_id if isinstance(graph_id, int) else None


_hubs = PerLoop(FanOut)


def graph_sockets() -> dict[int, int]:
    """Sockets per graph over every loop's fan-out (for the metrics, from the metrics server's thread)."""
    counts: dict[int, int] = {}
    for found in _hubs.instances():
        for graph_id, sockets in list(found.sockets.items()):
            counts[graph_id] = counts.get(graph_id, 0) + len(sockets)
    return counts


def hub() -> FanOut:
    """The fan-out of the running event loop (Daphne runs one loop per process)."""
    return _hubs.get()


async def shutdown() -> None:
    found = _hubs.current()
    if found is not None:
        await found.close()
