"""Announcing committed changes on the channel layer.

Messages are sent only after the transaction that stored them commits (`transaction.on_commit`), so nobody hears of
a change that was rolled back. A failed send loses nothing: the event is in the database and clients that missed it
get it when they resume (`{"type": "resume"}`), so a Redis outage is logged, not raised into the request.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from config import metrics

logger = logging.getLogger(__name__)


def graph_group(graph_id: int) -> str:
    return f"graph.{graph_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def encode(message: dict) -> str:
    """Encode a frame once, here, so that each of its thousand viewers sends the same text unchanged."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


PUBSUB_LAYER = "channels_redis.pubsub.RedisPubSubChannelLayer"
_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _publisher() -> tuple[redis.Redis, str] | None:
    """A Redis client reused by every request of this process, and the layer's prefix; None if the channel layer is
    not the one-host pub/sub layer of our settings (tests may swap it)."""
    config = settings.CHANNEL_LAYERS.get("default", {})
    hosts = config.get("CONFIG", {}).get("hosts", [])
    if config.get("BACKEND") != PUBSUB_LAYER or len(hosts) != 1 or not isinstance(hosts[0], str):
        return None
    with _clients_lock:
        client = _clients.get(hosts[0])
        if client is None:
            # Short timeouts: a request must not hang on a Redis that is down; the event is safe in the database.
            client = _clients[hosts[0]] = redis.Redis.from_url(
                hosts[0], socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
            )
    return client, config["CONFIG"].get("prefix", "asgi")


def _group_send(group: str, message: dict) -> None:
    """Send to a channel-layer group from synchronous code (mod_wsgi threads, the ORM threads of Daphne).

    `async_to_sync(layer.group_send)` would start an event loop and, since the pub/sub layer keeps one connection
    per loop, open (and authenticate) a new Redis connection for every write. Instead, publish exactly what the
    layer publishes (its own serializer, on the channel it names `<prefix>__group__<group>`, see
    channels_redis/pubsub.py, pinned in requirements/app.txt) over a connection this process keeps.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    publisher = _publisher()
    if publisher is None:
        async_to_sync(layer.group_send)(group, message)
        return
    client, prefix = publisher
    client.publish(f"{prefix}__group__{group}", layer.serialize(message))


def send_now(group: str, message: dict) -> bool:
    """Announce now; False if that failed (logged, never raised)."""
    try:
        _group_send(group, message)
    # A failed announcement must never fail the committed change.
    except Exception:
        logger.exception("Could not announce %s to %s; clients catch up on resume", message.get("type"), group)
        return False
    return True


def send_on_commit(group: str, message: dict) -> None:
    transaction.on_commit(lambda: send_now(group, message))


def announce_event(graph_id: int, seq: int, frame: dict) -> None:
    """After commit, hand one numbered event of a graph to every worker holding a viewer of it."""
    message = {"type": "graph.event", "graph": graph_id, "seq": seq, "text": encode(frame)}
    transaction.on_commit(lambda: _publish_event(graph_group(graph_id), message))


def _publish_event(group: str, message: dict) -> None:
    # `at`: when it left, for the fan-out lag each worker measures (config/metrics.py).
    message["at"] = time.time()
    if send_now(group, message):
        metrics.EVENTS_PUBLISHED.inc()
    else:
        metrics.EVENTS_PUBLISH_FAILED.inc()


def announce_notification(user_id: int, frame: dict) -> None:
    send_on_commit(user_group(user_id), {"type": "user.notification", "text": encode(frame)})


def announce_access_change(graph_id: int) -> None:
    """Tell the viewers of a graph to check again whether they may still see it (made private, unshared...)."""
    send_on_commit(graph_group(graph_id), {"type": "graph.access", "graph": graph_id})


def announce_account_revoked(user_id: int, token: str | None = None) -> None:
    """After commit, tell every worker's access watcher to close this user's sockets (all of them, or only those
    opened with `token`): the account was deactivated or deleted, or the token deleted."""
    from live.access import ACCOUNTS_GROUP

    send_on_commit(ACCOUNTS_GROUP, {"type": "account.revoked", "user": user_id, "token": token})
