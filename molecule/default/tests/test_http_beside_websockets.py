"""HTTP requests are answered while Apache holds many WebSockets: a browser's next request never waits for a hall.

Apache 2.4's event MPM gives the next request of a kept-alive connection only to a worker thread of the process that
holds the connection. Each proxied WebSocket holds a thread of its process for its whole life, and Apache fills its
processes unevenly, so with a few hundred viewers some process has every thread holding a WebSocket, and a request
on a connection it keeps alive waits until one of them closes: in a lecture hall, never. (Measured on 2026-11-27
with Debian 12's Apache 2.4.71, 64 threads per process, 512 in all: with 200 WebSockets open, 27 of 40 kept-alive
connections hung; a comment POST of the benchmark hung for its whole 30 s timeout.) A new connection is accepted only
by a process that has an idle thread, so the site runs with keep-alive off (apache_keepalive).

This test is that measurement against the deployed host: 40 pages each making a request a second while three times
a process's threads of WebSockets open through Apache, and for two seconds after; every request must be answered.
(With keep-alive on, the same test on Debian 12 with 768 WebSockets: 24 requests closed without an answer.)
"""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
import time
import uuid

import pytest
import websockets

from support.tls import insecure_tls

MPM_CONF = "/etc/apache2/mods-available/mpm_event.conf"
CLIENTS = 40
STATIC_FILE = "/static/admin/css/base.css"
# Bounds of the waits, never a measure: a request that hangs (the defect) fails after this instead of for ever.
REQUEST_TIMEOUT = 20
# Each page's requests, one a second, at most: the hall must be full within them (it takes seconds).
REQUEST_ROUNDS = 120


@pytest.fixture(scope="module")
def threads_per_process(host) -> int:
    text = host.file(MPM_CONF).content_string
    return int(re.search(r"^\s*ThreadsPerChild\s+(\d+)\s*$", text, re.MULTILINE).group(1))


@pytest.fixture(scope="module")
def public_graph(site, token) -> int:
    """A public graph of alice's, which anonymous viewers may watch without a per-user socket limit."""
    body = json.dumps({"name": f"Hall {uuid.uuid4()}", "public": True, "elements": {"nodes": [{"data": {"id": "A"}}]}})
    connection = https(site.published_https_port)
    connection.request(
        "POST", "/api/v1/graphs/", body, {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    )
    response = connection.getresponse()
    created = json.loads(response.read())
    assert response.status == 201, created
    return created["id"]


def https(port: int) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT, context=insecure_tls())


def get(connection: http.client.HTTPSConnection) -> tuple[int, str]:
    """One request as a browser makes it: HTTP/1.1, which asks to keep the connection open. A static file, which
    Apache's own thread serves: what is tested is whether a thread takes the request at all."""
    connection.request("GET", STATIC_FILE)
    response = connection.getresponse()
    response.read()
    return response.status, response.getheader("Connection", "")


def test_requests_are_answered_while_processes_fill_with_websockets(site, threads_per_process, public_graph):
    port = site.published_https_port
    viewers = 3 * threads_per_process
    url = f"wss://127.0.0.1:{port}/ws/graphs/{public_graph}/"
    hall_open = threading.Event()
    failures: list[BaseException] = []
    answers: list[tuple[int, str]] = []

    def browse() -> None:
        """A page that makes a request a second (within Apache's KeepAliveTimeout) until the hall is full, and two
        more after: the requests a browser would send over the connection it keeps open."""
        client = https(port)
        after_full = 0
        for _ in range(REQUEST_ROUNDS):
            try:
                answers.append(get(client))
            except Exception as error:  # noqa: BLE001 - every failure is reported by the assert below
                failures.append(error)
                client.close()
            if hall_open.is_set():
                after_full += 1
                if after_full > 2:
                    break
            time.sleep(1)
        client.close()

    async def hall() -> int:
        sockets = []
        try:
            for start in range(0, viewers, 50):
                opened = await asyncio.gather(
                    *(
                        websockets.connect(url, ssl=insecure_tls(), open_timeout=60, max_queue=None)
                        for _ in range(start, min(viewers, start + 50))
                    )
                )
                sockets.extend(opened)
            hall_open.set()
            # The pages' requests after the hall is full (bounded: REQUEST_ROUNDS, each at most REQUEST_TIMEOUT).
            await asyncio.to_thread(pages.join)
            return len(sockets)
        finally:
            hall_open.set()
            await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)

    pages = threading.Thread(target=lambda: [t.join() for t in browsers])
    browsers = [threading.Thread(target=browse) for _ in range(CLIENTS)]
    for browser in browsers:
        browser.start()
    pages.start()
    assert asyncio.run(hall()) == viewers
    assert not failures, (
        f"{len(failures)} requests failed while {viewers} WebSockets opened through Apache: {failures[0]!r}"
    )
    assert {status for status, _ in answers} == {200}
    # Every response closed its connection: the next request came on a new one (keep-alive off).
    assert {header.lower() for _, header in answers} == {"close"}
