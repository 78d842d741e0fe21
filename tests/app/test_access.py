"""The access watcher's timed re-check (live/access.py), in isolation: what it closes and what it must leave open."""

from __future__ import annotations

from live import access


class FakeSocket:
    def __init__(self, user_id: int, token_key: str) -> None:
        self.user_id, self.token_key = user_id, token_key
        self.refused: int | None = None

    async def refuse(self, code: int) -> None:
        self.refused = code


async def test_a_socket_that_opens_while_tokens_are_checked_is_left_open(monkeypatch):
    """Seen in the benchmark: sockets opened during the re-check's query were closed with 4401, tokens valid."""
    watcher = access.AccessWatcher(recheck_seconds=60)
    revoked, valid, late = FakeSocket(1, "revoked"), FakeSocket(2, "valid"), FakeSocket(3, "late")
    watcher.graph_of.update({revoked: None, valid: None})

    async def live_tokens(keys):
        watcher.graph_of[late] = None  # a handshake completes while the query runs
        return set(keys) - {"revoked"}

    monkeypatch.setattr(access, "live_tokens", live_tokens)
    await watcher.check_all()
    assert (revoked.refused, valid.refused, late.refused) == (4401, None, None)
