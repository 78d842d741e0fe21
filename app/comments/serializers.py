"""JSON shapes of comments, events and notifications (docs/protocol.md, "Objects").

The shape of a comment is made in one place, `services.comment_payload`, which is also what every event and every
WebSocket frame carries. These serializers add the one per-user field (`pinned`) and describe the fields for the
OpenAPI schema; writes go through `comments.services`, which checks every rule itself.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from comments.models import AnchorKind, Comment, Event, EventKind, Notification, Reaction
from comments.services import comment_payload, notification_payload
from graphs.serializers import UserSerializer


class AnchorSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AnchorKind.choices)
    nodes = serializers.ListField(child=serializers.CharField())
    edges = serializers.ListField(child=serializers.CharField())


class CommentPayloadSerializer(serializers.Serializer):
    """A comment as every viewer sees it (events and notifications carry this)."""

    id = serializers.IntegerField()
    graph = serializers.IntegerField()
    parent = serializers.IntegerField(allow_null=True)
    author = UserSerializer()
    body = serializers.CharField(allow_null=True, help_text="null once the comment is deleted")
    anchor = AnchorSerializer()
    resolved = serializers.BooleanField()
    resolved_by = UserSerializer(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    deleted = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    reactions = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="reaction name -> ids of the users who gave it",
    )
    mentions = serializers.ListField(child=serializers.CharField())
    reply_count = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="seq of the last event that changed this comment")

    def to_representation(self, instance: Comment | dict) -> dict:
        # A dict is a payload already made (an event's); a Comment is turned into one by the services' function.
        return dict(instance) if isinstance(instance, dict) else comment_payload(instance)


class CommentSerializer(CommentPayloadSerializer):
    """A comment in a REST answer: the shared payload plus whether the requesting user pinned it.

    For a page of comments the view puts the pinned ids in the context (`pinned_ids`), one query for the page;
    without them each comment asks for itself.
    """

    pinned = serializers.BooleanField(help_text="pinned by the requesting user (REST answers only)")

    def to_representation(self, instance: Comment | dict) -> dict:
        payload = super().to_representation(instance)
        payload["pinned"] = self._pinned(payload["id"])
        return payload

    def _pinned(self, comment_id: int) -> bool:
        pinned_ids = self.context.get("pinned_ids")
        if pinned_ids is not None:
            return comment_id in pinned_ids
        request = self.context.get("request")
        if request is None or not request.user.is_authenticated:
            return False
        return request.user.pins.filter(comment_id=comment_id).exists()


class CommentCreateSerializer(serializers.Serializer):
    """What a new comment gives (schema only: `services.create_comment` checks it). The author is the requester."""

    body = serializers.CharField(
        max_length=settings.COMMENT_MAX_LENGTH, help_text="stored exactly as written; @username mentions"
    )
    parent = serializers.IntegerField(required=False, allow_null=True, help_text="the thread to reply to")
    nodes = serializers.ListField(child=serializers.CharField(), required=False, help_text="ids of anchored nodes")
    edges = serializers.ListField(child=serializers.CharField(), required=False, help_text="ids of anchored edges")


class CommentEditSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=settings.COMMENT_MAX_LENGTH)


class ReactionSerializer(serializers.Serializer):
    reaction = serializers.ChoiceField(choices=Reaction.choices)


class EventSerializer(serializers.ModelSerializer):
    event = serializers.ChoiceField(source="kind", choices=EventKind.choices)
    comment = CommentPayloadSerializer(source="payload")

    class Meta:
        model = Event
        fields = ["seq", "event", "comment", "created_at"]


class EventPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    last_seq = serializers.IntegerField(help_text="the graph's newest seq when the answer was made")
    more = serializers.BooleanField(help_text="true: ask again with after_seq = the seq of the last event here")
    epoch = serializers.CharField(help_text="the life of the stream these seqs count in (docs/protocol.md)")


class GraphRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Notification.Kind.choices)
    graph = GraphRefSerializer()
    comment = CommentPayloadSerializer()
    actor = UserSerializer()
    read = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: Notification) -> dict:
        return notification_payload(instance)


class ReadAllSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many notifications were unread and are now read")
