"""Bad input to the graph WebSocket through Apache: an `error` frame on a socket that stays open, or a documented close.

One row per mistake a client can make (the answers are docs/protocol.md's). Every row checks:
- the answer: an error frame with the expected code after which a ping still gets its pong, or the expected close
  code (4xxx), or a refused handshake; never 1011 or a dropped connection, and never silence (every step is bounded);
- nothing was written: both graphs' `last_seq` are as before;
- no ghost: once the socket is closed, its user is gone from the graph's presence list within a few seconds.
The bad sockets are bob's and carol's (or a visitor's); alice observes the presence of her public graph. The
per-user limit and the fuzz have users of their own, so that a ghost one check leaves (reported once, by the check
that saw it appear) does not hide theirs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest
from badstack import CROWD_USER, Closed, Timeout, handshake_status, new_ghosts, open_socket

from support.api import Api

FRAME_LIMIT = 64 * 1024
NESTED_40 = "[" * 40 + "]" * 40
HUGE = 2**70
GRAPH = "/ws/graphs/{public}/"


def j(value: object) -> str:
    return json.dumps(value)


def create(**fields: object) -> str:
    """A comment.create frame with a client_id unless the row gives its own (or None to leave it out)."""
    frame = {"type": "comment.create", "client_id": "bad-1", **fields}
    return j({key: value for key, value in frame.items() if value is not None})


@dataclass(frozen=True)
class Bad:
    """A bad socket: who opens which path, what they send, and the answer docs/protocol.md promises.

    outcome: "error" (an error frame with one of `codes`, then the socket still answers a ping), "close" (the server
    closes with `close`), or "handshake" (the handshake is refused with HTTP status `close`).
    """

    name: str
    frames: tuple[str | bytes, ...] = ()
    outcome: str = "error"
    codes: tuple[str, ...] = ("invalid",)
    close: int | None = None
    user: str | None = "bob"
    path: str = GRAPH
    origin: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def error(name: str, frame: str | bytes, *codes: str) -> Bad:
    return Bad(name, (frame,), codes=codes or ("invalid",))


# comment.create is rate limited per user like REST's comment writes (an error `throttled`, also a clear answer):
# the rows that create take turns between bob and carol, so that each gets its own answer.
CREATORS = ("bob", "carol")


def refused(name: str, path: str, close: int, user: str | None = "bob", **kwargs) -> Bad:
    return Bad(name, outcome="close", close=close, user=user, path=path, **kwargs)


CASES = [
    # --- frames too big, too many, too deep ---
    Bad("frame-65-kib", (j({"type": "ping", "pad": "x" * (FRAME_LIMIT + 1024)}),), outcome="close", close=4009),
    Bad("frame-flood", (j({"type": "ping"}),) * 200, outcome="close", close=4008),
    error("5000-open-brackets", "[" * 5000, "invalid_json"),
    error("nested-40-levels", '{"type": "ping", "x": ' + NESTED_40 + "}", "invalid_json"),
    error(
        "nested-40-levels-in-comment",
        '{"type": "comment.create", "client_id": "c", "body": ' + NESTED_40 + "}",
        "invalid_json",
    ),
    # --- text that cannot be stored ---
    error("nul-in-comment-body", '{"type": "comment.create", "client_id": "c", "body": "a\\u0000b"}'),
    error("lone-surrogate-in-comment-body", '{"type": "comment.create", "client_id": "c", "body": "\\ud800"}'),
    error("nul-in-client-id", '{"type": "comment.create", "client_id": "c\\u0000", "body": "x"}'),
    error("nul-in-node-anchor", '{"type": "comment.create", "client_id": "c", "body": "x", "nodes": ["TP53\\u0000"]}'),
    error("nul-in-unknown-field", '{"type": "comment.create", "client_id": "c", "body": "fine", "colour": "\\u0000"}'),
    error("lone-surrogate-in-type", '{"type": "ping\\udc00"}', "invalid", "unknown_type"),
    # --- not JSON, or not a message ---
    error("malformed-json", '{"type": "ping"', "invalid_json"),
    error("plain-text", "hello", "invalid_json"),
    error("empty-text-frame", "", "invalid_json"),
    error("nan-literal", '{"type": "resume", "after_seq": NaN}', "invalid_json", "invalid"),
    error("json-array", "[1, 2]", "invalid_frame"),
    error("json-string", '"ping"', "invalid_frame"),
    error("json-null", "null", "invalid_frame"),
    error("type-missing", "{}", "invalid_frame"),
    error("type-number", j({"type": 5}), "invalid_frame"),
    error("type-null", j({"type": None}), "invalid_frame"),
    error("type-unknown", j({"type": "comment.delete"}), "unknown_type"),
    error("type-dunder", j({"type": "__class__"}), "unknown_type"),
    error("type-channels-handler", j({"type": "websocket.disconnect"}), "unknown_type"),
    error("type-overlong", j({"type": "x" * 10_000}), "unknown_type"),
    error("type-with-nul", '{"type": "ping\\u0000"}', "invalid", "unknown_type"),
    error("binary-frame", b"\x00\x01\x02", "binary_frame"),
    error("binary-json", b'{"type": "ping"}', "binary_frame"),
    # --- resume ---
    error("after-seq-negative", j({"type": "resume", "after_seq": -1})),
    error("after-seq-string", j({"type": "resume", "after_seq": "5"})),
    error("after-seq-float", j({"type": "resume", "after_seq": 1.5})),
    error("after-seq-bool", j({"type": "resume", "after_seq": True})),
    error("after-seq-missing", j({"type": "resume"})),
    error("after-seq-beyond-last", j({"type": "resume", "after_seq": 1_000_000})),
    error("after-seq-huge-int", j({"type": "resume", "after_seq": HUGE})),
    error("epoch-not-a-string", j({"type": "resume", "after_seq": 0, "epoch": 5})),
    error("nul-in-epoch", '{"type": "resume", "after_seq": 0, "epoch": "\\u0000"}'),
    # --- comment.create with bad fields ---
    error("client-id-missing", create(client_id=None, body="x")),
    error("client-id-65-chars", create(client_id="c" * 65, body="x")),
    error("client-id-number", create(client_id=7, body="x")),
    error("body-missing", create()),
    error("body-empty", create(body="")),
    error("body-overlong", create(body="x" * 10_001)),
    error("body-number", create(body=12)),
    error("parent-huge-int", create(body="x", parent=HUGE)),
    error("parent-string", create(body="x", parent="abc")),
    error("parent-negative", create(body="x", parent=-1)),
    error("nodes-not-a-list", create(body="x", nodes="TP53")),
    error("node-not-in-graph", create(body="x", nodes=["NOPE"])),
    Bad("visitor-comments", (create(body="x"),), codes=("forbidden", "not_authenticated"), user=None),
    # --- who may open what: a private graph looks exactly like a missing one ---
    refused("outsider-private-graph", "/ws/graphs/{private}/", 4404, user="carol"),
    refused("outsider-missing-graph", "/ws/graphs/{missing}/", 4404, user="carol"),
    refused("visitor-private-graph", "/ws/graphs/{private}/", 4401, user=None),
    refused("visitor-missing-graph", "/ws/graphs/{missing}/", 4401, user=None),
    refused("unknown-token", GRAPH, 4401, user=None, headers=(("Authorization", "Token " + "0" * 40),)),
    refused("bearer-instead-of-token", GRAPH, 4401, user=None, headers=(("Authorization", "Bearer abc"),)),
    refused("graph-id-huge", "/ws/graphs/99999999999999999999999/", 4404),
    refused("graph-id-not-a-number", "/ws/graphs/abc/", 4404),
    refused("unknown-ws-path", "/ws/nothing-here/", 4404),
    refused("visitor-notifications", "/ws/notifications/", 4401, user=None),
    Bad("foreign-origin", outcome="handshake", close=403, origin="https://evil.example"),
    Bad("null-origin", outcome="handshake", close=403, origin="null"),
]
CASES = [
    replace(case, user=CREATORS[index % len(CREATORS)], codes=(*case.codes, "throttled"))
    if case.user == "bob" and any(isinstance(f, str) and '"comment.create"' in f for f in case.frames)
    else case
    for index, case in enumerate(CASES)
]


def fill(text: str, ids: dict[str, int]) -> str:
    for name, value in ids.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def seqs(alice: Api, ids: dict[str, int]) -> tuple[int, int]:
    return alice.last_seq(ids["public"]), alice.last_seq(ids["private"])


def test_cases_are_distinct() -> None:
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names) >= 40


def answer(case: Bad, token: str | None, path: str) -> tuple[str, object, bool]:
    """Open the socket and send the frames: ("error", frame) with whether a ping still got its pong afterwards,
    or ("closed", code) with whether a `rate_limited` warning came first."""
    socket = open_socket(path, token, origin=case.origin, headers=dict(case.headers))
    limited = False
    try:
        if case.outcome == "close" and not case.frames:
            return "closed", socket.close_code(), False
        socket.next("hello")
        for frame in case.frames:
            socket.send(frame)
        if case.outcome == "close":
            while True:  # until the close (Closed) or a Timeout: every read is bounded
                got = socket.next("error", "pong")
                limited = limited or got.get("code") == "rate_limited"
        # The answer to the bad frame comes next (presence and events aside): a pong or an ack means it was taken.
        got = socket.next("error", "pong", "ack")
        try:
            socket.assert_open()
        except Closed:
            return "error", got, False
        return "error", got, True
    except Closed as closed:
        return "closed", closed.code, limited
    finally:
        socket.close()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_socket(case: Bad, world, alice: Api, record_property) -> None:
    before = seqs(alice, world.ids)
    path = fill(case.path, world.ids)
    token = world.tokens[case.user] if case.user else None
    if case.outcome == "handshake":
        outcome, detail, flag = "handshake", handshake_status(path, token=token, origin=case.origin), False
    else:
        try:
            outcome, detail, flag = answer(case, token, path)
        except Timeout as hang:
            outcome, detail, flag = "hang", str(hang), False
    # Written and left behind are checked whatever the answer was, so that each is blamed on the input that did it.
    after = seqs(alice, world.ids)
    ghosts = new_ghosts(world.ids["public"], world.tokens["alice"], {"alice"})

    # The answer, in the JUnit report (build/junit/badinput.xml): what each bad input gets, for the record.
    if outcome == "error":
        shown = detail.get("code") if detail.get("type") == "error" else f"no error but {detail.get('type')}"
        record_property("answer", f"error {shown}" + (", socket still open" if flag else ", then closed"))
    else:
        record_property("answer", f"{outcome} {detail}")
    problems = answer_problems(case, outcome, detail, flag)
    if after != before:
        problems.append(f"bad input changed the stored data: last_seq {before} -> {after}")
    if ghosts:
        problems.append(f"still listed in presence after their socket closed: {ghosts}")
    assert not problems, "; ".join(problems)


def answer_problems(case: Bad, outcome: str, detail, flag: bool) -> list[str]:
    """How the answer differs from the documented one (nothing: as documented)."""
    if outcome == "hang":
        return [str(detail)]
    if case.outcome == "handshake":
        return [] if detail == case.close else [f"handshake answered {detail}, expected HTTP {case.close}"]
    if case.outcome == "close":
        if (outcome, detail) != ("closed", case.close):
            return [f"{outcome} {detail}, expected a close with {case.close}"]
        if case.close == 4008 and not flag:
            return ["closed for flooding without the `rate_limited` warning first"]
        return []
    if outcome != "error":
        return [f"closed with {detail} instead of an error frame"]
    if detail.get("type") != "error":
        return [f"taken as a good frame: {str(detail)[:300]}"]
    problems = []
    if detail.get("code") not in case.codes:
        problems.append(f"error code {detail.get('code')!r}, expected {' or '.join(case.codes)}: {detail}")
    if not isinstance(detail.get("message"), str) or not detail["message"]:
        problems.append(f"an error frame without a message: {detail}")
    if not flag:
        problems.append("the socket was closed after the error frame: it must stay open")
    return problems


def test_too_many_sockets_for_one_user(world) -> None:
    """One user (badinput-crowd, on the public graph) opening socket after socket is closed with 4429 at the limit (per
    worker), never left hanging."""
    path = fill(GRAPH, world.ids)
    sockets = []
    codes = []
    try:
        # WEBSOCKET_MAX_PER_USER (20) per Daphne worker: a handful of workers is reached well within 100.
        for _ in range(100):
            socket = open_socket(path, world.tokens[CROWD_USER])
            sockets.append(socket)
            try:
                socket.next("hello")
            except Closed as closed:
                codes.append(closed.code)
                break
    finally:
        for socket in sockets:
            socket.close()
    assert codes == [4429], f"{len(sockets)} sockets opened; closes seen: {codes}"
    ghosts = new_ghosts(world.ids["public"], world.tokens["alice"], {"alice"})
    assert not ghosts, f"still listed in presence after their sockets closed: {ghosts}"
