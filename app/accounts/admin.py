"""The admin of user accounts: people leave by anonymisation, not by a delete that would take their comments.

Django's delete stays for accounts that wrote nothing (a mistyped account, say). For anyone who commented, reacted
or owns a graph it is refused, with the list of what would go and a message pointing to the action "Anonymise"
(accounts.services.anonymise_user).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from accounts.services import anonymise_user, anonymous_name
from comments import broadcast
from graphs.models import Graph

User = get_user_model()

admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    actions = ["anonymise"]

    @admin.action(description="Anonymise the selected users (their comments stay)", permissions=["change"])
    def anonymise(self, request, queryset):
        users = list(queryset.order_by("pk"))
        if any(user.pk == request.user.pk for user in users):
            self.message_user(request, "Your own account cannot be anonymised from here.", messages.ERROR)
            return None
        if request.POST.get("post") != "yes":
            for user in users:
                user.anonymous_name = anonymous_name(user.pk)
            context = {
                **self.admin_site.each_context(request),
                "title": "Anonymise users",
                "users": users,
                "opts": self.model._meta,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "media": self.media,
            }
            return TemplateResponse(request, "admin/accounts/anonymise_confirmation.html", context)
        try:
            for user in users:
                anonymise_user(user)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return None
        self.message_user(
            request,
            f"Anonymised {len(users)} account(s): "
            + ", ".join(anonymous_name(user.pk) for user in users)
            + ". Their comments, replies and events stay.",
            messages.SUCCESS,
        )
        return None

    def get_deleted_objects(self, objs, request):
        found = super().get_deleted_objects(objs, request)
        if found[3]:  # protected: what the people wrote or own
            self.message_user(
                request,
                "These accounts wrote comments, reacted, or own graphs, which must stay (deleting them would break "
                "the numbered events of the graphs). Use the action “Anonymise the selected users” instead; a "
                "graph can also be given another owner, or deleted, in the graph admin.",
                messages.WARNING,
            )
        return found

    # A deleted account takes the groups it owns: their members lose the graphs shared with them. Tell the sockets,
    # as the graph admin does.

    def delete_model(self, request, obj):
        graph_ids = self._graphs_shared_with_groups_of([obj.pk])
        super().delete_model(request, obj)
        for graph_id in graph_ids:
            broadcast.announce_access_change(graph_id)

    def delete_queryset(self, request, queryset):
        graph_ids = self._graphs_shared_with_groups_of(list(queryset.values_list("pk", flat=True)))
        super().delete_queryset(request, queryset)
        for graph_id in graph_ids:
            broadcast.announce_access_change(graph_id)

    @staticmethod
    def _graphs_shared_with_groups_of(user_ids: list[int]) -> list[int]:
        return list(
            Graph.objects.filter(shared_with__owner__in=user_ids).values_list("pk", flat=True).distinct().order_by()
        )
