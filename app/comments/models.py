"""Comments on graphs, and the numbered events that tell every viewer what changed."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from graphs.models import Graph


class Reaction(models.TextChoices):
    """The fixed set of reactions; the page shows them as emoji."""

    THUMBS_UP = "+1", "👍"
    THUMBS_DOWN = "-1", "👎"
    LAUGH = "laugh", "😄"
    HOORAY = "hooray", "🎉"
    CONFUSED = "confused", "😕"
    HEART = "heart", "❤️"
    ROCKET = "rocket", "🚀"
    EYES = "eyes", "👀"


class AnchorKind(models.TextChoices):
    GRAPH = "graph"
    NODE = "node"
    EDGE = "edge"
    SUBGRAPH = "subgraph"


class Comment(models.Model):
    """A comment on a whole graph, a node, an edge or a subgraph; replies are one level deep."""

    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="comments")
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies")
    # PROTECT: deleting the author would take the comment, the replies of its thread and their numbered events
    # with it, leaving holes in the graph's sequence. People leave by anonymisation (accounts.services).
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments")
    # Stored exactly as written; every renderer escapes it.
    body = models.TextField(max_length=settings.COMMENT_MAX_LENGTH)
    anchor_nodes = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    anchor_edges = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="mentioned_in", blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    # The seq of the last event that changed this comment.
    seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["graph", "parent", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"comment {self.pk} on graph {self.graph_id}"

    @property
    def anchor_kind(self) -> str:
        if not self.anchor_nodes and not self.anchor_edges:
            return AnchorKind.GRAPH
        if len(self.anchor_nodes) == 1 and not self.anchor_edges:
            return AnchorKind.NODE
        if len(self.anchor_edges) == 1 and not self.anchor_nodes:
            return AnchorKind.EDGE
        return AnchorKind.SUBGRAPH

    @property
    def is_reply(self) -> bool:
        return self.parent_id is not None

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def can_edit(self, user) -> bool:
        """Only the author edits the body, and only while the comment is not deleted."""
        return user.is_authenticated and user.pk == self.author_id and not self.deleted

    def can_moderate(self, user) -> bool:
        """The author or the graph's owner deletes, resolves and reopens."""
        return user.is_authenticated and user.pk in (self.author_id, self.graph.owner_id)


class CommentReaction(models.Model):
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="reactions")
    # PROTECT: a reaction is part of what the comment's events announced; it does not vanish without an event.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reaction = models.CharField(max_length=16, choices=Reaction.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comment", "user", "reaction"], name="one_reaction_of_a_kind_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.reaction} by user {self.user_id} on comment {self.comment_id}"


class Pin(models.Model):
    """A user's private bookmark on a comment."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="pins")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pins")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["comment", "user"], name="one_pin_per_user")]

    def __str__(self) -> str:
        return f"pin of comment {self.comment_id} by user {self.user_id}"


class EventKind(models.TextChoices):
    COMMENT_CREATED = "comment.created"
    COMMENT_EDITED = "comment.edited"
    COMMENT_DELETED = "comment.deleted"
    COMMENT_RESOLVED = "comment.resolved"
    COMMENT_REOPENED = "comment.reopened"
    REACTION_CHANGED = "reaction.changed"


class Event(models.Model):
    """One change that viewers see, numbered per graph without gaps, stored with the change it announces."""

    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="events")
    # The comment as it was after the change, exactly as it was broadcast.
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["graph", "seq"]
        constraints = [models.UniqueConstraint(fields=["graph", "seq"], name="one_event_per_seq")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} of graph {self.graph_id}"

    def as_message(self) -> dict:
        """The frame a WebSocket client receives for this event."""
        return {"type": "event", "seq": self.seq, "event": self.kind, "comment": self.payload}


class Notification(models.Model):
    class Kind(models.TextChoices):
        MENTION = "mention"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MENTION)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="+")
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="notifications")
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.kind} of user {self.user_id} in comment {self.comment_id}"
