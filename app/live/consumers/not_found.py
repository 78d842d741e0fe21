"""Any other path under the WebSocket router (`NotFoundConsumer`)."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

from config import metrics
from live.close_codes import CloseCode


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other path under the WebSocket router: 4404, like a graph that does not exist."""

    async def connect(self) -> None:
        await self.accept()
        metrics.count_close("server", CloseCode.NOT_FOUND)
        await self.close(int(CloseCode.NOT_FOUND))
