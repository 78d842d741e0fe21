"""/ws/notifications/: a user's own notifications (`NotificationConsumer`)."""

from __future__ import annotations

from comments import broadcast
from live.close_codes import CloseCode
from live.consumers.base import ProtocolConsumer


class NotificationConsumer(ProtocolConsumer):
    """/ws/notifications/: the signed-in user's new mentions, live."""

    async def connect(self) -> None:
        if self.scope.get("auth_failed") or not self.user.is_authenticated:
            await self.accept()
            await self.refuse(CloseCode.NOT_AUTHENTICATED)
            return
        if not await self.admit(None):
            return
        group = broadcast.user_group(self.user.pk)
        # Join before accepting, so that a client that sees the socket open hears every later mention.
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)
        await self.accept()

    async def user_notification(self, message: dict) -> None:
        await self.send_frame(message["text"])
