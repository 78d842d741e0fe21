"""The deployed stack as a careless or hostile client sees it: REST and WebSockets through Apache, and manage.py.

Everything here talks to one deployment only: COMMENTS_BASE_URL (default https://127.0.0.1:8443, the demo), which
must be on this machine's loopback, and the container COMMENTS_CONTAINER that serves it (default: `comments-demo`
for the demo's port 8443, else the Molecule instance `debian12`). The certificate is self-signed: not verified.
Every call is bounded in time, so a hang is a failure with a message, never a stuck run. The REST client is the one
every test shares (tests/support/api.py); the suite's own checks of the answers (the JSON error contract, a 429 as
documented) are here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.api import Api
from support.tls import insecure_tls

BASE_URL = os.environ.get("COMMENTS_BASE_URL", "https://127.0.0.1:8443").rstrip("/")
_URL = urlsplit(BASE_URL)
WS_BASE_URL = f"wss://{_URL.netloc}" if _URL.scheme == "https" else f"ws://{_URL.netloc}"
CONTAINER = os.environ.get("COMMENTS_CONTAINER") or ("comments-demo" if _URL.port == 8443 else "debian12")
MANAGE = "/usr/local/bin/comments-manage"
# Users of the suite's own (made by the tokens fixture if missing; token only, no password): the fuzz passes' user,
# and the one who opens socket after socket up to the per-user limit.
FUZZ_USER = "badinput-fuzzer"
CROWD_USER = "badinput-crowd"

# Bounds: one HTTP answer, one WebSocket step (handshake, a frame, a close), one manage.py command.
HTTP_TIMEOUT = 20.0
WS_TIMEOUT = 10.0
MANAGE_TIMEOUT = 120.0
# A closed socket's user must leave the presence list within this (the leave is coalesced for 0.1 s).
PRESENCE_TIMEOUT = 10.0

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def loopback_problem() -> str | None:
    """Why BASE_URL must not be used (these tests flood and fuzz: only a stack on this machine is a target)."""
    if _URL.scheme not in {"https", "http"}:
        return f"COMMENTS_BASE_URL={BASE_URL!r} is not an http(s) URL"
    host = _URL.hostname or ""
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        return f"COMMENTS_BASE_URL={BASE_URL!r} is not on this machine's loopback; refusing to flood or fuzz it"
    return None


# --- manage.py inside the container -----------------------------------------------------------------------------


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """manage.py through the wrapper operators use, inside the container that serves BASE_URL."""
    assignments = [item for name, value in (env or {}).items() for item in ("--env", f"{name}={value}")]
    return subprocess.run(
        ["docker", "exec", *assignments, CONTAINER, MANAGE, *args],
        capture_output=True,
        text=True,
        timeout=MANAGE_TIMEOUT,
        check=False,
    )


TOKENS_SCRIPT = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

User = get_user_model()
for name in {make!r}:
    user, made = User.objects.get_or_create(username=name)
    if made:
        user.set_unusable_password()
        user.save()
for name in {names!r}:
    token, _ = Token.objects.get_or_create(user=User.objects.get(username=name))
    print("token", name, token.key)
"""


def tokens_for(usernames: Iterable[str], make: Iterable[str] = ()) -> dict[str, str]:
    """DRF tokens of these users (their existing keys, or new ones, as `drf_create_token` gives), in one manage.py
    run; the users in `make` are created first if missing, active, with no usable password (token only)."""
    names = list(usernames)
    done = manage("shell", "-c", TOKENS_SCRIPT.format(make=list(make), names=names))
    tokens = dict(re.findall(r"^token (\S+) ([0-9a-f]{40})$", done.stdout, flags=re.MULTILINE))
    missing = [name for name in names if name not in tokens]
    if done.returncode != 0 or missing:
        raise RuntimeError(f"no token for {missing} in {CONTAINER}: {done.stdout[-500:]}{done.stderr[-1500:]}")
    return tokens


# --- REST ---------------------------------------------------------------------------------------------------------


def client(token: str | None = None) -> Api:
    """The REST API through Apache as one user (a token) or as a visitor (None); `call` for what the suite sends as
    written, `ok` for the fixtures' own writes (a 429 is waited out once)."""
    return Api(BASE_URL, token, timeout=HTTP_TIMEOUT)


def json_error(response: requests.Response) -> dict:
    """The JSON error body of a 4xx, or an assertion error saying what came instead."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        f"{response.status_code} without a JSON body: {response.headers.get('Content-Type')!r} {response.text[:300]!r}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str), body
    assert body["detail"], body
    assert isinstance(body.get("code"), str), body
    return body


def is_throttled(response: requests.Response) -> bool:
    """A 429 as the contract has it: JSON code `throttled` with a Retry-After (a clear answer to any write)."""
    if response.status_code != 429:
        return False
    assert response.headers.get("Retry-After"), "a 429 without Retry-After"
    assert json_error(response)["code"] == "throttled", response.text[:300]
    return True


# --- WebSockets ---------------------------------------------------------------------------------------------------


_SSL = insecure_tls() if WS_BASE_URL.startswith("wss:") else None


class Closed(Exception):
    """The server closed the socket (an outcome to check, not a failure in itself)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


class Timeout(AssertionError):
    """The server said nothing within the bound: a hang."""


def closed_from(error: ConnectionClosed) -> Closed:
    # No close frame from the server (a dropped connection) reads as 1006, as browsers report it.
    if error.rcvd is None:
        return Closed(1006)
    return Closed(error.rcvd.code, error.rcvd.reason)


# One event loop for every socket of the run, driven from the (synchronous) tests: all TLS reads and writes happen in
# this one thread. (websockets' threaded sync client reads in a second thread while the test writes, and CPython's ssl
# module crashed under that here, with a segmentation fault, when many sockets were open.)
_LOOP = asyncio.new_event_loop()


def _run(awaitable, timeout: float):
    """Run one step on the loop, bounded in time (a step that overruns raises TimeoutError)."""
    return _LOOP.run_until_complete(asyncio.wait_for(awaitable, timeout))


@dataclass
class Socket:
    """One WebSocket through Apache, read with a deadline on every step."""

    connection: ClientConnection
    path: str

    def send(self, message: str | bytes) -> None:
        try:
            _run(self.connection.send(message), WS_TIMEOUT)
        except ConnectionClosed as error:
            raise closed_from(error) from None
        except TimeoutError:
            raise Timeout(f"{self.path}: a frame could not be sent within {WS_TIMEOUT} s") from None

    def send_json(self, message: object) -> None:
        self.send(json.dumps(message))

    def frame(self, timeout: float = WS_TIMEOUT) -> dict:
        """The next frame, parsed; Closed if the server closed the socket, Timeout if it said nothing in time."""
        try:
            # Cancelling recv() on a timeout loses nothing (websockets documents it as safe).
            text = _run(self.connection.recv(), timeout)
        except TimeoutError:
            raise Timeout(f"{self.path}: no frame and no close within {timeout:.1f} s") from None
        except ConnectionClosed as error:
            raise closed_from(error) from None
        assert isinstance(text, str), f"{self.path}: the server sent a binary frame"
        return json.loads(text)

    def next(self, *types: str, timeout: float = WS_TIMEOUT) -> dict:
        """The next frame of one of these types, skipping others (presence, events); Closed / Timeout as frame()."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"{self.path}: no {'/'.join(types)} frame within {timeout} s")
            message = self.frame(left)
            if message.get("type") in types:
                return message

    def close_code(self, timeout: float = WS_TIMEOUT) -> int:
        """Read (and drop) frames until the server closes the socket: its close code."""
        try:
            self.next("never a frame type", timeout=timeout)
        except Closed as closed:
            return closed.code
        raise AssertionError("unreachable")  # pragma: no cover

    def assert_open(self) -> None:
        """The socket still answers: a ping gets its pong."""
        self.send_json({"type": "ping"})
        self.next("pong")

    def close(self) -> None:
        # close() waits for the server's close frame at most close_timeout; the bound here only guards that.
        with contextlib.suppress(TimeoutError):
            _run(self.connection.close(), WS_TIMEOUT)


def open_socket(
    path: str,
    token: str | None = None,
    *,
    origin: str | None = None,
    headers: dict[str, str] | None = None,
) -> Socket:
    """Open a WebSocket at `path` (no Origin unless given: a script, as docs/protocol.md allows)."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Token {token}"

    async def opening() -> ClientConnection:
        return await connect(
            WS_BASE_URL + path,
            ssl=_SSL,
            origin=origin,
            additional_headers=sent,
            compression=None,  # frames travel as sent: a 65 KiB frame is 65 KiB on the wire
            proxy=None,
            open_timeout=WS_TIMEOUT,
            close_timeout=5,
            ping_interval=None,
            max_size=None,
        )

    try:
        connection = _run(opening(), WS_TIMEOUT + 1)
    except TimeoutError:
        raise Timeout(f"{path}: no handshake answer within {WS_TIMEOUT} s") from None
    return Socket(connection, path)


def handshake_status(path: str, **kwargs) -> int | None:
    """The HTTP status of a refused handshake, or None when the socket opened (it is closed again)."""
    try:
        socket = open_socket(path, **kwargs)
    except InvalidStatus as refused:
        return refused.response.status_code
    socket.close()
    return None


def viewer_names(frame: dict) -> set[str]:
    """Usernames of a presence frame (`viewers`: users, or usernames; other keys such as a count are ignored)."""
    names = set()
    for viewer in frame.get("viewers") or []:
        names.add(viewer.get("username") if isinstance(viewer, dict) else str(viewer))
    return names


def current_viewers(graph_id: int, token: str) -> set[str]:
    """The viewers a new observer (this token's user, listed too) is told of on connecting."""
    socket = open_socket(f"/ws/graphs/{graph_id}/", token)
    try:
        socket.next("hello")
        return viewer_names(socket.next("presence"))
    finally:
        socket.close()


def wait_for_viewers(graph_id: int, token: str, allowed: set[str], timeout: float = PRESENCE_TIMEOUT) -> set[str]:
    """Poll with fresh observers until nobody outside `allowed` is listed; the last list seen (the caller asserts)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = current_viewers(graph_id, token)
        if seen <= allowed or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


# Users a failed check already reported as ghosts: a ghost stays for the life of its worker, and every later check
# would wait for it to go and fail again; each ghost is reported once, by the check that saw it appear.
KNOWN_GHOSTS: set[str] = set()


def new_ghosts(graph_id: int, observer_token: str, live: set[str]) -> set[str]:
    """Viewers listed although their sockets are closed (only `live` are open), not reported before."""
    seen = wait_for_viewers(graph_id, observer_token, live | KNOWN_GHOSTS)
    ghosts = seen - live - KNOWN_GHOSTS
    KNOWN_GHOSTS.update(ghosts)
    return ghosts
