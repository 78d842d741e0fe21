"""`manage.py load_demo`: the demo users, group, graphs and discussion, made once."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from comments.management.commands import load_demo
from comments.models import Comment, CommentReaction, Event, Notification
from graphs.elements import parse_elements
from graphs.models import Graph, Group

pytestmark = pytest.mark.django_db

User = get_user_model()


def run(monkeypatch, password: str | None = "demo-pass-for-tests") -> str:
    if password is None:
        monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("DEMO_PASSWORD", password)
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    return {
        model.__name__: sorted(model.objects.values_list("pk", flat=True))
        for model in (User, Group, Graph, Comment, Event, CommentReaction, Notification)
    } | {"passwords": sorted(User.objects.values_list("password", flat=True))}


def test_the_network_file_is_a_valid_cytoscape_graph():
    document = json.loads(load_demo.NETWORK_FILE.read_text(encoding="utf-8"))
    parsed = parse_elements(document)
    assert len(parsed.node_ids) >= 30
    assert len(parsed.edge_ids) >= 40
    for node in parsed.elements["nodes"]:
        assert node["data"]["name"] == node["data"]["id"]
        assert re.fullmatch(r"[OPQ][0-9][A-Z0-9]{3}[0-9]", node["data"]["uniprot"]), node  # UniProt accession
    for edge in parsed.elements["edges"]:
        assert edge["data"]["interaction"] in {
            "binds",
            "inhibits",
            "phosphorylates",
            "dephosphorylates",
            "ubiquitinates",
            "deubiquitinates",
            "acetylates",
            "deacetylates",
            "transactivates",
        }
    assert {"TP53", "MDM2", "MDM4", "CDKN1A", "BAX", "ATM", "CHEK2", "EP300", "CREBBP", "BRCA1"} <= set(parsed.node_ids)


def test_load_demo_makes_the_demo(monkeypatch):
    output = run(monkeypatch)
    alice, bob, carol = (User.objects.get(username=name) for name in ("alice", "bob", "carol"))
    assert authenticate(username="bob", password="demo-pass-for-tests") == bob
    lab = Group.objects.get(name="p53 lab")
    assert lab.owner == alice
    assert set(lab.members.all()) == {alice, bob}

    tp53 = Graph.objects.get(name="TP53 network")
    assert (tp53.owner, tp53.public, list(tp53.shared_with.all())) == (alice, False, [lab])
    assert tp53.can_view(bob)
    assert not tp53.can_view(carol)
    draft = Graph.objects.get(name="DNA damage checkpoint (draft)")
    assert (draft.owner, draft.public, draft.shared_with.count()) == (alice, False, 0)
    assert not draft.can_view(bob)

    comments = list(Comment.objects.filter(graph=tp53))
    assert {c.anchor_kind for c in comments if not c.is_reply} == {"graph", "node", "edge", "subgraph"}
    assert any(c.is_reply for c in comments)
    assert any(c.resolved for c in comments)
    assert CommentReaction.objects.filter(comment__graph=tp53).count() == 3
    assert list(Notification.objects.values_list("user__username", "actor__username")) == [("bob", "alice")]
    # Written by the one writer: every change is a numbered event, 1, 2, 3 ... without gaps.
    seqs = list(Event.objects.filter(graph=tp53).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    tp53.refresh_from_db()
    assert tp53.last_seq == len(seqs) == 9  # 5 comments, 3 reactions, 1 resolve

    assert "user alice: created" in output
    assert f"graph 'TP53 network' (#{tp53.pk}, 33 nodes, 47 edges, shared with 'p53 lab'): created" in output
    assert "Password" not in output  # it was given, so it is not printed


def test_running_it_again_changes_nothing_and_prints_the_same(monkeypatch):
    run(monkeypatch)
    before = snapshot()
    second = run(monkeypatch, password="another-password")
    third = run(monkeypatch, password=None)
    assert snapshot() == before
    assert second == third
    assert "user alice: exists (password unchanged)" in second
    assert "created" not in second
    assert authenticate(username="alice", password="demo-pass-for-tests") is not None


def test_without_demo_password_a_random_one_is_printed_once(monkeypatch):
    output = run(monkeypatch, password=None)
    match = re.search(r"Password of the users created now: (\S+)", output)
    assert match, output
    password = match.group(1)
    assert len(password) >= 16
    for name in ("alice", "bob", "carol"):
        assert authenticate(username=name, password=password) is not None
    assert "Password" not in run(monkeypatch, password=None)


def test_existing_users_keep_their_password(monkeypatch, make_user):
    alice = make_user("alice", password="alice-own-password")
    run(monkeypatch)
    assert authenticate(username="alice", password="alice-own-password") == alice
    assert authenticate(username="bob", password="demo-pass-for-tests") is not None
    assert Graph.objects.get(name="TP53 network").owner == alice
