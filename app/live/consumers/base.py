"""The frame rules both sockets share (`ProtocolConsumer`), and what ends a socket.

Failures: whatever a handler raises, the socket is closed with 4011 and leaves its groups, presence and watcher
(`ProtocolConsumer.dispatch`); and whatever ends a consumer, even a cancellation that skips `disconnect`, takes it out
of presence (`ProtocolConsumer.__call__`). So a crash can neither reach the client as Daphne's 1011 nor leave a ghost
viewer behind. Close codes are in the 4000-4999 range: Daphne refuses 1008 and 1009 from an application (their list,
and why, is live/close_codes.py).
"""

from __future__ import annotations

import logging

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from comments import broadcast
from config import inputs, metrics
from live import access, drain
from live.close_codes import CloseCode
from live.ratelimit import RateLimiter

# The name these log lines had before the consumers were split into modules.
logger = logging.getLogger("live.consumers")


def encode(message: dict) -> str:
    return broadcast.encode(message)


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
