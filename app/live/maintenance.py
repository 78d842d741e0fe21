"""Maintenance mode for WebSockets: while the site's maintenance flag file exists, every handshake is accepted and
closed at once with 4012 ("going away, come back later"), before the origin check, the session or token lookup and
the consumer, so that nothing touches PostgreSQL or Redis while the database is being replaced.

The flag is one file (COMMENTS_MAINTENANCE_FILE, role comments' `comments_maintenance_file`), put there and removed
by playbooks/tasks/maintenance.yml; Apache answers HTTP with its 503 maintenance page on the same file. It is looked
at on each handshake (one stat), so turning maintenance off needs no restart.

Why 4012 and not the standard 1001 (going away): Daphne hands an application's close to autobahn, which refuses any
code other than 1000 and 3000-4999 (live/close_codes.py). 4012 is our mirror of 1001, and every client retries it
after its jittered back-off (docs/protocol.md): the page keeps coming back until the site is open again, then
resumes, or reloads when the restore gave its graph a new epoch.
"""

from __future__ import annotations

import os

from django.conf import settings

from live.close_codes import CloseCode


def in_maintenance() -> bool:
    """Whether the maintenance flag file exists (no flag configured: never)."""
    path = settings.MAINTENANCE_FILE
    return bool(path) and os.path.exists(path)


class MaintenanceGate:
    """ASGI middleware for WebSockets, the outermost: in maintenance, accept and close with 4012; else pass on."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket" or not in_maintenance():
            await self.app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "websocket.connect":  # the client left before its handshake was answered
            return
        # Accepted, then closed: a close before the accept would be an HTTP 403 to the client (Daphne), which the
        # page cannot tell from a refusal; a close frame carries the code that says "come back later".
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": int(CloseCode.GOING_AWAY)})
