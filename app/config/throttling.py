"""Rate limits on writes and logins, per user and per address, shared by every process (docs/protocol.md).

Counters live in Django's cache, which is the project's Redis (settings.CACHES), so that a client spreading its
requests over the mod_wsgi processes meets one limit. Each counter is a fixed window (`<scope>:<who>:<window>`)
raised with Redis' atomic INCR: parallel requests cannot undercount, as they can with DRF's own throttles, which
read a list of timestamps, append and write it back (the last writer wins, so N parallel requests count as one).
The price of a fixed window is that a client may spend one window's allowance at its end and the next one's at
the start: at most twice the rate for a moment, never more on average.

Rates are settings.THROTTLE_RATES, read on every request: `"30/min"`, or None for no limit.

When Redis cannot be reached the limits are not applied (logged): writes are stored in PostgreSQL and survive a
Redis outage by design (comments/broadcast.py), and a rate limit must not be what takes them down.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework import permissions, throttling

logger = logging.getLogger(__name__)

RATE = re.compile(r"^(\d+)/(s|sec|second|m|min|minute|h|hour|d|day)$")
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`"30/min"` -> (30, 60): the number of requests and the window in seconds."""
    match = RATE.match(rate.strip())
    if match is None:
        raise ValueError(f"A rate looks like 30/min (or /s, /h, /day), not {rate!r}.")
    return int(match[1]), PERIOD_SECONDS[match[2][0]]


# The time windows are counted in; tests fix it.
clock = time.time


def hit(scope: str, who: str) -> int | None:
    """Count one request of `who` in `scope`: None if it is within the scope's rate, else the seconds to wait."""
    rate = settings.THROTTLE_RATES.get(scope)
    if not rate:
        return None
    allowed, period = parse_rate(rate)
    now = clock()
    window = int(now // period)
    # Hashed: `who` may be anything a client typed (a username), and keys stay short.
    key = f"throttle:{scope}:{hashlib.sha256(who.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}:{window}"
    try:
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: this request starts a new count
            cache.add(key, 1, timeout=period + 1)
            count = 1
    except redis.RedisError as error:
        logger.warning("Rate limit %s not applied: Redis is unreachable (%s)", scope, error.__class__.__name__)
        return None
    if count <= allowed:
        return None
    return max(1, math.ceil((window + 1) * period - now))


def client_address(request) -> str:
    """The address the request came from, as the server saw it.

    REMOTE_ADDR, never X-Forwarded-For, which any client can write: Apache runs the app in mod_wsgi and sets
    REMOTE_ADDR to the peer itself. An IPv6 client is counted by its /64, which one host or home usually holds whole.
    """
    address = request.META.get("REMOTE_ADDR", "")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class UserAndAddressThrottle(throttling.BaseThrottle):
    """DRF throttle of the unsafe requests of a view: `<scope>.user` per signed-in user, `<scope>.address` per address.

    Reads (GET, HEAD, OPTIONS) pass untouched. A refused request is a 429 with `Retry-After` (DRF's Throttled, shaped
    by config.api.exception_handler: `{"detail": ..., "code": "throttled"}`).
    """

    scope = ""

    def allow_request(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        waits = [hit(f"{self.scope}.address", client_address(request))]
        if request.user and request.user.is_authenticated:
            waits.append(hit(f"{self.scope}.user", str(request.user.pk)))
        self._wait = max((wait for wait in waits if wait is not None), default=None)
        return self._wait is None

    def wait(self) -> int | None:
        return self._wait


class CommentWriteThrottle(UserAndAddressThrottle):
    """Posting, editing, deleting, resolving and reopening comments."""

    scope = "comments"


class ReactionThrottle(UserAndAddressThrottle):
    scope = "reactions"
