"""Announcing committed changes on the channel layer.

Messages are sent only after the transaction that stored them commits (`transaction.on_commit`), so nobody hears of
a change that was rolled back. A failed send loses nothing: the event is in the database and clients that missed it
get it when they resume (`{"type": "resume"}`), so a Redis outage is logged, not raised into the request.
"""

from __future__ import annotations

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def graph_group(graph_id: int) -> str:
    return f"graph.{graph_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def encode(message: dict) -> str:
    """Encode a frame once, here, so that each of its thousand viewers sends the same text unchanged."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def send_now(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    # A failed announcement must never fail the committed change.
    except Exception:
        logger.exception("Could not announce %s to %s; clients catch up on resume", message.get("type"), group)


def send_on_commit(group: str, message: dict) -> None:
    transaction.on_commit(lambda: send_now(group, message))


def announce_event(graph_id: int, seq: int, frame: dict) -> None:
    """After commit, hand one numbered event of a graph to every worker holding a viewer of it."""
    send_on_commit(graph_group(graph_id), {"type": "graph.event", "seq": seq, "text": encode(frame)})


def announce_notification(user_id: int, frame: dict) -> None:
    send_on_commit(user_group(user_id), {"type": "user.notification", "text": encode(frame)})


def announce_access_change(graph_id: int) -> None:
    """Tell the viewers of a graph to check again whether they may still see it (made private, unshared...)."""
    send_on_commit(graph_group(graph_id), {"type": "graph.access"})
