"""Prometheus metrics of the app: what an operator watches (docs/runbook.md, "What to watch").

Two kinds of process serve them, each in its own way:

- Each Daphne worker serves its own registry on its own port (METRICS_PORT_BASE + its supervisor process number,
  on METRICS_LISTEN_ADDRESS, loopback by default): `start_worker_server`, called by config/asgi.py. Prometheus labels
  each worker by its target (`instance`), so no metric here carries a worker label.
- mod_wsgi's daemon processes (HTTP, so the REST writes) share one directory of memory-mapped files
  (PROMETHEUS_MULTIPROC_DIR, set by the WSGI entry point before this module is imported) and answer `/metrics` with
  the sum over them (`metrics_view`); Apache lets only the addresses of its allow list reach that path.

The hot path stays cheap: a counter increment per event and worker (the fan-out counts its sockets in bulk, once per
event), a histogram observation per event and worker for the fan-out lag; what can be counted when Prometheus asks
(open sockets, graphs watched, viewers of the busiest graphs) is counted then, from the worker's own registries, and
costs nothing in between.

Label values are bounded: close codes are the protocol's own (docs/protocol.md) or "other", and per-graph gauges are
given for the METRICS_TOP_GRAPHS graphs with most viewers on the worker only (plus totals over all graphs).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from live.close_codes import CloseCode

logger = logging.getLogger(__name__)

# Those clients and proxies normally give: normal, going away, none given, cut without a close frame, server error,
# service restart.
STANDARD_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006, 1011, 1012})
# Every close code this app gives (live/close_codes.py, docs/protocol.md) and the standard ones; others are "other".
KNOWN_CLOSE_CODES = STANDARD_CLOSE_CODES | frozenset(int(code) for code in CloseCode)

EVENTS_PUBLISHED = Counter(
    "comments_events_published",
    "Events announced on the channel layer after their commit (by the process that wrote them).",
)
EVENTS_PUBLISH_FAILED = Counter(
    "comments_events_publish_failed",
    "Events whose announcement failed (Redis down): clients get them on resume or by the periodic catch-up.",
)
EVENTS_DELIVERED = Counter(
    "comments_events_delivered",
    "Live events handed to this worker's sockets by the fan-out (one per event and socket).",
)
FANOUT_LAG = Histogram(
    "comments_fanout_lag_seconds",
    "From an event's announcement to its hand-over to the last of this worker's sockets of its graph.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RESUMES = Counter(
    "comments_websocket_resumes",
    "Resumes asked by clients, by outcome: resumed (events sent from the database) or reset (another epoch).",
    ["outcome"],
)
CLOSES = Counter(
    "comments_websocket_closes",
    "WebSockets closed, by who closed them (server: a refusal or drain; client) and close code.",
    ["by", "code"],
)
ACCEPTED = Counter("comments_websocket_accepted", "WebSocket handshakes accepted by this worker.")
HTTP_WRITES = Histogram(
    "comments_http_write_seconds",
    "Time to answer an HTTP write (POST, PUT, PATCH, DELETE) under /api/, by method and status class.",
    ["method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def close_code_label(code: int | None) -> str:
    return str(code) if code in KNOWN_CLOSE_CODES else "other"


def count_close(by: str, code: int | None) -> None:
    CLOSES.labels(by=by, code=close_code_label(code)).inc()


def announced_at(message: dict) -> float | None:
    """The wall-clock time an event was announced (comments/broadcast.py), if the message says."""
    at = message.get("at")
    return at if isinstance(at, float) else None


def count_delivered(sockets: int) -> None:
    """One event handed to `sockets` sockets of this worker: counted in bulk, once per event."""
    if sockets:
        EVENTS_DELIVERED.inc(sockets)


def observe_lag(message: dict) -> None:
    """Once an event was handed to the last socket of its graph on this worker: the time since its announcement."""
    at = announced_at(message)
    if at is not None:
        # Wall clocks of the writer and this worker: the same host, or hosts kept in step by NTP.
        FANOUT_LAG.observe(max(0.0, time.time() - at))


class LiveCollector(Collector):
    """Open sockets and viewers per graph of this worker, read from its registries when Prometheus asks.

    `open_sockets` counts every socket of the worker, `graph_sockets` gives graph id -> its sockets on the worker.
    """

    def __init__(
        self, open_sockets: Callable[[], int], graph_sockets: Callable[[], dict[int, int]], top_graphs: int
    ) -> None:
        self.open_sockets = open_sockets
        self.graph_sockets = graph_sockets
        self.top_graphs = top_graphs

    def collect(self) -> Iterable[GaugeMetricFamily]:
        viewers = self.graph_sockets()
        yield GaugeMetricFamily(
            "comments_websocket_open",
            "WebSockets open on this worker (graphs and notifications).",
            value=self.open_sockets(),
        )
        yield GaugeMetricFamily(
            "comments_graph_sockets", "Graph WebSockets open on this worker.", value=sum(viewers.values())
        )
        yield GaugeMetricFamily(
            "comments_graphs_watched", "Graphs with at least one viewer on this worker.", value=len(viewers)
        )
        top = GaugeMetricFamily(
            "comments_graph_viewers",
            f"Viewers of each of the (at most {self.top_graphs}) graphs with most viewers on this worker.",
            labels=["graph"],
        )
        for graph_id, count in sorted(viewers.items(), key=lambda item: (-item[1], item[0]))[: self.top_graphs]:
            top.add_metric([str(graph_id)], count)
        yield top


def start_worker_server(collector: Collector) -> int | None:
    """Serve this Daphne worker's metrics on METRICS_LISTEN_ADDRESS:METRICS_PORT_BASE+METRICS_WORKER; the port, or
    None when not configured (tests, `manage.py runserver`) or the port is taken (logged: the worker still serves)."""
    base = os.environ.get("METRICS_PORT_BASE", "")
    if not base.isdigit():
        return None
    port = int(base) + int(os.environ.get("METRICS_WORKER", "0") or 0)
    address = os.environ.get("METRICS_LISTEN_ADDRESS", "127.0.0.1")
    REGISTRY.register(collector)
    try:
        start_http_server(port, addr=address)
    except OSError:
        logger.exception("Cannot serve metrics on %s:%s; this worker goes on without", address, port)
        return None
    return port


def multiprocess_registry() -> CollectorRegistry:
    """The sum over mod_wsgi's daemon processes, or this process's own registry when not in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_view(request):
    """/metrics of the HTTP side (mod_wsgi); Apache admits only its allow list (apache_metrics_allow)."""
    from django.http import HttpResponse

    return HttpResponse(generate_latest(multiprocess_registry()), content_type=CONTENT_TYPE_LATEST)


class HttpWriteMetricsMiddleware:
    """Time every write under /api/ (comments, resolutions, graphs): the latency an author feels."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in WRITE_METHODS or not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        status = f"{response.status_code // 100}xx"
        HTTP_WRITES.labels(method=request.method, status=status).observe(time.perf_counter() - started)
        return response
