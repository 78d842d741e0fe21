"""Who may call which endpoint. The rules themselves live on the models (`Graph.can_change`, `Group.can_manage`);
these classes only ask them, and turn "you may not see it" into the right status.
"""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.exceptions import APIException, NotAuthenticated, NotFound

from graphs.models import Graph


class SignedInOrPublicRead(permissions.BasePermission):
    """Signed-in users pass; anonymous visitors may only read, and only where the view says so.

    A view opens itself to visitors with `anonymous_read = True`, or a viewset names the actions in
    `anonymous_read = {"retrieve", ...}`. What they then see is limited by `Graph.objects.visible_to`, which gives
    visitors public graphs only.
    """

    def has_permission(self, request, view) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        if request.method not in permissions.SAFE_METHODS:
            return False
        allowed = getattr(view, "anonymous_read", False)
        if isinstance(allowed, (set, frozenset, tuple, list)):
            return getattr(view, "action", None) in allowed
        return bool(allowed)


class GraphOwnerMayChange(permissions.BasePermission):
    """Anyone who sees a graph reads it; only its owner changes, shares or deletes it."""

    message = "Only the owner of a graph may change it, share it or delete it."

    def has_object_permission(self, request, view, obj: Graph) -> bool:
        return request.method in permissions.SAFE_METHODS or obj.can_change(request.user)


class GroupOwnerMayChange(permissions.BasePermission):
    """Members read a group; only its owner renames it, deletes it or changes its members."""

    message = "Only the owner of a group may change it or its members."

    def has_object_permission(self, request, view, obj) -> bool:
        return request.method in permissions.SAFE_METHODS or obj.can_manage(request.user)


def not_visible(request, what: str = "graph") -> APIException:
    """The error for an object the user may not see, or that does not exist: the two look the same.

    Visitors get a 401 (signing in may help), signed-in users a 404: neither learns whether a private graph exists.
    """
    if not request.user.is_authenticated:
        return NotAuthenticated()
    return NotFound(f"No such {what}.")


def visible_graph(request, graph_id: int) -> Graph:
    """The graph with that id if the user may see it, else the 401/404 of `not_visible`."""
    # Without the elements (up to 2 MB): the views under a graph need its rules and its element ids, not its drawing.
    graph = Graph.objects.visible_to(request.user).select_related("owner").defer("elements").filter(pk=graph_id).first()
    if graph is None:
        raise not_visible(request)
    return graph
