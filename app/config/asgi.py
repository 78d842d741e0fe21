"""ASGI entry point: Daphne serves the WebSockets of /ws/ with it (HTTP goes to mod_wsgi)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app (and so load settings and models) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from comments.auth import OriginValidator, WebSocketAuthMiddleware  # noqa: E402
from comments.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
