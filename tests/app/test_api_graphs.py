"""REST: graphs, sharing, groups and /me/ (docs/protocol.md)."""

from __future__ import annotations

import copy

import pytest
from django.test import override_settings

from comments import services
from comments.models import Comment
from graphs.models import Graph, Group
from layer_spy import heard

pytestmark = pytest.mark.django_db

GRAPHS = "/api/v1/graphs/"
GROUPS = "/api/v1/groups/"

ELEMENTS = {
    "nodes": [{"data": {"id": "TP53", "name": "TP53"}}, {"data": {"id": "MDM2"}}, {"data": {"id": "CDKN1A"}}],
    "edges": [
        {"data": {"id": "e1", "source": "MDM2", "target": "TP53", "interaction": "ubiquitinates"}},
        {"data": {"id": "e2", "source": "TP53", "target": "CDKN1A", "interaction": "transactivates"}},
    ],
}


def graph_url(graph) -> str:
    return f"{GRAPHS}{graph.pk}/"


# --- import ---


def test_import_makes_the_requester_the_owner(api, alice, bob):
    response = api(alice).post(
        GRAPHS, {"name": "TP53 core", "description": "p53 and two partners", "elements": ELEMENTS, "owner": bob.pk}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == {"id": alice.pk, "username": "alice"}
    assert body["name"] == "TP53 core"
    assert body["description"] == "p53 and two partners"
    assert body["public"] is False
    assert body["shared_with"] == []
    assert (body["node_count"], body["edge_count"], body["last_seq"]) == (3, 2, 0)
    assert body["elements"] == ELEMENTS
    graph = Graph.objects.get(pk=body["id"])
    assert graph.owner == alice
    assert graph.node_ids == ["TP53", "MDM2", "CDKN1A"]
    assert graph.edge_ids == ["e1", "e2"]


def test_import_takes_a_whole_cytoscape_export(api, alice):
    export = {"format_version": "1.0", "data": {"name": "exported"}, "elements": ELEMENTS}
    response = api(alice).post(GRAPHS, {"name": "from Cytoscape", "public": True, "elements": export})
    assert response.status_code == 201, response.json()
    assert response.json()["elements"] == ELEMENTS
    assert response.json()["public"] is True


def with_change(change) -> dict:
    elements = copy.deepcopy(ELEMENTS)
    change(elements)
    return elements


@pytest.mark.parametrize(
    ("elements", "problem"),
    [
        (with_change(lambda e: e["nodes"].append({"data": {"id": "MDM2"}})), "node MDM2: the id is used twice"),
        (
            with_change(lambda e: e["edges"].append({"data": {"id": "TP53", "source": "TP53", "target": "MDM2"}})),
            "edge TP53: the id is used twice",
        ),
        (
            with_change(lambda e: e["edges"].append({"data": {"id": "e9", "source": "TP53", "target": "XYZ"}})),
            "edge e9: target 'XYZ' is not a node of this graph",
        ),
        (
            with_change(lambda e: e["edges"].append({"data": {"id": "e9", "target": "TP53"}})),
            "edge e9: source None is not a node of this graph",
        ),
        (with_change(lambda e: e["nodes"].append({"data": {"id": ""}})), "node #3: data.id must be a non-empty string"),
        (with_change(lambda e: e["nodes"].append({"id": "ATM"})), "node #3: each element must be an object"),
        ([{"data": {"id": "TP53"}}], "elements must be an object"),
        ("TP53 MDM2", "elements must be an object"),
        ({"nodes": [], "edges": []}, "A graph needs at least one node"),
        ({"nodes": {"TP53": {}}}, "elements.nodes and elements.edges must be lists"),
        ({"nodes": [{"data": {"id": "TP53"}}], "styles": []}, "elements has unknown keys: styles"),
        ({"nodes": [{"data": {"id": "N" * 256}}]}, "node #0: data.id is longer than 255 characters"),
    ],
    ids=[
        "duplicate-node",
        "edge-reuses-node-id",
        "dangling-target",
        "no-source",
        "empty-id",
        "no-data",
        "a-list",
        "a-string",
        "no-nodes",
        "nodes-not-a-list",
        "unknown-key",
        "long-id",
    ],
)
def test_a_bad_graph_is_a_400_naming_the_problem(api, alice, elements, problem):
    response = api(alice).post(GRAPHS, {"name": "bad", "elements": elements})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert problem in body["detail"]
    assert body["detail"].startswith("elements: ")
    assert problem in body["errors"]["elements"][0]
    assert not Graph.objects.exists()


@override_settings(GRAPH_MAX_ELEMENTS=4)
def test_a_graph_over_the_element_limit_is_refused(api, alice):
    response = api(alice).post(GRAPHS, {"name": "big", "elements": ELEMENTS})
    assert response.status_code == 400
    assert "The graph has 5 elements; the limit is 4." in response.json()["detail"]


@override_settings(GRAPH_MAX_BYTES=200)
def test_a_graph_over_the_size_limit_is_refused(api, alice):
    response = api(alice).post(GRAPHS, {"name": "big", "elements": ELEMENTS})
    assert response.status_code == 400
    assert "bytes of JSON; the limit is 200" in response.json()["detail"]


def test_a_graph_needs_a_name(api, alice):
    response = api(alice).post(GRAPHS, {"elements": ELEMENTS})
    assert response.status_code == 400
    assert response.json()["errors"] == {"name": ["This field is required."]}


def test_anonymous_cannot_import(api):
    response = api().post(GRAPHS, {"name": "x", "elements": ELEMENTS})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- who sees what ---


def test_the_list_shows_own_public_and_shared_graphs_without_elements(api, alice, bob, carol, make_graph, shared_graph):
    own = make_graph(bob, name="bob's own")
    public = make_graph(carol, name="carol's public", public=True)
    make_graph(carol, name="carol's private")
    response = api(bob).get(GRAPHS)
    assert response.status_code == 200
    page = response.json()
    assert {g["id"] for g in page["results"]} == {own.pk, public.pk, shared_graph.pk}
    assert page["count"] == 3
    assert page["next"] is None
    listed = next(g for g in page["results"] if g["id"] == shared_graph.pk)
    assert "elements" not in listed
    assert (listed["node_count"], listed["edge_count"]) == (3, 2)
    assert listed["owner"] == {"id": alice.pk, "username": "alice"}


def test_an_outsider_lists_only_public_graphs(api, carol, make_graph, alice, shared_graph):
    public = make_graph(alice, name="public", public=True)
    assert [g["id"] for g in api(carol).get(GRAPHS).json()["results"]] == [public.pk]


def test_anonymous_cannot_list(api, alice, make_graph):
    make_graph(alice, public=True)
    assert api().get(GRAPHS).status_code == 401


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_owner_and_group_members_read_a_private_graph(api, request, shared_graph, who):
    response = api(request.getfixturevalue(who)).get(graph_url(shared_graph))
    assert response.status_code == 200
    assert response.json()["elements"]["nodes"][0] == {"data": {"id": "TP53"}}


def test_an_outsider_gets_404_that_does_not_reveal_the_graph(api, carol, shared_graph):
    hidden = api(carol).get(graph_url(shared_graph))
    missing = api(carol).get(f"{GRAPHS}{shared_graph.pk + 1000}/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"detail": "No such graph.", "code": "not_found"}


def test_anonymous_reads_a_public_graph(api, alice, make_graph):
    graph = make_graph(alice, public=True)
    response = api().get(graph_url(graph))
    assert response.status_code == 200
    assert response.json()["id"] == graph.pk


def test_anonymous_gets_401_for_a_private_graph_and_for_none(api, shared_graph):
    private = api().get(graph_url(shared_graph))
    missing = api().get(f"{GRAPHS}{shared_graph.pk + 1000}/")
    assert private.status_code == missing.status_code == 401
    assert private.json() == missing.json()
    assert private["WWW-Authenticate"] == "Token"


def test_an_outsider_reads_a_public_graph_but_cannot_change_it(api, alice, carol, make_graph):
    graph = make_graph(alice, public=True)
    assert api(carol).get(graph_url(graph)).status_code == 200
    response = api(carol).patch(graph_url(graph), {"name": "mine now"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert api(carol).delete(graph_url(graph)).status_code == 403
    assert api().patch(graph_url(graph), {"name": "anonymous"}).status_code == 401


def test_a_non_numeric_id_is_a_404(api, alice):
    assert api(alice).get(f"{GRAPHS}abc/").status_code == 404


def test_members_see_only_their_own_groups_in_shared_with(api, alice, bob, shared_graph):
    secret = Group.objects.create(name="secret", owner=alice)
    secret.members.add(alice)
    shared_graph.shared_with.add(secret)
    lab = shared_graph.shared_with.get(name="lab")
    assert api(alice).get(graph_url(shared_graph)).json()["shared_with"] == [
        {"id": lab.pk, "name": "lab"},
        {"id": secret.pk, "name": "secret"},
    ]
    assert api(bob).get(graph_url(shared_graph)).json()["shared_with"] == [{"id": lab.pk, "name": "lab"}]
    listed = api(bob).get(GRAPHS).json()["results"]
    assert listed[0]["shared_with"] == [{"id": lab.pk, "name": "lab"}]


# --- changes: the owner only ---


def test_the_owner_renames_describes_and_publishes(api, alice, shared_graph):
    response = api(alice).patch(graph_url(shared_graph), {"name": "renamed", "description": "why", "public": True})
    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response.json()["description"], response.json()["public"]) == (
        "renamed",
        "why",
        True,
    )
    shared_graph.refresh_from_db()
    assert (shared_graph.name, shared_graph.public) == ("renamed", True)


def test_a_member_cannot_change_the_graph(api, bob, shared_graph):
    response = api(bob).patch(graph_url(shared_graph), {"name": "bob's now"})
    assert response.status_code == 403
    assert response.json()["detail"] == "Only the owner of a graph may change it, share it or delete it."
    shared_graph.refresh_from_db()
    assert shared_graph.name == "TP53 core"


def test_an_outsider_changing_a_private_graph_gets_404(api, carol, shared_graph):
    assert api(carol).patch(graph_url(shared_graph), {"name": "x"}).status_code == 404
    assert api(carol).delete(graph_url(shared_graph)).status_code == 404


def test_elements_are_fixed_once_imported(api, alice, shared_graph):
    response = api(alice).patch(graph_url(shared_graph), {"elements": ELEMENTS})
    assert response.status_code == 400
    assert "fixed once imported" in response.json()["errors"]["elements"][0]


def test_put_is_not_offered(api, alice, shared_graph):
    response = api(alice).put(graph_url(shared_graph), {"name": "x", "elements": ELEMENTS})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_making_a_graph_private_tells_its_viewers_to_check_access(
    api, alice, make_graph, django_capture_on_commit_callbacks
):
    graph = make_graph(alice, public=True)
    response, messages = heard(
        f"graph.{graph.pk}",
        lambda: api(alice).patch(graph_url(graph), {"public": False}),
        1,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200
    assert messages == [{"type": "graph.access", "graph": graph.pk}]


def test_a_change_that_takes_no_access_away_announces_nothing(
    api, alice, shared_graph, django_capture_on_commit_callbacks
):
    response, messages = heard(
        f"graph.{shared_graph.pk}",
        lambda: api(alice).patch(graph_url(shared_graph), {"name": "new name"}),
        0,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200
    assert messages == []


def test_the_owner_deletes_a_graph_with_its_discussion(
    api, alice, bob, shared_graph, django_capture_on_commit_callbacks
):
    services.create_comment(user=bob, graph=shared_graph, body="soon gone")
    assert api(bob).delete(graph_url(shared_graph)).status_code == 403
    response, messages = heard(
        f"graph.{shared_graph.pk}",
        lambda: api(alice).delete(graph_url(shared_graph)),
        1,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 204
    assert messages == [{"type": "graph.access", "graph": shared_graph.pk}]
    assert not Graph.objects.filter(pk=shared_graph.pk).exists()
    assert not Comment.objects.exists()
    assert api(alice).get(graph_url(shared_graph)).status_code == 404


# --- sharing ---


def test_the_owner_shares_with_a_group_and_its_members_see_the_graph(api, alice, bob, carol, make_graph):
    graph = make_graph(alice)
    group = Group.objects.create(name="collaborators", owner=alice)
    group.members.add(alice, carol)
    assert api(carol).get(graph_url(graph)).status_code == 404
    response = api(alice).post(f"{graph_url(graph)}share/", {"group": group.pk})
    assert response.status_code == 200, response.json()
    assert response.json()["shared_with"] == [{"id": group.pk, "name": "collaborators"}]
    assert api(carol).get(graph_url(graph)).status_code == 200
    assert api(bob).get(graph_url(graph)).status_code == 404
    # Sharing again changes nothing.
    again = api(alice).post(f"{graph_url(graph)}share/", {"group": group.pk})
    assert again.json()["shared_with"] == [{"id": group.pk, "name": "collaborators"}]


def test_only_the_owner_shares(api, alice, bob, shared_graph):
    own = Group.objects.create(name="bob's", owner=bob)
    own.members.add(bob)
    response = api(bob).post(f"{graph_url(shared_graph)}share/", {"group": own.pk})
    assert response.status_code == 403
    assert not shared_graph.shared_with.filter(pk=own.pk).exists()


@pytest.mark.parametrize("group", ["someone else's", 999999, "x", None])
def test_sharing_needs_a_group_of_ones_own(api, alice, bob, shared_graph, group):
    if group == "someone else's":
        other = Group.objects.create(name="bob's", owner=bob)
        other.members.add(bob)
        group = other.pk
    response = api(alice).post(f"{graph_url(shared_graph)}share/", {"group": group})
    assert response.status_code == 400
    assert "group" in response.json()["errors"]


def test_unsharing_takes_access_away_and_tells_the_viewers(
    api, alice, bob, shared_graph, django_capture_on_commit_callbacks
):
    group = shared_graph.shared_with.get()
    url = f"{graph_url(shared_graph)}share/{group.pk}/"
    assert api(bob).delete(url).status_code == 403
    response, messages = heard(
        f"graph.{shared_graph.pk}", lambda: api(alice).delete(url), 1, django_capture_on_commit_callbacks
    )
    assert response.status_code == 200
    assert response.json()["shared_with"] == []
    assert messages == [{"type": "graph.access", "graph": shared_graph.pk}]
    assert api(bob).get(graph_url(shared_graph)).status_code == 404
    again = api(alice).delete(url)
    assert again.status_code == 404
    assert again.json()["detail"] == "The graph is not shared with that group."


# --- groups ---


def test_creating_a_group_makes_the_requester_owner_and_member(api, alice, bob):
    response = api(alice).post(GROUPS, {"name": "p53 lab", "owner": bob.pk})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "p53 lab"
    assert body["owner"] == {"id": alice.pk, "username": "alice"}
    assert body["members"] == [{"id": alice.pk, "username": "alice"}]


def test_groups_are_listed_to_their_owner_and_members_only(api, alice, bob, carol, shared_graph):
    lab = Group.objects.get(name="lab")
    carols = Group.objects.create(name="carol's", owner=carol)
    carols.members.add(carol)
    assert [g["id"] for g in api(bob).get(GROUPS).json()["results"]] == [lab.pk]
    assert [g["id"] for g in api(carol).get(GROUPS).json()["results"]] == [carols.pk]
    assert api(bob).get(f"{GROUPS}{lab.pk}/").json()["members"] == [
        {"id": alice.pk, "username": "alice"},
        {"id": bob.pk, "username": "bob"},
    ]
    assert api(carol).get(f"{GROUPS}{lab.pk}/").status_code == 404
    assert api().get(GROUPS).status_code == 401


def test_only_the_group_owner_renames_it(api, alice, bob, shared_graph):
    lab = Group.objects.get(name="lab")
    assert api(bob).patch(f"{GROUPS}{lab.pk}/", {"name": "bob's lab"}).status_code == 403
    response = api(alice).patch(f"{GROUPS}{lab.pk}/", {"name": "p53 lab"})
    assert response.status_code == 200
    assert response.json()["name"] == "p53 lab"


def test_the_owner_adds_a_member_by_username(api, alice, bob, carol, shared_graph):
    lab = Group.objects.get(name="lab")
    url = f"{GROUPS}{lab.pk}/members/"
    assert api(bob).post(url, {"username": "carol"}).status_code == 403
    unknown = api(alice).post(url, {"username": "nobody"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == {"username": ["No user is called 'nobody'."]}
    response = api(alice).post(url, {"username": "carol"})
    assert response.status_code == 200
    assert [m["username"] for m in response.json()["members"]] == ["alice", "bob", "carol"]
    assert api(carol).get(graph_url(shared_graph)).status_code == 200


def test_removing_a_member_takes_access_away_and_tells_the_viewers(
    api, alice, bob, shared_graph, django_capture_on_commit_callbacks
):
    lab = Group.objects.get(name="lab")
    url = f"{GROUPS}{lab.pk}/members/{bob.pk}/"
    assert api(bob).delete(url).status_code == 403
    response, messages = heard(
        f"graph.{shared_graph.pk}", lambda: api(alice).delete(url), 1, django_capture_on_commit_callbacks
    )
    assert response.status_code == 200
    assert [m["username"] for m in response.json()["members"]] == ["alice"]
    assert messages == [{"type": "graph.access", "graph": shared_graph.pk}]
    assert api(bob).get(graph_url(shared_graph)).status_code == 404
    assert api(alice).delete(url).status_code == 404


def test_the_group_owner_stays_a_member(api, alice, shared_graph):
    lab = Group.objects.get(name="lab")
    response = api(alice).delete(f"{GROUPS}{lab.pk}/members/{alice.pk}/")
    assert response.status_code == 400
    assert response.json()["detail"] == "user: The owner of a group stays its member."


def test_deleting_a_group_takes_its_graphs_away_from_members(
    api, alice, bob, shared_graph, django_capture_on_commit_callbacks
):
    lab = Group.objects.get(name="lab")
    assert api(bob).delete(f"{GROUPS}{lab.pk}/").status_code == 403
    response, messages = heard(
        f"graph.{shared_graph.pk}",
        lambda: api(alice).delete(f"{GROUPS}{lab.pk}/"),
        1,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 204
    assert messages == [{"type": "graph.access", "graph": shared_graph.pk}]
    assert api(bob).get(graph_url(shared_graph)).status_code == 404
    assert api(alice).get(graph_url(shared_graph)).status_code == 200


# --- me ---


def test_me_is_the_authenticated_user(api, alice):
    assert api(alice).get("/api/v1/me/").json() == {"id": alice.pk, "username": "alice"}
    assert api().get("/api/v1/me/").status_code == 401
