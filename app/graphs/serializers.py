"""JSON shapes of users, groups and graphs (docs/protocol.md, "Objects")."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from graphs.elements import ParsedElements, parse_elements
from graphs.models import Graph, Group

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username"]
        read_only_fields = fields


class GroupRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name"]
        read_only_fields = fields


class GroupSerializer(serializers.ModelSerializer):
    """A group with its members; the owner is set from the request and is always a member."""

    owner = UserSerializer(read_only=True)
    members = UserSerializer(many=True, read_only=True)

    class Meta:
        model = Group
        fields = ["id", "name", "owner", "members", "created_at"]
        read_only_fields = ["id", "owner", "members", "created_at"]


class MemberSerializer(serializers.Serializer):
    """`{"username": ...}`: the user to add to a group."""

    username = serializers.CharField(max_length=150)

    def validate_username(self, value: str):
        user = User.objects.filter(username=value, is_active=True).first()
        if user is None:
            raise serializers.ValidationError(f"No user is called {value!r}.")
        return user


class ShareSerializer(serializers.Serializer):
    """`{"group": id}`: a group the requesting user owns or belongs to."""

    group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            # A graph can be shared only with a group of one's own: ids of other groups are not even confirmed.
            self.fields["group"].queryset = Group.objects.filter(members=request.user)


class GraphSerializer(serializers.ModelSerializer):
    """A graph without its elements, as lists show it."""

    owner = UserSerializer(read_only=True)
    shared_with = serializers.SerializerMethodField()
    node_count = serializers.SerializerMethodField()
    edge_count = serializers.SerializerMethodField()

    class Meta:
        model = Graph
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "public",
            "shared_with",
            "node_count",
            "edge_count",
            "last_seq",
            "epoch",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "shared_with", "last_seq", "epoch", "created_at", "updated_at"]

    @extend_schema_field(GroupRefSerializer(many=True))
    def get_shared_with(self, graph: Graph) -> list[dict]:
        """The owner sees every group; other viewers only the groups they are in (names of others stay private)."""
        groups = list(graph.shared_with.all())
        request = self.context.get("request")
        user = request.user if request is not None else None
        if user is None or not graph.can_change(user):
            mine = self._member_group_ids(user)
            groups = [group for group in groups if group.pk in mine]
        return GroupRefSerializer(groups, many=True).data

    def _member_group_ids(self, user) -> set[int]:
        # Asked once per response, not once per graph of a list: the context is shared by the list's items.
        context = self.context
        if "member_group_ids" not in context:
            authenticated = user is not None and user.is_authenticated
            context["member_group_ids"] = (
                set(Group.objects.filter(members=user).values_list("pk", flat=True)) if authenticated else set()
            )
        return context["member_group_ids"]

    def get_node_count(self, graph: Graph) -> int:
        # Lists annotate the counts in SQL and leave the id arrays unloaded.
        count = getattr(graph, "node_count", None)
        return len(graph.node_ids) if count is None else count

    def get_edge_count(self, graph: Graph) -> int:
        count = getattr(graph, "edge_count", None)
        return len(graph.edge_ids) if count is None else count


class GraphDetailSerializer(GraphSerializer):
    """One graph with its Cytoscape.js elements. On import the elements are checked by `parse_elements`.

    The elements are fixed once imported: comments anchor to their ids, so a PATCH that names them is refused.
    """

    elements = serializers.JSONField(help_text='Cytoscape.js JSON: {"nodes": [...], "edges": [...]}')

    class Meta(GraphSerializer.Meta):
        fields = [*GraphSerializer.Meta.fields, "elements"]

    def validate_elements(self, value) -> ParsedElements:
        if self.instance is not None:
            raise serializers.ValidationError(
                "The elements of a graph are fixed once imported (comments anchor to their ids); "
                "import the corrected graph as a new one."
            )
        try:
            return parse_elements(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    def create(self, validated_data: dict) -> Graph:
        parsed: ParsedElements = validated_data.pop("elements")
        return Graph.objects.create(
            **validated_data, elements=parsed.elements, node_ids=parsed.node_ids, edge_ids=parsed.edge_ids
        )
