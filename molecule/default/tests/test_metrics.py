"""What an operator watches: the app's metrics and Debian's exporters answer where they should and nowhere else, move
when a viewer connects and a comment is posted, and a real Prometheus (docs/monitoring/, loaded by prepare.yml)
scrapes every target with the alert rules loaded."""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest
import websockets
from test_default import is_loopback, listening, next_comment_event, post_comment

from support.tls import insecure_tls

EXPORTERS = {
    "prometheus-apache-exporter": (9117, "apache_up"),
    "prometheus-postgres-exporter": (9187, "pg_up"),
    "prometheus-redis-exporter": (9121, "redis_up"),
}
# Each Daphne worker's own metrics (daphne_metrics_port_base 9200 + its number; comments_daphne_workers: 2 in molecule.yml).
WORKER_PORTS = [9200, 9201]
STATUS_PORT = 8081  # Apache's mod_status listener (comments_apache_status_port)
PROMETHEUS = "http://127.0.0.1:9090"
ALERT_RULES = "/etc/prometheus/alerts.yml"

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def samples(text: str, name: str, **labels: str) -> list[float]:
    """The values of every sample `name` whose labels include `labels`, from Prometheus's text format."""
    found = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        given = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(given.get(key) == value for key, value in labels.items()):
            found.append(float(match.group(3)))
    return found


def scrape(host, url: str) -> str:
    return host.check_output(f"curl --silent --show-error --fail --insecure {url}")


def workers_total(host, name: str, **labels: str) -> float:
    return sum(sum(samples(scrape(host, f"http://127.0.0.1:{port}/metrics"), name, **labels)) for port in WORKER_PORTS)


def http_total(host, name: str, **labels: str) -> float:
    return sum(samples(scrape(host, "https://127.0.0.1/metrics"), name, **labels))


# --- Where each endpoint listens ---


@pytest.mark.parametrize("service", sorted(EXPORTERS))
def test_exporter_is_running_and_enabled(host, service):
    assert host.service(service).is_running
    assert host.service(service).is_enabled


@pytest.mark.parametrize("port", sorted([port for port, _ in EXPORTERS.values()] + WORKER_PORTS + [STATUS_PORT]))
def test_metrics_endpoints_listen_on_loopback_only(host, port):
    addresses = [address for address, p in listening(host) if p == port]
    assert addresses, f"nothing listens on {port}"
    assert all(is_loopback(address) for address in addresses), addresses


@pytest.mark.parametrize("service", sorted(EXPORTERS))
def test_exporter_reaches_its_service(host, service):
    port, up = EXPORTERS[service]
    assert samples(scrape(host, f"http://127.0.0.1:{port}/metrics"), up) == [1.0]


def test_mod_status_answers_on_its_loopback_listener(host):
    status = scrape(host, f"http://127.0.0.1:{STATUS_PORT}/server-status?auto")
    assert "BusyWorkers:" in status
    assert "Total Accesses:" in status  # ExtendedStatus


@pytest.mark.parametrize("port", WORKER_PORTS)
def test_each_daphne_worker_serves_its_metrics(host, port):
    text = scrape(host, f"http://127.0.0.1:{port}/metrics")
    assert samples(text, "comments_websocket_open"), text[:500]


def test_http_metrics_answer_inside(host):
    assert "# TYPE comments_http_write_seconds histogram" in scrape(host, "https://127.0.0.1/metrics")


@pytest.mark.parametrize("path", ["/metrics", "/server-status"])
def test_metrics_and_status_are_refused_from_outside(site, path):
    # The controller reaches Apache through Docker's port mapping, from an address outside apache_metrics_allow.
    request = urllib.request.Request(f"https://127.0.0.1:{site.published_https_port}{path}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=insecure_tls(), timeout=10)  # noqa: S310 (an https URL)
    assert refused.value.code == 403


def test_access_log_has_the_request_time(host, site):
    # A request of its own, found by its query string: Prometheus's scrapes write lines of theirs meanwhile.
    probe = f"/healthz?access-log-{uuid.uuid4().hex}"
    site.curl(f"https://localhost{probe}")
    # Apache writes the line after the answer has gone: a moment later, bounded.
    for _ in range(50):
        line = host.run(f"grep -F ' {probe} HTTP/' /var/log/apache2/comments_access.log").stdout.strip()
        if line:
            break
        time.sleep(0.1)
    assert f'"GET {probe} HTTP/' in line
    assert re.search(r" \d+$", line), line  # %D: microseconds


# --- The app's metrics move ---


def test_metrics_move_when_a_viewer_connects_and_a_comment_is_posted(host, site, token, graph_id):
    port = site.published_https_port
    url = f"wss://127.0.0.1:{port}/ws/graphs/{graph_id}/"
    body = f"Counted by Testinfra {uuid.uuid4()}"
    before = {
        "accepted": workers_total(host, "comments_websocket_accepted_total"),
        "delivered": workers_total(host, "comments_events_delivered_total"),
        "lags": workers_total(host, "comments_fanout_lag_seconds_count"),
        "published": http_total(host, "comments_events_published_total"),
        "writes": http_total(host, "comments_http_write_seconds_count", method="POST", status="2xx"),
    }

    async def scenario():
        headers = {"Authorization": f"Token {token}"}
        async with websockets.connect(url, additional_headers=headers, ssl=insecure_tls()) as viewer:
            hello = json.loads(await asyncio.wait_for(viewer.recv(), timeout=10))
            assert hello["type"] == "hello"
            assert await asyncio.to_thread(workers_total, host, "comments_websocket_accepted_total") >= (
                before["accepted"] + 1
            )
            viewers = await asyncio.to_thread(workers_total, host, "comments_graph_viewers", graph=str(graph_id))
            assert viewers >= 1
            await asyncio.to_thread(post_comment, port, token, graph_id, body)
            # Bounds the wait only.
            await asyncio.wait_for(next_comment_event(viewer, body), timeout=10)

    asyncio.run(scenario())
    assert workers_total(host, "comments_events_delivered_total") >= before["delivered"] + 1
    assert workers_total(host, "comments_fanout_lag_seconds_count") >= before["lags"] + 1
    assert http_total(host, "comments_events_published_total") == before["published"] + 1
    assert http_total(host, "comments_http_write_seconds_count", method="POST", status="2xx") == before["writes"] + 1


# --- A real Prometheus scrapes it all ---


def prometheus(host, path: str) -> dict:
    answer = json.loads(scrape(host, f"{PROMETHEUS}{path}"))
    assert answer["status"] == "success", answer
    return answer["data"]


def test_prometheus_scrapes_every_target_up(host):
    # Prometheus scrapes every 15 s and started before the stack did: wait (bounded) for a round with all up.
    deadline = time.monotonic() + 90
    while True:
        targets = prometheus(host, "/api/v1/targets?state=active")["activeTargets"]
        health = {target["scrapeUrl"]: (target["health"], target["lastError"]) for target in targets}
        if (health and all(state == "up" for state, _ in health.values())) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert {job["labels"]["job"] for job in targets} == {
        "comments-daphne",
        "comments-http",
        "apache",
        "postgresql",
        "redis",
    }
    assert all(state == "up" for state, _ in health.values()), health


def test_prometheus_loaded_the_alert_rules(host):
    groups = prometheus(host, "/api/v1/rules?type=alert")["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    written = set(re.findall(r"alert: (\w+)", host.file(ALERT_RULES).content_string))
    assert written
    assert loaded == written
    assert all(rule["health"] == "ok" for group in groups for rule in group["rules"])
