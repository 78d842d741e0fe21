"""Removing a user never breaks a graph's numbered events: accounts are anonymised, not deleted (docs/protocol.md)."""

from __future__ import annotations

import json

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db.models import ProtectedError
from django.test import Client
from rest_framework.authtoken.models import Token

from comments import services
from comments.models import Comment, CommentReaction, Event, Notification, Pin

pytestmark = pytest.mark.django_db

USERS = "/admin/auth/user/"


@pytest.fixture
def admin_client(django_user_model, client):
    admin = django_user_model.objects.create_superuser("admin", password="pw-for-tests")
    client.force_login(admin)
    return client


@pytest.fixture
def bobs_thread(alice, bob, shared_graph):
    """bob's thread on alice's graph, alice's reply mentioning him, his reaction and his resolving: 5 events."""
    thread = services.create_comment(user=bob, graph=shared_graph, body="Is MDM2 the only E3 here?").comment
    reply = services.create_comment(user=alice, graph=shared_graph, body="@bob no, see COP1", parent=thread.pk).comment
    services.toggle_reaction(user=bob, comment=reply, reaction="+1")
    services.set_resolved(user=bob, comment=thread, resolved=True)
    services.create_comment(user=alice, graph=shared_graph, body="unrelated")
    return {"thread": thread, "reply": reply}


def seqs(graph) -> list[int]:
    return list(Event.objects.filter(graph=graph).order_by("seq").values_list("seq", flat=True))


def anonymise(admin_client, *users, confirm: bool = True):
    form = {"action": "anonymise", "_selected_action": [user.pk for user in users]}
    return admin_client.post(USERS, {**form, "post": "yes"} if confirm else form)


# --- deleting is refused ---


@pytest.mark.parametrize("how", ["one", "bulk"])
def test_deleting_an_author_in_the_admin_is_refused_with_a_message(admin_client, bob, shared_graph, bobs_thread, how):
    if how == "one":
        response = admin_client.post(f"{USERS}{bob.pk}/delete/", {"post": "yes"})
    else:
        response = admin_client.post(USERS, {"action": "delete_selected", "_selected_action": [bob.pk], "post": "yes"})
    assert response.status_code == 200  # the "cannot delete" page, not a redirect
    page = response.content.decode()
    assert "Cannot delete user" in page
    assert "Use the action “Anonymise the selected users” instead" in page
    bob.refresh_from_db()
    assert Comment.objects.count() == 3
    assert seqs(shared_graph) == [1, 2, 3, 4, 5]


def test_the_owner_of_a_graph_cannot_be_deleted_either(admin_client, alice, shared_graph):
    response = admin_client.post(f"{USERS}{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200
    assert "Anonymise" in response.content.decode()
    shared_graph.refresh_from_db()  # still there, with its owner


def test_an_account_that_wrote_nothing_can_be_deleted(admin_client, carol, django_user_model):
    response = admin_client.post(f"{USERS}{carol.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not django_user_model.objects.filter(pk=carol.pk).exists()


def test_a_raw_delete_of_an_author_is_refused(bob, bobs_thread, shared_graph):
    with pytest.raises(ProtectedError):
        bob.delete()
    assert seqs(shared_graph) == [1, 2, 3, 4, 5]


# --- anonymising ---


def test_anonymising_asks_first(admin_client, bob, bobs_thread):
    response = anonymise(admin_client, bob, confirm=False)
    assert response.status_code == 200
    assert f"bob becomes deleted-user-{bob.pk}" in response.content.decode()
    bob.refresh_from_db()
    assert (bob.username, bob.is_active) == ("bob", True)


def test_anonymising_keeps_comments_replies_and_gapless_events(
    admin_client, api, alice, bob, shared_graph, bobs_thread, django_user_model
):
    bob.email, bob.first_name = "bob@lab.example", "Bob"
    bob.save()
    Token.objects.create(user=bob)
    Client().force_login(bob)
    Pin.objects.create(user=bob, comment=bobs_thread["reply"])
    response = anonymise(admin_client, bob)
    assert response.status_code == 302
    bob.refresh_from_db()
    name = f"deleted-user-{bob.pk}"
    assert (bob.username, bob.email, bob.first_name, bob.is_active) == (name, "", "", False)
    assert not bob.has_usable_password()
    assert not Token.objects.filter(user=bob).exists()
    assert all(s.get_decoded().get("_auth_user_id") != str(bob.pk) for s in Session.objects.all())
    assert not Pin.objects.filter(user=bob).exists()
    assert not Notification.objects.filter(user=bob).exists()
    assert (bob.is_staff, bob.is_superuser) == (False, False)
    # Nothing written is lost, and the numbering goes on without a gap.
    assert Comment.objects.count() == 3
    assert CommentReaction.objects.filter(user=bob).count() == 1
    assert seqs(shared_graph) == [1, 2, 3, 4, 5]
    assert services.create_comment(user=alice, graph=shared_graph, body="after").seq == 6
    # The stored events name the account by its new name only.
    events = api(alice).get(f"/api/v1/graphs/{shared_graph.pk}/events/").json()["events"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    thread, reply = events[0]["comment"], events[1]["comment"]
    assert thread["author"] == {"id": bob.pk, "username": name}
    assert reply["mentions"] == [name]
    assert events[3]["comment"]["resolved_by"] == {"id": bob.pk, "username": name}
    assert '"bob"' not in json.dumps(events)
    assert api(alice).get(f"/api/v1/comments/{bobs_thread['thread'].pk}/").json()["author"]["username"] == name


def test_anonymising_twice_changes_nothing(bob, bobs_thread):
    from accounts.services import anonymise_user

    first = anonymise_user(bob)
    payloads = list(Event.objects.order_by("pk").values_list("payload", flat=True))
    second = anonymise_user(first)
    assert second.username == first.username
    assert list(Event.objects.order_by("pk").values_list("payload", flat=True)) == payloads


def test_one_cannot_anonymise_oneself(admin_client, django_user_model):
    admin = django_user_model.objects.get(username="admin")
    response = anonymise(admin_client, admin)
    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.is_active


def test_the_command_anonymises_too(bob, bobs_thread, capsys):
    call_command("anonymise_user", "bob")
    bob.refresh_from_db()
    assert bob.username == f"deleted-user-{bob.pk}"
    assert f"bob is now deleted-user-{bob.pk}" in capsys.readouterr().out
