"""The close codes the server gives a WebSocket (docs/protocol.md), in one place.

Every one is in 4000-4999, the range RFC 6455 leaves to private use: Daphne hands an application's close to
autobahn, which refuses any code other than 1000 and 3000-4999. So the standard 1008 (policy violation) and 1009
(message too big) are mirrored as 4008 and 4009, an error of ours is 4011 rather than the 1011 Daphne would give,
and 4401, 4404 and 4429 echo HTTP's statuses. The standard codes that clients and proxies give (1000, 1006, ...) are
counted by config/metrics.py beside these.

autobahn also checks that a close code is exactly an `int` (`type(code) != int`), which an `IntEnum` member is not:
whatever hands a code to Channels' `close` converts it with `int()` first (live/consumers/base.py, not_found.py).
"""

from __future__ import annotations

import enum


class CloseCode(enum.IntEnum):
    """The application's close codes; the values are the protocol's and never change."""

    # The client kept sending past the rate limit (the standard 1008).
    POLICY_VIOLATION = 4008
    # A text frame over WEBSOCKET_MAX_FRAME_BYTES (the standard 1009).
    MESSAGE_TOO_BIG = 4009
    # A handler of ours failed; the traceback is in the worker's log (instead of Daphne's 1011).
    INTERNAL_ERROR = 4011
    # This worker is draining (live/drain.py): reconnect after the back-off and resume.
    GOING_AWAY = 4012
    # Not signed in, or the account or token was revoked, and the graph is not public (or does not exist). Final.
    NOT_AUTHENTICATED = 4401
    # Signed in, and the graph does not exist or is not yours; also any other path under /ws/. Final.
    NOT_FOUND = 4404
    # This user already holds WEBSOCKET_MAX_PER_USER sockets on this worker.
    TOO_MANY_SOCKETS = 4429
