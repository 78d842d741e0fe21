"""Fuzz pass 2: hypothesis sends random frames to the graph WebSocket through Apache: no 1011, no hang, no ghost.

Each example opens a socket (as the fuzz user, or as a visitor of the public graph), sends a few random frames -
messages of known and unknown types with random fields, any JSON, random text, random bytes, deep brackets - then a
ping, and reads until its pong: every frame may get an error, but the socket must answer, or be closed with a documented
code (4008 flood, 4009 too big). Afterwards a fresh observer must see only the live viewers in presence.

Bounds: MAX_EXAMPLES examples, BUDGET_SECONDS in all (examples past it are not sent), every read WS_TIMEOUT.
"""

from __future__ import annotations

import json
import time

from badstack import FUZZ_USER, Closed, new_ghosts, open_socket
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

MAX_EXAMPLES = 200
BUDGET_SECONDS = 40.0
# Close codes a random client may earn (docs/protocol.md): a flood, a frame over 64 KiB.
DOCUMENTED_CLOSES = {4008, 4009}

# Characters that caused trouble before: NUL, lone surrogates, brackets, mentions.
TRICKY = st.sampled_from(["\x00", "\ud800", "\udfff", "[", "{", '"', "\\", "@", "\u202e", "\ufeff"])
TEXT = st.one_of(
    st.text(st.one_of(st.characters(), TRICKY), max_size=30),
    st.sampled_from(["TP53", "e1", "@bob hello", "@alice @carol", "x" * 10_001, "c" * 65]),
)
# Text a client can put in a text frame as it is (valid UTF-8: no lone surrogates).
RAW_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, 1, -1, 2**31, 2**63 - 1, 2**63, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
TYPES = st.one_of(
    st.sampled_from(
        ["ping", "resume", "comment.create", "comment.delete", "hello", "presence", "__init__", "graph.event"]
    ),
    TEXT,
)
FIELDS = st.sampled_from(["client_id", "body", "parent", "nodes", "edges", "after_seq", "type"])
MESSAGES = st.builds(
    lambda kind, fields, extra: {**extra, **fields, "type": kind},
    TYPES,
    st.dictionaries(FIELDS, VALUES, max_size=5),
    st.dictionaries(TEXT, VALUES, max_size=2),
)
DEEP = st.builds(
    lambda n, opener: opener * n, st.integers(min_value=30, max_value=6000), st.sampled_from(["[", '{"a":'])
)
# json.dumps writes ASCII: NUL and lone surrogates travel as \u escapes, as a client's JSON would carry them.
FRAMES = st.one_of(
    MESSAGES.map(json.dumps),
    MESSAGES.map(json.dumps),
    VALUES.map(json.dumps),
    RAW_TEXT,
    st.binary(max_size=64),
    DEEP,
)


def short(frames: list[str | bytes]) -> str:
    """The frames for a failure message, each cut to its first 200 characters."""
    return repr([frame if len(frame) <= 200 else frame[:200] + f"... ({len(frame)} in all)" for frame in frames])


class Budget:
    deadline: float | None = None
    sent = 0
    skipped = 0


def exchange(path: str, token: str | None, frames: list[str | bytes]) -> int | None:
    """Send the frames and a ping: None once the pong came, else the code the server closed the socket with."""
    socket = open_socket(path, token)
    try:
        socket.next("hello")
        for frame in frames:
            socket.send(frame)
        socket.assert_open()
    except Closed as closed:
        return closed.code
    finally:
        socket.close()
    return None


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing example is shown as generated
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(frames=st.lists(FRAMES, min_size=1, max_size=5), visitor=st.booleans())
def test_random_frames(world, frames: list[str | bytes], visitor: bool) -> None:
    now = time.monotonic()
    if Budget.deadline is None:
        Budget.deadline = now + BUDGET_SECONDS
    if now > Budget.deadline:
        Budget.skipped += 1
        return
    Budget.sent += 1
    closed = exchange(f"/ws/graphs/{world.ids['public']}/", None if visitor else world.tokens[FUZZ_USER], frames)
    assert closed is None or closed in DOCUMENTED_CLOSES, f"closed with {closed} after {short(frames)}"


def test_no_ghost_after_fuzz(world) -> None:
    """After the fuzz, only live viewers are listed: the observer alice, nobody the fuzz's sockets left behind."""
    print(f"websocket fuzz: {Budget.sent} examples, {Budget.skipped} past the budget")
    assert Budget.sent > 0, "the fuzz sent nothing (run the whole file: the fuzz comes first)"
    ghosts = new_ghosts(world.ids["public"], world.tokens["alice"], {"alice"})
    assert not ghosts, f"still listed in presence after the fuzz's sockets closed: {ghosts}"
