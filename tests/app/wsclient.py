"""A WebSocket test client over the real ASGI application (origin check, auth, routing, Redis channel layer).

Channels' WebsocketCommunicator cancels the application when a receive times out; this client waits on the
output queue itself, so that waiting for a frame never kills the consumer under test, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import asynccontextmanager

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client as DjangoClient
from rest_framework.authtoken.models import Token

from config.asgi import application

# Generous: a wait that succeeds returns as soon as its frame comes; only a failing test waits this long.
TIMEOUT = 10.0


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def session_cookie_for(user) -> str:
    client = DjangoClient()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Closed(AssertionError):
    """The server closed the socket while a frame was expected."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"socket closed with {code}")
        self.code = code


class WSClient:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.close_code: int | None = None

    async def output(self, timeout: float = TIMEOUT) -> dict:
        """The next ASGI message the application sent (websocket.accept/send/close)."""
        queue = self.communicator.output_queue
        future = self.communicator.future
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            message = getter.result()
            if message["type"] == "websocket.close":
                self.close_code = message.get("code", 1000)
            return message
        getter.cancel()
        if future in done:
            future.result()  # raise what crashed the consumer
            raise AssertionError("the consumer stopped without closing the socket")
        raise TimeoutError(f"nothing from the server in {timeout} s")

    async def frame(self, *types: str, timeout: float = TIMEOUT, presence: bool = False) -> dict:
        """The next JSON frame, skipping presence frames unless asked for; checks its type if types are given."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.output(max(0.0, deadline - loop.time()))
            if message["type"] == "websocket.close":
                raise Closed(self.close_code)
            assert message["type"] == "websocket.send", message
            assert message.get("text") is not None, message
            data = json.loads(message["text"])
            if data.get("type") == "presence" and not presence and "presence" not in types:
                continue
            if types:
                assert data.get("type") in types, data
            return data

    async def until(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT, **kwargs) -> list[dict]:
        """Frames up to and including the first for which predicate is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = []
        while True:
            seen.append(await self.frame(timeout=max(0.0, deadline - loop.time()), **kwargs))
            if predicate(seen[-1]):
                return seen

    async def closed(self, timeout: float = TIMEOUT, presence: bool = False) -> tuple[int, list[dict]]:
        """Read until the server closes; return the close code and the frames before it (presence aside)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        frames = []
        while True:
            message = await self.output(max(0.0, deadline - loop.time()))
            if message["type"] == "websocket.close":
                return self.close_code, frames
            frame = json.loads(message["text"])
            if presence or frame.get("type") != "presence":
                frames.append(frame)

    async def nothing(self, timeout: float = 0.3) -> bool:
        """True if the server sends nothing (presence aside) for `timeout` seconds. Use after a positive control."""
        try:
            frame = await self.frame(timeout=timeout)
        except TimeoutError:
            return True
        except Closed:
            return False
        raise AssertionError(f"unexpected frame {frame}")

    async def send(self, data: dict) -> None:
        await self.communicator.send_to(text_data=json.dumps(data))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})


@asynccontextmanager
async def ws(
    path: str,
    *,
    user=None,
    cookie_user=None,
    origin: str | None = None,
    token: str | None = None,
    authorization: bytes | None = None,
):
    """Open a socket through the real application; the client always disconnects at the end."""
    headers = []
    if user is not None:
        token = await database_sync_to_async(token_for)(user)
    if token is not None:
        authorization = f"Token {token}".encode()
    if authorization is not None:
        headers.append((b"authorization", authorization))
    if cookie_user is not None:
        headers.append((b"cookie", (await database_sync_to_async(session_cookie_for)(cookie_user)).encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    client = WSClient(communicator)
    try:
        await communicator.send_input({"type": "websocket.connect"})
        yield client
    finally:
        if not communicator.future.done():
            await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
            await communicator.wait(TIMEOUT)
        else:
            communicator.future.result()


async def accepted(client: WSClient) -> None:
    message = await client.output()
    assert message["type"] == "websocket.accept", message


@asynccontextmanager
async def viewer(graph, user=None, **kwargs):
    """A socket on a graph that was accepted and said hello; yields (client, hello)."""
    async with ws(f"/ws/graphs/{graph.pk}/", user=user, **kwargs) as client:
        await accepted(client)
        hello = await client.frame("hello")
        yield client, hello
