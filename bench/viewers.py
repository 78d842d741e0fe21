"""One load-generator process: a share of the viewers, each a WebSocket that behaves like the graph page.

A viewer connects (with its own token) resuming in the URL (`?after_seq=N`, as the page does; no epoch: the bench's
database is never restored), counts every event by its sequence number (a gap is a lost event, a number seen twice a
duplicate) and notes when each benchmark comment (`bench-...` in its body) arrived. When the socket drops it
reconnects by the page's rules, the ones the scenarios' live client keeps (tests/support/reconnect.py): exponential
back-off from 0.5 s with full jitter, no retry after a final close code (4401, 4404), then it resumes from the last
number it saw. Its TLS is the tests' (tests/support/tls.py): the certificate is not verified.

The coordinator (bench/run.py) drives the process over a multiprocessing pipe with small dict commands; see
`Worker.handle`. Arrival times are time.monotonic(), which every process of the machine shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

# The page's rules and the TLS settings are the tests' (tests/support), shared with the Molecule scenarios. This
# module is imported by bench/run.py and by its load processes (spawned: they import it again), so it finds them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.reconnect import FINAL_CODES, backoff_delay, resume_url
from support.tls import insecure_tls

SEQ = re.compile(rb'"seq":\s*(\d+)')
MARKER = re.compile(rb"bench-[0-9a-f]+-[0-9]+")


class Viewer:
    """The state of one viewer across its reconnections."""

    __slots__ = (
        "closing",
        "dups",
        "hello_at",
        "index",
        "last_seq",
        "missing",
        "open",
        "out_of_order",
        "presence_bytes",
        "presence_frames",
        "task",
    )

    def __init__(self, index: int, after_seq: int):
        self.index = index
        self.last_seq = after_seq
        # Numbers skipped so far: one that arrives later was out of order; those never seen are lost.
        self.missing: set[int] = set()
        self.out_of_order = 0
        self.dups = 0
        self.open = False
        # When the current connection's hello came: the events missed meanwhile follow it (the resume).
        self.hello_at = 0.0
        self.closing = False
        self.presence_frames = 0
        self.presence_bytes = 0
        self.task: asyncio.Task | None = None


class Worker:
    def __init__(self, conn):
        self.conn = conn
        self.viewers: list[Viewer] = []
        self.arrivals: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.opened_at: list[float] = []
        self.connects = 0
        # Sockets that were open (hello received) and closed without the coordinator asking: drops.
        self.drops = 0
        self.inflight = asyncio.Semaphore(64)
        self.ssl = insecure_tls()

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def run_viewer(self, viewer: Viewer, url: str, headers: dict, deadline: float) -> None:
        attempts = 0
        use_ssl = self.ssl if url.startswith("wss:") else None
        while not viewer.closing and time.monotonic() < deadline:
            # At most `inflight` handshakes of this process wait for their hello at once: beyond what the server
            # completes per second, more only queue up until they time out and retry (a congestion collapse).
            await self.inflight.acquire()
            held = True
            final = False
            try:
                async with connect(
                    resume_url(url, viewer.last_seq),
                    ssl=use_ssl,
                    additional_headers=headers,
                    open_timeout=60,
                    ping_interval=None,
                    close_timeout=1,
                    compression=None,
                    max_size=2**23,
                    user_agent_header=None,
                ) as ws:
                    hello = False
                    async for message in ws:
                        data = message.encode() if isinstance(message, str) else message
                        head = data[:24]
                        if b'"event"' in head:
                            self.on_event(viewer, data)
                        elif b'"presence"' in head:
                            viewer.presence_frames += 1
                            viewer.presence_bytes += len(data)
                        elif not hello and b'"hello"' in head:
                            hello = True
                            self.inflight.release()
                            held = False
                            attempts = 0
                            viewer.open = True
                            viewer.hello_at = time.monotonic()
                            self.connects += 1
                            self.opened_at.append(time.monotonic())
                        elif b'"error"' in head:
                            self.error("error frame")
            except ConnectionClosed as closed:
                self.error(f"closed {closed.rcvd.code if closed.rcvd else 'abnormally'}")
                # As the page: not signed in, or no such graph; trying again cannot help.
                final = closed.rcvd is not None and closed.rcvd.code in FINAL_CODES
            except InvalidStatus as refused:
                self.error(f"handshake {refused.response.status_code}")
            except (TimeoutError, OSError) as failed:
                self.error(type(failed).__name__)
            finally:
                if held:
                    self.inflight.release()
                if viewer.open and not viewer.closing:
                    self.drops += 1
                viewer.open = False
            if viewer.closing or final:
                break
            delay = backoff_delay(attempts)
            attempts += 1
            await asyncio.sleep(delay)

    def on_event(self, viewer: Viewer, data: bytes) -> None:
        now = time.monotonic()
        match = SEQ.search(data)
        if match is None:
            self.error("event without seq")
            return
        seq = int(match.group(1))
        if seq <= viewer.last_seq:
            if seq in viewer.missing:
                viewer.missing.discard(seq)
                viewer.out_of_order += 1
            else:
                viewer.dups += 1
                return
        else:
            viewer.missing.update(range(viewer.last_seq + 1, seq))
            viewer.last_seq = seq
        marker = MARKER.search(data)
        if marker is not None:
            self.arrivals.setdefault(marker.group().decode(), []).append(now)

    async def open(self, command: dict) -> dict:
        """Open len(tokens) viewers at `rate` per second (paced, so that the handshakes are not one burst)."""
        deadline = time.monotonic() + command["deadline"]
        self.inflight = asyncio.Semaphore(command.get("inflight", 64))
        interval = 1.0 / command["rate"]
        start = time.monotonic()
        for i, token in enumerate(command["tokens"]):
            headers = {"Authorization": f"Token {token}"} if token else {}
            headers.update(command.get("headers", {}))
            viewer = Viewer(len(self.viewers), command["after_seq"])
            self.viewers.append(viewer)
            viewer.task = asyncio.create_task(self.run_viewer(viewer, command["url"], headers, deadline))
            delay = start + (i + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return {"ok": True}

    def status(self) -> dict:
        return {
            "open": sum(v.open for v in self.viewers),
            "viewers": len(self.viewers),
            "connects": self.connects,
            "drops": self.drops,
            "errors": dict(self.errors),
        }

    def collect(self) -> dict:
        return {
            **self.status(),
            "arrivals": self.arrivals,
            "last_seqs": [v.last_seq for v in self.viewers],
            # Of the viewers connected now only: one still reconnecting is not behind, it is not back yet.
            "last_seqs_open": [v.last_seq for v in self.viewers if v.open],
            "gaps": sum(len(v.missing) for v in self.viewers),
            "out_of_order": sum(v.out_of_order for v in self.viewers),
            "dups": sum(v.dups for v in self.viewers),
            "presence_frames": [v.presence_frames for v in self.viewers],
            "presence_bytes": [v.presence_bytes for v in self.viewers],
            "opened_at": self.opened_at,
        }

    async def close(self) -> dict:
        for viewer in self.viewers:
            viewer.closing = True
            if viewer.task is not None:
                viewer.task.cancel()
        await asyncio.gather(*(v.task for v in self.viewers if v.task is not None), return_exceptions=True)
        self.viewers.clear()
        self.arrivals.clear()
        self.errors.clear()
        self.opened_at.clear()
        self.connects = 0
        self.drops = 0
        return {"ok": True}

    async def handle(self, command: dict) -> dict | None:
        name = command["cmd"]
        if name == "open":
            return await self.open(command)
        if name == "status":
            return self.status()
        if name == "count":
            return {"n": len(self.arrivals.get(command["marker"], []))}
        if name == "collect":
            return self.collect()
        if name == "behind":
            # Connected viewers without event `seq`: those connected for `settled` seconds or more, and those whose
            # resume may still be on its way (connected more recently).
            settled = time.monotonic() - command["settled"]
            lagging = [v for v in self.viewers if v.open and v.last_seq < command["seq"]]
            return {
                "settled": sum(1 for v in lagging if v.hello_at <= settled),
                "resuming": sum(1 for v in lagging if v.hello_at > settled),
            }
        if name == "reset_arrivals":
            self.arrivals.clear()
            self.errors.clear()
            self.opened_at.clear()
            for viewer in self.viewers:
                viewer.presence_frames = viewer.presence_bytes = 0
            return {"ok": True}
        if name == "close":
            return await self.close()
        return None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue = asyncio.Queue()
        loop.add_reader(self.conn.fileno(), lambda: commands.put_nowait(self.conn.recv()))
        while True:
            command = await commands.get()
            if command["cmd"] == "exit":
                await self.close()
                self.conn.send({"ok": True})
                return
            # Commands run one after another, except "open", which paces itself in the background so that the
            # coordinator can sample the connect curve meanwhile.
            if command["cmd"] == "open":
                self.conn.send({"ok": True})
                asyncio.create_task(self.open(command))  # noqa: RUF006 - held by the loop until it ends
                continue
            self.conn.send(await self.handle(command))


def main(conn, cpus: set[int] | None) -> None:
    """Entry point of a worker process (multiprocessing target)."""
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cpus)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(Worker(conn).serve())
