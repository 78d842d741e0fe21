"""Admin of graphs and groups, for the operator.

Elements are shown, not edited: they were checked on import and comments anchor to their ids. Any change an admin
saves may take someone's sight of a graph away (made private, a group unshared, a member removed), so each one tells
the graph's WebSocket viewers to check their access again, as the API does.
"""

from __future__ import annotations

from django.contrib import admin

from comments import broadcast
from graphs.models import Graph, Group


@admin.register(Graph)
class GraphAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "public", "last_seq", "updated_at"]
    list_filter = ["public"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    filter_horizontal = ["shared_with"]
    readonly_fields = ["elements", "node_ids", "edge_ids", "last_seq", "created_at", "updated_at"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            broadcast.announce_access_change(form.instance.pk)

    def delete_model(self, request, obj):
        graph_id = obj.pk
        super().delete_model(request, obj)
        broadcast.announce_access_change(graph_id)

    def delete_queryset(self, request, queryset):
        graph_ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        for graph_id in graph_ids:
            broadcast.announce_access_change(graph_id)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "created_at"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    filter_horizontal = ["members"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            for graph_id in form.instance.graphs.values_list("pk", flat=True):
                broadcast.announce_access_change(graph_id)

    def delete_model(self, request, obj):
        graph_ids = list(obj.graphs.values_list("pk", flat=True))
        super().delete_model(request, obj)
        for graph_id in graph_ids:
            broadcast.announce_access_change(graph_id)

    def delete_queryset(self, request, queryset):
        graph_ids = list(Graph.objects.filter(shared_with__in=queryset).values_list("pk", flat=True).distinct())
        super().delete_queryset(request, queryset)
        for graph_id in graph_ids:
            broadcast.announce_access_change(graph_id)
