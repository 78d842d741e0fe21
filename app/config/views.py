"""The health check that load balancers and the operator's checklist read."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - report any failure as the state, never raise
        return f"error: {error.__class__.__name__}"
    return "ok"


def _redis_state() -> str:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:  # noqa: BLE001
        return f"error: {error.__class__.__name__}"
    return "ok"


@require_GET
def healthz(request):
    """200 when PostgreSQL and Redis both answer, else 503 with the state of each."""
    states = {"database": _database_state(), "redis": _redis_state()}
    healthy = all(state == "ok" for state in states.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **states}, status=200 if healthy else 503)


# Errors that happen outside the REST framework's views (an unknown URL, an unhandled exception) are JSON too under
# /api/, as docs/protocol.md promises; the pages keep Django's HTML error pages.


def page_not_found(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "No such endpoint.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return defaults.server_error(request)
