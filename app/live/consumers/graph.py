"""/ws/graphs/<id>/: a graph's live discussion (`GraphConsumer`).

Ordering: a graph socket's stream is put in order under its `ordering` lock (connect, resume, gap fill); live
events that arrive meanwhile wait in its `pending` list and are replayed in order once the lock is free. That is
what makes resume and gap filling exact: every event sent moves `last_sent` on by one, and a live event at or below
it is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from django.core.exceptions import PermissionDenied, ValidationError

from config import inputs, metrics
from config.api import validation_error_detail
from graphs.models import Graph
from live import fanout, presence
from live.close_codes import CloseCode
from live.consumers.base import ProtocolConsumer, encode
from live.queries import MAX_ID, Throttled, admission, create_comment, stored_frames

# The name these log lines had before the consumers were split into modules.
logger = logging.getLogger("live.consumers")

# Stored events are sent in batches of this many (the REST event log's page size too).
RESUME_BATCH = 500
CLIENT_ID_MAX_LENGTH = 64


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
