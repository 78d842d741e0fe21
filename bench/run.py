"""The benchmark (docs/performance.md), run by bench/bench.sh against the container it deployed.

Runs inside the container's network namespace (bench.sh starts it with nsenter), so every connection goes to
127.0.0.1 of the container: Apache on 443 (TLS), the Daphne workers on 9099 + N, the plain server on 9300. The
stack is pinned to CPU 0 (`docker update --cpuset-cpus`), this process and its load workers to CPU 1.

Targets, each measured for the deployed stack (through Apache over TLS), Daphne directly and the plain server:
fan-out reach-all (POST to the moment every viewer has the event), loss and duplicates (by sequence number), server
CPU per delivered message (/proc counters of Apache, Daphne, Redis), threads/RSS/descriptors per socket, the connect
curve, presence frames; then writes, a 10,000-socket hold with a graceful restart, and a reconnect storm.
Every loop is bounded in count and time. Output: bench/results/<mode>-<time>.json (+ .png for full), and for the
smoke run build/junit/bench-smoke.xml, failing only on lost or repeated events and errors.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import requests
import urllib3
from websockets.sync.client import connect as ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
import viewers

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# Not 9200-92xx: the Daphne workers serve their metrics there (daphne_metrics_port_base).
PLAIN_PORT = 9300
STACK_CPU = "0"
# Handshakes each load process keeps waiting at once (4 processes: 256 in all).
INFLIGHT = 64
LOAD_CPUS = {1}
# After a reconnect storm, a viewer connected this long has had time to read its resume (the events it missed).
RESUME_SETTLE_S = 10.0

SIZES = {
    "smoke": {
        "ladder": {"stack": [50], "daphne": [50], "plain": [50]},
        "comments": 5,
        "writes": 20,
        "writes_concurrent": 5,
        "hold": 20,
        "storm": 50,
        "users": 60,
        "workers": 2,
        "rate": 100,
    },
    "full": {
        "ladder": {"stack": [100, 1000, 5000, 10000], "daphne": [100, 1000, 5000], "plain": [100, 1000, 5000, 10000]},
        "comments": 10,
        "writes": 200,
        "writes_concurrent": 30,
        "hold": int(os.environ.get("BENCH_HOLD_SECONDS", "600")),
        "storm": 5000,
        "users": 10000,
        "workers": 4,
        "rate": 400,
    },
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class Container:
    def __init__(self, name: str):
        self.name = name

    def run(self, *args: str, env: dict | None = None, check: bool = True) -> str:
        options = [item for key, value in (env or {}).items() for item in ("--env", f"{key}={value}")]
        result = subprocess.run(
            ["docker", "exec", *options, self.name, *args], capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker exec {' '.join(args)}: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def procstat(self) -> dict:
        return json.loads(self.run("python3", "/opt/bench/procstat.py"))


def server_cpu(before: dict, after: dict, groups: tuple[str, ...]) -> float:
    return sum(after.get(g, {}).get("cpu", 0.0) - before.get(g, {}).get("cpu", 0.0) for g in groups)


class Load:
    """The load workers: processes on the load CPU, each holding a share of the viewers."""

    def __init__(self, count: int):
        context = multiprocessing.get_context("spawn")
        self.pipes = []
        self.processes = []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=viewers.main, args=(child, LOAD_CPUS), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def ask(self, command: dict) -> list[dict]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def open(
        self, url: str | list[str], tokens: list[str], after_seq: int, rate: float, deadline: float, headers=None
    ) -> None:
        """Each load process opens its share of the viewers; given several URLs, process i uses URL i modulo."""
        share = len(self.pipes)
        urls = [url] if isinstance(url, str) else url
        for i, pipe in enumerate(self.pipes):
            pipe.send(
                {
                    "cmd": "open",
                    "url": urls[i % len(urls)],
                    "tokens": tokens[i::share],
                    "after_seq": after_seq,
                    "rate": max(1.0, rate / share),
                    "deadline": deadline,
                    "headers": headers or {},
                    "inflight": INFLIGHT,
                }
            )
        for pipe in self.pipes:
            pipe.recv()

    def status(self) -> dict:
        answers = self.ask({"cmd": "status"})
        errors: dict[str, int] = {}
        for answer in answers:
            for kind, count in answer["errors"].items():
                errors[kind] = errors.get(kind, 0) + count
        return {
            "open": sum(a["open"] for a in answers),
            "viewers": sum(a["viewers"] for a in answers),
            "connects": sum(a["connects"] for a in answers),
            "drops": sum(a["drops"] for a in answers),
            "errors": errors,
        }

    def behind(self, seq: int, settled: float) -> dict[str, int]:
        """Connected viewers without event `seq`: connected `settled` seconds ago or more, or more recently."""
        answers = self.ask({"cmd": "behind", "seq": seq, "settled": settled})
        return {key: sum(a[key] for a in answers) for key in ("settled", "resuming")}

    def collect(self) -> dict:
        answers = self.ask({"cmd": "collect"})
        arrivals: dict[str, list[float]] = {}
        for answer in answers:
            for marker, times in answer["arrivals"].items():
                arrivals.setdefault(marker, []).extend(times)
        merged = self.status()
        merged.update(
            arrivals=arrivals,
            last_seqs=[s for a in answers for s in a["last_seqs"]],
            last_seqs_open=[s for a in answers for s in a["last_seqs_open"]],
            gaps=sum(a["gaps"] for a in answers),
            dups=sum(a["dups"] for a in answers),
            out_of_order=sum(a["out_of_order"] for a in answers),
            presence_frames=[s for a in answers for s in a["presence_frames"]],
            presence_bytes=[s for a in answers for s in a["presence_bytes"]],
            opened_at=sorted(t for a in answers for t in a["opened_at"]),
        )
        return merged

    def close(self) -> None:
        self.ask({"cmd": "close"})

    def stop(self) -> None:
        self.ask({"cmd": "exit"})
        for process in self.processes:
            process.join(timeout=10)


class Target:
    """Where viewers connect and how a comment is made for them."""

    def __init__(self, name: str, url: str | list[str], poster: Poster | None = None, plain: bool = False):
        self.name = name
        self.url = url
        self.poster = poster
        self.plain = plain
        self.control = None
        self.plain_seq = 0

    def last_seq(self) -> int:
        if self.plain:
            with ws_connect(self.url) as ws:
                return json.loads(ws.recv(timeout=10))["last_seq"]
        return self.poster.last_seq()

    def post(self, marker: str) -> int:
        """Make one comment whose body holds the marker; return its sequence number."""
        if self.plain:
            if self.control is None:
                self.control_cm = ws_connect(self.url)
                self.control = self.control_cm.__enter__()
                self.plain_seq = json.loads(self.control.recv(timeout=10))["last_seq"]
            self.control.send(json.dumps({"type": "post", "marker": marker}))
            self.plain_seq += 1
            return self.plain_seq
        return self.poster.post(marker)["seq"]

    def close(self) -> None:
        if self.control is not None:
            self.control_cm.__exit__(None, None, None)
            self.control = None


class Poster:
    """POSTs comments as alice over HTTPS through Apache (or over HTTP to Daphne directly), with keep-alive."""

    def __init__(self, base: str, graph: int, token: str, headers: dict | None = None):
        self.base = base
        self.graph = graph
        self.headers = {"Authorization": f"Token {token}", **(headers or {})}
        self.session = self.new_session()

    def new_session(self) -> requests.Session:
        # verify=False is also given to each request: requests would otherwise take REQUESTS_CA_BUNDLE from the
        # environment over the session's setting. The container's certificate is self-signed.
        session = requests.Session()
        session.verify = False
        session.headers.update(self.headers)
        return session

    def last_seq(self) -> int:
        response = self.session.get(
            f"{self.base}/api/v1/graphs/{self.graph}/events/?after_seq=0", timeout=30, verify=False
        )
        response.raise_for_status()
        return response.json()["last_seq"]

    def post(self, body: str, session: requests.Session | None = None) -> dict:
        response = (session or self.session).post(
            f"{self.base}/api/v1/graphs/{self.graph}/comments/", json={"body": body}, timeout=30, verify=False
        )
        response.raise_for_status()
        return response.json()


class Bench:
    def __init__(self, mode: str, container: Container):
        self.mode = mode
        self.size = SIZES[mode]
        self.container = container
        self.run_id = uuid.uuid4().hex[:8]
        self.report: dict = {
            "mode": mode,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "phases": {},
            "failures": [],
        }
        self.counter = 0

    # --- set-up ---

    def prepare(self) -> None:
        # Every run starts from freshly started servers: the baseline (what the servers hold with no viewer) and
        # the CPU counters are then this run's own.
        log("restarting Apache and the Daphne workers")
        self.container.run("systemctl", "restart", "apache2", "supervisor")
        for _ in range(60):
            if self.container.run("sh", "-c", "supervisorctl status | grep -c RUNNING", check=False).strip() == "2":
                break
            time.sleep(1)
        log("loading the demo data and the hall's viewers")
        self.container.run("/usr/local/bin/comments-manage", "load_demo", env={"DEMO_PASSWORD": uuid.uuid4().hex})
        script = (BENCH / "setup_hall.py").read_text()
        out = self.container.run(
            "/usr/local/bin/comments-manage", "shell", "-c", script, env={"BENCH_USERS": str(self.size["users"])}
        )
        hall = json.loads(out.strip().splitlines()[-1])
        self.graph = hall["graph"]
        self.tokens = hall["tokens"]
        self.apache = Poster("https://127.0.0.1", self.graph, hall["poster"])
        # Daphne serves Django over HTTP too; the header says what Apache would have said.
        self.direct = Poster(
            "http://127.0.0.1:9099",
            self.graph,
            hall["poster"],
            {"Host": "localhost", "X-Forwarded-Proto": "https"},
        )
        log("starting the plain websockets server in the container")
        package = Path(__import__("websockets").__file__).parent
        self.container.run("mkdir", "-p", "/opt/bench/lib")
        for source, dest in (
            (package, "/opt/bench/lib/"),
            (BENCH / "plain_server.py", "/opt/bench/"),
            (BENCH / "procstat.py", "/opt/bench/"),
        ):
            subprocess.run(["docker", "cp", str(source), f"{self.container.name}:{dest}"], check=True)
        self.stop_plain()
        self.plain_pid = self.container.run(
            "sh",
            "-c",
            f"PYTHONPATH=/opt/bench/lib nohup python3 /opt/bench/plain_server.py --port {PLAIN_PORT}"
            " >/tmp/plain_server.log 2>&1 & echo $! >/opt/bench/plain_server.pid; cat /opt/bench/plain_server.pid",
        ).strip()
        if (os.cpu_count() or 1) >= 2:
            subprocess.run(
                ["docker", "update", "--cpuset-cpus", STACK_CPU, self.container.name], check=True, capture_output=True
            )
            os.sched_setaffinity(0, LOAD_CPUS)
            self.report["pinning"] = {"stack": STACK_CPU, "load": sorted(LOAD_CPUS)}
        time.sleep(1)
        BASELINE.update(self.container.procstat())
        self.report["baseline"] = {g: {k: v for k, v in s.items() if k != "pids"} for g, s in BASELINE.items()}
        self.targets = {
            "stack": Target("stack", f"wss://127.0.0.1/ws/graphs/{self.graph}/", self.apache),
            # Every worker on its own port (9099 + N): each load process connects to one of them.
            "daphne": Target(
                "daphne",
                [f"ws://127.0.0.1:{port}/ws/graphs/{self.graph}/" for port in self.daphne_ports()],
                self.apache,
            ),
            "plain": Target("plain", f"ws://127.0.0.1:{PLAIN_PORT}/", plain=True),
        }

    def daphne_ports(self) -> list[int]:
        """The Daphne workers' ports: one supervisor program per worker, comments-daphne-NN on 9099 + NN."""
        status = self.container.run("sh", "-c", "supervisorctl status || true")
        names = [line.split()[0] for line in status.splitlines() if line.startswith("comments-daphne-")]
        assert names, f"no Daphne worker in supervisorctl status:\n{status}"
        return [9099 + int(name.rsplit("-", 1)[1]) for name in sorted(names)]

    def stop_plain(self) -> None:
        """Stop the plain server this bench started (by the pid it wrote), if it runs."""
        self.container.run(
            "sh", "-c", "test -s /opt/bench/plain_server.pid && kill $(cat /opt/bench/plain_server.pid) || true"
        )

    def marker(self) -> str:
        self.counter += 1
        return f"bench-{self.run_id}-{self.counter}"

    # --- viewers ---

    def connect(self, target: Target, n: int, timeout: float, deadline: float) -> dict:
        """Open n viewers and sample the connect curve until all are open or the timeout passes."""
        after = target.last_seq()
        start = time.monotonic()
        self.load.open(
            target.url, self.tokens[:n] if not target.plain else [""] * n, after, self.size["rate"], deadline
        )
        curve = []
        while True:
            status = self.load.status()
            elapsed = time.monotonic() - start
            curve.append((round(elapsed, 2), status["open"]))
            if status["open"] >= n or elapsed > timeout:
                break
            time.sleep(0.5)
        return {
            "after_seq": after,
            "seconds": round(time.monotonic() - start, 2),
            "open": status["open"],
            "curve": curve,
            "errors": status["errors"],
        }

    def wait_delivery(self, marker: str, expected: int, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = sum(a["n"] for a in self.load.ask({"cmd": "count", "marker": marker}))
            if got >= expected:
                return
            time.sleep(0.05)

    def fanout(self, target: Target, n: int, hold: int = 0, storm: bool = False) -> dict:
        log(f"fan-out: {n} viewers of {target.name}")
        connect_timeout = 30 + n / 25
        deadline = connect_timeout + 120 + self.size["comments"] * 12 + hold
        result = {"viewers": n, "connect": self.connect(target, n, connect_timeout, deadline)}
        opened = result["connect"]["open"]
        time.sleep(min(5, 1 + n / 2000))
        presence = self.load.collect()
        result["presence"] = {
            "frames_per_viewer_max": max(presence["presence_frames"], default=0),
            "frames_total": sum(presence["presence_frames"]),
            "bytes_per_frame_max": max(
                (b // f for b, f in zip(presence["presence_bytes"], presence["presence_frames"], strict=True) if f),
                default=0,
            ),
        }
        self.load.ask({"cmd": "reset_arrivals"})
        # The cost of holding the sockets idle (pings), subtracted from the cost of the fan-out below.
        idle_before = self.container.procstat()
        time.sleep(3)
        idle_after = self.container.procstat()
        groups = ("plain",) if target.plain else ("apache", "daphne", "redis")
        idle_rate = server_cpu(idle_before, idle_after, groups) / 3
        before = self.container.procstat()
        t_start = time.monotonic()
        sent: dict[str, float] = {}
        last_seq = None
        for _ in range(self.size["comments"]):
            marker = self.marker()
            expected = self.load.status()["open"]
            sent[marker] = time.monotonic()
            last_seq = target.post(marker)
            self.wait_delivery(marker, expected, timeout=10)
        after = self.container.procstat()
        window = time.monotonic() - t_start
        time.sleep(0.5)
        data = self.load.collect()
        reach_all, each = [], []
        missing = 0
        for marker, t0 in sent.items():
            times = data["arrivals"].get(marker, [])
            missing += max(0, opened - len(times))
            if times:
                each.extend(t - t0 for t in times)
                if len(times) >= opened:
                    reach_all.append(max(times) - t0)
        delivered = sum(len(data["arrivals"].get(m, [])) for m in sent)
        raw = server_cpu(before, after, groups)
        net = max(0.0, raw - idle_rate * window)
        tail_missing = sum(1 for s in data["last_seqs"] if last_seq is not None and s < last_seq)
        result.update(
            comments=len(sent),
            delivered=delivered,
            missing=missing,
            gaps=data["gaps"],
            dups=data["dups"],
            out_of_order=data["out_of_order"],
            viewers_behind=tail_missing,
            errors=data["errors"],
            reach_all_ms={
                "p50": ms(pct(reach_all, 50)),
                "p99": ms(pct(reach_all, 99)),
                "max": ms(max(reach_all, default=None)),
                "complete": len(reach_all),
            },
            delivery_ms={"p50": ms(pct(each, 50)), "p99": ms(pct(each, 99))},
            cpu={
                "server_seconds": round(raw, 3),
                "idle_rate_per_s": round(idle_rate, 4),
                "us_per_delivered": round(net / delivered * 1e6, 2) if delivered else None,
                "groups": groups,
                "wsgi_postgres_seconds": round(server_cpu(before, after, ("wsgi", "postgres")), 3),
            },
            per_socket=per_socket(after, opened, target),
        )
        if hold:
            result["hold"] = self.hold(target, opened, hold)
        if storm:
            result["storm"] = self.storm(target, opened)
        self.load.close()
        target.close()
        time.sleep(1)
        return result

    # --- writes ---

    def writes(self, poster: Poster, name: str) -> dict:
        log(f"writes: {name}")
        session = poster.new_session()
        poster.post("warm-up", session)
        latencies = []
        for i in range(self.size["writes"]):
            t0 = time.perf_counter()
            poster.post(f"write {i}", session)
            latencies.append(time.perf_counter() - t0)
        concurrent_lat: list[float] = []
        errors = 0
        kinds: dict[str, int] = {}
        lock = threading.Lock()

        def one_client(k: int) -> None:
            nonlocal errors
            s = poster.new_session()
            for i in range(self.size["writes_concurrent"]):
                t0 = time.perf_counter()
                try:
                    poster.post(f"write c{k}-{i}", s)
                except requests.RequestException as failed:
                    with lock:
                        errors += 1
                        kind = str(failed)[:80]
                        kinds[kind] = kinds.get(kind, 0) + 1
                    continue
                with lock:
                    concurrent_lat.append(time.perf_counter() - t0)

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(one_client, range(16)))
        elapsed = time.perf_counter() - start
        return {
            "sequential": {
                "n": len(latencies),
                "p50_ms": ms(statistics.median(latencies)),
                "p99_ms": ms(pct(latencies, 99)),
            },
            "concurrency_16": {
                "n": len(concurrent_lat),
                "errors": errors,
                "error_kinds": kinds,
                "comments_per_s": round(len(concurrent_lat) / elapsed, 1),
                "p50_ms": ms(pct(concurrent_lat, 50)),
                "p99_ms": ms(pct(concurrent_lat, 99)),
            },
        }

    # --- hold and storm ---

    def hold(self, target: Target, opened: int, seconds: int) -> dict:
        """Keep the viewers open for `seconds`, with `apache2ctl graceful` half-way (logrotate's nightly one)."""
        log(f"hold: {opened} viewers through Apache for {seconds}s, apache2ctl graceful half-way")
        result = {"viewers": opened, "seconds": seconds}
        base = self.load.status()
        samples = []
        start = time.monotonic()
        graceful_at = None
        while time.monotonic() - start < seconds:
            if graceful_at is None and time.monotonic() - start >= seconds / 2:
                self.container.run("apache2ctl", "graceful")
                graceful_at = round(time.monotonic() - start, 1)
                time.sleep(2)
                result["after_graceful"] = per_socket(self.container.procstat(), opened, target)
            status = self.load.status()
            samples.append((round(time.monotonic() - start, 1), status["open"]))
            time.sleep(5)
        marker = self.marker()
        expected = self.load.status()["open"]
        t0 = time.monotonic()
        seq = target.post(marker)
        self.wait_delivery(marker, expected, timeout=15)
        data = self.load.collect()
        times = data["arrivals"].get(marker, [])
        result.update(
            open_min=min((s for _, s in samples), default=0),
            open_end=data["open"],
            drops=data["drops"] - base["drops"],
            late_first_connects=data["connects"] - base["connects"] - (data["drops"] - base["drops"]),
            graceful_at_s=graceful_at,
            errors=data["errors"],
            curve=samples,
            final_comment={"delivered": len(times), "reach_all_ms": ms(max(times) - t0 if times else None)},
            gaps=data["gaps"],
            dups=data["dups"],
            out_of_order=data["out_of_order"],
            viewers_behind=sum(1 for s in data["last_seqs"] if s < seq),
            per_socket=per_socket(self.container.procstat(), opened, target),
            error_log=self.container.run("sh", "-c", "grep -c AH03490 /var/log/apache2/error.log || true").strip(),
        )
        return result

    def storm(self, target: Target, opened: int) -> dict:
        """Restart Apache under the open viewers; sample the sockets until every one is back and resumed."""
        log(f"reconnect storm: {opened} viewers, systemctl restart apache2")
        result = {"viewers": opened}
        base = self.load.status()
        stop = threading.Event()
        post_lat: list[float] = []
        post_errors = [0]
        last = [0]

        def keep_posting() -> None:
            session = self.apache.new_session()
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    last[0] = self.apache.post(self.marker(), session)["seq"]
                    post_lat.append(time.perf_counter() - t0)
                except requests.RequestException:
                    post_errors[0] += 1
                    session = self.apache.new_session()
                stop.wait(0.25)

        poster = threading.Thread(target=keep_posting, daemon=True)
        poster.start()
        time.sleep(2)
        start = time.monotonic()
        restart = threading.Thread(target=self.container.run, args=("systemctl", "restart", "apache2"), daemon=True)
        restart.start()
        curve = []
        dropped = False
        back_at = None
        while time.monotonic() - start < 90:
            status = self.load.status()
            elapsed = round(time.monotonic() - start, 2)
            curve.append((elapsed, status["open"]))
            if status["open"] < opened:
                dropped = True
            if dropped and status["open"] >= opened and status["connects"] - base["connects"] >= opened:
                back_at = elapsed
                break
            time.sleep(0.25)
        restart.join(timeout=120)
        time.sleep(3)
        stop.set()
        poster.join(timeout=35)
        # A viewer back in the last moments reads the events it missed after its hello (the resume), which under a
        # storm takes a while: wait, bounded, until every viewer connected for RESUME_SETTLE_S has the last comment.
        # One that still lacks it then lost an event; one connected more recently is counted apart (resuming).
        settle_deadline = time.monotonic() + 30
        behind = self.load.behind(last[0], RESUME_SETTLE_S)
        while behind["settled"] and time.monotonic() < settle_deadline:
            time.sleep(0.5)
            behind = self.load.behind(last[0], RESUME_SETTLE_S)
        data = self.load.collect()
        result.update(
            all_back_s=back_at,
            drops=data["drops"] - base["drops"],
            reconnects=data["connects"] - base["connects"],
            open_end=data["open"],
            curve=curve,
            posts_during={
                "n": len(post_lat),
                "errors": post_errors[0],
                "p50_ms": ms(pct(post_lat, 50)),
                "p99_ms": ms(pct(post_lat, 99)),
            },
            gaps=data["gaps"],
            dups=data["dups"],
            out_of_order=data["out_of_order"],
            # Connected for RESUME_SETTLE_S at the end but without the last comment: an event lost on resume. The
            # viewers not back yet are target 4's miss (open_end below the viewers), reported, not a failure of the
            # run; those connected in the last seconds, still reading their resume, are reported apart.
            viewers_behind=behind["settled"],
            viewers_resuming=behind["resuming"],
            not_back=opened - data["open"],
            errors=data["errors"],
        )
        return result

    # --- the run ---

    def run(self) -> dict:
        self.prepare()
        self.load = Load(self.size["workers"])
        phases = self.report["phases"]
        try:
            phases["writes"] = {
                "stack": self.writes(self.apache, "through Apache (HTTPS)"),
                "daphne": self.writes(self.direct, "Daphne directly (HTTP)"),
            }
            phases["fanout"] = {}
            for name, sizes in self.size["ladder"].items():
                # Through Apache, the largest hall is also held open (target 1) and the storm size sees Apache
                # restarted under it (target 4), before their viewers close.
                stack = name == "stack"
                phases["fanout"][name] = [
                    self.fanout(
                        self.targets[name],
                        n,
                        hold=self.size["hold"] if stack and n == sizes[-1] else 0,
                        storm=stack and n == self.size["storm"],
                    )
                    for n in sizes
                ]
        finally:
            self.load.stop()
            self.stop_plain()
        self.report["ratios"] = ratios(phases)
        self.report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.report["failures"] = failures(phases)
        return self.report


BASELINE: dict = {}


def per_socket(stats: dict, sockets: int, target: Target) -> dict:
    """Totals of each server, and what each open socket adds to them (over the servers with no viewer)."""
    groups = ("plain",) if target.plain else ("apache", "daphne")
    out = {}
    for g in groups:
        s, b = stats.get(g, {}), BASELINE.get(g, {})
        added = {k: s.get(k, 0) - b.get(k, 0) for k in ("threads", "rss", "fds")}
        out[g] = {
            "processes": len(s.get("pids", [])),
            "threads": s.get("threads", 0),
            "rss_mb": round(s.get("rss", 0) / 2**20, 1),
            "fds": s.get("fds", 0),
            "threads_per_socket": round(added["threads"] / sockets, 3) if sockets else None,
            "rss_kb_per_socket": round(added["rss"] / 1024 / sockets, 1) if sockets else None,
            "fds_per_socket": round(added["fds"] / sockets, 3) if sockets else None,
        }
    return out


def ratios(phases: dict) -> dict:
    """Each figure of the stack and of Daphne directly as a multiple of the plain server's, at equal viewers."""
    fan = phases.get("fanout", {})
    plain = {r["viewers"]: r for r in fan.get("plain", [])}
    out = {}
    for name in ("stack", "daphne"):
        for r in fan.get(name, []):
            p = plain.get(r["viewers"])
            if not p:
                continue
            entry = {}
            for key, path in (
                ("reach_all_p50", ("reach_all_ms", "p50")),
                ("cpu_per_message", ("cpu", "us_per_delivered")),
            ):
                a, b = r[path[0]][path[1]], p[path[0]][path[1]]
                entry[key] = round(a / b, 1) if a and b else None
            out[f"{name}/plain@{r['viewers']}"] = entry
    writes = phases.get("writes")
    if writes:
        a, b = writes["stack"]["sequential"]["p50_ms"], writes["daphne"]["sequential"]["p50_ms"]
        out["writes p50 stack/daphne"] = round(a / b, 2) if a and b else None
    return out


def failures(phases: dict) -> list[str]:
    """What the smoke run fails on: lost, repeated or reordered events and errors, never timing."""
    found = []
    runs = [(f"fanout {name} {r['viewers']}", r) for name, rs in phases.get("fanout", {}).items() for r in rs]
    runs += [(f"hold {r['viewers']}", r["hold"]) for rs in phases.get("fanout", {}).values() for r in rs if "hold" in r]
    runs += [
        (f"storm {r['viewers']}", r["storm"]) for rs in phases.get("fanout", {}).values() for r in rs if "storm" in r
    ]
    for label, r in runs:
        if "connect" in r and r["connect"]["open"] < r["viewers"]:
            found.append(f"{label}: only {r['connect']['open']} of {r['viewers']} viewers connected")
        for key in ("missing", "gaps", "dups", "out_of_order", "viewers_behind"):
            if r.get(key):
                found.append(f"{label}: {key} = {r[key]}")
        if label.startswith("hold") and (r["drops"] or r["open_min"] < r["viewers"]):
            found.append(f"{label}: sockets dropped ({r['drops']}, fewest open {r['open_min']})")
    for label, r in runs:
        if label.startswith("storm") and r["posts_during"]["n"] == 0:
            found.append(f"{label}: no comment POST answered during the storm")
    return found


def machine() -> dict:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    return {
        "cpus": os.cpu_count(),
        "model": model,
        "kernel": os.uname().release,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def write_junit(report: dict, path: Path, seconds: float) -> None:
    suite = ET.Element("testsuite", name="bench-smoke", tests="1", errors="0", skipped="0", time=f"{seconds:.1f}")
    case = ET.SubElement(
        suite,
        "testcase",
        classname="bench.smoke",
        name="every viewer gets every event once, through Apache, Daphne and after a restart",
        time=f"{seconds:.1f}",
    )
    suite.set("failures", "1" if report["failures"] else "0")
    if report["failures"]:
        failure = ET.SubElement(case, "failure", message="; ".join(report["failures"])[:500])
        failure.text = "\n".join(report["failures"])
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_error_junit(path: Path, message: str, seconds: float) -> None:
    write_junit({"failures": [message]}, path, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(SIZES), default="smoke")
    parser.add_argument("--container", default="comments-bench")
    parser.add_argument("--out", type=Path, help="default: bench/results (full), build/bench (smoke, not kept)")
    args = parser.parse_args()
    if args.out is None:
        args.out = BENCH / "results" if args.mode == "full" else ROOT / "build" / "bench"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    start = time.monotonic()
    junit = ROOT / "build" / "junit" / "bench-smoke.xml"
    bench = Bench(args.mode, Container(args.container))
    try:
        report = bench.run()
    except Exception as error:
        if args.mode == "smoke":
            write_error_junit(junit, f"{type(error).__name__}: {error}", time.monotonic() - start)
        raise
    finally:
        every_cpu = f"0-{(os.cpu_count() or 1) - 1}"
        subprocess.run(
            ["docker", "update", "--cpuset-cpus", every_cpu, args.container], check=False, capture_output=True
        )
    report["seconds"] = round(time.monotonic() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out / f"{args.mode}-{stamp}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    log(f"report: {out.relative_to(ROOT)}")
    if args.mode == "smoke":
        write_junit(report, junit, report["seconds"])
    else:
        try:
            import plot

            plot.plot(report, out.with_suffix(".png"))
            log(f"plot: {out.with_suffix('.png').relative_to(ROOT)}")
        except ImportError as missing:
            log(f"no plot: {missing}")
    print(json.dumps({"failures": report["failures"], "ratios": report["ratios"]}, indent=1))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
