"""A client of the graph page's live stream that keeps the page's rules, for tests that break the stack under it.

The rules are the page's (app/web/static/web/js/live-socket.js, graph-page.js and comment-store.js, and
docs/protocol.md). The reconnect rules (back-off with full jitter, final close codes, the resume URL, the heartbeat)
are in reconnect.py, shared with the benchmark's viewers; the rest are here:

- events are applied in seq order, once: an event at or below the last applied seq is a duplicate and dropped, one
  beyond it waits behind the gap, which is filled over REST (`GET /api/v1/graphs/{id}/events/?after_seq=&epoch=`);
- a `reset` frame (or a 409 from the events endpoint) means the database is another life of itself: the page reloads
  (graph, then its comments), then connects again.

What a test needs to judge the run is recorded: every event frame received (raw, before dedupe), the time each seq
was applied, the close codes, the connects and the presence frames. The writer posts comments at a steady rate; the
REST client is support/api.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field

import websockets
from websockets.exceptions import ConnectionClosed

from support.api import Answer, Api
from support.reconnect import ABNORMAL, FINAL_CODES, PING_EVERY, PONG_WITHIN, backoff_delay, resume_url


def accounts_script(names: list[str]) -> str:
    """A `manage.py shell -c` script that makes these accounts (idempotent: existing ones are kept) with API tokens and
    prints {name: token} as JSON on its last line. The accounts have no usable password."""
    return f"""
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
tokens = {{}}
for name in {names!r}:
    user, created = get_user_model().objects.get_or_create(username=name)
    if created:
        user.set_unusable_password()
        user.save()
    tokens[name] = Token.objects.get_or_create(user=user)[0].key
print(json.dumps(tokens))
"""


@dataclass
class Viewer:
    """One graph page's live stream: connects, resumes, reconnects and records what it got."""

    ws_url: str
    api: Api
    graph_id: int
    last_seq: int
    epoch: str
    name: str = ""
    reconnect: bool = True
    heartbeat: bool = True
    rng: random.Random = field(default_factory=random.Random)

    # What it received and applied.
    applied: dict[int, float] = field(default_factory=dict)  # seq -> when it was applied (monotonic)
    reached: list[tuple[float, int]] = field(default_factory=list)  # (when, last_seq) each time last_seq grew
    raw_events: int = 0
    duplicates: int = 0  # event frames the sockets sent for a seq a socket had sent before (dropped by the dedupe)
    redundant: int = 0  # event frames for a seq the client had already filled over REST (dropped by the dedupe)
    applied_twice: int = 0  # seqs applied a second time: what the dedupe exists to prevent
    filled_over_rest: int = 0
    reloads: int = 0
    resets: list[dict] = field(default_factory=list)
    presence: dict | None = None
    presence_at: float = 0.0
    errors: list[dict] = field(default_factory=list)
    # The life of its connections.
    hellos: list[float] = field(default_factory=list)
    closes: list[tuple[float, int]] = field(default_factory=list)  # (when, code)
    failed_connects: int = 0
    denied: int | None = None
    connected: bool = False

    def __post_init__(self) -> None:
        self.pending: dict[int, dict] = {}
        self.socket_seqs: set[int] = set()  # every seq a socket of this viewer sent
        self.attempts = 0
        self.socket = None
        self.stopped = False
        self.task: asyncio.Task | None = None
        self.filling: asyncio.Task | None = None
        self.last_message = time.monotonic()

    # --- life ---

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"viewer {self.name}")

    async def stop(self) -> None:
        self.stopped = True
        if self.socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.socket.close(), timeout=2)
        for task in (self.task, self.filling):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def run(self) -> None:
        while not self.stopped:
            code = await self.connect_once()
            if self.stopped or not self.reconnect:
                return
            if code in FINAL_CODES:
                self.denied = code
                return
            if code == 0:  # a reload: connect again at once, as a reloaded page does
                continue
            delay = backoff_delay(self.attempts, self.rng)
            self.attempts += 1
            await asyncio.sleep(delay)

    async def connect_once(self) -> int:
        """One connection, from the handshake to its close; returns the close code (0 after a reload)."""
        headers = {"Authorization": f"Token {self.api.token}"}
        try:
            socket = await websockets.connect(
                resume_url(self.ws_url, self.last_seq, self.epoch),
                additional_headers=headers,
                ssl=self.api.tls,
                open_timeout=10,
                # A browser answers the server's pings but sends none of its own; the page's heartbeat is a frame.
                ping_interval=None,
                close_timeout=2,
                max_size=2**20,
            )
        # Refused, reset, a 502/503 from Apache, a TLS error: all are "try again after the back-off".
        except Exception:  # noqa: BLE001
            self.failed_connects += 1
            self.closes.append((time.monotonic(), ABNORMAL))
            return ABNORMAL
        self.socket = socket
        self.last_message = time.monotonic()
        reload_requested = False
        heartbeat = asyncio.get_running_loop().create_task(self.keep_alive(socket)) if self.heartbeat else None
        try:
            async for raw in socket:
                self.attempts = 0
                self.last_message = time.monotonic()
                if self.on_frame(json.loads(raw)) == "reload":
                    reload_requested = True
                    break
        except ConnectionClosed:
            pass
        finally:
            self.connected = False
            if heartbeat is not None:
                heartbeat.cancel()
            self.socket = None
        if reload_requested:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.close(), timeout=2)
            self.closes.append((time.monotonic(), 1000))
            await self.reload()
            return 0
        code = socket.close_code if socket.close_code is not None else ABNORMAL
        self.closes.append((time.monotonic(), code))
        return code

    async def keep_alive(self, socket) -> None:
        """The page's heartbeat: a ping after 25 s of silence; no message within 10 s more drops the socket."""
        while True:
            await asyncio.sleep(PING_EVERY)
            if time.monotonic() - self.last_message < PING_EVERY:
                continue
            pinged = time.monotonic()
            with contextlib.suppress(Exception):
                await socket.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(PONG_WITHIN)
            if self.last_message < pinged:
                # Like the page: forget the socket without waiting for a close frame that may never come.
                socket.transport.abort()
                return

    # --- frames ---

    def on_frame(self, frame: dict) -> str | None:
        kind = frame.get("type")
        if kind == "hello":
            self.connected = True
            self.hellos.append(time.monotonic())
        elif kind == "event":
            self.raw_events += 1
            if frame["seq"] in self.socket_seqs:
                self.duplicates += 1
            elif frame["seq"] in self.applied and frame["seq"] not in self.socket_seqs:
                self.redundant += 1
            self.socket_seqs.add(frame["seq"])
            if self.apply(frame) == "gap":
                self.fill_gap()
        elif kind == "presence":
            self.presence, self.presence_at = frame, time.monotonic()
        elif kind == "reset":
            self.resets.append(frame)
            return "reload"
        elif kind == "error":
            self.errors.append(frame)
        return None

    def apply(self, event: dict) -> str:
        """comment-store.js's applyEvent: in order, once."""
        seq = event["seq"]
        if seq <= self.last_seq or seq in self.pending:
            return "duplicate"
        if seq > self.last_seq + 1:
            self.pending[seq] = event
            return "gap"
        self._advance(seq)
        while self.last_seq + 1 in self.pending:
            self._advance(self.pending.pop(self.last_seq + 1)["seq"])
        return "applied"

    def _advance(self, seq: int) -> None:
        now = time.monotonic()
        if seq in self.applied:
            self.applied_twice += 1
        self.applied[seq] = now
        self.last_seq = seq
        self.reached.append((now, seq))

    # --- REST: gaps and reloads ---

    def fill_gap(self) -> None:
        if self.filling is None or self.filling.done():
            self.filling = asyncio.get_running_loop().create_task(self._fill_gap())

    async def _fill_gap(self) -> None:
        while self.pending:
            answer = await asyncio.to_thread(
                self.api.get, f"/api/v1/graphs/{self.graph_id}/events/?after_seq={self.last_seq}&epoch={self.epoch}"
            )
            if answer.status == 409:
                if self.socket is not None:
                    await self.socket.close()
                return
            if answer.status != 200:
                return  # the next reconnect resumes from last_seq anyway
            for event in answer.body["events"]:
                if event["seq"] > self.last_seq and event["seq"] not in self.pending:
                    self.filled_over_rest += 1
                self.apply(event)
            if not answer.body["more"]:
                return

    async def reload(self) -> None:
        """What the page does on `reset`: load the graph and its comments again (here: the seqs they hold)."""
        self.reloads += 1
        while not self.stopped:
            graph = await asyncio.to_thread(self.api.get, f"/api/v1/graphs/{self.graph_id}/")
            if graph.status == 200:
                break
            await asyncio.sleep(backoff_delay(self.attempts, self.rng))
            self.attempts += 1
        seqs = await asyncio.to_thread(comment_seqs, self.api, self.graph_id)
        self.last_seq, self.epoch = graph.body["last_seq"], graph.body["epoch"]
        now = time.monotonic()
        self.pending.clear()
        # Comments written after the graph was read come again with the resume: keep only those it covers.
        for seq in seqs:
            if seq <= self.last_seq and seq not in self.applied:
                self.applied[seq] = now
        self.reached.append((now, self.last_seq))

    # --- judging ---

    def caught_up_at(self, seq: int) -> float | None:
        """When this viewer had applied every event up to `seq` (None if it never did)."""
        return next((when for when, last in self.reached if last >= seq), None)


def comment_seqs(api: Api, graph_id: int) -> list[int]:
    """The seq of every comment of a graph, through the paginated comment list (a page's reload)."""
    seqs, page = [], 1
    while True:
        answer = api.get(f"/api/v1/graphs/{graph_id}/comments/?page_size=200&page={page}")
        if answer.status != 200:
            raise RuntimeError(f"comment list answered {answer.status}: {answer.body or answer.error}")
        seqs += [comment["seq"] for comment in answer.body["results"]]
        if not answer.body["next"]:
            return seqs
        page += 1


def stored_events(api: Api, graph_id: int, after_seq: int = 0) -> list[dict]:
    """Every stored event of a graph after `after_seq`, over REST (all pages)."""
    events: list[dict] = []
    while True:
        answer = api.get(f"/api/v1/graphs/{graph_id}/events/?after_seq={after_seq}")
        if answer.status != 200:
            raise RuntimeError(f"events answered {answer.status}: {answer.body or answer.error}")
        events += answer.body["events"]
        if not answer.body["more"] or not answer.body["events"]:
            return events
        after_seq = answer.body["events"][-1]["seq"]


@dataclass
class Write:
    """One comment the writer tried to post."""

    body: str
    answer: Answer | None = None

    @property
    def seq(self) -> int | None:
        if self.answer is not None and self.answer.status == 201:
            return self.answer.body["seq"]
        return None


class Writer:
    """Posts comments to a graph at a steady rate (each on its own schedule, so a slow answer does not slow the
    others), over several users' tokens, until stopped or `limit` comments were tried."""

    def __init__(self, apis: list[Api], graph_id: int, rate: float, limit: int, label: str = "") -> None:
        self.apis = apis
        self.graph_id = graph_id
        self.interval = 1.0 / rate
        self.limit = limit
        self.label = label
        self.writes: list[Write] = []
        self.stopping = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.in_flight: set[asyncio.Task] = set()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name="writer")

    async def run(self) -> None:
        begun = time.monotonic()
        for number in range(self.limit):
            if self.stopping.is_set():
                break
            write = Write(body=f"resilience {self.label} #{number} {random.getrandbits(48):012x}")
            self.writes.append(write)
            task = asyncio.get_running_loop().create_task(self.post(number, write))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), timeout=max(0, begun + (number + 1) * self.interval - time.monotonic())
                )

    async def post(self, number: int, write: Write) -> None:
        api = self.apis[number % len(self.apis)]
        write.answer = await asyncio.to_thread(
            api.curl_post, f"/api/v1/graphs/{self.graph_id}/comments/", {"body": write.body}
        )

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await self.task
        if self.in_flight:
            await asyncio.gather(*self.in_flight)

    def acknowledged(self) -> dict[int, Write]:
        return {write.seq: write for write in self.writes if write.seq is not None}
