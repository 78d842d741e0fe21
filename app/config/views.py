"""The health check that load balancers and the operator's checklist read."""

from __future__ import annotations

import socket
from pathlib import Path

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


def _member_state(member: str) -> str:
    host, _, port = member.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            pass
    except (OSError, ValueError) as error:
        return f"error: {error.__class__.__name__}"
    return "ok"


def _daphne_members() -> list[str] | None:
    """Apache's /ws/ balancer members: the settings' list, else the members file (None when it cannot be read)."""
    if settings.DAPHNE_MEMBERS or not settings.DAPHNE_MEMBERS_FILE:
        return list(settings.DAPHNE_MEMBERS)
    try:
        text = Path(settings.DAPHNE_MEMBERS_FILE).read_text(encoding="utf-8")
    except OSError:
        return None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _daphne_states() -> tuple[str, dict[str, str]]:
    """Whether the Daphne workers accept connections: ok while one does (Apache's balancer skips the others)."""
    listed = _daphne_members()
    if listed is None:
        return "error: no list of Daphne workers", {}
    members = {member: _member_state(member) for member in listed}
    if not members:
        return "not checked", members
    up = sum(state == "ok" for state in members.values())
    return ("ok" if up else "error: no Daphne host answers"), members


@require_GET
def healthz(request):
    """200 when PostgreSQL, Redis and at least one Daphne worker answer, else 503 with the state of each."""
    daphne, members = _daphne_states()
    states = {"database": _database_state(), "redis": _redis_state(), "daphne": daphne}
    healthy = all(state in ("ok", "not checked") for state in states.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **states, "daphne_members": members},
        status=200 if healthy else 503,
    )


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
