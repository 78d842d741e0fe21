"""REST: text that cannot be stored or encoded, and JSON nested too deep, get a 400 naming the field (docs/protocol.md).

Bodies are sent as raw JSON text: `\\u0000` and `\\ud800` are valid JSON escapes that decode to a NUL and to a lone
surrogate, which PostgreSQL and UTF-8 encoders refuse (unchecked, each would be a 500).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from rest_framework.test import APIClient

from comments import services
from comments.models import Comment
from graphs.models import Graph, Group

pytestmark = pytest.mark.django_db

NUL = "\\u0000"  # as written inside a JSON string
SURROGATE = "\\ud800"


def send(client, method: str, url: str, text: str):
    return getattr(client, method)(url, data=text, content_type="application/json")


def assert_invalid(response, field: str, problem: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"].startswith(f"{field}: {problem}")
    assert list(body["errors"]) == [field]


# --- NUL and lone surrogates in JSON bodies ---


@pytest.mark.parametrize(("escape", "problem"), [(NUL, "Contains a NUL"), (SURROGATE, "Contains a lone surrogate")])
def test_a_comment_body_that_cannot_be_stored_is_a_400(api, alice, shared_graph, escape, problem):
    url = f"/api/v1/graphs/{shared_graph.pk}/comments/"
    assert_invalid(send(api(alice), "post", url, f'{{"body": "a{escape}b"}}'), "body", problem)
    comment = services.create_comment(user=alice, graph=shared_graph, body="fine").comment
    edit = send(api(alice), "patch", f"/api/v1/comments/{comment.pk}/", f'{{"body": "x{escape}"}}')
    assert_invalid(edit, "body", problem)
    shared_graph.refresh_from_db()
    assert shared_graph.last_seq == 1  # nothing written
    assert Comment.objects.get().body == "fine"


@pytest.mark.parametrize(
    ("method", "url", "text", "field"),
    [
        ("post", "/api/v1/graphs/{graph}/comments/", '{{"body": "x", "nodes": ["TP53{bad}"]}}', "nodes.0"),
        ("post", "/api/v1/comments/{comment}/reactions/", '{{"reaction": "+1{bad}"}}', "reaction"),
        ("post", "/api/v1/graphs/", '{{"name": "n{bad}", "elements": {{"nodes": [], "edges": []}}}}', "name"),
        (
            "post",
            "/api/v1/graphs/",
            '{{"name": "n", "elements": {{"nodes": [{{"data": {{"id": "A{bad}"}}}}], "edges": []}}}}',
            "elements.nodes.0.data.id",
        ),
        ("patch", "/api/v1/graphs/{graph}/", '{{"description": "{bad}"}}', "description"),
        ("post", "/api/v1/groups/", '{{"name": "lab{bad}"}}', "name"),
        ("patch", "/api/v1/groups/{group}/", '{{"name": "{bad}"}}', "name"),
        ("post", "/api/v1/groups/{group}/members/", '{{"username": "bob{bad}"}}', "username"),
        ("post", "/api/v1/graphs/{graph}/share/", '{{"group": "{bad}"}}', "group"),
    ],
)
@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_no_json_field_of_the_api_takes_a_nul_or_a_lone_surrogate(
    api, alice, shared_graph, method, url, text, field, bad
):
    comment = services.create_comment(user=alice, graph=shared_graph, body="x").comment
    group = Group.objects.get()
    url = url.format(graph=shared_graph.pk, comment=comment.pk, group=group.pk)
    response = send(api(alice), method, url, text.format(bad=bad))
    assert_invalid(response, field, "Contains a")
    assert Graph.objects.count() == 1
    shared_graph.refresh_from_db()
    assert (shared_graph.last_seq, shared_graph.description) == (1, "")


def test_a_key_with_a_lone_surrogate_is_a_400(api, alice, shared_graph):
    response = send(api(alice), "post", f"/api/v1/graphs/{shared_graph.pk}/comments/", f'{{"b{SURROGATE}": 1}}')
    assert_invalid(response, "non_field_errors", "A key contains a lone surrogate")


# --- nesting ---


def test_json_nested_deeper_than_the_limit_is_a_parse_error(api, alice, shared_graph, settings):
    url = f"/api/v1/graphs/{shared_graph.pk}/comments/"
    deep = '{"body": "x", "nodes": ' + "[" * 64 + "]" * 64 + "}"  # 65 levels with the object
    response = send(api(alice), "post", url, deep)
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels of arrays and objects.",
        "code": "parse_error",
    }
    # 5,000 brackets once crashed the parser (RecursionError): now the same answer, before parsing.
    assert send(api(alice), "post", url, "[" * 5000).json()["code"] == "parse_error"


def test_json_at_the_nesting_limit_is_parsed(api, alice, shared_graph):
    url = f"/api/v1/graphs/{shared_graph.pk}/comments/"
    at_limit = '{"body": "x", "nodes": ' + "[" * 63 + "]" * 63 + "}"
    response = send(api(alice), "post", url, at_limit)
    assert response.status_code == 400
    assert response.json()["errors"] == {"nodes": ["Give a list of element ids."]}  # parsed, then refused


def test_brackets_inside_strings_are_not_nesting(api, alice, shared_graph):
    response = api(alice).post(f"/api/v1/graphs/{shared_graph.pk}/comments/", {"body": "[{" * 100})
    assert response.status_code == 201


def test_nan_stays_refused(api, alice, shared_graph):
    response = send(api(alice), "post", f"/api/v1/graphs/{shared_graph.pk}/comments/", '{"body": NaN}')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


# --- query parameters ---


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("/api/v1/graphs/{graph}/comments/", "?node=TP53%00", "node"),
        ("/api/v1/graphs/{graph}/comments/", "?edge=%00", "edge"),
        ("/api/v1/graphs/{graph}/comments/", "?author=al%00ice", "author"),
        ("/api/v1/graphs/{graph}/comments/", "?page_size=%00", "page_size"),
        ("/api/v1/graphs/{graph}/people/", "?q=b%00", "q"),
        ("/api/v1/graphs/{graph}/events/", "?after_seq=%00", "after_seq"),
        ("/api/v1/notifications/", "?unread=%00", "unread"),
        ("/api/v1/graphs/", "?page=1%00", "page"),
        ("/api/v1/me/", "?anything=%00", "anything"),
        ("/api/v1/schema/", "?format=%00", "format"),
    ],
)
def test_a_nul_in_any_query_parameter_is_a_400_naming_it(api, alice, shared_graph, path, query, name):
    response = api(alice).get(path.format(graph=shared_graph.pk) + query)
    assert_invalid(response, name, "Contains a NUL")


def test_a_nul_in_a_query_parameter_name_is_a_400(api, alice):
    response = api(alice).get("/api/v1/graphs/?a%00b=1")
    assert_invalid(response, "query", "A parameter name contains a NUL")


def test_query_parameters_are_checked_before_authentication(api):
    # Nothing about the request is looked at with text that cannot be stored, not even the credentials.
    assert api().get("/api/v1/graphs/?q=%00").status_code == 400


@pytest.mark.parametrize(
    ("header", "value", "name"),
    [
        ("HTTP_AUTHORIZATION", "Token abc\x00def", "Authorization"),
        ("HTTP_COOKIE", "sessionid=abcdefgh\x00ij", "Cookie"),
    ],
)
def test_a_nul_in_the_credentials_is_a_400(header, value, name):
    response = APIClient().get("/api/v1/me/", **{header: value})
    assert_invalid(response, name, "Contains a NUL")


def test_a_nul_in_a_page_query_is_a_plain_400(client, alice, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", password="pw-for-tests")
    client.force_login(admin)
    response = client.get("/admin/auth/user/?q=%00")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert b"q: Contains a NUL" in response.content


def test_the_login_form_refuses_a_nul_as_a_form_error(client, alice):
    response = client.post("/accounts/login/", {"username": "alice\x00", "password": "pw-for-tests"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "_auth_user_id" not in client.session


# --- the one writer checks too (the WebSocket path calls it) ---


@pytest.mark.parametrize(("text", "problem"), [("a\x00", "NUL"), ("a\ud800", "lone surrogate")])
def test_the_writer_refuses_text_that_cannot_be_stored(alice, shared_graph, text, problem):
    with pytest.raises(ValidationError) as body_error:
        services.create_comment(user=alice, graph=shared_graph, body=text)
    assert problem in body_error.value.message_dict["body"][0]
    with pytest.raises(ValidationError) as nodes_error:
        services.create_comment(user=alice, graph=shared_graph, body="x", nodes=[text])
    assert problem in nodes_error.value.message_dict["nodes"][0]
    assert text not in nodes_error.value.message_dict["nodes"][0]  # the message never echoes what cannot be sent
    comment = services.create_comment(user=alice, graph=shared_graph, body="fine").comment
    with pytest.raises(ValidationError):
        services.edit_comment(user=alice, comment=comment, body=text)
    assert Comment.objects.get().body == "fine"


# --- the mentions cap ---


@override_settings(COMMENT_MAX_MENTIONS=3)
def test_a_comment_naming_more_users_than_the_cap_is_a_400(api, alice, shared_graph):
    url = f"/api/v1/graphs/{shared_graph.pk}/comments/"
    response = api(alice).post(url, {"body": "@a @b @c @d"})
    assert_invalid(response, "body", "A comment may name at most 3 people with @")
    assert api(alice).post(url, {"body": "@a @b @c @a, and a@mail.example"}).status_code == 201  # 3 distinct names
    comment = Comment.objects.get()
    edit = api(alice).patch(f"/api/v1/comments/{comment.pk}/", {"body": "@a @b @c @d"})
    assert_invalid(edit, "body", "A comment may name at most 3 people")
