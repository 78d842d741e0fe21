"""The app's Prometheus metrics (config/metrics.py) move with what happens: writes, fan-out, closes, resumes."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from comments import services
from config import metrics
from wsclient import accepted, viewer, ws

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("presence_settled")]


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_rest_comment_is_timed_and_counted_as_published(api, bob, shared_graph):
    writes = value("comments_http_write_seconds_count", method="POST", status="2xx")
    published = value("comments_events_published_total")
    response = api(bob).post(f"/api/v1/graphs/{shared_graph.pk}/comments/", {"body": "timed"})
    assert response.status_code == 201
    assert value("comments_http_write_seconds_count", method="POST", status="2xx") == writes + 1
    assert value("comments_events_published_total") == published + 1


def test_a_read_is_not_timed_as_a_write(api, bob, shared_graph):
    before = sum(value("comments_http_write_seconds_count", method="POST", status=s) for s in ("2xx", "4xx"))
    assert api(bob).get(f"/api/v1/graphs/{shared_graph.pk}/comments/").status_code == 200
    after = sum(value("comments_http_write_seconds_count", method="POST", status=s) for s in ("2xx", "4xx"))
    assert after == before


def test_metrics_answer_in_prometheus_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"# TYPE comments_events_published_total counter" in response.content


async def test_an_event_delivered_to_two_viewers_counts_two_and_its_lag_once(alice, bob, shared_graph):
    delivered = value("comments_events_delivered_total")
    lags = value("comments_fanout_lag_seconds_count")
    async with viewer(shared_graph, alice) as (first, _), viewer(shared_graph, bob) as (second, _):
        await database_sync_to_async(services.create_comment)(user=bob, graph=shared_graph, body="to both")
        await first.frame("event")
        await second.frame("event")
        assert value("comments_events_delivered_total") == delivered + 2
        # The lag is observed once the fan-out is past the last socket: let it get there (a bounded number of turns).
        for _ in range(100):
            if value("comments_fanout_lag_seconds_count") > lags:
                break
            await asyncio.sleep(0.01)
    assert value("comments_fanout_lag_seconds_count") == lags + 1


async def test_a_refusal_is_counted_by_its_close_code(carol, shared_graph):
    before = value("comments_websocket_closes_total", by="server", code="4404")
    async with ws(f"/ws/graphs/{shared_graph.pk}/", user=carol) as client:
        await accepted(client)
        assert (await client.closed())[0] == 4404
    assert value("comments_websocket_closes_total", by="server", code="4404") == before + 1


async def test_a_resume_from_another_epoch_is_counted_as_a_reset(alice, shared_graph):
    before = value("comments_websocket_resumes_total", outcome="reset")
    async with ws(f"/ws/graphs/{shared_graph.pk}/?after_seq=0&epoch=not-this-one", user=alice) as client:
        await accepted(client)
        await client.frame("hello")
        await client.frame("reset")
    assert value("comments_websocket_resumes_total", outcome="reset") == before + 1


def test_per_graph_gauges_are_bounded_to_the_busiest_graphs():
    collector = metrics.LiveCollector(lambda: 9, lambda: {1: 1, 2: 5, 3: 2, 4: 1}, top_graphs=2)
    families = {family.name: family for family in collector.collect()}
    assert families["comments_websocket_open"].samples[0].value == 9
    assert families["comments_graph_sockets"].samples[0].value == 9
    assert families["comments_graphs_watched"].samples[0].value == 4
    assert [(s.labels["graph"], s.value) for s in families["comments_graph_viewers"].samples] == [("2", 5), ("3", 2)]


@pytest.mark.parametrize(("code", "label"), [(4404, "4404"), (1000, "1000"), (3999, "other"), (None, "other")])
def test_close_code_labels_are_bounded(code, label):
    assert metrics.close_code_label(code) == label
