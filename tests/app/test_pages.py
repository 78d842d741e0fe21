"""The server-rendered pages: who sees which graph, and the headers that keep the page strict."""

from __future__ import annotations

import re

import pytest


@pytest.fixture
def browser(client):
    """Django's test client, signed in as a user by session, as a browser is."""

    def signed_in(user):
        client.force_login(user)
        return client

    return signed_in


def test_the_graph_list_needs_a_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_login_page_has_a_form_with_a_csrf_token(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_the_list_shows_only_the_graphs_one_may_see(browser, bob, carol, shared_graph, make_graph, alice):
    make_graph(alice, name="alice's secret")
    page = browser(bob).get("/").content.decode()
    assert shared_graph.name in page
    assert "secret" not in page
    assert shared_graph.name not in browser(carol).get("/").content.decode()


def test_a_member_of_the_group_gets_the_graph_page(browser, bob, shared_graph):
    response = browser(bob).get(f"/graphs/{shared_graph.pk}/")
    assert response.status_code == 200
    assert shared_graph.name in response.content.decode()


def test_a_private_graph_is_a_404_to_an_outsider_and_to_anonymous(browser, client, carol, shared_graph):
    assert client.get(f"/graphs/{shared_graph.pk}/").status_code == 404
    assert browser(carol).get(f"/graphs/{shared_graph.pk}/").status_code == 404


def test_a_public_graph_opens_read_only_for_anonymous(client, alice, make_graph):
    graph = make_graph(alice, name="public map", public=True)
    response = client.get(f"/graphs/{graph.pk}/")
    assert response.status_code == 200
    assert response.context["can_comment"] is False


def test_pages_carry_a_strict_content_security_policy(browser, bob, shared_graph):
    response = browser(bob).get(f"/graphs/{shared_graph.pk}/")
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    # No inline script: every <script> element loads a file of ours.
    scripts = re.findall(r"<script\b[^>]*>", response.content.decode())
    assert scripts
    assert all("src=" in tag for tag in scripts)
    assert "cdn" not in " ".join(scripts).lower()
