"""Draining a Daphne worker: its sockets are told to come back elsewhere, then it stops.

Daphne has no drain of its own: on SIGTERM it cancels every consumer at once (their `disconnect` never runs) and the
clients see the TCP connection drop. So the worker is stopped with DRAIN_SIGNAL (SIGUSR1; supervisor's `stopsignal`)
instead, and then:

1. new sockets are refused at once with 4012 ("going away, reconnect");
2. open sockets are closed with 4012, spread over DAPHNE_DRAIN_SPREAD_SECONDS in small batches, so that their clients
   (which wait a jittered back-off before reconnecting) do not arrive at the other workers all in the same instant;
3. once every socket is gone, or after DAPHNE_DRAIN_GRACE_SECONDS more, the worker stops itself with SIGTERM, which
   is Daphne's own orderly shutdown.

Clients resume from their last seq on the worker they reach next (docs/protocol.md), so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from django.conf import settings

from live import access
from live.close_codes import CloseCode

logger = logging.getLogger(__name__)

DRAIN_SIGNAL = signal.SIGUSR1

_state = {"draining": False}


def draining() -> bool:
    """Whether this worker is draining (new sockets are refused with 4012)."""
    return _state["draining"]


# Asked by Apache's health check of each balancer member (mod_proxy_hcheck, role apache): 200 while this worker takes
# new WebSockets, 503 from the moment it drains, so that Apache stops sending it any (its bybusyness method would
# otherwise prefer it: a draining worker holds ever fewer sockets). Answered before Django: no Host check, no database.
ACCEPTING_PATH = "/-/accepting"


class AcceptingCheck:
    """ASGI middleware for HTTP: answers ACCEPTING_PATH itself, hands everything else to the app."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != ACCEPTING_PATH:
            await self.app(scope, receive, send)
            return
        status, body = (503, b"draining\n") if draining() else (200, b"accepting\n")
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def install() -> None:
    """Drain when DRAIN_SIGNAL arrives. Called once at start-up of the ASGI application (config/asgi.py)."""
    with contextlib.suppress(ValueError):  # not the main thread: a test server that handles no signals
        signal.signal(DRAIN_SIGNAL, _on_signal)


def _on_signal(signum, frame) -> None:
    # A Python signal handler runs in the main thread between two bytecodes of whatever runs there: Daphne's event
    # loop. Schedule the drain on it rather than doing anything here.
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        logger.warning("Drain signal outside a running event loop: stopping at once")
        os.kill(os.getpid(), signal.SIGTERM)
        return
    loop.call_soon_threadsafe(lambda: loop.create_task(drain(), name="drain"))


async def drain(stop: bool = True) -> int:
    """Close every socket of this worker with 4012, spread out; then (if `stop`) stop the worker. Returns how many."""
    if _state["draining"]:
        return 0
    _state["draining"] = True
    watcher = access.watcher()
    sockets = watcher.sockets()
    spread = max(0.0, settings.DAPHNE_DRAIN_SPREAD_SECONDS)
    batches = max(1, min(len(sockets), int(spread * 10)))  # at most ten batches a second
    size = -(-len(sockets) // batches) if sockets else 0
    logger.info("Draining %d sockets over %.1f s", len(sockets), spread)
    for start in range(0, len(sockets), size or 1):
        for socket in sockets[start : start + size]:
            try:
                await socket.refuse(CloseCode.GOING_AWAY)
            except Exception:
                logger.warning("Could not close a socket while draining", exc_info=True)
        if start + size < len(sockets):
            await asyncio.sleep(spread / batches)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.DAPHNE_DRAIN_GRACE_SECONDS
    while watcher.sockets() and loop.time() < deadline:
        await asyncio.sleep(0.1)
    logger.info("Drained; %d sockets were still open", len(watcher.sockets()))
    if stop:
        os.kill(os.getpid(), signal.SIGTERM)
    return len(sockets)
