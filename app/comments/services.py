"""The one place that changes comments and announces the change.

Every change viewers see goes through `_record`: inside the transaction of the change it takes the graph's next
sequence number (an `UPDATE ... RETURNING` that holds the graph's row lock until commit, so numbers are gapless and
commit in order), stores the event with the comment as it now is, and schedules the broadcast for after commit.
The REST views and the WebSocket consumer both call these functions; neither writes comments itself.

Errors: `django.core.exceptions.ValidationError` (bad input: a 400 or an `invalid` WebSocket error) and
`PermissionDenied` (a 403 or a `forbidden` error). Callers check that the user may *see* the graph first, so that a
private graph is a 404 to outsiders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from comments import broadcast
from comments.models import Comment, CommentReaction, Event, EventKind, Notification, Reaction
from config import inputs
from graphs.models import Graph

MENTION_PATTERN = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")


def comment_payload(comment: Comment) -> dict:
    """The comment as every viewer sees it (no per-user fields: one payload is shared by all)."""
    reactions: dict[str, list[int]] = {}
    for reaction in sorted(comment.reactions.all(), key=lambda r: (r.reaction, r.user_id)):
        reactions.setdefault(reaction.reaction, []).append(reaction.user_id)
    return {
        "id": comment.pk,
        "graph": comment.graph_id,
        "parent": comment.parent_id,
        "author": {"id": comment.author_id, "username": comment.author.username},
        "body": None if comment.deleted else comment.body,
        "anchor": {
            "kind": comment.anchor_kind,
            "nodes": list(comment.anchor_nodes),
            "edges": list(comment.anchor_edges),
        },
        "resolved": comment.resolved,
        "resolved_by": (
            {"id": comment.resolved_by_id, "username": comment.resolved_by.username} if comment.resolved_by_id else None
        ),
        "resolved_at": _iso(comment.resolved_at),
        "deleted": comment.deleted,
        "created_at": _iso(comment.created_at),
        "edited_at": _iso(comment.edited_at),
        "reactions": reactions,
        "mentions": sorted(user.username for user in comment.mentions.all()),
        "reply_count": comment.replies.count() if comment.parent_id is None else 0,
        "seq": comment.seq,
    }


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def notification_payload(notification: Notification) -> dict:
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "graph": {"id": notification.graph_id, "name": notification.graph.name},
        "comment": comment_payload(notification.comment),
        "actor": {"id": notification.actor_id, "username": notification.actor.username},
        "read": notification.read_at is not None,
        "created_at": _iso(notification.created_at),
    }


# One round trip that takes the graph's row lock until commit and returns the new number.
NEXT_SEQ_SQL = f"UPDATE {Graph._meta.db_table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq"  # noqa: S608 - our own table name


def _next_seq(graph_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(NEXT_SEQ_SQL, [graph_id])
        row = cursor.fetchone()
    if row is None:
        raise ValidationError("The graph no longer exists.")
    return row[0]


def _record(comment: Comment, kind: EventKind) -> Event:
    """Number, store and (after commit) announce one change of a comment. Call inside transaction.atomic()."""
    comment.seq = _next_seq(comment.graph_id)
    Comment.objects.filter(pk=comment.pk).update(seq=comment.seq)
    payload = comment_payload(comment)
    event = Event.objects.create(
        graph_id=comment.graph_id, seq=comment.seq, kind=kind, comment=comment, payload=payload
    )
    broadcast.announce_event(comment.graph_id, event.seq, event.as_message())
    return event


def _rewrite_stored_bodies(comment: Comment, *, body: str | None, mentions: list[str], **extra) -> None:
    """Make every stored event of the comment carry this body and these mentions (and `extra` fields)."""
    events = list(Event.objects.filter(comment=comment).only("pk", "payload"))
    for stored in events:
        stored.payload = {**stored.payload, "body": body, "mentions": mentions, **extra}
    Event.objects.bulk_update(events, ["payload"], batch_size=500)


def _clean_body(body: object) -> str:
    if not isinstance(body, str):
        raise ValidationError({"body": ["The body must be a string."]})
    if not body.strip():
        raise ValidationError({"body": ["The body must not be empty."]})
    if len(body) > settings.COMMENT_MAX_LENGTH:
        raise ValidationError({"body": [f"The body is longer than {settings.COMMENT_MAX_LENGTH} characters."]})
    # The REST parser refuses such text already; the WebSocket path reaches this function with whatever it parsed.
    problem = inputs.text_problem(body)
    if problem:
        raise ValidationError({"body": [problem]})
    # A cap, not a silent cut: notifying only the first N would drop the others without anyone knowing.
    limit = settings.COMMENT_MAX_MENTIONS
    if len(set(MENTION_PATTERN.findall(body))) > limit:
        raise ValidationError({"body": [f"A comment may name at most {limit} people with @."]})
    return body


def _clean_ids(field: str, values: object, known: Sequence[str]) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ValidationError({field: ["Give a list of element ids."]})
    # Checked before the ids are named in an error message, which must itself be text that can be sent.
    problem = next(filter(None, map(inputs.text_problem, values)), None)
    if problem:
        raise ValidationError({field: [f"An element id: {problem}"]})
    known_set = set(known)
    missing = [value for value in values if value not in known_set]
    if missing:
        raise ValidationError({field: [f"Not in this graph: {', '.join(sorted(set(missing)))}."]})
    # Keep the order the user selected in, without repeats.
    return list(dict.fromkeys(values))


def _notify_mentions(comment: Comment, already: Iterable[int] = ()) -> None:
    """Link the users named as @username who may see the graph, and notify those not notified before."""
    names = set(MENTION_PATTERN.findall(comment.body))
    if not names:
        comment.mentions.clear()
        return
    users = list(comment.graph.viewers_queryset().filter(username__in=names))
    comment.mentions.set(users)
    already = set(already)
    for user in users:
        if user.pk == comment.author_id or user.pk in already:
            continue
        notification = Notification.objects.create(
            user=user, actor=comment.author, graph=comment.graph, comment=comment
        )
        broadcast.announce_notification(
            user.pk, {"type": "notification", "notification": notification_payload(notification)}
        )


# A graph's elements and id lists can be megabytes: a comment write never needs them (anchors are checked against
# node_ids/edge_ids by create_comment on the graph it was given).
GRAPH_HEAVY = ("graph__elements", "graph__node_ids", "graph__edge_ids")


def _fresh(comment_id: int) -> Comment:
    return (
        Comment.objects.select_related("graph", "author", "resolved_by")
        .defer(*GRAPH_HEAVY)
        .prefetch_related("reactions", "mentions")
        .get(pk=comment_id)
    )


@transaction.atomic
def create_comment(
    *, user, graph: Graph, body: object, parent: object = None, nodes: object = None, edges: object = None
) -> Event:
    """Post a comment (or a reply, with `parent`) as `user`, who must be allowed to comment on `graph`."""
    if not graph.can_comment(user):
        raise PermissionDenied("You may not comment on this graph.")
    body = _clean_body(body)
    parent_comment = None
    if parent is not None:
        if isinstance(parent, bool) or not isinstance(parent, int):
            raise ValidationError({"parent": ["Give the id of the comment to reply to."]})
        parent_comment = Comment.objects.filter(pk=parent, graph=graph).first()
        if parent_comment is None:
            raise ValidationError({"parent": ["No such comment on this graph."]})
        if parent_comment.is_reply:
            raise ValidationError({"parent": ["Replies are one level deep: reply to the thread instead."]})
        if nodes or edges:
            raise ValidationError({"parent": ["A reply takes the anchor of its thread; leave out nodes and edges."]})
        anchor_nodes, anchor_edges = parent_comment.anchor_nodes, parent_comment.anchor_edges
    else:
        anchor_nodes = _clean_ids("nodes", nodes, graph.node_ids)
        anchor_edges = _clean_ids("edges", edges, graph.edge_ids)
    comment = Comment.objects.create(
        graph=graph, parent=parent_comment, author=user, body=body, anchor_nodes=anchor_nodes, anchor_edges=anchor_edges
    )
    _notify_mentions(comment)
    return _record(_fresh(comment.pk), EventKind.COMMENT_CREATED)


@transaction.atomic
def edit_comment(*, user, comment: Comment, body: object) -> Event:
    comment = Comment.objects.select_for_update().select_related("graph").defer(*GRAPH_HEAVY).get(pk=comment.pk)
    if not comment.can_edit(user):
        raise PermissionDenied("Only the author may edit a comment.")
    body = _clean_body(body)
    already = set(comment.mentions.values_list("pk", flat=True))
    comment.body = body
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "edited_at"])
    _notify_mentions(comment, already=already)
    event = _record(_fresh(comment.pk), EventKind.COMMENT_EDITED)
    # The older events of the comment keep their numbers and what else they say, but carry only the newest body:
    # an author who edits out a mistake (a pasted password, a wrong name) expects it gone from replays too.
    _rewrite_stored_bodies(comment, body=event.payload["body"], mentions=event.payload["mentions"])
    return event


@transaction.atomic
def delete_comment(*, user, comment: Comment) -> Event:
    """Soft delete: the body is gone, the thread and its replies stay."""
    comment = Comment.objects.select_for_update().select_related("graph").defer(*GRAPH_HEAVY).get(pk=comment.pk)
    if not comment.can_moderate(user):
        raise PermissionDenied("Only the author or the graph's owner may delete a comment.")
    if comment.deleted:
        raise ValidationError("The comment is already deleted.")
    comment.body = ""
    comment.deleted_at = timezone.now()
    comment.save(update_fields=["body", "deleted_at"])
    comment.mentions.clear()
    event = _record(_fresh(comment.pk), EventKind.COMMENT_DELETED)
    # Tombstones: every stored event of the comment stays, numbered, but without its text, so that neither a resume
    # nor the event log can bring the deleted body back.
    _rewrite_stored_bodies(comment, body=None, mentions=[], deleted=True)
    return event


@transaction.atomic
def set_resolved(*, user, comment: Comment, resolved: bool) -> Event:
    """Resolve or reopen a thread."""
    comment = Comment.objects.select_for_update().select_related("graph").defer(*GRAPH_HEAVY).get(pk=comment.pk)
    if not comment.can_moderate(user):
        raise PermissionDenied("Only the author or the graph's owner may resolve or reopen a thread.")
    if comment.is_reply:
        raise ValidationError("Only threads are resolved; this comment is a reply.")
    if comment.resolved == resolved:
        raise ValidationError("The thread is already resolved." if resolved else "The thread is already open.")
    comment.resolved_at = timezone.now() if resolved else None
    comment.resolved_by = user if resolved else None
    comment.save(update_fields=["resolved_at", "resolved_by"])
    return _record(_fresh(comment.pk), EventKind.COMMENT_RESOLVED if resolved else EventKind.COMMENT_REOPENED)


@transaction.atomic
def toggle_reaction(*, user, comment: Comment, reaction: object) -> Event:
    """Add the user's reaction of that kind, or take it back if it was there."""
    if reaction not in Reaction.values:
        raise ValidationError({"reaction": [f"Choose one of: {' '.join(Reaction.values)}."]})
    comment = Comment.objects.select_for_update().select_related("graph").defer(*GRAPH_HEAVY).get(pk=comment.pk)
    if not comment.graph.can_comment(user):
        raise PermissionDenied("You may not react on this graph.")
    if comment.deleted:
        raise ValidationError("A deleted comment takes no reactions.")
    removed, _ = CommentReaction.objects.filter(comment=comment, user=user, reaction=reaction).delete()
    if not removed:
        CommentReaction.objects.create(comment=comment, user=user, reaction=reaction)
    return _record(_fresh(comment.pk), EventKind.REACTION_CHANGED)


def mentionable_users(graph: Graph, prefix: str, limit: int = 10):
    """Users who may see the graph whose username starts with `prefix`, for @ completion."""
    return graph.viewers_queryset().filter(username__istartswith=prefix).order_by("username")[:limit]
