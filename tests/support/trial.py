"""One fault trial: viewers on a fresh graph, a steady writer, a fault, and the count of what arrived.

A trial:
1. imports a small public graph (its stream starts at seq 0) and connects V viewers to it through Apache (TLS),
   each keeping the page's reconnect and resume rules (support/live_client.py, support/reconnect.py);
2. starts a writer posting comments at a steady rate over HTTPS;
3. injects the fault (the test's `inject`), keeps writing until the API has said 201 again and a few seconds more;
4. waits (bounded) until every viewer holds every stored event, then compares, for each viewer, the seqs it applied
   with the stored events and the writer's 201s.

Recovery time: from the start of the fault until every viewer had applied, in order, every event up to the first
comment acknowledged after the fault's last step (the first 201 whose request started after it), and every viewer
that was dropped had connected again (its last hello; its resume follows at once): the stack is whole again, for
writers and for every viewer.
"""

# Testinfra checks are plain pytest asserts; the docker CLI is run on the test's own container.

from __future__ import annotations

import asyncio
import collections
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from support.api import Api
from support.live_client import Viewer, Writer, stored_events

# An answer is due within a few seconds (PostgreSQL's connect timeout is 3 s, Redis's 2 s); how fast it came is
# reported (the table's slowest answer, docs/resilience.md), never asserted. Only an answer slower than this is taken
# as a hang, and fails: ten times what a busy shared machine has shown.
ANSWER_HANG_SECONDS = 60.0
# Nodes and an edge for the comments to anchor to; the comments here are on the whole graph.
ELEMENTS = {
    "nodes": [{"data": {"id": "TP53"}}, {"data": {"id": "MDM2"}}],
    "edges": [{"data": {"id": "e1", "source": "TP53", "target": "MDM2"}}],
}

# Daphne's connections with the pid holding each: as the app user, since root without CAP_SYS_PTRACE (a container)
# may not read the file descriptors of another user's processes.
# The workers' sockets are ports 9099 + N (one per worker, comments_daphne_port of role comments).
SOCKETS = "runuser -u comments -- ss -Htnp state established '( sport >= :9099 and sport <= :9163 )'"

RESULTS: list[Outcome] = []


class Stack:
    """The host under test: commands inside it (Testinfra), and the container itself (docker)."""

    def __init__(self, host, container: str, https_port: int) -> None:
        self.host = host
        self.container = container
        self.https_port = https_port
        self.base_url = f"https://127.0.0.1:{https_port}"

    def ws_url(self, graph_id: int) -> str:
        return f"wss://127.0.0.1:{self.https_port}/ws/graphs/{graph_id}/"

    def run(self, command: str) -> str:
        result = self.host.run(command)
        assert result.rc == 0, f"{command}: {result.stdout}{result.stderr}"
        return result.stdout

    async def arun(self, command: str) -> str:
        return await asyncio.to_thread(self.run, command)

    def docker(self, *args: str) -> str:
        # The docker CLI with arguments of this test, on the test's own container.
        return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=180).stdout

    def workers(self) -> dict[str, int]:
        """Daphne workers by supervisor program name (comments-daphne-00, one program each) -> pid, running ones."""
        workers = {}
        for line in self.host.run("supervisorctl status").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0].startswith("comments-daphne-") and parts[1] == "RUNNING":
                workers[parts[0]] = int(parts[3].rstrip(","))
        return workers

    def sockets_by_worker(self) -> collections.Counter:
        """Established connections on the Daphne workers' ports, by pid of the worker holding them."""
        out = self.host.run(SOCKETS).stdout
        return collections.Counter(int(part.split("pid=")[1].split(",")[0]) for part in out.split() if "pid=" in part)

    def worker_connections(self) -> set[tuple[str, int]]:
        """(peer address, pid) of every established connection on the Daphne workers' ports."""
        found = set()
        for line in self.host.run(SOCKETS).stdout.splitlines():
            fields = line.split()
            pid = next((int(f.split("pid=")[1].split(",")[0]) for f in fields if "pid=" in f), None)
            if pid is not None:
                found.add((fields[3], pid))
        return found


@dataclass
class Outcome:
    """The figures of one fault, as docs/resilience.md shows them."""

    fault: str
    viewers: int
    acknowledged: int
    stored: int
    delivered: int  # acknowledged comments applied by every viewer (each viewer's count is the same when none is lost)
    lost: int  # (viewer, acknowledged comment) pairs never applied
    duplicated: int  # (viewer, seq) applied more than once after dedupe
    raw_duplicates: int  # event frames dropped by the clients' dedupe
    unknown_committed: int  # writes that got no answer but were stored (the viewers got them too)
    recovery_seconds: float
    worst_delay_seconds: float  # the longest an acknowledged comment took to reach a viewer, after its 201
    reconnects: int
    close_codes: dict[str, int]
    answers: dict[str, int]
    slowest_answer_seconds: float
    filled_over_rest: int
    notes: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def describe(answer) -> str:
    """What the API answered, in a word: `201`, `503 unavailable`, `no answer (ConnectionRefusedError)`."""
    if answer is None:
        return "not sent"
    if answer.status is None:
        return f"no answer ({answer.error.split(':')[0]})"
    code = answer.body.get("code", "") if isinstance(answer.body, dict) and answer.status != 201 else ""
    return f"{answer.status} {code}".strip()


class Trial:
    def __init__(
        self,
        stack: Stack,
        tokens: dict[str, str],
        fault: str,
        viewers: int = 60,
        users: int = 6,
        rate: float = 1.0,
        writes: int = 400,
    ) -> None:
        self.stack = stack
        # The writer's bound: a step that lasts minutes (a playbook run, molecule/cluster) needs more than a fault.
        self.writes = writes
        self.users = users
        self.tokens = tokens
        self.fault = fault
        self.viewer_count = viewers
        self.rate = rate
        self.viewers: list[Viewer] = []
        self.writer: Writer | None = None
        self.graph_id = 0
        self.epoch = ""
        self.t0 = 0.0
        self.t_end = 0.0
        self.notes: dict[str, object] = {}

    def api(self, user: str) -> Api:
        return Api(self.stack.base_url, self.tokens[user])

    def fault_started(self) -> None:
        self.t0 = time.monotonic()

    async def open_graph(self) -> None:
        made = await asyncio.to_thread(
            self.api("writer-0").post,
            "/api/v1/graphs/",
            {"name": f"Resilience: {self.fault}", "public": True, "elements": ELEMENTS},
        )
        assert made.status == 201, made.body or made.error
        self.graph_id, self.epoch = made.body["id"], made.body["epoch"]
        assert made.body["last_seq"] == 0

    def viewer(self, number: int, user: str | None = None, **options) -> Viewer:
        user = user or f"viewer-{number % self.users:03d}"
        return Viewer(
            self.stack.ws_url(self.graph_id),
            self.api(user),
            self.graph_id,
            0,
            self.epoch,
            name=f"{user}#{number}",
            **options,
        )

    async def connect_viewers(self, timeout: float) -> None:
        for number in range(self.viewer_count):
            viewer = self.viewer(number)
            self.viewers.append(viewer)
            viewer.start()
            if number % 50 == 49:  # a page load is not a stampede: 50 at a time
                await wait_for(self.all_settled, timeout, "viewers to connect", self.status)
        await wait_for(self.all_settled, timeout, "viewers to connect", self.status)
        denied = [v for v in self.viewers if v.denied is not None]
        assert not denied, f"{len(denied)} viewers refused for good while connecting: {self.status()}"

    def all_settled(self) -> bool:
        """Every viewer connected, or refused for good (4401, 4404: it will not try again)."""
        return all(v.connected or v.denied is not None for v in self.viewers)

    def status(self) -> str:
        """Where the viewers are, for a failure's message."""
        waiting = [v for v in self.viewers if not v.connected]
        codes = collections.Counter(code for v in waiting for _, code in v.closes)
        errors = collections.Counter(e.get("code") for v in waiting for e in v.errors)
        return (
            f"{len(waiting)} of {len(self.viewers)} viewers not connected; their closes {dict(codes)}, "
            f"errors {dict(errors)}, failed handshakes {sum(v.failed_connects for v in waiting)}, "
            f"the last seqs furthest behind: {sorted(v.last_seq for v in self.viewers)[:5]}"
        )

    async def run(
        self,
        inject: Callable[[Trial], Awaitable[None]],
        before: float = 3.0,
        after: float = 5.0,
        watch: Callable[[Trial], Awaitable[None]] | None = None,
        during: Callable[[Trial], Awaitable[None]] | None = None,
        connect_timeout: float = 60.0,
        catch_up_timeout: float = 60.0,
    ) -> Outcome:
        await self.open_graph()
        try:
            await self.connect_viewers(connect_timeout)
            self.writer = Writer(
                [self.api(f"writer-{i}") for i in range(6)],
                self.graph_id,
                self.rate,
                limit=self.writes,
                label=self.fault,
            )
            self.writer.start()
            await asyncio.sleep(before)
            self.t0 = time.monotonic()
            await inject(self)
            self.t_end = time.monotonic()
            measuring = asyncio.get_running_loop().create_task(during(self)) if during is not None else None
            # Write on until the API said 201 to a request made after the fault, then a few seconds more.
            await wait_for(lambda: self.first_ack_after(self.t_end) is not None, 240, "a 201 after the fault")
            await asyncio.sleep(after)
            await self.writer.stop()
            stored = await asyncio.to_thread(stored_events, self.api("writer-0"), self.graph_id)
            last = stored[-1]["seq"] if stored else 0
            await wait_for(
                lambda: all(v.last_seq >= last or v.denied for v in self.viewers),
                catch_up_timeout,
                "viewers to catch up",
            )
            if measuring is not None:
                await measuring
            if watch is not None:
                await watch(self)
            self.notes["connected_at_end"] = sum(v.connected for v in self.viewers)
            outcome = self.judge(stored)
        finally:
            await asyncio.gather(*(viewer.stop() for viewer in self.viewers))
            if self.writer is not None:
                await self.writer.stop()
        RESULTS.append(outcome)
        print("\n" + format_table([outcome]))
        return outcome

    def first_ack_after(self, moment: float):
        acked = [w for w in self.writer.writes if w.answer is not None and w.answer.started >= moment and w.seq]
        return min(acked, key=lambda w: w.answer.started) if acked else None

    def worst_delay(self, acked: dict) -> float:
        """The longest time from a 201 to the moment a viewer applied that comment (0 if it came before the 201)."""
        delays = [
            v.applied[seq] - (write.answer.started + write.answer.seconds)
            for seq, write in acked.items()
            for v in self.viewers
            if seq in v.applied
        ]
        return max([0.0, *delays])

    def judge(self, stored: list[dict]) -> Outcome:
        acked = self.writer.acknowledged()
        stored_seqs = {event["seq"] for event in stored}
        bodies = {event["comment"]["body"]: event["seq"] for event in stored}
        unanswered = [w for w in self.writer.writes if w.answer is not None and w.answer.status is None]
        unknown_committed = [w for w in unanswered if w.body in bodies]
        lost = sum(len(set(acked) - set(v.applied)) for v in self.viewers)
        probe = self.first_ack_after(self.t_end)
        caught = [v.caught_up_at(probe.seq) for v in self.viewers]
        # ... and every viewer that was dropped is back: its last hello (the resume follows it at once).
        back = [v.hellos[-1] for v in self.viewers if v.hellos and v.hellos[-1] > self.t0]
        recovery = max(caught + back) - self.t0 if probe is not None and all(caught) else float("inf")
        answers = collections.Counter(describe(w.answer) for w in self.writer.writes)
        codes = collections.Counter(str(code) for v in self.viewers for _, code in v.closes)
        self.notes.update(
            stored_not_acknowledged=sorted(stored_seqs - set(acked)),
            extra_applied=sum(len(set(v.applied) - stored_seqs) for v in self.viewers),
            answered_writes_stored_anyway=sorted(
                bodies[w.body]
                for w in self.writer.writes
                if w.answer is not None and w.answer.status not in (201, None) and w.body in bodies
            ),
        )
        return Outcome(
            fault=self.fault,
            viewers=len(self.viewers),
            acknowledged=len(acked),
            stored=len(stored_seqs),
            delivered=min((len(set(acked) & set(v.applied)) for v in self.viewers), default=0),
            lost=lost,
            duplicated=sum(v.applied_twice for v in self.viewers),
            raw_duplicates=sum(v.duplicates for v in self.viewers),
            unknown_committed=len(unknown_committed),
            recovery_seconds=round(recovery, 1),
            worst_delay_seconds=round(self.worst_delay(acked), 1),
            reconnects=sum(len(v.hellos) - 1 for v in self.viewers),
            close_codes=dict(codes),
            answers=dict(answers),
            slowest_answer_seconds=round(max((w.answer.seconds for w in self.writer.writes if w.answer), default=0), 2),
            filled_over_rest=sum(v.filled_over_rest for v in self.viewers),
            notes=self.notes,
        )


async def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, status: Callable[[], str] | None = None
) -> float:
    """Wait until `condition()` holds (bounded); returns the seconds it took."""
    begun = time.monotonic()
    while not condition():
        if time.monotonic() - begun > timeout:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}" + (f": {status()}" if status else "")
            )
        await asyncio.sleep(0.1)
    return time.monotonic() - begun


def format_table(outcomes: list[Outcome]) -> str:
    rows = [
        "| fault | viewers | acknowledged | delivered to each | lost | duplicated | raw duplicates dropped "
        "| recovery (s) | longest wait for a comment (s) | reconnects (close codes) "
        "| what the API answered (slowest answer) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        answers = ", ".join(f"{what} x{count}" for what, count in sorted(o.answers.items()))
        codes = ", ".join(f"{code} x{count}" for code, count in sorted(o.close_codes.items())) or "none"
        rows.append(
            f"| {o.fault} | {o.viewers} | {o.acknowledged} | {o.delivered} | {o.lost} | {o.duplicated} "
            f"| {o.raw_duplicates} | {o.recovery_seconds} | {o.worst_delay_seconds} | {o.reconnects} ({codes}) "
            f"| {answers} ({o.slowest_answer_seconds} s) |"
        )
    return "\n".join(rows)
