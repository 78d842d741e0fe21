"""The health check that load balancers and the operator's checklist read."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
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
