"""The consumers' database queries, each a small `database_sync_to_async` helper (live/consumers/).

The database is touched on connect and on resume (`admission`), to send stored events (a resume, a gap to fill:
`stored_frames`) and on `comment.create` (`create_comment`); the access re-checks have theirs in live/access.py.
"""

from __future__ import annotations

import asyncio
import weakref

from channels.db import database_sync_to_async

from comments import services
from comments.broadcast import encode
from comments.models import Event
from config import throttling
from graphs.models import Graph
from live import access
from live.close_codes import CloseCode
from live.pool import pooled_read

# The largest id PostgreSQL's bigint holds; a longer number in the URL is no graph.
MAX_ID = 2**63 - 1


# Reads run in the default thread pool (Daphne's: ASGI_THREADS threads), not on the one thread that
# database_sync_to_async uses by default: a reconnecting audience's handshakes and resumes need not queue behind each
# other. Writes (comment.create) stay on that thread.
@pooled_read
def admission(graph_id: int, user) -> tuple[CloseCode | None, int, str]:
    """(None if the user may view the graph, else the close code saying why not; the graph's last seq).

    Private and missing graphs get the same code, as in REST. Only the columns the check needs are read: a graph's
    elements can be 2 MB.
    """
    graph = (
        Graph.objects.filter(pk=graph_id).only("id", "public", "owner_id", "last_seq", "epoch").first()
        if graph_id <= MAX_ID
        else None
    )
    allowed = graph is not None and graph.can_view(user)
    if graph is not None and user.is_authenticated and not user.is_active:
        allowed = False
    code = access.verdict(
        user.pk if user.is_authenticated else None,
        exists=graph is not None,
        public=graph is not None and graph.public,
        active={user.pk} if user.is_authenticated and user.is_active else set(),
        allowed={user.pk} if allowed and user.is_authenticated else set(),
    )
    return code, graph.last_seq if graph is not None else 0, graph.epoch if graph is not None else ""


@pooled_read
def _stored_frames(graph_id: int, after: int, upto: int | None, limit: int) -> list[tuple[int, str]]:
    events = Event.objects.filter(graph_id=graph_id, seq__gt=after).order_by("seq")
    if upto is not None:
        events = events.filter(seq__lte=upto)
    return [(event.seq, encode(event.as_message())) for event in events[:limit]]


# Per event loop (one per Daphne process): the fetches of stored events now running, by what they fetch.
_fetches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, asyncio.Future]] = (
    weakref.WeakKeyDictionary()
)


async def stored_frames(graph_id: int, after: int, upto: int | None, limit: int) -> list[tuple[int, str]]:
    """Stored events of the graph with after < seq <= upto, oldest first, as the frames clients receive.

    Sockets of one worker asking for the same events at the same time share one query: when two broadcasts cross
    (a gap), every viewer of the graph on this worker asks for the same missing range at once, and after a worker
    restart its clients reconnect and resume from the same last seq.
    """
    running = _fetches.setdefault(asyncio.get_running_loop(), {})
    key = (graph_id, after, upto, limit)
    future = running.get(key)
    if future is None:
        future = running[key] = asyncio.ensure_future(_stored_frames(graph_id, after, upto, limit))
        future.add_done_callback(lambda _: running.pop(key, None))
    # Shielded: a socket that goes away while waiting must not cancel the query for the others.
    return await asyncio.shield(future)


class Throttled(Exception):
    """Over the user's comment rate (the same limit as REST's, settings.THROTTLE_RATES)."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"Too many comments: try again in {wait} s.")
        self.wait = wait


@database_sync_to_async
def create_comment(graph_id: int, user, content: dict) -> Event:
    if user.is_authenticated:
        wait = throttling.hit("comments.user", str(user.pk))
        if wait is not None:
            raise Throttled(wait)
    graph = Graph.objects.filter(pk=graph_id).defer("elements").first()
    if graph is None:
        raise Graph.DoesNotExist("The graph no longer exists.")
    return services.create_comment(
        user=user,
        graph=graph,
        body=content.get("body"),
        parent=content.get("parent"),
        nodes=content.get("nodes"),
        edges=content.get("edges"),
    )
