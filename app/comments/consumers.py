"""The WebSockets of docs/protocol.md: a graph's live discussion, and a user's own notifications.

Cost per relayed event is one `send` of text that was encoded once by the writer (comments/broadcast.py): no
database query, no JSON encoding per viewer. The database is touched on connect, on resume, to fill a gap, on
`comment.create` and when access may have changed, each in a small `database_sync_to_async` helper.

Ordering: Channels handles one message of a consumer at a time (client frames and channel-layer messages alike),
so while a handler awaits the database, live events wait in the consumer's queue. That is what makes resume and
gap filling exact: every event sent moves `last_sent` on by one, and a queued live event at or below it is dropped.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from comments import broadcast, presence, services
from comments.models import Event
from config.api import validation_error_detail
from graphs.models import Graph

# Close codes of docs/protocol.md.
NOT_AUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
MESSAGE_TOO_BIG = 1009
POLICY_VIOLATION = 1008

# Stored events are sent in batches of this many (the REST event log's page size too).
RESUME_BATCH = 500
CLIENT_ID_MAX_LENGTH = 64
# The largest id PostgreSQL's bigint holds; a longer number in the URL is no graph.
MAX_ID = 2**63 - 1


def encode(message: dict) -> str:
    return broadcast.encode(message)


class RateLimiter:
    """A token bucket per socket: `rate` frames a second, bursts of `burst`.

    A refused frame is a strike. The first strike gets a `rate_limited` error, and a client that goes on past another
    burst's worth of strikes is closed. Strikes are forgiven once the bucket is full again (the client paused).
    """

    OK, LIMITED, DROP, CLOSE = "ok", "limited", "drop", "close"

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.updated = clock()
        self.strikes = 0

    def check(self) -> str:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= self.burst:
            self.strikes = 0
        if self.tokens >= 1:
            self.tokens -= 1
            return self.OK
        self.strikes += 1
        if self.strikes > self.burst:
            return self.CLOSE
        return self.LIMITED if self.strikes == 1 else self.DROP


class ProtocolConsumer(AsyncWebsocketConsumer):
    """The frame rules both sockets share: size, binary, JSON, rate limit, errors, ping.

    Client messages `{"type": "a.b", ...}` go to `client_<a_b>(content)`; channel-layer messages keep Channels'
    naming (`graph.event` -> `graph_event`).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limiter = RateLimiter(settings.WEBSOCKET_RATE_PER_SECOND, settings.WEBSOCKET_RATE_BURST)
        self.closing = False
        self.user = None

    async def websocket_connect(self, message) -> None:
        user = self.scope.get("user")
        # Unwrap Channels' lazy user once, so that the ORM gets a real model instance in every helper.
        self.user = getattr(user, "_wrapped", user)
        await super().websocket_connect(message)

    async def dispatch(self, message) -> None:
        # Channels' dispatch closes stale database connections before every message, a thread hop each time:
        # for a relayed event that would be one executor round trip per viewer. Every database access here goes
        # through database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        verdict = self.limiter.check()
        if verdict == RateLimiter.CLOSE:
            await self.refuse(POLICY_VIOLATION)
            return
        if verdict == RateLimiter.LIMITED:
            await self.send_error(
                "rate_limited",
                f"More than {settings.WEBSOCKET_RATE_PER_SECOND} messages a second: slow down or be disconnected.",
            )
        if verdict != RateLimiter.OK:
            return
        if text_data is None:
            await self.send_error("binary_frame", "Send JSON text frames; binary frames are not understood.")
            return
        if self.too_big(text_data):
            await self.refuse(MESSAGE_TOO_BIG)
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("invalid_frame", 'Send a JSON object with a "type".')
            return
        kind = content["type"]
        handler = getattr(self, "client_" + kind.replace(".", "_"), None) if kind.replace(".", "").isalnum() else None
        if handler is None:
            await self.send_error("unknown_type", f"Unknown message type {kind[:64]!r}.")
            return
        await handler(content)

    @staticmethod
    def too_big(text: str) -> bool:
        limit = settings.WEBSOCKET_MAX_FRAME_BYTES
        # A character is 1 to 4 bytes of UTF-8: encode only when the length alone cannot decide.
        return len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit)

    async def client_ping(self, content: dict) -> None:
        await self.send_frame('{"type":"pong"}')

    async def send_frame(self, text: str) -> None:
        """Send ready-encoded text, unless this socket is being closed."""
        if not self.closing:
            await self.send(text_data=text)

    async def send_error(self, code: str, message: str, **extra) -> None:
        await self.send_frame(encode({"type": "error", "code": code, "message": message, **extra}))

    async def refuse(self, code: int) -> None:
        """Close with a protocol code and stop hearing the channel layer at once."""
        if self.closing:
            return
        await self.leave()
        self.closing = True
        await self.close(code)

    async def leave(self) -> None:
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups = []

    async def disconnect(self, code) -> None:
        self.closing = True


@database_sync_to_async
def refusal_code(graph_id: int, user) -> int | None:
    """None if the user may view the graph, else the close code saying why not."""
    graph = Graph.objects.filter(pk=graph_id).first() if graph_id <= MAX_ID else None
    if graph is None:
        return NOT_FOUND
    if graph.can_view(user):
        return None
    return FORBIDDEN if user.is_authenticated else NOT_AUTHENTICATED


@database_sync_to_async
def last_seq(graph_id: int) -> int | None:
    return Graph.objects.filter(pk=graph_id).values_list("last_seq", flat=True).first()


@database_sync_to_async
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


@database_sync_to_async
def create_comment(graph_id: int, user, content: dict) -> Event:
    graph = Graph.objects.filter(pk=graph_id).first()
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


class GraphConsumer(ProtocolConsumer):
    """/ws/graphs/<id>/: every event of one graph in seq order, its viewers, and posting comments."""

    graph_id: int
    # Events this socket has sent are exactly those with floor < seq <= last_sent.
    floor = 0
    last_sent = 0

    async def connect(self) -> None:
        # Accept first: a close code can only be given on an open socket (a refused handshake is a bare 403).
        await self.accept()
        if self.scope.get("auth_failed"):
            await self.refuse(NOT_AUTHENTICATED)
            return
        self.graph_id = self.scope["url_route"]["kwargs"]["graph_id"]
        code = await refusal_code(self.graph_id, self.user)
        if code is not None:
            await self.refuse(code)
            return
        group = broadcast.graph_group(self.graph_id)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)
        # Read last_seq only now that we hear the group: an event committed after this read is broadcast after it,
        # so it reaches us live; one at or below it is in what the client may ask for with `resume`.
        seq = await last_seq(self.graph_id)
        if seq is None:
            await self.refuse(NOT_FOUND)
            return
        self.floor = self.last_sent = seq
        user = {"id": self.user.pk, "username": self.user.username} if self.user.is_authenticated else None
        await self.send_frame(encode({"type": "hello", "user": user, "last_seq": seq}))
        self.presence = presence.tracker()
        self.presence.join(self.graph_id, self, self.user)

    async def leave(self) -> None:
        await super().leave()
        if getattr(self, "presence", None) is not None:
            self.presence.leave(self.graph_id, self)
            self.presence = None

    async def disconnect(self, code) -> None:
        await self.leave()
        await super().disconnect(code)

    # --- channel-layer messages (comments/broadcast.py) ---

    async def graph_event(self, message: dict) -> None:
        """Relay one event, in order and once: fetch any missed ones from the database first."""
        if self.closing:
            return
        seq = message["seq"]
        if seq <= self.last_sent:
            return  # already sent: by a resume, a gap fill, or this is a late copy
        if seq > self.last_sent + 1:
            # Events below `seq` are committed (numbers are taken under the graph's row lock), but their broadcasts
            # have not come yet (another worker was slower) or got lost: take them from the database.
            await self.send_stored(self.last_sent, seq - 1)
        await self.send_frame(message["text"])
        self.last_sent = seq

    async def graph_access(self, message: dict) -> None:
        """The graph was made private, unshared or deleted: close if this viewer may no longer see it."""
        if self.closing:
            return
        code = await refusal_code(self.graph_id, self.user)
        if code is not None:
            await self.refuse(code)

    async def send_stored(self, after: int, upto: int | None) -> int:
        """Send the stored events with after < seq <= upto (no upper bound if None); return the last seq sent."""
        while not self.closing:
            frames = await stored_frames(self.graph_id, after, upto, RESUME_BATCH)
            for seq, text in frames:
                await self.send_frame(text)
                after = seq
                if seq > self.last_sent:
                    self.last_sent = seq
            if len(frames) < RESUME_BATCH:
                break
        return after

    # --- client messages ---

    async def client_resume(self, content: dict) -> None:
        """Send every stored event after `after_seq` that this socket has not sent, then go on live."""
        after = content.get("after_seq")
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            await self.send_error(
                "invalid",
                "after_seq: give the seq of the last event you have (0 for all).",
                errors={"after_seq": ["Give the seq of the last event you have (0 for all)."]},
            )
            return
        if after > self.last_sent:
            latest = await last_seq(self.graph_id)
            if latest is None or after > latest:
                message = f"There is no event {after} yet; the last is {latest or 0}."
                await self.send_error("invalid", f"after_seq: {message}", errors={"after_seq": [message]})
                return
            # The client has these already (from another connection): do not send them again.
            self.last_sent = after
        if after < self.floor:
            # Older than this connection: the events the client missed while it was away. (A live event sent
            # before this resume was read stays sent; clients send `resume` as their first frame to avoid that.)
            floor, self.floor = self.floor, after
            await self.send_stored(after, floor)
        # Then whatever is stored beyond what was sent, in case a broadcast never came.
        await self.send_stored(self.last_sent, None)

    async def client_comment_create(self, content: dict) -> None:
        client_id = content.get("client_id")
        if not isinstance(client_id, str) or not client_id or len(client_id) > CLIENT_ID_MAX_LENGTH:
            problem = f"Give a client_id: a string of 1 to {CLIENT_ID_MAX_LENGTH} characters."
            await self.send_error("invalid", f"client_id: {problem}", errors={"client_id": [problem]})
            return
        try:
            event = await create_comment(self.graph_id, self.user, content)
        except ValidationError as error:
            message, errors = validation_error_detail(error)
            extra = {"errors": errors} if errors else {}
            await self.send_error("invalid", message, client_id=client_id, **extra)
            return
        except PermissionDenied as error:
            await self.send_error("forbidden", str(error) or "Not allowed.", client_id=client_id)
            return
        except Graph.DoesNotExist:
            await self.send_error("not_found", "The graph no longer exists.", client_id=client_id)
            return
        # The event itself reaches every viewer, this one included, through the group like any other: the ack only
        # tells the sender which seq its comment got.
        await self.send_frame(
            encode({"type": "ack", "client_id": client_id, "seq": event.seq, "comment": event.payload})
        )


class NotificationConsumer(ProtocolConsumer):
    """/ws/notifications/: the signed-in user's new mentions, live."""

    async def connect(self) -> None:
        if self.scope.get("auth_failed") or not self.user.is_authenticated:
            await self.accept()
            await self.refuse(NOT_AUTHENTICATED)
            return
        group = broadcast.user_group(self.user.pk)
        # Join before accepting, so that a client that sees the socket open hears every later mention.
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)
        await self.accept()

    async def user_notification(self, message: dict) -> None:
        await self.send_frame(message["text"])


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other path under the WebSocket router: 4404, like a graph that does not exist."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(NOT_FOUND)
