"""Fixtures shared by the app tests: real PostgreSQL and Redis, users, graphs and API clients."""

from __future__ import annotations

import pytest
from channels.layers import channel_layers
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import servers
from daphne_workers import daphne_workers


@pytest.fixture(scope="session")
def postgres_port():
    with servers.postgres_server() as port:
        yield port


@pytest.fixture(scope="session", autouse=True)
def redis_url():
    """Point the app and its channel layer at a real Redis for the whole run."""
    with servers.redis_server() as port:
        url = f"redis://127.0.0.1:{port}/0"
        settings.REDIS_URL = url
        settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [url]
        settings.CACHES["default"]["LOCATION"] = url  # the rate-limit counters
        channel_layers.backends.clear()
        yield url


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_port):
    settings.DATABASES["default"].update(
        {"HOST": "127.0.0.1", "PORT": str(postgres_port), "USER": "postgres", "PASSWORD": "", "CONN_MAX_AGE": 0}
    )


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str, password: str = "pw-for-tests"):
        return django_user_model.objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def carol(make_user):
    """An outsider: shares no group with alice or bob."""
    return make_user("carol")


SMALL_GRAPH = {
    "nodes": [{"data": {"id": "TP53"}}, {"data": {"id": "MDM2"}}, {"data": {"id": "CDKN1A"}}],
    "edges": [
        {"data": {"id": "e1", "source": "TP53", "target": "MDM2"}},
        {"data": {"id": "e2", "source": "TP53", "target": "CDKN1A"}},
    ],
}


@pytest.fixture
def make_graph(db):
    from graphs.elements import parse_elements
    from graphs.models import Graph

    def make(owner, name: str = "TP53 core", public: bool = False, elements: dict | None = None):
        parsed = parse_elements(elements or SMALL_GRAPH)
        return Graph.objects.create(
            owner=owner,
            name=name,
            public=public,
            elements=parsed.elements,
            node_ids=parsed.node_ids,
            edge_ids=parsed.edge_ids,
        )

    return make


@pytest.fixture
def shared_graph(alice, bob, make_graph):
    """A private graph of alice's, shared with a group that bob belongs to."""
    from graphs.models import Group

    graph = make_graph(alice)
    group = Group.objects.create(name="lab", owner=alice)
    group.members.add(alice, bob)
    graph.shared_with.add(group)
    return graph


@pytest.fixture
def api():
    """An API client for a user, authenticated by token as scripts are."""

    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return client_for


@pytest.fixture
async def presence_settled():
    """Let this event loop's presence tracker write its last changes and stop before the loop closes.

    Each test runs in its own event loop, and so gets its own tracker (Daphne has one per process).
    """
    yield
    from live import access, fanout, presence

    await presence.shutdown()
    await access.shutdown()
    await fanout.shutdown()


@pytest.fixture
def workers(transactional_db, postgres_port, redis_url, tmp_path):
    """Two real Daphne workers: [(process, port), (process, port)] (tests/app/daphne_workers.py)."""
    with daphne_workers(2, postgres_port, redis_url, tmp_path) as found:
        yield found
