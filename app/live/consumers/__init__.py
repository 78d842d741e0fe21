"""The WebSockets of docs/protocol.md: a graph's live discussion, and a user's own notifications.

Cost per relayed event is one `send` of text that was encoded once by the writer (comments/broadcast.py), made
straight from the worker's one subscription to the graph (live/fanout.py): no queue, no task switch, no decoding, no
database query and no JSON encoding per viewer. The database is touched on connect, on resume, to fill a gap, on
`comment.create` and when access may have changed, each in a small `database_sync_to_async` helper (live/queries.py,
live/access.py).

One module a job:

- base.py: `ProtocolConsumer`, the frame rules both sockets share (size, binary, JSON, rate limit, errors, ping) and
  how a socket is refused, fails and leaves; its rate limit is live/ratelimit.py's token bucket;
- graph.py: `GraphConsumer`, /ws/graphs/<id>/ (order, resume, gap filling, `comment.create`);
- notifications.py: `NotificationConsumer`, /ws/notifications/;
- not_found.py: `NotFoundConsumer`, any other path under /ws/.

The close codes they give are live/close_codes.py's. live/routing.py imports the consumers from here.
"""

from live.consumers.base import ProtocolConsumer
from live.consumers.graph import GraphConsumer
from live.consumers.not_found import NotFoundConsumer
from live.consumers.notifications import NotificationConsumer

__all__ = ["GraphConsumer", "NotFoundConsumer", "NotificationConsumer", "ProtocolConsumer"]
