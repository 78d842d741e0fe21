"""Maintenance mode for WebSockets (live/maintenance.py): while the flag file exists every handshake is accepted and
closed with 4012, which every client retries (docs/protocol.md), before anything touches PostgreSQL or Redis."""

from __future__ import annotations

import os

import pytest
from django.test import override_settings
from websockets.asyncio.client import connect

import daphne_workers
import servers
from live.close_codes import CloseCode
from live.maintenance import in_maintenance
from test_daphne_defects import close_code
from wsclient import accepted, ws


@pytest.fixture
def flag(tmp_path):
    """The maintenance flag file's path (absent until a test creates it)."""
    return tmp_path / "maintenance"


def test_no_flag_file_configured_is_never_maintenance():
    with override_settings(MAINTENANCE_FILE=""):
        assert not in_maintenance()


def test_the_flag_file_turns_maintenance_on_and_off(flag):
    with override_settings(MAINTENANCE_FILE=str(flag)):
        assert not in_maintenance()
        flag.touch()
        assert in_maintenance()
        flag.unlink()
        assert not in_maintenance()


# No django_db mark: a handshake that reached the auth middleware or a consumer would fail on its database access.
@pytest.mark.parametrize("path", ["/ws/graphs/1/", "/ws/notifications/", "/ws/nothing-here/"])
async def test_in_maintenance_every_socket_is_accepted_and_closed_going_away(flag, path):
    flag.touch()
    with override_settings(MAINTENANCE_FILE=str(flag)):
        async with ws(path, token="a-token-nobody-has", origin="https://evil.example") as client:
            await accepted(client)
            message = await client.output()
    assert message == {"type": "websocket.close", "code": CloseCode.GOING_AWAY}
    assert type(message["code"]) is int


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("presence_settled")
async def test_without_the_flag_file_the_socket_goes_on_to_the_app(flag):
    with override_settings(MAINTENANCE_FILE=str(flag)):
        async with ws("/ws/nothing-here/") as client:
            await accepted(client)
            message = await client.output()
    assert message["code"] == CloseCode.NOT_FOUND


@pytest.mark.daphne
async def test_a_real_daphne_worker_closes_4012_with_neither_database_nor_redis(flag, tmp_path):
    """Through Daphne (autobahn checks the close code) on a worker whose PostgreSQL and Redis do not answer, as during
    a restore."""
    flag.touch()
    nothing_there = servers.free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings_test",
        "PYTHONPATH": os.pathsep.join([str(daphne_workers.APP_DIR), str(daphne_workers.TESTS_DIR)]),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{nothing_there}/nothing",
        "REDIS_URL": f"redis://127.0.0.1:{nothing_there}/0",
        "COMMENTS_MAINTENANCE_FILE": str(flag),
    }
    with daphne_workers.daphne(env, tmp_path / "daphne.log") as (_, port):
        for _ in range(3):
            async with connect(f"ws://127.0.0.1:{port}/ws/graphs/1/") as socket:
                assert await close_code(socket) == CloseCode.GOING_AWAY
