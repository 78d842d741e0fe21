"""Rate limits: comment writes, reactions and sign-in, per user and per address; 429 with Retry-After.

Each test counts in a key space of its own, at a fixed time 30 s into a minute, so that the answers (and the
Retry-After of 30 s) do not depend on when the test runs or on what the suite did before.
"""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

import servers
from comments import services
from comments.models import Comment
from config import throttling
from config.settings import env_rate

pytestmark = pytest.mark.django_db

START = 1_800_000_030.0  # 30 s into a minute


@pytest.fixture
def limits(settings, monkeypatch):
    """Set some rates (the others stay far above what a test does), with fresh counters and a clock at START."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    clock = {"now": START}
    monkeypatch.setattr(throttling, "clock", lambda: clock["now"])

    def set_rates(rates: dict[str, str]) -> dict:
        settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, **rates}
        return clock

    return set_rates


def post_comment(api, user, graph, address: str = "127.0.0.1", **extra):
    return api(user).post(f"/api/v1/graphs/{graph.pk}/comments/", {"body": "hi"}, REMOTE_ADDR=address, **extra)


def assert_throttled(response, retry_after: str = "30") -> None:
    assert response.status_code == 429, response.content
    assert response["Retry-After"] == retry_after
    body = response.json()
    assert body["code"] == "throttled"
    assert set(body) == {"detail", "code"}


# --- comment writes ---


def test_comment_writes_are_limited_per_user(api, limits, alice, bob, shared_graph):
    limits({"comments.user": "3/min"})
    for _ in range(3):
        assert post_comment(api, bob, shared_graph).status_code == 201
    assert_throttled(post_comment(api, bob, shared_graph))
    assert Comment.objects.count() == 3  # nothing written
    assert post_comment(api, alice, shared_graph).status_code == 201  # another user, same address


def test_edits_deletes_resolves_and_reopens_count_as_writes(api, limits, bob, shared_graph):
    limits({"comments.user": "4/min"})
    thread = post_comment(api, bob, shared_graph).json()["id"]
    client = api(bob)
    assert client.patch(f"/api/v1/comments/{thread}/", {"body": "edited"}).status_code == 200
    assert client.post(f"/api/v1/comments/{thread}/resolve/").status_code == 200
    assert client.post(f"/api/v1/comments/{thread}/reopen/").status_code == 200
    assert_throttled(client.delete(f"/api/v1/comments/{thread}/"))
    assert_throttled(client.post(f"/api/v1/comments/{thread}/resolve/"))
    shared_graph.refresh_from_db()
    assert shared_graph.last_seq == 4


def test_reads_and_pins_are_not_counted(api, limits, bob, shared_graph):
    limits({"comments.user": "1/min", "comments.address": "1/min"})
    comment = services.create_comment(user=bob, graph=shared_graph, body="x").comment
    client = api(bob)
    for _ in range(3):
        assert client.get(f"/api/v1/graphs/{shared_graph.pk}/comments/").status_code == 200
        assert client.get(f"/api/v1/comments/{comment.pk}/").status_code == 200
        assert client.put(f"/api/v1/comments/{comment.pk}/pin/").status_code == 200
    assert post_comment(api, bob, shared_graph).status_code == 201


def test_comment_writes_are_limited_per_address(api, limits, alice, bob, shared_graph):
    limits({"comments.address": "2/min"})
    assert post_comment(api, alice, shared_graph, "192.0.2.7").status_code == 201
    assert post_comment(api, bob, shared_graph, "192.0.2.7").status_code == 201
    assert_throttled(post_comment(api, bob, shared_graph, "192.0.2.7"))
    # X-Forwarded-For is written by the client: it does not make another address.
    assert_throttled(post_comment(api, bob, shared_graph, "192.0.2.7", HTTP_X_FORWARDED_FOR="198.51.100.1"))
    assert post_comment(api, bob, shared_graph, "192.0.2.8").status_code == 201


def test_a_new_window_allows_again(api, limits, bob, shared_graph):
    clock = limits({"comments.user": "1/min"})
    assert post_comment(api, bob, shared_graph).status_code == 201
    clock["now"] = START + 29
    assert_throttled(post_comment(api, bob, shared_graph), retry_after="1")
    clock["now"] = START + 30  # the next minute
    assert post_comment(api, bob, shared_graph).status_code == 201


def test_without_redis_the_limits_are_skipped_not_the_writes(api, limits, bob, shared_graph, settings, caplog):
    limits({"comments.user": "1/min"})
    closed = servers.free_port()  # bound and released: nothing listens there
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{closed}/0"}}
    assert post_comment(api, bob, shared_graph).status_code == 201
    assert post_comment(api, bob, shared_graph).status_code == 201
    assert "Rate limit comments.address not applied: Redis is unreachable" in caplog.text


# --- reactions ---


def test_reactions_have_their_own_limit(api, limits, alice, bob, shared_graph):
    limits({"reactions.user": "2/min", "comments.user": "2/min"})
    comment = services.create_comment(user=alice, graph=shared_graph, body="x").comment
    url = f"/api/v1/comments/{comment.pk}/reactions/"
    assert api(bob).post(url, {"reaction": "+1"}).status_code == 200
    assert api(bob).post(url, {"reaction": "+1"}).status_code == 200
    assert_throttled(api(bob).post(url, {"reaction": "heart"}))
    assert post_comment(api, bob, shared_graph).status_code == 201  # comments count apart


# --- sign-in ---


def sign_in(client, username: str, password: str = "wrong", path: str = "/accounts/login/", address="127.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_sign_in_attempts_are_limited_per_address_and_username(client, limits, alice, bob):
    limits({"login.address_username": "2/min"})
    assert sign_in(client, "alice").status_code == 200  # the form again, with its error
    assert sign_in(client, "alice").status_code == 200
    refused = sign_in(client, "alice", "pw-for-tests")  # even the right password, now
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    assert refused["Content-Type"].startswith("text/html")
    assert b"Please wait 30 seconds" in refused.content
    assert "_auth_user_id" not in client.session
    assert sign_in(client, "alice", "pw-for-tests", address="192.0.2.9").status_code == 302  # another address
    assert sign_in(client, "bob", "pw-for-tests").status_code == 302  # another account


def test_sign_in_attempts_are_limited_per_address(client, limits, alice):
    limits({"login.address": "3/min"})
    for name in ("a", "b", "c"):
        assert sign_in(client, name).status_code == 200
    assert sign_in(client, "alice", "pw-for-tests").status_code == 429


def test_the_admin_sign_in_is_limited_too(client, limits, django_user_model):
    django_user_model.objects.create_superuser("admin", password="pw-for-tests")
    limits({"login.address_username": "1/min"})
    assert sign_in(client, "admin", path="/admin/login/").status_code == 200
    refused = sign_in(client, "admin", "pw-for-tests", path="/admin/login/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"


def test_the_sign_in_form_itself_is_not_counted(client, limits):
    limits({"login.address": "1/min"})
    for _ in range(3):
        assert client.get("/accounts/login/").status_code == 200


# --- the pieces ---


@pytest.mark.parametrize(
    ("remote", "counted_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
    ],
)
def test_addresses_are_counted_by_host_or_ipv6_64(remote, counted_as):
    assert throttling.client_address(RequestFactory().get("/", REMOTE_ADDR=remote)) == counted_as


@pytest.mark.parametrize(("value", "expected"), [("", "5/min"), ("7/h", "7/h"), ("off", None), ("OFF", None)])
def test_rates_come_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("THROTTLE_TEST_RATE", value)
    assert env_rate("THROTTLE_TEST_RATE", "5/min") == expected


def test_a_malformed_rate_stops_start_up(monkeypatch):
    monkeypatch.setenv("THROTTLE_TEST_RATE", "30 a minute")
    with pytest.raises(ImproperlyConfigured, match="THROTTLE_TEST_RATE must be a rate such as 30/min"):
        env_rate("THROTTLE_TEST_RATE", "5/min")
