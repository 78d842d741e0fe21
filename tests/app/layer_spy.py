"""Hear what a synchronous request announces on the real Redis channel layer.

`heard(group, action)` subscribes a fresh channel to `group`, runs `action` (a REST call) with its on-commit
callbacks executed as a commit would, and returns what the group received. The subscription, the request and the
receive share one event loop: the pub/sub layer keeps one subscription set per loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

# A message that comes arrives within milliseconds; only a failing test waits this long for one.
TIMEOUT = 10.0
# After the expected messages: how long to listen for any that should not come.
QUIET = 0.3


def heard(group: str, action: Callable[[], Any], expect: int, capture) -> tuple[Any, list[dict]]:
    """Run `action`, then return its result and the messages `group` received: `expect` of them, then silence.

    `capture` is pytest-django's `django_capture_on_commit_callbacks`: the test's transaction never commits, so the
    announcements the app schedules "after commit" are run when the action ends, as a commit would run them.
    """

    def run_action():
        with capture(execute=True):
            return action()

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            # thread_sensitive: the action runs in the test's own thread, with its database connection.
            result = await sync_to_async(run_action, thread_sensitive=True)()
            messages = [await asyncio.wait_for(layer.receive(channel), TIMEOUT) for _ in range(expect)]
            with contextlib.suppress(TimeoutError):
                messages.append(await asyncio.wait_for(layer.receive(channel), QUIET))
            return result, messages
        finally:
            await layer.group_discard(group, channel)

    return async_to_sync(scenario)()
