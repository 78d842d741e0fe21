"""The REST API client of every test that talks to a deployed stack: the scenarios' live clients and trials
(live_client.py, trial.py), their operator checks, and the bad-input suite (tests/badinput/badstack.py).

One client, one set of request settings: the base URL, `Accept: application/json`, `Authorization: Token <key>` (none
for a visitor), no certificate check (support/tls.py), a bound on every answer. It sends in two ways, because its
callers judge different things:

- `request`/`get`/`post` (and `curl_post`) answer an `Answer` and never raise: what a page or a script saw, timed.
  Each call opens its own connection (urllib), as a page's next request after a restart does, so a fault trial
  meets the stack as it is now, not through a kept-alive socket; they are safe to call from many threads at once
  (the trials' viewers fill gaps from threads).
- `call`/`ok` answer a requests.Response through one kept-alive session (`session`, which schemathesis also drives):
  the path and the body go as written (raw text or bytes, any Content-Type or none), as the bad-input suite needs.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from support.tls import insecure_tls

# The longest Retry-After `ok` waits for (the rates are per minute) before a 429 is taken as the answer.
MAX_RETRY_AFTER = 61

# What curl's exit codes mean for a client (man curl, "EXIT CODES").
CURL_FAILURES = {
    7: "connection refused",
    28: "timed out",
    35: "TLS handshake failed",
    52: "empty reply",
    55: "connection reset",
    56: "connection reset",
}


@dataclass
class Answer:
    """One HTTP answer (or the lack of one): what the API said and how long it took."""

    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    body: dict | list | None
    headers: dict[str, str]
    started: float
    seconds: float
    error: str = ""


class Api:
    """The REST API over HTTPS as one user (a token) or a visitor (None), as a script uses it (blocking: call it from
    a thread in async code). `timeout` bounds each answer, in seconds."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.tls = insecure_tls()
        self._session: requests.Session | None = None

    # --- each call on its own connection, answered as an Answer ---

    def request(self, method: str, path: str, payload: dict | None = None) -> Answer:
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        headers["Accept"] = "application/json"
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        # An https:// URL built from the test's own base URL, never a file: or custom scheme.
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)  # noqa: S310
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=self.timeout) as response:  # noqa: S310
                raw, status, answer_headers = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, answer_headers = error.read(), error.code, dict(error.headers)
        # Whatever else went wrong is what the client saw instead of an answer (refused, reset, timed out, TLS).
        except Exception as error:  # noqa: BLE001
            return Answer(None, None, {}, started, time.monotonic() - started, f"{type(error).__name__}: {error}")
        seconds = time.monotonic() - started
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"unparsed": raw[:200].decode(errors="replace")}
        return Answer(status, body, {k.lower(): v for k, v in answer_headers.items()}, started, seconds)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, payload: dict) -> Answer:
        return self.request("POST", path, payload)

    def curl_post(self, path: str, payload: dict) -> Answer:
        """POST with curl, in its own process: the time it reports is the server's and the network's alone, not
        this process's (a thousand TLS clients sharing one interpreter would slow a thread's request down)."""
        marker = "\n--curl:"
        auth = ["--header", f"Authorization: Token {self.token}"] if self.token else []
        command = [
            "curl", "--silent", "--insecure", "--include", "--max-time", str(self.timeout),
            *auth, "--header", "Content-Type: application/json",
            "--data-binary", json.dumps(payload), "--write-out", marker + "%{http_code} %{time_total}",
            self.base_url + path,
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, check=False)
        # Decoded by hand: text=True would turn the header lines' CRLF into LF.
        response, _, written = done.stdout.decode(errors="replace").rpartition(marker)
        status, seconds = written.split() if written else ("000", f"{time.monotonic() - started:.3f}")
        if done.returncode != 0 or status == "000":
            failure = CURL_FAILURES.get(done.returncode, "curl failed")
            return Answer(None, None, {}, started, float(seconds), f"{failure}: curl exit {done.returncode}")
        head, _, raw = response.partition("\r\n\r\n")
        while head.startswith("HTTP/1.1 100"):  # a Continue before the answer
            head, _, raw = raw.partition("\r\n\r\n")
        headers = {}
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"unparsed": raw[:200]}
        return Answer(int(status), body, headers, started, float(seconds))

    # --- through one kept-alive session, answered as a requests.Response ---

    @property
    def session(self) -> requests.Session:
        """Made at first use: the live clients, many of them, never need one."""
        if self._session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy from the environment: the test hosts are on this machine
            session.verify = False  # requests makes its own TLS context; this is insecure_tls()'s setting
            session.headers["Accept"] = "application/json"
            if self.token:
                session.headers["Authorization"] = f"Token {self.token}"
            self._session = session
        return self._session

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        data: bytes | str | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One request; `path` is sent as written (percent escapes such as %00 stay as they are)."""
        sent = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body)
        if data is not None and content_type:
            sent.setdefault("Content-Type", content_type)
        return self.session.request(method, self.base_url + path, data=data, headers=sent, timeout=self.timeout)

    def ok(self, method: str, path: str, body: object = None, expected: Iterable[int] = (200, 201, 204)) -> dict:
        """A call that must succeed (a fixture's own writes): a 429 is waited out once, within a minute."""
        response = self.call(method, path, json_body=body)
        wait = response.headers.get("Retry-After", "")
        if response.status_code == 429 and wait.isdigit() and int(wait) <= MAX_RETRY_AFTER:
            time.sleep(int(wait) + 1)
            response = self.call(method, path, json_body=body)
        assert response.status_code in set(expected), f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else {}

    def last_seq(self, graph_id: int) -> int:
        return self.ok("GET", f"/api/v1/graphs/{graph_id}/")["last_seq"]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
