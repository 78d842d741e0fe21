"""The TLS checklist of an operator: the certificate comes from the ACME CA and chains to its root, a renewal is
activated by a graceful reload, testssl.sh finds nothing HIGH or CRITICAL, and Apache's own responses are hardened.

Runs on the site's host only (pebble's host, tls-acme, is the CA the checks ask for its root).
"""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
import ssl
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import websockets

from support.tls import insecure_tls

testinfra_hosts = ["ansible://comments"]

SERVER_NAME = "comments.test"
MANAGEMENT_URL = "https://acme.comments.test:15000"
ROOT = "/tmp/pebble-root.pem"  # noqa: S108 (inside the throwaway container)
INTERMEDIATES = "/tmp/pebble-intermediates.pem"  # noqa: S108
TESTSSL_JSON = "/tmp/testssl.json"  # noqa: S108


@pytest.fixture(scope="module")
def pebble_root(host) -> str:
    """Pebble's root (made when pebble starts, so asked of its management API) and its intermediate, as PEM.

    Fetched over the scenario's network with --insecure: this check's trust anchor is the CA's own statement of its
    root; what matters is that the served chain verifies against it.
    """
    for path, what in ((ROOT, "roots/0"), (INTERMEDIATES, "intermediates/0")):
        host.run_expect(
            [0], shlex.join(["curl", "--silent", "--fail", "--insecure", "-o", path, f"{MANAGEMENT_URL}/{what}"])
        )
    return host.file(ROOT).content_string


def served_chain(host) -> str:
    result = host.run_expect(
        [0],
        f"openssl s_client -connect 127.0.0.1:443 -servername {SERVER_NAME} -showcerts </dev/null 2>/dev/null",
    )
    return result.stdout


# --- The certificate: from the ACME CA, through mod_md ---


def test_served_certificate_is_issued_by_pebbles_intermediate(host, pebble_root):
    issuer = host.run_expect(
        [0],
        f"openssl s_client -connect 127.0.0.1:443 -servername {SERVER_NAME} </dev/null 2>/dev/null"
        " | openssl x509 -noout -issuer -subject -ext subjectAltName",
    ).stdout
    assert "Pebble Intermediate CA" in issuer, issuer
    assert f"DNS:{SERVER_NAME}" in issuer, issuer


def test_served_chain_verifies_against_pebbles_root(host, pebble_root):
    result = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {SERVER_NAME} -CAfile {ROOT}"
        f" -verify_hostname {SERVER_NAME} -verify_return_error </dev/null 2>&1"
    )
    assert result.rc == 0, result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout


def test_the_published_port_serves_it_to_the_controller(host, pebble_root):
    """From the controller through 127.0.0.1:22443, with Python's verification against pebble's root alone."""
    port = int(host.ansible.get_variables()["molecule_https_port"])
    context = ssl.create_default_context(cadata=pebble_root)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        assert dict(item[0] for item in tls.getpeercert()["subject"])["commonName"] == SERVER_NAME


def test_mod_md_renewal_was_activated_by_the_path_unit(host):
    """mod_md said "renewed" (the first certificate counts), the path unit's service reloaded Apache, marks gone."""
    events = host.run_expect([0], "journalctl --no-pager -t comments-md").stdout
    assert f"renewed for {SERVER_NAME}" in events
    assert host.service("comments-md-renewed.path").is_running
    service = host.run_expect(
        [0], "systemctl show comments-md-renewed.service -p Result -p ExecMainStatus -p InactiveExitTimestampMonotonic"
    ).stdout
    assert "Result=success" in service
    assert "InactiveExitTimestampMonotonic=0" not in service, "the service never ran"
    assert host.run_expect([0], "ls -A /var/lib/apache2/md-renewed").stdout.strip() == ""


def test_acme_challenges_are_not_redirected(host):
    """Port 80 redirects everything to HTTPS except ACME's http-01 challenges (mod_md answers unknown tokens 404)."""
    challenge = host.run_expect(
        [0], "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/.well-known/acme-challenge/unknown-token"
    ).stdout
    assert challenge == "404"
    other = host.run_expect([0], "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/healthz").stdout
    assert other == "301"


# --- The protocol: testssl.sh, Debian's package ---


def test_testssl_finds_nothing_high_or_critical(host, pebble_root):
    """A full testssl.sh run against the site's HTTPS port; its JSON findings are the verdict.

    The summary (counts per severity and every finding above INFO) goes to build/testssl/ for docs/security.md.
    """
    host.run(f"rm -f {TESTSSL_JSON}")
    run = host.run(
        shlex.join(
            [
                "testssl",
                "--quiet",
                "--color",
                "0",
                "--warnings",
                "off",
                "--add-ca",
                ROOT,
                "--jsonfile",
                TESTSSL_JSON,
                f"https://{SERVER_NAME}/",
            ]
        )
    )
    findings = json.loads(host.file(TESTSSL_JSON).content_string)
    assert findings, run.stdout + run.stderr
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding["severity"]] = counts.get(finding["severity"], 0) + 1
    notable = [f"{f['severity']} {f['id']}: {f['finding']}" for f in findings if f["severity"] not in {"INFO", "OK"}]
    out = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")) / "build" / "testssl"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tls-summary.txt").write_text(
        "severity counts: " + json.dumps(counts, sort_keys=True) + "\n" + "\n".join(notable) + "\n"
    )
    (out / "tls-findings.json").write_text(json.dumps(findings, indent=1))
    bad = [line for line in notable if line.split()[0] in {"HIGH", "CRITICAL"}]
    assert not bad, "\n".join(bad)
    protocols = {
        f["id"]: f["finding"] for f in findings if f["id"] in {"SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"}
    }
    assert protocols["TLS1"] == "not offered"
    assert protocols["TLS1_1"] == "not offered"
    assert protocols["TLS1_2"] == "offered"
    assert protocols["TLS1_3"].startswith("offered")


# --- Apache's own responses ---


def head(host, url: str, *options: str, curl_ok: tuple[int, ...] = (0,)) -> tuple[int, list[tuple[str, str]], str]:
    """Status, header lines (name lowercased, repeated names kept) and body of a request inside the host."""
    marker = "\n--status:"
    command = ["curl", "--silent", "--insecure", "--include", *options, "--write-out", marker + "%{http_code}", url]
    result = host.run_expect(list(curl_ok), shlex.join(command))
    response, _, status = result.stdout.rpartition(marker)
    head_text, _, body = response.partition("\r\n\r\n")
    headers = []
    for line in head_text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return int(status), headers, body


SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


@pytest.mark.parametrize(
    "path",
    [
        "/static/admin/css/base.css",  # a static file, served by Apache
        "/no-such-page/",  # Django's 404
        "/static/no-such-file.css",  # Apache's own 404
        "/",  # Django's page
    ],
)
def test_every_https_response_has_each_security_header_once(host, path):
    _, headers, _ = head(host, f"https://127.0.0.1{path}")
    names = [name for name, _ in headers]
    for name, value in SECURITY_HEADERS.items():
        assert names.count(name) == 1, (name, headers)
        assert dict(headers)[name] == value
    assert names.count("content-security-policy") == 1, headers
    assert "frame-ancestors 'none'" in dict(headers)["content-security-policy"]


def test_server_says_apache_and_nothing_more(host):
    status, headers, body = head(host, "https://127.0.0.1/static/no-such-file.css")
    assert status == 404
    assert dict(headers)["server"] == "Apache"
    assert "Apache/" not in body
    assert "Debian" not in body


def test_trace_is_refused(host):
    status, _, _ = head(host, "https://127.0.0.1/", "--request", "TRACE")
    assert status == 405


def test_a_request_body_above_the_limit_is_refused_by_apache(host):
    """5 MB against LimitRequestBody 4 MiB: Apache's own 413 (HTML), before the app sees it; the app's own JSON 413
    for bodies between its limit and Apache's is checked by tests/badinput."""
    host.run_expect([0], "head -c 5000000 /dev/zero | tr '\\0' x > /tmp/body-5mb")
    status, headers, body = head(
        host,
        "https://127.0.0.1/api/v1/graphs/",
        "--request",
        "POST",
        "--header",
        "Content-Type: application/json",
        "--data-binary",
        "@/tmp/body-5mb",
        # Apache answers before reading the body and closes: curl may report the unsent rest (55, 56).
        curl_ok=(0, 55, 56),
    )
    assert status == 413
    assert dict(headers)["content-type"].startswith("text/html"), headers
    assert "Request Entity Too Large" in body


def test_session_tickets_are_off_and_hsts_is_not_on_plain_http(host):
    tickets = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {SERVER_NAME} -tls1_2 </dev/null 2>/dev/null"
    ).stdout
    assert "TLS session ticket:" not in tickets
    _, headers, _ = head(host, "http://127.0.0.1/healthz")
    assert "strict-transport-security" not in dict(headers)


# --- mod_reqtimeout and WebSockets ---

# Longer than every limit of RequestReadTimeout (handshake 20 s, header 20 s, body 20 s at 500 bytes/s).
SILENCE_SECONDS = 45


# Its clients use insecure_tls(): the certificate is checked above; here only the tunnel matters.
def test_a_silent_websocket_outlives_the_request_read_timeouts(host):
    """A client that sends nothing but pong replies for 45 s keeps its WebSocket and still gets a comment.

    mod_reqtimeout bounds reading a request (at least 500 bytes/s after 20 s); an upgraded WebSocket is a tunnel it
    must leave alone, or every quiet viewer would be cut after 20 s.
    """
    loaded = host.run("env DEMO_PASSWORD=tls-check-only /usr/local/bin/comments-manage load_demo")
    assert loaded.rc == 0, loaded.stderr
    created = host.run_expect([0], "/usr/local/bin/comments-manage drf_create_token alice")
    token = re.search(r"\b([0-9a-f]{40})\b", created.stdout).group(1)
    port = int(host.ansible.get_variables()["molecule_https_port"])
    base = f"https://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {token}"}

    def request(path: str, data: dict | None = None) -> dict:
        call = urllib.request.Request(  # noqa: S310 (an https:// URL built here)
            base + path,
            data=json.dumps(data).encode() if data is not None else None,
            headers={**headers, "Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(call, context=insecure_tls(), timeout=20) as response:  # noqa: S310
            return json.load(response)

    graph_id = request("/api/v1/graphs/")["results"][0]["id"]
    body = f"after a silence {uuid.uuid4()}"

    async def scenario() -> None:
        async with websockets.connect(
            f"wss://127.0.0.1:{port}/ws/graphs/{graph_id}/",
            additional_headers=headers,
            ssl=insecure_tls(),
            ping_interval=None,  # the client sends nothing of its own; it answers Daphne's pings
        ) as socket_:
            assert json.loads(await asyncio.wait_for(socket_.recv(), timeout=20))["type"] == "hello"
            deadline = time.monotonic() + SILENCE_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(socket_.recv(), timeout=left)  # presence frames may come
                except TimeoutError:
                    break
            assert socket_.state is websockets.protocol.State.OPEN
            created = await asyncio.to_thread(request, f"/api/v1/graphs/{graph_id}/comments/", {"body": body})
            async for raw in socket_:
                frame = json.loads(raw)
                if frame.get("type") == "event" and frame["comment"]["body"] == body:
                    assert frame["seq"] == created["seq"]
                    return
            raise AssertionError("the WebSocket closed before the comment arrived")

    # Bounds the whole check only.
    asyncio.run(asyncio.wait_for(scenario(), timeout=SILENCE_SECONDS + 60))
