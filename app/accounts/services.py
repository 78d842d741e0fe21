"""People leave without leaving holes: an account is anonymised, never deleted with what it wrote.

Deleting a user would cascade to their comments, the replies in their threads and the numbered events of both,
leaving gaps in the per-graph sequence that open pages would wait on for ever. So the links from what people wrote
to their authors are PROTECT (a raw delete of such a user is refused), and `anonymise_user` is the one way out,
called by the admin action and by `manage.py anonymise_user`.
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.authtoken.models import Token

from comments.models import Comment, Event, Notification, Pin
from graphs.models import Graph


def anonymous_name(user_id: int) -> str:
    """The stable name an anonymised account takes: the same on every run, unique because the id is."""
    return f"deleted-user-{user_id}"


@transaction.atomic
def anonymise_user(user):
    """Turn the account into "deleted-user-<id>", keeping every comment, reply, reaction and event.

    The account can no longer be used: deactivated (its open WebSockets close, live/signals.py), no password,
    no staff rights, its tokens and sessions deleted. What identified the person goes: the name, in the account and
    in every stored event payload that carried it (author, resolved_by, mentions); the email and full name; their
    private pins and notifications. What they wrote stays, as written, under the new name: delete comments first
    (on the page or by the API) where the words themselves must go. Graphs and groups they own stay theirs (in the
    admin, give the graphs another owner to let someone change them). Running it again changes nothing.
    """
    user_model = get_user_model()
    user = user_model.objects.select_for_update().get(pk=user.pk)
    old_name, new_name = user.username, anonymous_name(user.pk)
    if user_model.objects.filter(username=new_name).exclude(pk=user.pk).exists():
        raise ValidationError(f"Another account is already called {new_name!r}: rename it first.")
    # Hold the row locks that number the events of the graphs where the name appears (services._next_seq): a change
    # in flight there commits first and is rewritten below, and later ones wait and read the new name.
    graph_ids = set(
        Comment.objects.filter(Q(author=user) | Q(resolved_by=user) | Q(mentions=user)).values_list(
            "graph_id", flat=True
        )
    )
    list(Graph.objects.select_for_update().filter(pk__in=graph_ids).order_by("pk").values_list("pk", flat=True))

    user.username = new_name
    user.first_name = user.last_name = user.email = ""
    user.is_active = user.is_staff = user.is_superuser = False
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()
    Token.objects.filter(user=user).delete()
    _delete_sessions(user.pk)
    Pin.objects.filter(user=user).delete()
    Notification.objects.filter(user=user).delete()
    if old_name != new_name:
        _rename_in_events(user.pk, old_name, new_name)
    return user


def _delete_sessions(user_id: int) -> None:
    # Sessions store the user's id inside their encoded data: each live one is read to find the user's.
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user_id):
            session.delete()


def _rename_in_events(user_id: int, old_name: str, new_name: str) -> None:
    """Every stored event payload that names the user by the old name carries the new one instead."""
    naming = Event.objects.filter(
        Q(payload__author__id=user_id) | Q(payload__resolved_by__id=user_id) | Q(payload__mentions__contains=[old_name])
    )
    renamed = []
    for event in naming.only("pk", "payload").iterator(chunk_size=500):
        event.payload = renamed_payload(event.payload, user_id, old_name, new_name)
        renamed.append(event)
    Event.objects.bulk_update(renamed, ["payload"], batch_size=500)


def renamed_payload(payload: dict, user_id: int, old_name: str, new_name: str) -> dict:
    """A comment payload (services.comment_payload) with the user's name replaced wherever it appears."""
    payload = dict(payload)
    for field in ("author", "resolved_by"):
        person = payload.get(field)
        if isinstance(person, dict) and person.get("id") == user_id:
            payload[field] = {**person, "username": new_name}
    if old_name in payload.get("mentions", []):
        # Sorted as comment_payload sorts them, so a replay equals what the comment now says.
        payload["mentions"] = sorted(new_name if name == old_name else name for name in payload["mentions"])
    return payload
