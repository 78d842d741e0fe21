"""REST views of graphs, groups and the signed-in user (docs/protocol.md).

Whoever loses sight of a graph here (made private, unshared, deleted, removed from a group) may still have it open
on a WebSocket: each such change calls `broadcast.announce_access_change`, after commit, so that the consumers
check again and close the sockets of people who may no longer see it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Prefetch, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from comments import broadcast
from graphs.models import Graph, Group
from graphs.permissions import GraphOwnerMayChange, GroupOwnerMayChange, SignedInOrPublicRead, not_visible
from graphs.serializers import (
    GraphDetailSerializer,
    GraphSerializer,
    GroupSerializer,
    MemberSerializer,
    ShareSerializer,
    UserSerializer,
)

User = get_user_model()

# PATCH changes a graph or a group; there is no PUT that would have to restate the whole object.
HTTP_METHODS = ["get", "post", "patch", "delete", "head", "options"]


class MeView(APIView):
    """The authenticated user."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=UserSerializer)
    def get(self, request):
        return Response(UserSerializer(request.user).data)


@extend_schema_view(
    list=extend_schema(summary="Graphs you may see"),
    create=extend_schema(summary="Import a graph (Cytoscape.js JSON)"),
    retrieve=extend_schema(summary="One graph with its elements"),
    partial_update=extend_schema(summary="Rename, describe, publish or unpublish a graph (owner)"),
    destroy=extend_schema(summary="Delete a graph and its discussion (owner)"),
)
class GraphViewSet(viewsets.ModelViewSet):
    """Graphs: anyone who may see one reads it (visitors too, when it is public); its owner changes it."""

    http_method_names = HTTP_METHODS
    lookup_value_regex = r"\d+"
    permission_classes = [SignedInOrPublicRead, GraphOwnerMayChange]
    anonymous_read = {"retrieve"}

    def get_queryset(self):
        graphs = (
            Graph.objects.visible_to(self.request.user)
            .select_related("owner")
            .prefetch_related("shared_with")
            .annotate(node_count=F("node_ids__len"), edge_count=F("edge_ids__len"))
        )
        if self.action == "list":
            graphs = graphs.defer("elements", "node_ids", "edge_ids")
        return graphs

    def get_serializer_class(self):
        return GraphSerializer if self.action == "list" else GraphDetailSerializer

    def get_object(self) -> Graph:
        graph = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if graph is None:
            raise not_visible(self.request)
        self.check_object_permissions(self.request, graph)
        return graph

    def perform_create(self, serializer) -> None:
        serializer.save(owner=self.request.user)

    @transaction.atomic
    def perform_update(self, serializer) -> None:
        was_public = Graph.objects.select_for_update().values_list("public", flat=True).get(pk=serializer.instance.pk)
        graph = serializer.save()
        if was_public and not graph.public:
            broadcast.announce_access_change(graph.pk)

    @transaction.atomic
    def perform_destroy(self, instance: Graph) -> None:
        graph_id = instance.pk
        instance.delete()
        broadcast.announce_access_change(graph_id)

    def _graph_response(self, graph_id: int) -> Response:
        """The graph as it is now (sharing changes leave the prefetched groups of the first read stale)."""
        graph = self.get_queryset().get(pk=graph_id)
        return Response(GraphDetailSerializer(graph, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Share a graph with a group (owner)", request=ShareSerializer, responses=GraphDetailSerializer
    )
    @action(detail=True, methods=["post"], serializer_class=ShareSerializer)
    def share(self, request, pk=None):
        graph = self.get_object()
        serializer = ShareSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        graph.shared_with.add(serializer.validated_data["group"])
        return self._graph_response(graph.pk)

    @extend_schema(
        summary="Stop sharing a graph with a group (owner)",
        request=None,
        responses=GraphDetailSerializer,
        parameters=[OpenApiParameter("group_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["delete"], url_path=r"share/(?P<group_id>\d+)")
    def unshare(self, request, pk=None, group_id=None):
        graph = self.get_object()
        with transaction.atomic():
            if not graph.shared_with.filter(pk=group_id).exists():
                raise NotFound("The graph is not shared with that group.")
            graph.shared_with.remove(group_id)
            broadcast.announce_access_change(graph.pk)
        return self._graph_response(graph.pk)


@extend_schema_view(
    list=extend_schema(summary="Groups you own or belong to"),
    create=extend_schema(summary="Create a group (you become its owner and first member)"),
    partial_update=extend_schema(summary="Rename a group (owner)"),
    destroy=extend_schema(summary="Delete a group (owner)"),
)
class GroupViewSet(viewsets.ModelViewSet):
    """Groups that graphs are shared with. Members see a group; only its owner changes it."""

    http_method_names = HTTP_METHODS
    lookup_value_regex = r"\d+"
    serializer_class = GroupSerializer
    permission_classes = [IsAuthenticated, GroupOwnerMayChange]

    def get_queryset(self):
        user = self.request.user
        mine = Group.objects.filter(Q(owner=user) | Q(members=user)).values("pk")
        return (
            Group.objects.filter(pk__in=mine)
            .select_related("owner")
            .prefetch_related(Prefetch("members", queryset=User.objects.order_by("username")))
        )

    def get_object(self) -> Group:
        group = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if group is None:
            raise NotFound("No such group.")
        self.check_object_permissions(self.request, group)
        return group

    @transaction.atomic
    def perform_create(self, serializer) -> None:
        group = serializer.save(owner=self.request.user)
        group.members.add(self.request.user)

    @transaction.atomic
    def perform_destroy(self, instance: Group) -> None:
        # The members lose the graphs shared with this group (unless another way lets them in): tell the sockets.
        graph_ids = list(instance.graphs.values_list("pk", flat=True))
        instance.delete()
        for graph_id in graph_ids:
            broadcast.announce_access_change(graph_id)

    def _group_response(self, group_id: int) -> Response:
        return Response(GroupSerializer(self.get_queryset().get(pk=group_id)).data)

    @extend_schema(summary="Add a member (owner)", request=MemberSerializer, responses=GroupSerializer)
    @action(detail=True, methods=["post"], serializer_class=MemberSerializer)
    def members(self, request, pk=None):
        group = self.get_object()
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group.members.add(serializer.validated_data["username"])
        return self._group_response(group.pk)

    @extend_schema(
        summary="Remove a member (owner)",
        request=None,
        responses=GroupSerializer,
        parameters=[OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def member(self, request, pk=None, user_id=None):
        group = self.get_object()
        if int(user_id) == group.owner_id:
            raise ValidationError({"user": ["The owner of a group stays its member."]})
        with transaction.atomic():
            if not group.members.filter(pk=user_id).exists():
                raise NotFound("That user is not a member of this group.")
            group.members.remove(user_id)
            for graph_id in group.graphs.values_list("pk", flat=True):
                broadcast.announce_access_change(graph_id)
        return self._group_response(group.pk)
