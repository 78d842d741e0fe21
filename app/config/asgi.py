"""ASGI entry point: Daphne serves the WebSockets of /ws/ with it (HTTP goes to mod_wsgi)."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app (and so load settings and models) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from live import drain  # noqa: E402
from live.auth import OriginValidator, WebSocketAuthMiddleware  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

# SIGUSR1 drains the worker (supervisor's stopsignal): sockets are told to reconnect elsewhere, then it stops.
drain.install()

# A Daphne worker holds thousands of long-lived sockets. Everything loaded so far (Django, the app, the URL
# patterns) lives as long as the process: freeze it, so that the collector never scans it again, and let the young
# generation grow larger before a collection, since each frame sent allocates a little and frees it at once.
gc.freeze()
gc.set_threshold(10_000, 20, 20)
