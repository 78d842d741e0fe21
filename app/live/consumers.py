"""The WebSockets of docs/protocol.md: a graph's live discussion, and a user's own notifications.

Cost per relayed event is one `send` of text that was encoded once by the writer (comments/broadcast.py), made
straight from the worker's one subscription to the graph (live/fanout.py): no queue, no task switch, no
decoding, no database query and no JSON encoding per viewer. The database is touched on connect, on resume, to fill a gap, on
`comment.create` and when access may have changed, each in a small `database_sync_to_async` helper.

Failures: whatever a handler raises, the socket is closed with 4011 and leaves its groups, presence and watcher
(`ProtocolConsumer.dispatch`); and whatever ends a consumer, even a cancellation that skips `disconnect`, takes it out
of presence (`ProtocolConsumer.__call__`). So a crash can neither reach the client as Daphne's 1011 nor leave a ghost
viewer behind. Close codes are in the 4000-4999 range: Daphne refuses 1008 and 1009 from an application (their list,
and why, is live/close_codes.py).

Ordering: a graph socket's stream is put in order under its `ordering` lock (connect, resume, gap fill); live
events that arrive meanwhile wait in its `pending` list and are replayed in order once the lock is free. That is
what makes resume and gap filling exact: every event sent moves `last_sent` on by one, and a live event at or below
it is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from comments import broadcast, services
from comments.models import Event
from config import inputs, metrics, throttling
from config.api import validation_error_detail
from graphs.models import Graph
from live import access, drain, fanout, presence
from live.close_codes import CloseCode
from live.pool import pooled_read

logger = logging.getLogger(__name__)

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
    naming (`user.notification` -> `user_notification`).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limiter = RateLimiter(settings.WEBSOCKET_RATE_PER_SECOND, settings.WEBSOCKET_RATE_BURST)
        self.closing = False
        self.accepted = False
        self.user = None
        # What the access watcher needs (live/access.py).
        self.user_id: int | None = None
        self.token_key: str | None = None
        self.watcher: access.AccessWatcher | None = None

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when Daphne cancels the consumer (a worker stopping), where `disconnect` never runs.
            self.forget()

    async def websocket_connect(self, message) -> None:
        user = self.scope.get("user")
        # Unwrap Channels' lazy user once, so that the ORM gets a real model instance in every helper.
        self.user = getattr(user, "_wrapped", user)
        if self.user is not None and self.user.is_authenticated:
            self.user_id = self.user.pk
            self.token_key = self.scope.get("auth_token")
        await super().websocket_connect(message)

    async def dispatch(self, message) -> None:
        # Channels' dispatch closes stale database connections before every message, a thread hop each time:
        # for a relayed event that would be one executor round trip per viewer. Every database access here goes
        # through database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        try:
            if handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            await handler(message)
        except StopConsumer:
            raise
        except Exception:
            # One rule for every handler: a documented close code, never Daphne's 1011, and nothing left behind.
            logger.exception(
                "WebSocket %s failed on %s; closing it with %s",
                self.scope.get("path"),
                message.get("type"),
                CloseCode.INTERNAL_ERROR,
            )
            await self.fail()

    async def fail(self) -> None:
        """Close with 4011 after an error of ours, as far as the socket still allows."""
        self.forget()
        try:
            if not self.accepted and not self.closing:
                await self.accept()
            await self.refuse(CloseCode.INTERNAL_ERROR)
        except Exception:
            logger.warning("Could not close the failed socket cleanly", exc_info=True)

    async def accept(self, subprotocol=None, headers=None) -> None:
        await super().accept(subprotocol, headers)
        self.accepted = True
        metrics.ACCEPTED.inc()

    async def admit(self, graph_id: int | None) -> bool:
        """Count this socket against its user's limit and put it under the access watcher; False if refused."""
        if drain.draining():
            await self.refuse(CloseCode.GOING_AWAY)
            return False
        self.watcher = access.watcher()
        if self.user_id is not None and self.watcher.sockets_of(self.user_id) >= settings.WEBSOCKET_MAX_PER_USER:
            await self.refuse(CloseCode.TOO_MANY_SOCKETS)
            return False
        await self.watcher.add(self, graph_id)
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        verdict = self.limiter.check()
        if verdict == RateLimiter.CLOSE:
            await self.refuse(CloseCode.POLICY_VIOLATION)
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
            await self.refuse(CloseCode.MESSAGE_TOO_BIG)
            return
        try:
            content = inputs.loads(text_data, settings.WEBSOCKET_JSON_MAX_DEPTH)
        except inputs.TooDeep as error:
            await self.send_error("invalid_json", f"The frame is {error}")
            return
        except ValueError:
            await self.send_error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("invalid_frame", 'Send a JSON object with a "type".')
            return
        bad = inputs.find_bad_text(content)
        if bad is not None:
            # Answered before any handler sees it, and without echoing it (it cannot be encoded as UTF-8).
            field, problem = bad
            await self.send_error("invalid", f"{field}: {problem}", errors={field: [problem]})
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

    async def refuse(self, code: CloseCode) -> None:
        """Close with a protocol code and stop hearing the channel layer at once."""
        if self.closing:
            return
        self.closing = True
        metrics.count_close("server", code)
        try:
            await self.leave()
        finally:
            if not self.accepted:
                # A close before the handshake is answered would be a bare HTTP 403, without the code.
                await self.accept()
            # A plain int: autobahn refuses a close code whose type is not exactly int (live/close_codes.py).
            await self.close(int(code))

    def forget(self) -> None:
        """Drop this socket from this worker's in-memory registries (no I/O: safe while being cancelled)."""
        if self.watcher is not None:
            self.watcher.remove(self)

    async def leave(self) -> None:
        """Stop hearing every group, and leave the registries."""
        self.forget()
        groups, self.groups = self.groups, []
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def disconnect(self, code) -> None:
        if not self.closing:
            metrics.count_close("client", code)  # a close of ours was counted by `refuse`
        self.closing = True
        await self.leave()


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


class GraphConsumer(ProtocolConsumer):
    """/ws/graphs/<id>/: every event of one graph in seq order, its viewers, and posting comments."""

    graph_id: int
    epoch = ""
    # Events this socket has sent are exactly those with floor < seq <= last_sent.
    floor = 0
    last_sent = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Held while this socket's stream is being put in order (connect, resume, gap fill): live events that
        # arrive meanwhile wait in `pending` and are replayed in order afterwards.
        self.ordering = asyncio.Lock()
        self.pending: list[dict] = []
        self.replaying: asyncio.Task | None = None
        self.fanout: fanout.FanOut | None = None

    async def connect(self) -> None:
        # Accept first: a close code can only be given on an open socket (a refused handshake is a bare 403).
        await self.accept()
        if self.scope.get("auth_failed"):
            await self.refuse(CloseCode.NOT_AUTHENTICATED)
            return
        self.graph_id = self.scope["url_route"]["kwargs"]["graph_id"]
        if self.graph_id > MAX_ID:
            await self.refuse(CloseCode.NOT_FOUND if self.user_id is not None else CloseCode.NOT_AUTHENTICATED)
            return
        if not await self.admit(self.graph_id):
            return
        async with self.ordering:
            # Hear the graph (and the watcher hear accounts) before checking access and reading last_seq: an access
            # change made after the check is announced after it, so it reaches us; an event committed after the
            # read is broadcast after it, so it reaches us live, and one at or below it is what `resume` asks for.
            self.fanout = fanout.hub()
            await self.fanout.join(self.graph_id, self)
            code, seq, self.epoch = await admission(self.graph_id, self.user)
            if code is not None:
                await self.refuse(code)
                return
            self.floor = self.last_sent = seq
            user = {"id": self.user.pk, "username": self.user.username} if self.user.is_authenticated else None
            await self.send_frame(encode({"type": "hello", "user": user, "last_seq": seq, "epoch": self.epoch}))
            self.presence = presence.tracker()
            self.presence.join(self.graph_id, self, self.user)
            # `?after_seq=N&epoch=E` in the URL: resume as part of connecting, so that no live event can come
            # between hello and the events the client missed (a `resume` frame arrives a round trip later).
            if self.scope.get("query_string"):
                resume = await self.resume_in_url()
                if resume is not None:
                    await self.resume_from(*resume, latest=seq)
        self.replay_pending()

    async def resume_in_url(self) -> tuple[int, str | None] | None:
        """The (after_seq, epoch) the URL asks to resume from, or None (after an `invalid` error if malformed)."""
        query = parse_qs(self.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if "after_seq" not in query:
            return None
        after = query["after_seq"][-1]
        epoch = query["epoch"][-1] if "epoch" in query else None
        if not after.isascii() or not after.isdigit() or len(after) > 19 or int(after) > MAX_ID:
            await self.send_error(
                "invalid",
                "after_seq: give the seq of the last event you have (0 for all).",
                errors={"after_seq": ["Give the seq of the last event you have (0 for all)."]},
            )
            return None
        if epoch is not None and (len(epoch) > 64 or inputs.text_problem(epoch)):
            await self.send_error("invalid", "epoch: give the epoch of hello.", errors={"epoch": ["Not an epoch."]})
            return None
        return int(after), epoch

    def forget(self) -> None:
        super().forget()
        if self.fanout is not None:
            self.fanout.leave(self.graph_id, self)
            self.fanout = None
        if getattr(self, "presence", None) is not None:
            self.presence.leave(self.graph_id, self)
            self.presence = None
        if self.replaying is not None and self.replaying is not asyncio.current_task():
            self.replaying.cancel()

    # --- live events, from this worker's fan-out (live/fanout.py) ---

    async def deliver(self, message: dict) -> None:
        """Send one live event if it is the next one; otherwise queue it for an orderly replay."""
        if self.closing:
            return
        if self.ordering.locked() or self.pending:
            self.pending.append(message)
            self.replay_pending()
            return
        seq = message["seq"]
        if seq <= self.last_sent:
            return  # already sent: by a resume, a gap fill, or this is a late copy
        if seq == self.last_sent + 1:
            self.last_sent = seq  # before the await, so that no other delivery can send it too
            await self.send_frame(message["text"])
            return
        self.pending.append(message)  # a gap: filled from the database by the replay
        self.replay_pending()

    async def catch_up(self, seq: int) -> None:
        """Fetch the stored events up to `seq` that this socket has not sent (a broadcast was lost)."""
        if not self.closing and seq > self.last_sent:
            self.pending.append({"type": "graph.catch_up", "seq": seq})
            self.replay_pending()

    def replay_pending(self) -> None:
        if self.pending and not self.closing and (self.replaying is None or self.replaying.done()):
            self.replaying = asyncio.get_running_loop().create_task(self._replay())

    async def _replay(self) -> None:
        try:
            async with self.ordering:
                while self.pending and not self.closing:
                    await self.relay(self.pending.pop(0))
        except Exception:
            logger.exception("WebSocket %s failed to replay live events; closing it", self.scope.get("path"))
            await self.fail()

    async def relay(self, message: dict) -> None:
        """Relay one event, in order and once: fetch any missed ones from the database first. Hold `ordering`."""
        seq = message["seq"]
        if seq <= self.last_sent:
            return
        if "text" not in message:  # a catch-up: everything up to seq comes from the database
            await self.send_stored(self.last_sent, seq)
            return
        if seq > self.last_sent + 1:
            # Events below `seq` are committed (numbers are taken under the graph's row lock), but their broadcasts
            # have not come yet (another worker was slower) or got lost: take them from the database.
            await self.send_stored(self.last_sent, seq - 1)
        await self.send_frame(message["text"])
        self.last_sent = seq

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
        """Send every stored event after `after_seq` that this socket has not sent, then go on live.

        Access is checked again first: a resume follows a reconnect, when a lost `graph.access` is most likely.
        """
        after = content.get("after_seq")
        if isinstance(after, bool) or not isinstance(after, int) or after < 0 or after > MAX_ID:
            await self.send_error(
                "invalid",
                "after_seq: give the seq of the last event you have (0 for all).",
                errors={"after_seq": ["Give the seq of the last event you have (0 for all)."]},
            )
            return
        epoch = content.get("epoch")
        if epoch is not None and not isinstance(epoch, str):
            await self.send_error("invalid", "epoch: give the epoch of hello.", errors={"epoch": ["A string."]})
            return
        async with self.ordering:
            await self.resume(after, epoch)
        self.replay_pending()

    async def resume(self, after: int, epoch: str | None) -> None:
        code, latest, self.epoch = await admission(self.graph_id, self.user)
        if code is not None:
            await self.refuse(code)
            return
        await self.resume_from(after, epoch, latest=latest)

    async def resume_from(self, after: int, epoch: str | None, *, latest: int) -> None:
        """Resume once access is known; `latest` is the graph's last seq as read after subscribing. Hold `ordering`."""
        if epoch is not None and epoch != self.epoch:
            # The client's seqs count in another life of the stream (the database was restored): nothing it holds
            # can be resumed from. It reloads; this socket goes on live from the newest event.
            self.floor = self.last_sent = max(self.last_sent, latest)
            metrics.RESUMES.labels(outcome="reset").inc()
            await self.send_frame(encode({"type": "reset", "epoch": self.epoch, "last_seq": latest}))
            return
        if after > self.last_sent:
            if after > latest:
                message = f"There is no event {after} yet; the last is {latest or 0}."
                await self.send_error("invalid", f"after_seq: {message}", errors={"after_seq": [message]})
                return
            # The client has these already (from another connection): do not send them again.
            self.last_sent = after
        metrics.RESUMES.labels(outcome="resumed").inc()
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
        # Under the ordering lock, so that the sender gets its ack before the comment's event (which the fan-out
        # may bring while the write is still answering): the event waits in `pending` until the ack is sent.
        async with self.ordering:
            answer = await self.create(client_id, content)
            await self.send_frame(answer)
        self.replay_pending()

    async def create(self, client_id: str, content: dict) -> str:
        """Write the comment; the frame answering it (an ack, or an error)."""
        try:
            event = await create_comment(self.graph_id, self.user, content)
        except ValidationError as error:
            message, errors = validation_error_detail(error)
            extra = {"errors": errors} if errors else {}
            return encode({"type": "error", "code": "invalid", "message": message, "client_id": client_id, **extra})
        except PermissionDenied as error:
            message = str(error) or "Not allowed."
            return encode({"type": "error", "code": "forbidden", "message": message, "client_id": client_id})
        except Throttled as error:
            return encode(
                {
                    "type": "error",
                    "code": "throttled",
                    "message": str(error),
                    "client_id": client_id,
                    "retry_after": error.wait,
                }
            )
        except Graph.DoesNotExist:
            message = "The graph no longer exists."
            return encode({"type": "error", "code": "not_found", "message": message, "client_id": client_id})
        # The event itself reaches every viewer, this one included, through the fan-out like any other: the ack
        # only tells the sender which seq its comment got.
        return encode({"type": "ack", "client_id": client_id, "seq": event.seq, "comment": event.payload})


class NotificationConsumer(ProtocolConsumer):
    """/ws/notifications/: the signed-in user's new mentions, live."""

    async def connect(self) -> None:
        if self.scope.get("auth_failed") or not self.user.is_authenticated:
            await self.accept()
            await self.refuse(CloseCode.NOT_AUTHENTICATED)
            return
        if not await self.admit(None):
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
        metrics.count_close("server", CloseCode.NOT_FOUND)
        await self.close(int(CloseCode.NOT_FOUND))
