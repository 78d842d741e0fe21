"""REST: authentication, errors, notifications, the health check, the schema and the admin (docs/protocol.md)."""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from django.core.management import call_command
from django.test import override_settings
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

import servers
from comments import services, views
from comments.models import Notification
from graphs.models import Graph
from layer_spy import heard

pytestmark = pytest.mark.django_db


# --- authentication ---


def test_a_valid_token_authenticates(api, alice):
    assert api(alice).get("/api/v1/me/").json()["username"] == "alice"


@pytest.mark.parametrize("header", ["Token 0123456789abcdef0123456789abcdef01234567", "Token", "Bearer x", "Token a b"])
def test_a_bad_token_is_a_401(header, alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert set(response.json()) == {"detail", "code"}


def test_no_credentials_is_a_401_with_a_message():
    response = APIClient().get("/api/v1/graphs/")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }


@pytest.fixture
def session_client(alice):
    """The page's way: a session cookie, with Django's CSRF check enforced as in production."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def test_session_reads_need_no_csrf_token(session_client, shared_graph):
    assert session_client.get(f"/api/v1/graphs/{shared_graph.pk}/").status_code == 200


def test_session_writes_need_the_csrf_token(session_client, shared_graph):
    url = f"/api/v1/graphs/{shared_graph.pk}/comments/"
    refused = session_client.post(url, {"body": "no token"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert "CSRF" in refused.json()["detail"]
    secret = get_random_string(32)
    session_client.cookies["csrftoken"] = secret
    taken = session_client.post(url, {"body": "with token"}, format="json", HTTP_X_CSRFTOKEN=secret)
    assert taken.status_code == 201, taken.json()
    assert taken.json()["author"]["username"] == "alice"


def test_a_token_client_needs_no_csrf_token(alice, shared_graph):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(alice)}")
    assert client.post(f"/api/v1/graphs/{shared_graph.pk}/comments/", {"body": "script"}).status_code == 201


def api_token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


# --- errors ---


def test_malformed_json_is_a_400_with_a_message(api, alice, shared_graph):
    response = api(alice).post(
        f"/api/v1/graphs/{shared_graph.pk}/comments/", data='{"body": "unfinished', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize("url", ["/api/v1/graphs/{id}/comments/", "/api/v1/comments/{comment}/reactions/"])
@pytest.mark.parametrize("body", ['["a list"]', '"a string"', "42", "null"])
def test_a_body_that_is_not_an_object_is_a_400(api, alice, shared_graph, url, body):
    comment = services.create_comment(user=alice, graph=shared_graph, body="x").comment
    response = api(alice).post(
        url.format(id=shared_graph.pk, comment=comment.pk), data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "The request body must be a JSON object.", "code": "parse_error"}


def test_a_graph_import_that_is_not_an_object_is_a_400(api, alice):
    response = api(alice).post("/api/v1/graphs/", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "Expected a dictionary" in response.json()["detail"]


def test_only_json_is_accepted(api, alice, shared_graph):
    response = api(alice).post(f"/api/v1/graphs/{shared_graph.pk}/comments/", {"body": "form"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_upload_limit_is_refused_before_it_is_parsed(api, alice, shared_graph):
    response = api(alice).post(f"/api/v1/graphs/{shared_graph.pk}/comments/", {"body": "x" * 2000})
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 1000 bytes.", "code": "too_large"}
    small = api(alice).post(f"/api/v1/graphs/{shared_graph.pk}/comments/", {"body": "x" * 900})
    assert small.status_code == 201


def test_an_unknown_api_path_is_a_json_404(api, alice):
    response = api(alice).get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such endpoint.", "code": "not_found"}


def test_an_unknown_page_stays_html(client):
    response = client.get("/nothing-here/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_server_error_in_the_api_is_json(alice, shared_graph, monkeypatch):
    def broken(comment):
        raise RuntimeError("a bug")

    comment = services.create_comment(user=alice, graph=shared_graph, body="x").comment
    monkeypatch.setattr(views.services, "comment_payload", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(alice)
    response = client.get(f"/api/v1/comments/{comment.pk}/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Server error.", "code": "server_error"}


def test_method_not_allowed_is_json(api, alice):
    response = api(alice).put("/api/v1/me/", {})
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PUT" not allowed.', "code": "method_not_allowed"}


# --- notifications ---


@pytest.fixture
def mentions(alice, bob, shared_graph, make_graph):
    """Three mentions of bob by alice: two on the shared graph, one on a graph bob will lose."""
    first = services.create_comment(user=alice, graph=shared_graph, body="@bob first").comment
    second = services.create_comment(user=alice, graph=shared_graph, body="@bob second").comment
    public = make_graph(alice, name="public for now", public=True)
    third = services.create_comment(user=alice, graph=public, body="@bob third").comment
    by_comment = {n.comment_id: n for n in Notification.objects.filter(user=bob)}
    return {
        "first": by_comment[first.pk],
        "second": by_comment[second.pk],
        "third": by_comment[third.pk],
        "public": public,
    }


def test_notifications_are_listed_newest_first(api, alice, bob, mentions, shared_graph):
    response = api(bob).get("/api/v1/notifications/")
    assert response.status_code == 200
    page = response.json()
    assert [n["id"] for n in page["results"]] == [mentions[k].pk for k in ("third", "second", "first")]
    newest = page["results"][0]
    assert newest["kind"] == "mention"
    assert newest["graph"] == {"id": mentions["public"].pk, "name": "public for now"}
    assert newest["actor"] == {"id": alice.pk, "username": "alice"}
    assert (newest["comment"]["body"], newest["read"]) == ("@bob third", False)
    assert api(alice).get("/api/v1/notifications/").json()["count"] == 0


def test_marking_notifications_read(api, bob, carol, mentions):
    url = f"/api/v1/notifications/{mentions['first'].pk}/read/"
    assert api(carol).post(url).json() == {"detail": "No such notification.", "code": "not_found"}
    response = api(bob).post(url)
    assert response.status_code == 200
    assert response.json()["read"] is True
    assert api(bob).post(url).json()["read"] is True  # again: still read, no error
    unread = api(bob).get("/api/v1/notifications/?unread=true").json()["results"]
    assert [n["id"] for n in unread] == [mentions["third"].pk, mentions["second"].pk]
    read = api(bob).get("/api/v1/notifications/?unread=false").json()["results"]
    assert [n["id"] for n in read] == [mentions["first"].pk]
    assert api(bob).post("/api/v1/notifications/read-all/").json() == {"marked": 2}
    assert api(bob).get("/api/v1/notifications/?unread=true").json()["count"] == 0
    assert api(bob).post("/api/v1/notifications/read-all/").json() == {"marked": 0}


def test_notifications_of_a_graph_one_can_no_longer_see_are_hidden(api, alice, bob, mentions):
    api(alice).patch(f"/api/v1/graphs/{mentions['public'].pk}/", {"public": False})
    listed = [n["id"] for n in api(bob).get("/api/v1/notifications/").json()["results"]]
    assert listed == [mentions["second"].pk, mentions["first"].pk]
    assert api(bob).post(f"/api/v1/notifications/{mentions['third'].pk}/read/").status_code == 404


def test_notifications_need_a_user_and_a_valid_filter(api, bob):
    assert api().get("/api/v1/notifications/").status_code == 401
    response = api(bob).get("/api/v1/notifications/?unread=perhaps")
    assert response.status_code == 400
    assert response.json()["errors"] == {"unread": ["Give true or false."]}


# --- health check ---


def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "database": "ok", "redis": "ok", "daphne": "not checked", "daphne_members": {}
    }  # fmt: skip


def test_healthz_is_ok_while_one_daphne_host_answers(client):
    with socket.create_server(("127.0.0.1", 0)) as listening:
        up = f"127.0.0.1:{listening.getsockname()[1]}"
        down = f"127.0.0.1:{servers.free_port()}"
        with override_settings(DAPHNE_MEMBERS=[up, down]):
            response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["daphne"] == "ok"
    assert body["daphne_members"][up] == "ok"
    assert body["daphne_members"][down].startswith("error: ")


def test_healthz_reads_the_members_file_at_each_check(client, tmp_path):
    """The apache role writes the members to a file: a new worker needs no restart of the app."""
    members = tmp_path / "daphne-members"
    with socket.create_server(("127.0.0.1", 0)) as listening:
        up = f"127.0.0.1:{listening.getsockname()[1]}"
        down = f"127.0.0.1:{servers.free_port()}"
        with override_settings(DAPHNE_MEMBERS=[], DAPHNE_MEMBERS_FILE=str(members)):
            members.write_text(f"# written by Ansible\n{down}\n")
            first = client.get("/healthz")
            members.write_text(f"{down}\n{up}\n")
            second = client.get("/healthz")
            members.unlink()
            missing = client.get("/healthz")
    assert first.status_code == 503, first.json()
    assert list(first.json()["daphne_members"]) == [down]
    assert second.status_code == 200, second.json()
    assert second.json()["daphne_members"][up] == "ok"
    assert missing.status_code == 503
    assert missing.json()["daphne"] == "error: no list of Daphne workers"


def test_healthz_is_503_when_no_daphne_host_answers(client):
    with override_settings(DAPHNE_MEMBERS=[f"127.0.0.1:{servers.free_port()}"]):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["redis"]) == ("unavailable", "ok", "ok")
    assert body["daphne"] == "error: no Daphne host answers"


def test_healthz_is_503_when_redis_is_unreachable(client):
    closed = servers.free_port()  # bound and released: nothing listens there
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{closed}/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unavailable", "ok")
    assert body["redis"].startswith("error: ")


def test_healthz_takes_get_only(client):
    assert client.post("/healthz").status_code == 405


# --- schema ---


def test_the_schema_is_openapi_3_with_every_endpoint(client):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= {
        "/api/v1/graphs/",
        "/api/v1/graphs/{id}/",
        "/api/v1/graphs/{id}/share/",
        "/api/v1/graphs/{id}/share/{group_id}/",
        "/api/v1/graphs/{graph_id}/comments/",
        "/api/v1/graphs/{graph_id}/events/",
        "/api/v1/graphs/{graph_id}/pins/",
        "/api/v1/graphs/{graph_id}/people/",
        "/api/v1/comments/{id}/",
        "/api/v1/comments/{id}/resolve/",
        "/api/v1/comments/{id}/reopen/",
        "/api/v1/comments/{id}/reactions/",
        "/api/v1/comments/{id}/pin/",
        "/api/v1/groups/",
        "/api/v1/groups/{id}/",
        "/api/v1/groups/{id}/members/",
        "/api/v1/groups/{id}/members/{user_id}/",
        "/api/v1/notifications/",
        "/api/v1/notifications/{id}/read/",
        "/api/v1/notifications/read-all/",
        "/api/v1/me/",
    }
    comment = schema["components"]["schemas"]["Comment"]
    assert "pinned" in comment["properties"]
    assert "author" not in schema["components"]["schemas"]["CommentCreate"]["properties"]
    as_json = client.get("/api/v1/schema/?format=json")
    assert json.loads(as_json.content)["openapi"] == schema["openapi"]


def test_the_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn: an endpoint whose shape drf-spectacular had to guess fails the test.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert yaml.safe_load((tmp_path / "schema.yaml").read_text())["info"]["title"] == "Graph comments API"


# --- admin ---


@pytest.fixture
def admin_client_of(django_user_model, client):
    admin = django_user_model.objects.create_superuser("admin", password="pw-for-tests")
    client.force_login(admin)
    return client


@pytest.mark.parametrize(
    "page",
    [
        "graphs/graph",
        "graphs/group",
        "comments/comment",
        "comments/event",
        "comments/commentreaction",
        "comments/pin",
        "comments/notification",
    ],
)
def test_the_admin_lists_everything(admin_client_of, alice, bob, shared_graph, page):
    comment = services.create_comment(user=alice, graph=shared_graph, body="@bob").comment
    services.toggle_reaction(user=bob, comment=comment, reaction="+1")
    assert admin_client_of.get(f"/admin/{page}/").status_code == 200


def test_the_admin_shows_the_discussion_read_only(admin_client_of, alice, shared_graph):
    comment = services.create_comment(user=alice, graph=shared_graph, body="look, don't touch").comment
    assert admin_client_of.get("/admin/comments/comment/add/").status_code == 403
    page = admin_client_of.get(f"/admin/comments/comment/{comment.pk}/change/")
    assert page.status_code == 200
    assert b"look, don&#x27;t touch" in page.content
    assert admin_client_of.post(f"/admin/comments/comment/{comment.pk}/delete/", {"post": "yes"}).status_code == 403


def test_an_admin_change_of_a_graph_tells_its_viewers(
    admin_client_of, alice, shared_graph, django_capture_on_commit_callbacks
):
    form = {"name": "renamed", "description": "", "owner": alice.pk, "shared_with": [], "public": ""}
    response, messages = heard(
        f"graph.{shared_graph.pk}",
        lambda: admin_client_of.post(f"/admin/graphs/graph/{shared_graph.pk}/change/", form),
        1,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302, response.content
    assert messages == [{"type": "graph.access", "graph": shared_graph.pk}]
    shared_graph.refresh_from_db()
    assert (shared_graph.name, shared_graph.shared_with.count()) == ("renamed", 0)


def test_an_admin_change_of_a_group_tells_its_graphs_viewers(
    admin_client_of, alice, bob, shared_graph, django_capture_on_commit_callbacks
):
    group = shared_graph.shared_with.get()
    form = {"name": group.name, "owner": alice.pk, "members": [alice.pk]}
    response, messages = heard(
        f"graph.{shared_graph.pk}",
        lambda: admin_client_of.post(f"/admin/graphs/group/{group.pk}/change/", form),
        1,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302, response.content
    assert messages == [{"type": "graph.access", "graph": shared_graph.pk}]
    assert not shared_graph.can_view(bob)


@pytest.mark.parametrize("how", ["one", "bulk"])
def test_deleting_graphs_and_groups_in_the_admin_tells_the_viewers(
    admin_client_of, alice, shared_graph, django_capture_on_commit_callbacks, how
):
    group = shared_graph.shared_with.get()
    if how == "one":
        delete_group = lambda: admin_client_of.post(f"/admin/graphs/group/{group.pk}/delete/", {"post": "yes"})  # noqa: E731
        delete_graph = lambda: admin_client_of.post(f"/admin/graphs/graph/{shared_graph.pk}/delete/", {"post": "yes"})  # noqa: E731
    else:
        delete_group = lambda: admin_client_of.post(  # noqa: E731
            "/admin/graphs/group/", {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"}
        )
        delete_graph = lambda: admin_client_of.post(  # noqa: E731
            "/admin/graphs/graph/", {"action": "delete_selected", "_selected_action": [shared_graph.pk], "post": "yes"}
        )
    for delete in (delete_group, delete_graph):
        response, messages = heard(f"graph.{shared_graph.pk}", delete, 1, django_capture_on_commit_callbacks)
        assert response.status_code == 302
        assert messages == [{"type": "graph.access", "graph": shared_graph.pk}]
    assert not Graph.objects.exists()


def test_a_database_that_is_down_is_a_503_with_retry_after(api, alice, shared_graph, monkeypatch):
    from django.db import OperationalError

    from graphs import permissions

    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(permissions, "visible_graph", unreachable)
    from comments import views

    monkeypatch.setattr(views, "visible_graph", unreachable)
    response = api(alice).post(f"/api/v1/graphs/{shared_graph.pk}/comments/", {"body": "hi"})
    assert (response.status_code, response["Retry-After"], response.json()["code"]) == (503, "5", "unavailable")
