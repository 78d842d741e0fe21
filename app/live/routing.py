"""WebSocket routes (the HTTP ones are in urls.py); config/asgi.py wraps them in origin and auth checks."""

from django.urls import path, re_path

from live.consumers import GraphConsumer, NotFoundConsumer, NotificationConsumer

websocket_urlpatterns = [
    path("ws/graphs/<int:graph_id>/", GraphConsumer.as_asgi()),
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    # Anything else closes with 4404 rather than failing the router with an error in the log.
    re_path(r"", NotFoundConsumer.as_asgi()),
]
