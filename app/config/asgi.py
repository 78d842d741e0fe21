"""ASGI entry point: Daphne serves the WebSockets of /ws/ with it (HTTP goes to mod_wsgi)."""

import gc
import os

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app (and so load settings and models) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.signals import request_finished  # noqa: E402
from django.db import connections  # noqa: E402

from config import metrics  # noqa: E402
from live import access, drain, fanout  # noqa: E402
from live.auth import OriginValidator, WebSocketAuthMiddleware  # noqa: E402
from live.maintenance import MaintenanceGate  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # /-/accepting (Apache's health check of the worker) is answered before Django; everything else is Django.
        "http": drain.AcceptingCheck(django_asgi_app),
        # In maintenance every socket is closed with 4012 first, before anything that reads the database or Redis.
        "websocket": MaintenanceGate(OriginValidator(WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns)))),
    }
)


def close_request_connections(**kwargs) -> None:
    """Close the database connections of an HTTP request served here (its /healthz, asked by deploys).

    Django runs each ASGI request in a thread of its own, so a persistent connection (CONN_MAX_AGE) opened there is
    never reused, and stays open until the thread's objects are collected: concurrent requests used up PostgreSQL's
    connections (Django's docs: with ASGI, disable persistent connections). The WebSockets' reads keep theirs: they
    run on long-lived threads and send no request_finished. mod_wsgi never imports this module.
    """
    connections.close_all()


# Only for requests of Django's ASGI handler (Daphne's HTTP): not the test client's, nor any other handler's.
request_finished.connect(close_request_connections, sender=ASGIHandler)

# SIGUSR1 drains the worker (supervisor's stopsignal): sockets are told to reconnect elsewhere, then it stops.
drain.install()

# This worker's metrics on its own port (METRICS_PORT_BASE + its supervisor process number), when configured.
metrics.start_worker_server(
    metrics.LiveCollector(access.open_sockets, fanout.graph_sockets, settings.METRICS_TOP_GRAPHS)
)

# A Daphne worker holds thousands of long-lived sockets. Everything loaded so far (Django, the app, the URL
# patterns) lives as long as the process: freeze it, so that the collector never scans it again, and let the young
# generation grow larger before a collection, since each frame sent allocates a little and frees it at once.
gc.freeze()
gc.set_threshold(10_000, 20, 20)
