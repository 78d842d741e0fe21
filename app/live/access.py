"""Whether the people on this worker's open sockets may still hear what they hear: checked again, in bulk.

A socket is checked when it opens. After that, access can be lost in two ways, each with its own path:

- The graph changes (made private, unshared, deleted, a member removed): the writer announces `graph.access` on the
  graph's group, and each worker checks its viewers of that graph at once (live/fanout.py, `check_graph` here).
- The account changes (deactivated, anonymised, its token deleted): the writer announces `account.revoked` to the
  watchers, one per worker, which close that user's sockets here (4401). Signals in live/signals.py do it for
  every way an account changes (admin, API, shell).

Either announcement is a Redis pub/sub message, and the layer loses messages published while a worker's subscription
is down, without telling anyone. So the watcher also checks every socket of its worker on a timer
(ACCESS_RECHECK_SECONDS): one query per graph shown here (who of these users may still see it), and one for the
tokens in use here. A revoked viewer stops hearing the graph within that bound even when every message was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from live.close_codes import CloseCode
from live.pool import pooled_read
from live.tasks import PerLoop, cancel_all

logger = logging.getLogger(__name__)

# The channel-layer group of the watchers (not the sockets): one member per worker.
ACCOUNTS_GROUP = "accounts"


class Watched(Protocol):
    """What the watcher needs of a socket."""

    user_id: int | None
    token_key: str | None

    async def refuse(self, code: CloseCode) -> None: ...


@pooled_read
def graph_verdicts(graph_id: int, user_ids: Iterable[int]) -> tuple[bool, bool, set[int], set[int]]:
    """(exists, public, the active users among user_ids, those of them who may see the graph): small queries only.

    The graph's elements (up to 2 MB) are never loaded for a check.
    """
    from django.contrib.auth import get_user_model

    from graphs.models import Graph

    graph = Graph.objects.filter(pk=graph_id).only("id", "public", "owner_id").first()
    user_ids = list(user_ids)
    active = set(get_user_model().objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))
    if graph is None:
        return False, False, active, set()
    if graph.public or not active:
        return True, graph.public, active, set(active)
    allowed = set(graph.viewers_queryset().filter(pk__in=active).values_list("pk", flat=True))
    return True, False, active, allowed


def verdict(user_id: int | None, exists: bool, public: bool, active: set[int], allowed: set[int]) -> CloseCode | None:
    """The close code for one viewer of a graph (None: may go on viewing)."""
    if user_id is not None and user_id not in active:
        return CloseCode.NOT_AUTHENTICATED  # the account was deactivated
    if exists and (public or user_id in allowed):
        return None
    # Private and missing graphs look alike, as in REST: 4404 when signed in, 4401 when not.
    return CloseCode.NOT_FOUND if user_id is not None else CloseCode.NOT_AUTHENTICATED


@pooled_read
def live_tokens(keys: Iterable[str]) -> set[str]:
    """The keys among `keys` that still exist and belong to an active user."""
    from rest_framework.authtoken.models import Token

    return set(Token.objects.filter(key__in=list(keys), user__is_active=True).values_list("key", flat=True))


class AccessWatcher:
    """This worker's sockets by graph and by user, checked again on a timer and closed on an account's revocation."""

    def __init__(self, recheck_seconds: float) -> None:
        self.recheck_seconds = recheck_seconds
        self.by_graph: dict[int, set[Watched]] = {}
        self.by_user: dict[int, set[Watched]] = {}
        self.graph_of: dict[Watched, int | None] = {}
        self._task: asyncio.Task | None = None
        self._listening: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None
        self._layer = None
        self._channel: str | None = None

    def sockets(self) -> list[Watched]:
        """Every socket of this worker."""
        return list(self.graph_of)

    def sockets_of(self, user_id: int) -> int:
        """How many sockets this user has open on this worker."""
        return len(self.by_user.get(user_id, ()))

    async def add(self, socket: Watched, graph_id: int | None) -> None:
        """Watch a socket (graph_id None: a socket that follows no graph, such as notifications)."""
        self.graph_of[socket] = graph_id
        if graph_id is not None:
            self.by_graph.setdefault(graph_id, set()).add(socket)
        if socket.user_id is not None:
            self.by_user.setdefault(socket.user_id, set()).add(socket)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="access watcher")
        if self._listening is None:
            self._listening = asyncio.get_running_loop().create_task(self._listen())
        try:
            # Awaited: a revocation published after this socket's check must reach this worker.
            await asyncio.shield(self._listening)
        except Exception:
            self._listening = None  # Redis was unreachable: the next socket tries again
            raise

    def remove(self, socket: Watched) -> None:
        """Stop watching a socket (synchronous, so that it runs even while the consumer is being cancelled)."""
        if socket not in self.graph_of:
            return
        graph_id = self.graph_of.pop(socket)
        for index, key in ((self.by_graph, graph_id), (self.by_user, socket.user_id)):
            members = index.get(key)
            if members is not None:
                members.discard(socket)
                if not members:
                    del index[key]

    async def _listen(self) -> None:
        self._layer = get_channel_layer()
        self._channel = await self._layer.new_channel("accounts.")
        await self._layer.group_add(ACCOUNTS_GROUP, self._channel)
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="access watcher reader")

    async def _read(self) -> None:
        while True:
            message = await self._layer.receive(self._channel)
            if message.get("type") == "account.revoked":
                await self.revoke(message["user"], message.get("token"))

    async def revoke(self, user_id: int, token: str | None = None) -> None:
        """Close this user's sockets on this worker (only those opened with `token`, if given)."""
        from live.auth import forget_tokens_of

        forget_tokens_of(user_id)
        for socket in list(self.by_user.get(user_id, ())):
            if token is None or socket.token_key == token:
                await socket.refuse(CloseCode.NOT_AUTHENTICATED)

    async def _run(self) -> None:
        while True:
            # Jittered, so that the workers of a host do not query the database at the same moment.
            await asyncio.sleep(self.recheck_seconds * random.uniform(0.75, 1.25))  # noqa: S311 - not for security
            try:
                await self.check_all()
            except Exception:
                logger.warning("Access re-check failed; trying again next round", exc_info=True)

    async def check_all(self) -> None:
        """Close every socket here whose user may no longer see its graph, or whose account or token is gone."""
        # Only the sockets open before the query: one that opens while it runs was checked at its handshake, and its
        # token is not in what the query was asked about.
        with_tokens = [socket for socket in self.graph_of if socket.token_key]
        alive = await live_tokens({socket.token_key for socket in with_tokens}) if with_tokens else set()
        for socket in with_tokens:
            if socket.token_key not in alive:
                await socket.refuse(CloseCode.NOT_AUTHENTICATED)
        for graph_id in list(self.by_graph):
            await self.check_graph(graph_id)

    async def check_graph(self, graph_id: int) -> None:
        """Close this worker's sockets of the graph whose users may no longer see it, in one round of queries."""
        sockets = list(self.by_graph.get(graph_id, ()))
        if not sockets:
            return
        user_ids = {socket.user_id for socket in sockets if socket.user_id is not None}
        exists, public, active, allowed = await graph_verdicts(graph_id, user_ids)
        for socket in sockets:
            code = verdict(socket.user_id, exists, public, active, allowed)
            if code is not None:
                await socket.refuse(code)

    async def close(self) -> None:
        """Stop the watcher's tasks (tests, between event loops)."""
        await cancel_all((self._task, self._reader))
        self._task = self._reader = self._listening = None
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._layer.group_discard(ACCOUNTS_GROUP, self._channel)
            self._channel = None


_watchers = PerLoop(lambda: AccessWatcher(settings.ACCESS_RECHECK_SECONDS))


def open_sockets() -> int:
    """Sockets watched over every loop (for the metrics, from the metrics server's thread)."""
    return sum(len(found.graph_of) for found in _watchers.instances())


def watcher() -> AccessWatcher:
    """The watcher of the running event loop (Daphne runs one loop per process)."""
    return _watchers.get()


async def shutdown() -> None:
    found = _watchers.current()
    if found is not None:
        await found.close()
