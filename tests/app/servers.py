"""Real PostgreSQL and Redis servers for the tests, from Debian's packages, on free loopback ports.

Each test run starts its own in a temporary directory and stops them by PID at the end: nothing outside the run
is touched, and no server needs to be running beforehand.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Nothing listens on 127.0.0.1:{port} after {timeout} s")


def _postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package (make bootstrap does)")
    return found


@contextmanager
def postgres_server():
    """Yield the port of a fresh PostgreSQL cluster that trusts local connections as user `postgres`."""
    # PostgreSQL refuses to run as root; CI runs as root, so the cluster belongs to Debian's `postgres` user.
    run_as = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="comments-pg-"))
    data, sockets = directory / "data", directory / "sockets"
    sockets.mkdir()
    if run_as:
        entry = pwd.getpwnam(run_as)
        for path in (directory, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = free_port()
    subprocess.run(
        [_postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        user=run_as,
    )
    log = open(directory / "postgres.log", "wb")  # noqa: SIM115 - the server writes to it until it stops
    process = subprocess.Popen(
        [
            _postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-h",
            "127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        user=run_as,
    )
    try:
        wait_for_port(port)
        wait_for_postgres(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def wait_for_postgres(port: int, timeout: float = 30.0) -> None:
    """Wait until the server accepts connections: it listens a moment before it leaves "starting up"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [_postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q"], check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL on 127.0.0.1:{port} does not accept connections after {timeout} s")


@contextmanager
def redis_server():
    """Yield the port of a fresh Redis that keeps nothing on disk."""
    directory = Path(tempfile.mkdtemp(prefix="comments-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)
