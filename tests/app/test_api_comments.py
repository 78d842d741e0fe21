"""REST: comments, replies, moderation, reactions, pins, mentions, events and people (docs/protocol.md)."""

from __future__ import annotations

import json

import pytest

from comments import services, views
from comments.models import Comment, Event, Notification, Pin
from layer_spy import heard

pytestmark = pytest.mark.django_db


def comments_url(graph) -> str:
    return f"/api/v1/graphs/{graph.pk}/comments/"


def comment_url(comment_id: int, action: str = "") -> str:
    return f"/api/v1/comments/{comment_id}/{action + '/' if action else ''}"


def post(api, user, graph, **fields):
    return api(user).post(comments_url(graph), fields)


def posted(api, user, graph, **fields) -> dict:
    response = post(api, user, graph, **fields)
    assert response.status_code == 201, response.json()
    return response.json()


# --- posting ---


def test_a_comment_on_the_whole_graph(api, alice, bob, shared_graph):
    response = post(api, bob, shared_graph, body="Is this the canonical loop?", author=alice.pk)
    assert response.status_code == 201
    comment = response.json()
    assert comment["author"] == {"id": bob.pk, "username": "bob"}  # never the "author" field of the request
    assert comment["body"] == "Is this the canonical loop?"
    assert comment["anchor"] == {"kind": "graph", "nodes": [], "edges": []}
    assert comment["graph"] == shared_graph.pk
    assert (comment["parent"], comment["resolved"], comment["deleted"], comment["pinned"]) == (
        None,
        False,
        False,
        False,
    )
    assert (comment["reactions"], comment["mentions"], comment["reply_count"], comment["seq"]) == ({}, [], 0, 1)
    event = Event.objects.get(graph=shared_graph)
    assert (event.seq, event.kind, event.payload["id"]) == (1, "comment.created", comment["id"])
    assert Comment.objects.get(pk=comment["id"]).author == bob


@pytest.mark.parametrize(
    ("anchor", "kind"),
    [
        ({"nodes": ["MDM2"]}, "node"),
        ({"edges": ["e1"]}, "edge"),
        ({"nodes": ["TP53", "MDM2"], "edges": ["e1"]}, "subgraph"),
        ({"nodes": ["TP53", "MDM2"]}, "subgraph"),
        ({"nodes": [], "edges": []}, "graph"),
    ],
)
def test_comments_anchor_to_nodes_edges_and_subgraphs(api, alice, shared_graph, anchor, kind):
    comment = posted(api, alice, shared_graph, body="here", **anchor)
    assert comment["anchor"] == {"kind": kind, "nodes": anchor.get("nodes", []), "edges": anchor.get("edges", [])}


@pytest.mark.parametrize(
    ("anchor", "field", "message"),
    [
        ({"nodes": ["XYZ"]}, "nodes", "Not in this graph: XYZ."),
        ({"nodes": ["e1"]}, "nodes", "Not in this graph: e1."),
        ({"edges": ["TP53"]}, "edges", "Not in this graph: TP53."),
        ({"nodes": ["TP53"], "edges": ["e1", "e99"]}, "edges", "Not in this graph: e99."),
        ({"nodes": "TP53"}, "nodes", "Give a list of element ids."),
    ],
)
def test_an_anchor_outside_the_graph_is_a_400(api, alice, shared_graph, anchor, field, message):
    response = post(api, alice, shared_graph, body="there", **anchor)
    assert response.status_code == 400
    assert response.json() == {"detail": f"{field}: {message}", "code": "invalid", "errors": {field: [message]}}
    assert not Comment.objects.exists()


def test_a_reply_takes_its_threads_anchor(api, alice, bob, shared_graph):
    thread = posted(api, alice, shared_graph, body="MDM2?", nodes=["MDM2"])
    reply = posted(api, bob, shared_graph, body="Yes, MDM2.", parent=thread["id"])
    assert reply["parent"] == thread["id"]
    assert reply["anchor"] == {"kind": "node", "nodes": ["MDM2"], "edges": []}
    assert api(alice).get(comment_url(thread["id"])).json()["reply_count"] == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"nodes": ["TP53"]}, "A reply takes the anchor of its thread; leave out nodes and edges."),
        ({"parent": "reply"}, "Replies are one level deep: reply to the thread instead."),
        ({"parent": 999999}, "No such comment on this graph."),
        ({"parent": "1"}, "Give the id of the comment to reply to."),
    ],
)
def test_bad_replies_are_refused(api, alice, bob, shared_graph, fields, message):
    thread = posted(api, alice, shared_graph, body="thread")
    reply = posted(api, bob, shared_graph, body="reply", parent=thread["id"])
    fields = {"parent": thread["id"], **fields}
    if fields["parent"] == "reply":
        fields["parent"] = reply["id"]
    response = post(api, bob, shared_graph, body="one more", **fields)
    assert response.status_code == 400
    assert response.json()["errors"] == {"parent": [message]}


def test_a_reply_to_a_thread_of_another_graph_is_refused(api, alice, shared_graph, make_graph):
    other = make_graph(alice, name="other")
    thread = posted(api, alice, other, body="elsewhere")
    response = post(api, alice, shared_graph, body="reply", parent=thread["id"])
    assert response.status_code == 400
    assert response.json()["errors"] == {"parent": ["No such comment on this graph."]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x" * 10_001, "The body is longer than 10000 characters."),
        ("   \n", "The body must not be empty."),
        (42, "The body must be a string."),
        (None, "The body must be a string."),
    ],
)
def test_a_bad_body_is_a_400(api, alice, shared_graph, body, message):
    response = post(api, alice, shared_graph, body=body)
    assert response.status_code == 400
    assert response.json()["errors"] == {"body": [message]}


def test_a_body_of_exactly_the_limit_is_taken(api, alice, shared_graph):
    assert len(posted(api, alice, shared_graph, body="é" * 10_000)["body"]) == 10_000


def test_a_body_is_stored_exactly_as_written(api, alice, shared_graph):
    body = '  <script>alert("x")</script> & <b>bold</b> {{ template }}\n\ttabs  '
    comment = posted(api, alice, shared_graph, body=body)
    assert comment["body"] == body
    assert Comment.objects.get(pk=comment["id"]).body == body
    response = api(alice).get(comment_url(comment["id"]))
    assert response["Content-Type"] == "application/json"
    assert response.json()["body"] == body


def test_an_outsider_cannot_post_to_a_private_graph(api, carol, shared_graph):
    response = post(api, carol, shared_graph, body="let me in")
    assert response.status_code == 404
    assert not Comment.objects.exists()


def test_anyone_signed_in_comments_on_a_public_graph(api, alice, carol, make_graph):
    graph = make_graph(alice, public=True)
    assert posted(api, carol, graph, body="nice graph")["author"]["username"] == "carol"


def test_anonymous_reads_the_comments_of_a_public_graph_but_cannot_post(api, alice, make_graph):
    graph = make_graph(alice, public=True)
    comment = posted(api, alice, graph, body="public")
    listed = api().get(comments_url(graph))
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["results"]] == [comment["id"]]
    assert listed.json()["results"][0]["pinned"] is False
    assert api().get(comment_url(comment["id"])).status_code == 200
    response = api().post(comments_url(graph), {"body": "anonymous"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_anonymous_gets_401_for_the_comments_of_a_private_graph(api, alice, shared_graph):
    comment = posted(api, alice, shared_graph, body="private")
    assert api().get(comments_url(shared_graph)).status_code == 401
    assert api().get(comment_url(comment["id"])).status_code == 401
    assert api().get(f"/api/v1/graphs/{shared_graph.pk}/events/").status_code == 401


def test_a_comment_posted_over_rest_is_broadcast_to_the_graph_after_commit(
    api, bob, shared_graph, django_capture_on_commit_callbacks
):
    response, messages = heard(
        f"graph.{shared_graph.pk}",
        lambda: post(api, bob, shared_graph, body="live"),
        1,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 201
    assert len(messages) == 1
    assert (messages[0]["type"], messages[0]["seq"]) == ("graph.event", 1)
    assert Event.objects.get(seq=1).as_message()["comment"]["body"] == "live"


# --- listing ---


@pytest.fixture
def discussion(alice, bob, shared_graph):
    """Five comments of different anchors, authors and states, oldest first."""
    on_graph = services.create_comment(user=alice, graph=shared_graph, body="overview").comment
    on_node = services.create_comment(user=bob, graph=shared_graph, body="MDM2", nodes=["MDM2"]).comment
    on_edge = services.create_comment(user=alice, graph=shared_graph, body="e1", edges=["e1"]).comment
    subgraph = services.create_comment(user=bob, graph=shared_graph, body="loop", nodes=["TP53", "MDM2"], edges=["e1"])
    reply = services.create_comment(user=alice, graph=shared_graph, body="agreed", parent=on_node.pk).comment
    services.set_resolved(user=alice, comment=on_edge, resolved=True)
    return {
        "graph": on_graph.pk,
        "node": on_node.pk,
        "edge": on_edge.pk,
        "subgraph": subgraph.comment.pk,
        "reply": reply.pk,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["graph", "node", "edge", "subgraph", "reply"]),
        ("?node=MDM2", ["node", "subgraph", "reply"]),
        ("?node=TP53", ["subgraph"]),
        ("?edge=e1", ["edge", "subgraph"]),
        ("?node=NOPE", []),
        ("?resolved=true", ["edge"]),
        ("?resolved=false", ["graph", "node", "subgraph", "reply"]),
        ("?parent=none", ["graph", "node", "edge", "subgraph"]),
        ("?parent={node}", ["reply"]),
        ("?author=bob", ["node", "subgraph"]),
        ("?author={alice}", ["graph", "edge", "reply"]),
        ("?author=nobody", []),
        ("?author=²", []),
        ("?author=99999999999999999999999", []),
        ("?parent=99999999999999999999999", []),
        ("?parent=none&resolved=false&node=MDM2", ["node", "subgraph"]),
    ],
)
def test_comment_filters(api, alice, shared_graph, discussion, query, expected):
    query = query.format(node=discussion["node"], alice=alice.pk)
    response = api(alice).get(comments_url(shared_graph) + query)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [discussion[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "field"),
    [("?resolved=maybe", "resolved"), ("?parent=first", "parent"), ("?parent=-1", "parent"), ("?parent=²", "parent")],
)
def test_a_bad_filter_is_a_400(api, alice, shared_graph, query, field):
    response = api(alice).get(comments_url(shared_graph) + query)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_comments_are_paginated_oldest_first(api, alice, shared_graph):
    ids = [services.create_comment(user=alice, graph=shared_graph, body=f"#{n}").comment.pk for n in range(5)]
    first = api(alice).get(comments_url(shared_graph) + "?page_size=2").json()
    assert first["count"] == 5
    assert [c["id"] for c in first["results"]] == ids[:2]
    second = api(alice).get(first["next"]).json()
    assert [c["id"] for c in second["results"]] == ids[2:4]
    assert api(alice).get(comments_url(shared_graph) + "?page=9").status_code == 404


def test_a_page_of_comments_costs_a_fixed_number_of_queries(
    api, alice, bob, shared_graph, django_assert_max_num_queries
):
    for n in range(12):
        comment = services.create_comment(user=bob, graph=shared_graph, body=f"@alice #{n}", nodes=["TP53"]).comment
        services.toggle_reaction(user=alice, comment=comment, reaction="heart")
        services.create_comment(user=alice, graph=shared_graph, body="reply", parent=comment.pk)
    client = api(alice)
    with django_assert_max_num_queries(12):
        response = client.get(comments_url(shared_graph))
    assert len(response.json()["results"]) == 24


# --- reading, editing, deleting ---


def test_read_one_comment(api, alice, bob, carol, shared_graph):
    comment = posted(api, alice, shared_graph, body="one")
    assert api(bob).get(comment_url(comment["id"])).json()["body"] == "one"
    hidden = api(carol).get(comment_url(comment["id"]))
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": "No such comment.", "code": "not_found"}


def test_the_author_edits(api, alice, shared_graph):
    comment = posted(api, alice, shared_graph, body="frist")
    response = api(alice).patch(comment_url(comment["id"]), {"body": "first", "author": 999})
    assert response.status_code == 200
    edited = response.json()
    assert (edited["body"], edited["seq"]) == ("first", 2)
    assert edited["edited_at"] is not None
    assert Event.objects.get(seq=2).kind == "comment.edited"


@pytest.mark.parametrize(
    ("author", "editor"), [("alice", "bob"), ("bob", "alice")], ids=["member-edits-owners", "owner-edits-members"]
)
def test_only_the_author_edits_not_even_the_graph_owner(api, request, shared_graph, author, editor):
    comment = posted(api, request.getfixturevalue(author), shared_graph, body="mine")
    response = api(request.getfixturevalue(editor)).patch(comment_url(comment["id"]), {"body": "yours now"})
    assert response.status_code == 403
    assert response.json() == {"detail": "Only the author may edit a comment.", "code": "permission_denied"}
    assert Comment.objects.get(pk=comment["id"]).body == "mine"


def test_an_edit_needs_a_body(api, alice, shared_graph):
    comment = posted(api, alice, shared_graph, body="x")
    response = api(alice).patch(comment_url(comment["id"]), {})
    assert response.status_code == 400
    assert response.json()["errors"] == {"body": ["The body must be a string."]}
    assert api(alice).patch(comment_url(comment["id"]), {"body": "y" * 10_001}).status_code == 400


def test_the_author_deletes_softly_and_the_replies_stay(api, alice, bob, shared_graph):
    thread = posted(api, bob, shared_graph, body="thread @alice", nodes=["TP53"])
    reply = posted(api, alice, shared_graph, body="reply", parent=thread["id"])
    response = api(bob).delete(comment_url(thread["id"]))
    assert response.status_code == 200
    deleted = response.json()
    assert (deleted["deleted"], deleted["body"], deleted["mentions"]) == (True, None, [])
    assert deleted["anchor"] == thread["anchor"]
    assert deleted["reply_count"] == 1
    listed = api(alice).get(comments_url(shared_graph)).json()["results"]
    assert [(c["id"], c["body"]) for c in listed] == [(thread["id"], None), (reply["id"], "reply")]
    assert Event.objects.order_by("-seq").first().kind == "comment.deleted"
    assert api(bob).delete(comment_url(thread["id"])).status_code == 400
    assert api(bob).patch(comment_url(thread["id"]), {"body": "back"}).status_code == 403


def test_the_graph_owner_deletes_anyones_comment(api, alice, bob, shared_graph):
    comment = posted(api, bob, shared_graph, body="off topic")
    assert api(alice).delete(comment_url(comment["id"])).json()["deleted"] is True


def test_other_members_cannot_delete(api, alice, bob, carol, shared_graph):
    shared_graph.shared_with.get().members.add(carol)
    comment = posted(api, bob, shared_graph, body="bob's")
    response = api(carol).delete(comment_url(comment["id"]))
    assert response.status_code == 403
    assert not Comment.objects.get(pk=comment["id"]).deleted


# --- resolve and reopen ---


def test_the_author_resolves_and_reopens_a_thread(api, bob, shared_graph):
    thread = posted(api, bob, shared_graph, body="fix the label")
    resolved = api(bob).post(comment_url(thread["id"], "resolve")).json()
    assert (resolved["resolved"], resolved["resolved_by"]["username"]) == (True, "bob")
    assert resolved["resolved_at"] is not None
    again = api(bob).post(comment_url(thread["id"], "resolve"))
    assert again.status_code == 400
    assert again.json() == {"detail": "The thread is already resolved.", "code": "invalid"}
    reopened = api(bob).post(comment_url(thread["id"], "reopen")).json()
    assert (reopened["resolved"], reopened["resolved_by"], reopened["resolved_at"]) == (False, None, None)
    assert api(bob).post(comment_url(thread["id"], "reopen")).status_code == 400
    assert list(Event.objects.values_list("kind", flat=True)) == [
        "comment.created",
        "comment.resolved",
        "comment.reopened",
    ]


def test_the_graph_owner_resolves_others_may_not(api, alice, bob, carol, shared_graph):
    shared_graph.shared_with.get().members.add(carol)
    thread = posted(api, bob, shared_graph, body="question")
    assert api(carol).post(comment_url(thread["id"], "resolve")).status_code == 403
    assert api(alice).post(comment_url(thread["id"], "resolve")).json()["resolved_by"]["username"] == "alice"


def test_replies_are_not_resolved(api, alice, shared_graph):
    thread = posted(api, alice, shared_graph, body="thread")
    reply = posted(api, alice, shared_graph, body="reply", parent=thread["id"])
    response = api(alice).post(comment_url(reply["id"], "resolve"))
    assert response.status_code == 400
    assert response.json()["detail"] == "Only threads are resolved; this comment is a reply."


# --- reactions ---


def test_reactions_toggle_per_user(api, alice, bob, shared_graph):
    comment = posted(api, alice, shared_graph, body="react")
    url = comment_url(comment["id"], "reactions")
    assert api(alice).post(url, {"reaction": "+1"}).json()["reactions"] == {"+1": [alice.pk]}
    assert api(bob).post(url, {"reaction": "+1"}).json()["reactions"] == {"+1": sorted([alice.pk, bob.pk])}
    assert api(bob).post(url, {"reaction": "rocket"}).json()["reactions"] == {
        "+1": sorted([alice.pk, bob.pk]),
        "rocket": [bob.pk],
    }
    assert api(alice).post(url, {"reaction": "+1"}).json()["reactions"] == {"+1": [bob.pk], "rocket": [bob.pk]}
    assert Event.objects.filter(kind="reaction.changed").count() == 4


@pytest.mark.parametrize("reaction", ["thumbsup", "👍", "", None, ["+1"]])
def test_an_unknown_reaction_is_a_400(api, alice, shared_graph, reaction):
    comment = posted(api, alice, shared_graph, body="react")
    response = api(alice).post(comment_url(comment["id"], "reactions"), {"reaction": reaction})
    assert response.status_code == 400
    assert response.json()["errors"] == {"reaction": ["Choose one of: +1 -1 laugh hooray confused heart rocket eyes."]}


def test_every_one_of_the_eight_reactions_is_taken(api, alice, shared_graph):
    comment = posted(api, alice, shared_graph, body="react")
    names = ["+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"]
    for name in names:
        response = api(alice).post(comment_url(comment["id"], "reactions"), {"reaction": name})
    assert sorted(response.json()["reactions"]) == sorted(names)


def test_a_deleted_comment_takes_no_reactions(api, alice, shared_graph):
    comment = posted(api, alice, shared_graph, body="gone")
    api(alice).delete(comment_url(comment["id"]))
    assert api(alice).post(comment_url(comment["id"], "reactions"), {"reaction": "+1"}).status_code == 400


def test_anonymous_cannot_react_on_a_public_graph(api, alice, make_graph):
    graph = make_graph(alice, public=True)
    comment = posted(api, alice, graph, body="public")
    assert api().post(comment_url(comment["id"], "reactions"), {"reaction": "+1"}).status_code == 401


# --- pins ---


def test_pins_are_private_to_each_user(api, alice, bob, shared_graph):
    first = posted(api, alice, shared_graph, body="first")
    second = posted(api, alice, shared_graph, body="second")
    seq_before = first["seq"]
    pinned = api(bob).put(comment_url(first["id"], "pin"))
    assert pinned.status_code == 200
    assert pinned.json()["pinned"] is True
    assert pinned.json()["seq"] == seq_before  # nobody else hears of a pin: no event
    assert api(bob).put(comment_url(first["id"], "pin")).json()["pinned"] is True  # idempotent
    assert Pin.objects.count() == 1
    assert api(alice).get(comment_url(first["id"])).json()["pinned"] is False
    assert api(bob).get(comment_url(first["id"])).json()["pinned"] is True
    listed = {c["id"]: c["pinned"] for c in api(bob).get(comments_url(shared_graph)).json()["results"]}
    assert listed == {first["id"]: True, second["id"]: False}
    pins_url = f"/api/v1/graphs/{shared_graph.pk}/pins/"
    assert [c["id"] for c in api(bob).get(pins_url).json()["results"]] == [first["id"]]
    assert api(alice).get(pins_url).json()["results"] == []
    unpinned = api(bob).delete(comment_url(first["id"], "pin"))
    assert unpinned.json()["pinned"] is False
    assert api(bob).get(pins_url).json()["results"] == []
    assert Event.objects.count() == 2


def test_pins_need_sight_and_a_user(api, alice, carol, shared_graph, make_graph):
    comment = posted(api, alice, shared_graph, body="private")
    assert api(carol).put(comment_url(comment["id"], "pin")).status_code == 404
    assert api(carol).get(f"/api/v1/graphs/{shared_graph.pk}/pins/").status_code == 404
    public = make_graph(alice, public=True)
    assert api().get(f"/api/v1/graphs/{public.pk}/pins/").status_code == 401
    public_comment = posted(api, alice, public, body="public")
    assert api().put(comment_url(public_comment["id"], "pin")).status_code == 401


# --- mentions ---


def test_mentions_notify_only_people_who_may_see_the_graph(api, alice, bob, carol, shared_graph):
    comment = posted(api, alice, shared_graph, body="@bob and @carol, see MDM2 (cc @alice, @nobody)")
    assert comment["mentions"] == ["alice", "bob"]
    notification = Notification.objects.get()
    assert (notification.user, notification.actor, notification.comment_id) == (bob, alice, comment["id"])
    assert api(bob).get("/api/v1/notifications/").json()["count"] == 1
    assert api(carol).get("/api/v1/notifications/").json()["count"] == 0


def test_an_edit_notifies_only_the_newly_mentioned(api, alice, bob, carol, shared_graph):
    shared_graph.shared_with.get().members.add(carol)
    comment = posted(api, alice, shared_graph, body="@bob")
    edited = api(alice).patch(comment_url(comment["id"]), {"body": "@bob and @carol"}).json()
    assert edited["mentions"] == ["bob", "carol"]
    assert sorted(Notification.objects.values_list("user__username", flat=True)) == ["bob", "carol"]


def test_a_mention_is_pushed_to_the_users_own_group(api, alice, bob, shared_graph, django_capture_on_commit_callbacks):
    response, messages = heard(
        f"user.{bob.pk}",
        lambda: post(api, alice, shared_graph, body="@bob look"),
        1,
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 201
    assert [m["type"] for m in messages] == ["user.notification"]
    frame = json.loads(messages[0]["text"])
    assert frame["type"] == "notification"
    notification = frame["notification"]
    assert (notification["kind"], notification["actor"]["username"], notification["read"]) == (
        "mention",
        "alice",
        False,
    )
    assert notification["comment"]["id"] == response.json()["id"]
    assert notification["graph"] == {"id": shared_graph.pk, "name": shared_graph.name}


# --- events ---


def test_events_after_a_seq(api, alice, bob, shared_graph):
    comment = posted(api, alice, shared_graph, body="one")
    api(bob).post(comment_url(comment["id"], "reactions"), {"reaction": "eyes"})
    api(alice).patch(comment_url(comment["id"]), {"body": "one, edited"})
    url = f"/api/v1/graphs/{shared_graph.pk}/events/"
    page = api(bob).get(url).json()
    assert [(e["seq"], e["event"]) for e in page["events"]] == [
        (1, "comment.created"),
        (2, "reaction.changed"),
        (3, "comment.edited"),
    ]
    assert (page["last_seq"], page["more"]) == (3, False)
    # Each event keeps the comment as it was then, but with only its newest text (docs/protocol.md).
    assert [event["comment"]["body"] for event in page["events"]] == ["one, edited"] * 3
    assert [event["comment"]["edited_at"] is None for event in page["events"]] == [True, True, False]
    assert page["events"][0]["comment"]["reactions"] == {}
    assert "pinned" not in page["events"][0]["comment"]
    assert set(page["events"][0]) == {"seq", "event", "comment", "created_at"}
    after = api(bob).get(url + "?after_seq=2").json()
    assert [e["seq"] for e in after["events"]] == [3]
    assert api(bob).get(url + "?after_seq=3").json() == {
        "events": [],
        "last_seq": 3,
        "more": False,
        "epoch": shared_graph.epoch,
    }


def test_events_come_at_most_a_page_at_a_time(api, alice, shared_graph, monkeypatch):
    monkeypatch.setattr(views, "EVENTS_PER_CALL", 2)
    for n in range(5):
        services.create_comment(user=alice, graph=shared_graph, body=f"#{n}")
    url = f"/api/v1/graphs/{shared_graph.pk}/events/"
    seen, after, calls = [], 0, 0
    while True:
        page = api(alice).get(f"{url}?after_seq={after}").json()
        calls += 1
        seen += [e["seq"] for e in page["events"]]
        assert page["last_seq"] == 5
        if not page["more"]:
            break
        after = page["events"][-1]["seq"]
    assert (seen, calls) == ([1, 2, 3, 4, 5], 3)


@pytest.mark.parametrize("after_seq", ["-1", "abc", "1.5", "", "²"])
def test_a_bad_after_seq_is_a_400(api, alice, shared_graph, after_seq):
    response = api(alice).get(f"/api/v1/graphs/{shared_graph.pk}/events/?after_seq={after_seq}")
    assert response.status_code == 400
    assert response.json()["errors"] == {"after_seq": ["Give a whole number."]}


def test_events_of_a_private_graph_stay_hidden(api, alice, carol, shared_graph, make_graph):
    services.create_comment(user=alice, graph=shared_graph, body="secret")
    assert api(carol).get(f"/api/v1/graphs/{shared_graph.pk}/events/").status_code == 404
    public = make_graph(alice, public=True)
    services.create_comment(user=alice, graph=public, body="open")
    page = api().get(f"/api/v1/graphs/{public.pk}/events/").json()
    assert [e["comment"]["body"] for e in page["events"]] == ["open"]


# --- people ---


def test_people_are_those_who_may_see_the_graph(api, alice, bob, carol, make_user, shared_graph):
    url = f"/api/v1/graphs/{shared_graph.pk}/people/"
    assert api(alice).get(url + "?q=").json() == [
        {"id": alice.pk, "username": "alice"},
        {"id": bob.pk, "username": "bob"},
    ]
    assert api(bob).get(url + "?q=AL").json() == [{"id": alice.pk, "username": "alice"}]
    assert api(bob).get(url + "?q=car").json() == []
    assert api(carol).get(url).status_code == 404
    assert api().get(url).status_code == 401


def test_people_of_a_public_graph_are_everyone_at_most_ten(api, alice, carol, make_graph, make_user):
    for n in range(12):
        make_user(f"user{n:02}")
    graph = make_graph(alice, public=True)
    people = api(carol).get(f"/api/v1/graphs/{graph.pk}/people/?q=user").json()
    assert [p["username"] for p in people] == [f"user{n:02}" for n in range(10)]


def test_the_event_log_names_its_epoch_and_refuses_another(api, alice, shared_graph):
    url = f"/api/v1/graphs/{shared_graph.pk}/events/"
    page = api(alice).get(url).json()
    assert page["epoch"] == shared_graph.epoch
    assert api(alice).get(f"{url}?after_seq=0&epoch={shared_graph.epoch}").status_code == 200
    response = api(alice).get(f"{url}?after_seq=0&epoch=an-older-life")
    assert (response.status_code, response.json()["code"]) == (409, "epoch_changed")
