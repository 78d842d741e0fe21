"""REST views of comments, events, pins and notifications (docs/protocol.md).

Views find the object, make sure the user may see it (a private graph is a 404, or a 401 for visitors), and hand
the change to `comments.services`, the one writer, which checks the rules, stores the numbered event and announces
it after commit. They never change a comment themselves.
"""

from __future__ import annotations

from django.db.models import Prefetch, Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ParseError, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from comments import services
from comments.models import Comment, Event, Notification, Pin
from comments.serializers import (
    CommentCreateSerializer,
    CommentEditSerializer,
    CommentSerializer,
    EventPageSerializer,
    EventSerializer,
    NotificationSerializer,
    ReactionSerializer,
    ReadAllSerializer,
)
from config.throttling import CommentWriteThrottle, ReactionThrottle
from graphs.models import Graph
from graphs.permissions import SignedInOrPublicRead, not_visible, visible_graph
from graphs.serializers import UserSerializer

EVENTS_PER_CALL = 500
PEOPLE_PER_CALL = 10


class CommentPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def comment_queryset():
    """Comments with everything `comment_payload` reads, so a page costs a fixed number of queries."""
    return Comment.objects.select_related("author", "resolved_by").prefetch_related(
        "reactions",
        "mentions",
        # Only counted (reply_count); the replies themselves come as comments of their own.
        Prefetch("replies", queryset=Comment.objects.only("pk", "parent_id")),
    )


def json_object(request) -> dict:
    """The request body, which must be a JSON object (a list or a string is a 400, not a crash)."""
    if not isinstance(request.data, dict):
        raise ParseError("The request body must be a JSON object.")
    return request.data


def parse_bool(params, name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value.lower() in {"true", "1"}:
        return True
    if value.lower() in {"false", "0"}:
        return False
    raise ValidationError({name: ["Give true or false."]})


def is_number(value: str) -> bool:
    # ASCII only: str.isdigit() also takes "²", which int() refuses.
    return value.isascii() and value.isdigit()


def parse_id(params, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not is_number(value):
        raise ValidationError({name: ["Give a whole number."]})
    return int(value)


def pinned_ids(request, comments) -> set[int]:
    """Which of these comments the requesting user pinned: one query for a whole page."""
    if not request.user.is_authenticated:
        return set()
    return set(
        Pin.objects.filter(user=request.user, comment__in=[c.pk for c in comments]).values_list("comment_id", flat=True)
    )


def comment_response(request, payload: dict, status_code: int = status.HTTP_200_OK) -> Response:
    """A comment as a service returned it (the event's payload), with the requester's `pinned`."""
    return Response(CommentSerializer(payload, context={"request": request}).data, status=status_code)


class GraphScopedMixin:
    """For views under /graphs/{graph_id}/: the graph, once it is known the user may see it."""

    def get_graph(self) -> Graph:
        if not hasattr(self, "_graph"):
            self._graph = visible_graph(self.request, self.kwargs["graph_id"])
        return self._graph


COMMENT_FILTERS = [
    OpenApiParameter("node", OpenApiTypes.STR, description="comments anchored to this node (alone or in a subgraph)"),
    OpenApiParameter("edge", OpenApiTypes.STR, description="comments anchored to this edge (alone or in a subgraph)"),
    OpenApiParameter("resolved", OpenApiTypes.BOOL, description="true: resolved threads; false: open ones"),
    OpenApiParameter("parent", OpenApiTypes.STR, description="a thread's id for its replies, or `none` for threads"),
    OpenApiParameter("author", OpenApiTypes.STR, description="the author's user id or username"),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="at most 200; 50 unless given"),
]


class GraphCommentList(GraphScopedMixin, generics.ListCreateAPIView):
    """The comments of a graph, oldest first, and new comments on it."""

    serializer_class = CommentSerializer
    pagination_class = CommentPagination
    permission_classes = [SignedInOrPublicRead]
    throttle_classes = [CommentWriteThrottle]  # the POST only: reads are not counted
    anonymous_read = True

    def get_queryset(self):
        comments = comment_queryset().filter(graph=self.get_graph())
        params = self.request.query_params
        if "node" in params:
            comments = comments.filter(anchor_nodes__contains=[params["node"]])
        if "edge" in params:
            comments = comments.filter(anchor_edges__contains=[params["edge"]])
        resolved = parse_bool(params, "resolved")
        if resolved is not None:
            comments = comments.filter(resolved_at__isnull=not resolved)
        if "parent" in params:
            if params["parent"].lower() == "none":
                comments = comments.filter(parent__isnull=True)
            else:
                comments = comments.filter(parent_id=parse_id(params, "parent"))
        author = params.get("author")
        if author:
            comments = comments.filter(Q(author_id=int(author)) if is_number(author) else Q(author__username=author))
        return comments.order_by("created_at", "pk")

    @extend_schema(summary="Comments of a graph, oldest first", parameters=COMMENT_FILTERS)
    def get(self, request, *args, **kwargs):
        comments = self.paginate_queryset(self.get_queryset())
        context = {**self.get_serializer_context(), "pinned_ids": pinned_ids(request, comments)}
        return self.get_paginated_response(CommentSerializer(comments, many=True, context=context).data)

    @extend_schema(
        summary="Comment on a graph, a node, an edge or a subgraph; or reply to a thread",
        request=CommentCreateSerializer,
        responses={201: CommentSerializer},
    )
    def post(self, request, *args, **kwargs):
        data = json_object(request)
        event = services.create_comment(
            user=request.user,
            graph=self.get_graph(),
            body=data.get("body"),
            parent=data.get("parent"),
            nodes=data.get("nodes"),
            edges=data.get("edges"),
        )
        return comment_response(request, event.payload, status.HTTP_201_CREATED)


class GraphPinList(GraphScopedMixin, generics.ListAPIView):
    """The requesting user's pinned comments of a graph, oldest comment first."""

    serializer_class = CommentSerializer
    pagination_class = CommentPagination
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return (
            comment_queryset().filter(graph=self.get_graph(), pins__user=self.request.user).order_by("created_at", "pk")
        )

    @extend_schema(summary="Your pinned comments of a graph")
    def get(self, request, *args, **kwargs):
        comments = self.paginate_queryset(self.get_queryset())
        context = {**self.get_serializer_context(), "pinned_ids": {comment.pk for comment in comments}}
        return self.get_paginated_response(CommentSerializer(comments, many=True, context=context).data)


class EpochChanged(APIException):
    """The client counts seqs of another life of the stream (a restored database): it must reload, not resume."""

    status_code = 409
    default_code = "epoch_changed"

    def __init__(self, epoch: str) -> None:
        super().__init__(f"The event stream was reset (epoch {epoch}): load the graph's comments again.")


class GraphEventList(GraphScopedMixin, APIView):
    """The stored events of a graph after a seq: what a client missed while it was away."""

    permission_classes = [SignedInOrPublicRead]
    anonymous_read = True

    @extend_schema(
        summary="Stored events with seq > after_seq, oldest first (at most 500 a call)",
        parameters=[
            OpenApiParameter("after_seq", OpenApiTypes.INT, description="0 (the default) for all"),
            OpenApiParameter(
                "epoch", OpenApiTypes.STR, description="the epoch after_seq counts in; another one is a 409"
            ),
        ],
        responses=EventPageSerializer,
    )
    def get(self, request, graph_id: int):
        graph = self.get_graph()
        after_seq = parse_id(request.query_params, "after_seq") or 0
        epoch = request.query_params.get("epoch")
        if epoch is not None and epoch != graph.epoch:
            raise EpochChanged(graph.epoch)
        events = list(Event.objects.filter(graph=graph, seq__gt=after_seq).order_by("seq")[:EVENTS_PER_CALL])
        # Read after the events, so never below the last of them. Events commit in seq order (the graph's row
        # lock), so what was read is every event up to its last one; `more` says whether others came after.
        last_seq = Graph.objects.filter(pk=graph.pk).values_list("last_seq", flat=True).first() or 0
        reached = events[-1].seq if events else after_seq
        return Response(
            {
                "events": EventSerializer(events, many=True).data,
                "last_seq": last_seq,
                "more": reached < last_seq,
                "epoch": graph.epoch,
            }
        )


class GraphPeopleList(GraphScopedMixin, APIView):
    """Users who may see a graph, by the start of their name: the `@` completion of the composer."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Users who may see the graph whose username starts with q (at most 10)",
        parameters=[OpenApiParameter("q", OpenApiTypes.STR, description="the start of a username")],
        responses=UserSerializer(many=True),
    )
    def get(self, request, graph_id: int):
        people = services.mentionable_users(self.get_graph(), request.query_params.get("q", ""), PEOPLE_PER_CALL)
        return Response(UserSerializer(people, many=True).data)


class CommentViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One comment: read, edit (author), delete/resolve/reopen (author or graph owner), react, pin."""

    serializer_class = CommentSerializer
    lookup_value_regex = r"\d+"
    permission_classes = [SignedInOrPublicRead]
    anonymous_read = {"retrieve"}
    # Changes that make an event count against the rate limits; pins are private and make none.
    throttles_by_action = {
        "partial_update": CommentWriteThrottle,
        "destroy": CommentWriteThrottle,
        "resolve": CommentWriteThrottle,
        "reopen": CommentWriteThrottle,
        "reactions": ReactionThrottle,
    }

    def get_throttles(self):
        throttle = self.throttles_by_action.get(self.action)
        return [throttle()] if throttle else []

    def get_queryset(self):
        return comment_queryset().filter(graph__in=Graph.objects.visible_to(self.request.user))

    def get_object(self) -> Comment:
        comment = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if comment is None:
            raise not_visible(self.request, "comment")
        return comment

    @extend_schema(summary="One comment")
    def retrieve(self, request, *args, **kwargs):
        return comment_response(request, services.comment_payload(self.get_object()))

    @extend_schema(summary="Edit your comment", request=CommentEditSerializer, responses=CommentSerializer)
    def partial_update(self, request, pk=None):
        data = json_object(request)
        event = services.edit_comment(user=request.user, comment=self.get_object(), body=data.get("body"))
        return comment_response(request, event.payload)

    @extend_schema(summary="Delete a comment (soft: the body goes, the thread stays)", responses=CommentSerializer)
    def destroy(self, request, pk=None):
        event = services.delete_comment(user=request.user, comment=self.get_object())
        return comment_response(request, event.payload)

    @extend_schema(summary="Resolve a thread", request=None, responses=CommentSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        event = services.set_resolved(user=request.user, comment=self.get_object(), resolved=True)
        return comment_response(request, event.payload)

    @extend_schema(summary="Reopen a thread", request=None, responses=CommentSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        event = services.set_resolved(user=request.user, comment=self.get_object(), resolved=False)
        return comment_response(request, event.payload)

    @extend_schema(summary="Toggle your reaction", request=ReactionSerializer, responses=CommentSerializer)
    @action(detail=True, methods=["post"])
    def reactions(self, request, pk=None):
        data = json_object(request)
        event = services.toggle_reaction(user=request.user, comment=self.get_object(), reaction=data.get("reaction"))
        return comment_response(request, event.payload)

    @extend_schema(summary="Pin a comment for yourself", request=None, responses=CommentSerializer)
    @action(detail=True, methods=["put"])
    def pin(self, request, pk=None):
        # A pin is the user's private bookmark, not a change of the comment: no event, nobody else hears of it.
        comment = self.get_object()
        Pin.objects.get_or_create(comment=comment, user=request.user)
        return comment_response(request, services.comment_payload(comment))

    @extend_schema(summary="Unpin a comment", request=None, responses=CommentSerializer)
    @pin.mapping.delete
    def unpin(self, request, pk=None):
        comment = self.get_object()
        Pin.objects.filter(comment=comment, user=request.user).delete()
        return comment_response(request, services.comment_payload(comment))


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The requesting user's notifications (mentions), newest first."""

    serializer_class = NotificationSerializer
    lookup_value_regex = r"\d+"
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        user = self.request.user
        # Only of graphs the user may still see: a mention does not outlive access to what it quotes.
        notifications = (
            Notification.objects.filter(user=user, graph__in=Graph.objects.visible_to(user))
            .select_related("graph", "actor", "comment__author", "comment__resolved_by")
            .prefetch_related(
                "comment__reactions",
                "comment__mentions",
                Prefetch("comment__replies", queryset=Comment.objects.only("pk", "parent_id")),
            )
            .order_by("-created_at", "-pk")
        )
        if self.action == "list":
            unread = parse_bool(self.request.query_params, "unread")
            if unread is not None:
                notifications = notifications.filter(read_at__isnull=unread)
        return notifications

    def get_object(self) -> Notification:
        notification = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if notification is None:
            raise NotFound("No such notification.")
        return notification

    @extend_schema(
        summary="Your notifications, newest first",
        parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="true: only unread ones")],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Mark one notification read", request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_object()
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
        return Response(NotificationSerializer(notification).data)

    @extend_schema(summary="Mark all your notifications read", request=None, responses=ReadAllSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        marked = Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
        return Response({"marked": marked})
