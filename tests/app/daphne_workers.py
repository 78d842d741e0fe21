"""Real Daphne processes serving the app on loopback, as deployed: for behaviour only a real server shows (close
codes Daphne accepts, frame limits, several workers sharing Redis). The `workers` fixture is in conftest.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

from django.conf import settings

import servers

APP_DIR = Path(__file__).resolve().parents[2] / "app"
TESTS_DIR = Path(__file__).resolve().parent
# Small presence timings for the workers under test, so that a dead worker's ghost goes within seconds.
PRESENCE_TTL = 3
PRESENCE_REFRESH = 1
# Small enough that a test sees the timed access re-check (live/access.py) within seconds.
ACCESS_RECHECK = 2
# At most this many sockets per user and worker, so that a test can reach the limit.
MAX_SOCKETS_PER_USER = 5
# Lost broadcasts are caught up this often.
CATCH_UP = 1
# A quick drain (live/drain.py), so that a test sees a worker stop within seconds.
DRAIN_SPREAD = 1
DRAIN_GRACE = 2
TIMEOUT = 15.0


@contextmanager
def daphne(env: dict, log: Path):
    """A Daphne process serving config.asgi on a free loopback port; stopped by PID at the end."""
    port = servers.free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=APP_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            servers.wait_for_port(port, timeout=30)
        except RuntimeError:
            raise RuntimeError(f"Daphne did not start:\n{log.read_text(errors='replace')}") from None
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def daphne_workers(count: int, postgres_port: int, redis_url: str, logs: Path):
    """`count` Daphne workers on the test database (data committed by transactional tests) and the test Redis."""
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings_test",
        "PYTHONPATH": os.pathsep.join([str(APP_DIR), str(TESTS_DIR)]),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{postgres_port}/{database['NAME']}",
        "REDIS_URL": redis_url,
        "PRESENCE_TTL_SECONDS": str(PRESENCE_TTL),
        "PRESENCE_REFRESH_SECONDS": str(PRESENCE_REFRESH),
        "ACCESS_RECHECK_SECONDS": str(ACCESS_RECHECK),
        "WEBSOCKET_MAX_PER_USER": str(MAX_SOCKETS_PER_USER),
        "DAPHNE_DRAIN_SPREAD_SECONDS": str(DRAIN_SPREAD),
        "FANOUT_CATCH_UP_SECONDS": str(CATCH_UP),
        "DAPHNE_DRAIN_GRACE_SECONDS": str(DRAIN_GRACE),
    }
    with ExitStack() as stack:
        yield [stack.enter_context(daphne(env, logs / f"daphne-{n}.log")) for n in range(1, count + 1)]


async def frame_where(socket, predicate, timeout: float = TIMEOUT) -> dict:
    """The first frame for which predicate is true (earlier ones are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await socket.recv())
            if predicate(frame):
                return frame
