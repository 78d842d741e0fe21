"""Graphs, the groups they are shared with, and the rules of who may see and change them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Group(models.Model):
    """A set of users a graph can be shared with. The owner is always a member too."""

    name = models.CharField(max_length=150)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_groups")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="member_groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def can_manage(self, user) -> bool:
        return user.is_authenticated and user.pk == self.owner_id


class GraphQuerySet(models.QuerySet):
    def visible_to(self, user) -> GraphQuerySet:
        """Graphs the user may see: public ones, their own, and those shared with a group they belong to."""
        if not user.is_authenticated:
            return self.filter(public=True)
        shared = Graph.shared_with.through.objects.filter(group__members=user).values("graph_id")
        return self.filter(Q(public=True) | Q(owner=user) | Q(pk__in=shared))


def new_epoch() -> str:
    return secrets.token_hex(8)


class Graph(models.Model):
    """A network imported as Cytoscape.js JSON. `last_seq` numbers the events of its discussion."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    # PROTECT: a graph is other people's discussion too; it goes only when someone deletes it on purpose (its owner
    # by the API, an operator in the admin), never as a side effect of removing its owner's account.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="graphs")
    public = models.BooleanField(default=False)
    shared_with = models.ManyToManyField(Group, related_name="graphs", blank=True)
    elements = models.JSONField()
    # The ids of the elements, kept beside the JSON so that anchors are checked without parsing it again.
    node_ids = ArrayField(models.CharField(max_length=255), default=list)
    edge_ids = ArrayField(models.CharField(max_length=255), default=list)
    # The seq of the last event of this graph; the next event takes last_seq + 1 under the row lock.
    last_seq = models.PositiveBigIntegerField(default=0)
    # Which life of the stream `seq` counts in. A database restored from a backup (or re-created) numbers events again
    # from an older point, so the same seq can mean another event: the restore gives every graph a new epoch
    # (`manage.py new_epochs`), and a client whose epoch differs reloads instead of resuming (docs/protocol.md).
    epoch = models.CharField(max_length=32, default=new_epoch, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GraphQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def group_name(self) -> str:
        """The channel-layer group every viewer of this graph joins."""
        return f"graph.{self.pk}"

    def can_view(self, user) -> bool:
        if self.public:
            return True
        if not user.is_authenticated:
            return False
        if user.pk == self.owner_id:
            return True
        return self.shared_with.filter(members=user).exists()

    def can_comment(self, user) -> bool:
        """Anyone who may see a graph may comment on it, once signed in: a comment needs an author."""
        return user.is_authenticated and self.can_view(user)

    def can_change(self, user) -> bool:
        """Only the owner changes the graph or its sharing."""
        return user.is_authenticated and user.pk == self.owner_id

    def viewers_queryset(self):
        """Users who may see this graph by name (owner and group members); for @mentions of private graphs."""
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        if self.public:
            return user_model.objects.filter(is_active=True)
        return user_model.objects.filter(Q(pk=self.owner_id) | Q(member_groups__graphs=self), is_active=True).distinct()
