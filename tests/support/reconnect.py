"""The graph page's reconnect rules (app/web/static/web/js/live-socket.js, docs/protocol.md, docs/page.md), written
once for every Python client that stands in for the page: the live client of the scenarios (live_client.py) and the
benchmark's viewers (bench/viewers.py).

- after any drop, wait a random time between 0 and min(30 s, 0.5 s x 2^attempts) (exponential back-off with full
  jitter), then connect again; any message received resets the attempts;
- close codes 4401 and 4404 are final; every other close (4012 "going away" included) is retried;
- every (re)connect resumes in the URL, `?after_seq=<last applied>&epoch=<epoch>`;
- every 25 s without a message the page sends `{"type": "ping"}` and drops the socket if nothing comes within 10 s.
"""

from __future__ import annotations

import random
from urllib.parse import urlencode

BASE_DELAY = 0.5
MAX_DELAY = 30.0
PING_EVERY = 25.0
PONG_WITHIN = 10.0
# Close codes after which trying again cannot help (docs/protocol.md): not signed in; no such graph, or not yours.
FINAL_CODES = frozenset({4401, 4404})
# The code a socket gets when the connection ended without a close frame (a killed server, a reset).
ABNORMAL = 1006


def backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before connect attempt number `attempts` + 1, as the page does (live-socket.js)."""
    ceiling = min(MAX_DELAY, BASE_DELAY * 2**attempts)
    # Full jitter: the pages of a hall whose server restarted do not all come back in the same instant.
    return (rng or random).random() * ceiling


def resume_url(ws_url: str, after_seq: int, epoch: str | None = None) -> str:
    """The stream's URL for a (re)connect that resumes after `after_seq`; without an epoch the server resumes without
    checking it (a client that never saw one)."""
    query: dict[str, object] = {"after_seq": after_seq}
    if epoch is not None:
        query["epoch"] = epoch
    return f"{ws_url}?{urlencode(query)}"
