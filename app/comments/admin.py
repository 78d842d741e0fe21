"""Admin of the discussion: read-only.

Comments change only through `comments.services`, which numbers each change as an event and announces it; an edit
or a hard delete here would skip both (viewers would never hear of it, and deleting events would leave gaps in the
numbering that resuming clients rely on). The admin is for looking; people moderate on the page or by the API.
"""

from __future__ import annotations

from django.contrib import admin

from comments.models import Comment, CommentReaction, Event, Notification, Pin


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    list_display = ["id", "graph", "author", "parent", "created_at", "resolved_at", "deleted_at", "seq"]
    list_filter = ["created_at"]
    search_fields = ["body", "author__username", "graph__name"]
    list_select_related = ["graph", "author"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "graph", "seq", "kind", "comment", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["graph"]


@admin.register(CommentReaction)
class CommentReactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "comment", "user", "reaction", "created_at"]
    list_select_related = ["user"]


@admin.register(Pin)
class PinAdmin(ReadOnlyAdmin):
    list_display = ["id", "comment", "user", "created_at"]
    list_select_related = ["user"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "kind", "actor", "graph", "read_at", "created_at"]
    list_select_related = ["user", "actor", "graph"]
