"""What an operator checks after `ansible-playbook playbooks/site.yml` put the whole stack on a host."""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import asyncio
import ipaddress
import json
import urllib.request
import uuid

import pytest
import websockets

from support.tls import insecure_tls

SERVICES = ["apache2", "supervisor", "redis-server", "postgresql"]
# Ports that must listen on loopback only: Daphne's shared socket, Redis, PostgreSQL.
# Daphne: the two workers of molecule.yml (comments_daphne_workers: 2), on 9099 + their number.
PRIVATE_PORTS = {9099: "daphne worker 0", 9100: "daphne worker 1", 6379: "redis", 5432: "postgresql"}
PUBLIC_PORTS = {80, 443}
APACHE_MODULES = [
    "mpm_event_module",
    "rewrite_module",
    "proxy_module",
    "proxy_http_module",
    "proxy_wstunnel_module",
    "headers_module",
    "ssl_module",
    "wsgi_module",
]
ENV_FILE = "/etc/comments/comments.env"


# --- The services ---


@pytest.mark.parametrize("name", SERVICES)
def test_service_is_running_and_enabled(host, name):
    service = host.service(name)
    assert service.is_running, f"{name} is not running"
    assert service.is_enabled, f"{name} does not start at boot"


def test_supervisor_runs_every_daphne_worker(host, site):
    workers = int(site.variables["comments_daphne_workers"])
    status = host.run("supervisorctl status")
    # One supervisor program per worker: comments-daphne-00, comments-daphne-01, ...
    lines = [line for line in status.stdout.splitlines() if line.startswith("comments-daphne-")]
    assert len(lines) == workers, status.stdout
    assert all(" RUNNING " in line for line in lines), status.stdout


def test_app_processes_run_as_the_app_user(host, site):
    processes = [line.split(None, 1) for line in host.check_output("ps -eo user:20,args --no-headers").splitlines()]
    daphne = [user for user, args in processes if "bin/daphne --fd 0" in args]
    wsgi = [user for user, args in processes if args.startswith("(wsgi:comments)")]
    assert len(daphne) == int(site.variables["comments_daphne_workers"])
    assert wsgi, "no mod_wsgi daemon process"
    assert set(daphne + wsgi) == {"comments"}


# --- The network: only Apache is public ---


def listening(host) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket, from `ss`."""
    sockets = []
    for line in host.check_output("ss --no-header --tcp --listening --numeric").splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        sockets.append((address.strip("[]").split("%")[0], int(port)))
    return sockets


WILDCARDS = {"*", "0.0.0.0", "::"}  # noqa: S104 (addresses ss prints, not ones we bind)


def is_loopback(address: str) -> bool:
    return address not in WILDCARDS and ipaddress.ip_address(address).is_loopback


def test_only_http_and_https_listen_on_public_addresses(host):
    public = {port for address, port in listening(host) if not is_loopback(address)}
    assert public == PUBLIC_PORTS


@pytest.mark.parametrize("port", sorted(PRIVATE_PORTS))
def test_internal_services_listen_on_loopback_only(host, port):
    addresses = [address for address, p in listening(host) if p == port]
    assert addresses, f"{PRIVATE_PORTS[port]} does not listen on {port}"
    assert all(is_loopback(address) for address in addresses), addresses


# --- Redis and PostgreSQL: passwords, and only what the app needs ---


def test_redis_refuses_clients_without_a_password(host):
    result = host.run("redis-cli -h 127.0.0.1 ping")
    assert "NOAUTH" in result.stdout + result.stderr


def test_redis_app_user_may_not_run_admin_commands(host):
    result = host.run(
        'set -a; . /etc/comments/comments.env; redis-cli --no-auth-warning -u "$REDIS_URL" config get maxmemory'
    )
    assert "NOPERM" in result.stdout + result.stderr


def test_redis_refuses_writes_rather_than_evicting(host):
    assert host.file("/etc/redis/redis-ansible.conf").contains("^maxmemory-policy noeviction$")
    assert host.file("/etc/redis/redis.conf").contains("^include /etc/redis/redis-ansible.conf$")


def test_app_database_password_is_a_scram_verifier(host):
    result = host.run(
        "runuser -u postgres -- psql -Atc "
        "\"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'comments'\""
    )
    assert result.stdout.strip() == "t", result.stderr


# --- Apache ---


def test_apache_has_the_modules_the_site_uses(host):
    modules = host.check_output("apache2ctl -M")
    for module in APACHE_MODULES:
        assert module in modules


def test_apache_configuration_is_valid(host):
    assert host.run("apache2ctl configtest").rc == 0


def test_home_page_answers_over_https(site):
    status, headers, _ = site.curl("https://localhost/", "--location")
    assert status == 200
    assert "text/html" in headers.get("content-type", "")


def test_health_check_reports_database_redis_and_daphne_ok(site):
    status, _, body = site.curl("https://localhost/healthz")
    assert status == 200, body
    assert json.loads(body) == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "daphne": "ok",
        # The host's own Daphne workers, on loopback: the members of its Apache's balancer, one per worker.
        "daphne_members": {"127.0.0.1:9099": "ok", "127.0.0.1:9100": "ok"},
    }


def test_api_asks_for_credentials(site):
    status, headers, body = site.curl("https://localhost/api/v1/graphs/")
    assert status == 401
    assert headers.get("www-authenticate") == "Token"
    assert "detail" in json.loads(body)


def test_api_answers_with_a_token(site, token):
    status, _, body = site.curl("https://localhost/api/v1/graphs/", "--header", f"Authorization: Token {token}")
    assert status == 200, body
    assert json.loads(body)["count"] >= 1


def test_static_files_are_served_by_apache(site):
    status, headers, _ = site.curl("https://localhost/static/admin/css/base.css")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/css")
    assert headers.get("cache-control", "").startswith("public, max-age=")


def test_plain_http_redirects_to_https(site):
    status, headers, _ = site.curl("http://localhost/healthz?x=1")
    assert status == 301
    assert headers["location"] == f"https://localhost:{site.published_https_port}/healthz?x=1"


# --- The app's files and checks ---


def test_env_file_is_not_world_readable(host):
    env_file = host.file(ENV_FILE)
    assert env_file.is_file
    assert env_file.user == "root"
    assert env_file.group == "comments"
    assert env_file.mode == 0o640


def test_current_release_is_a_complete_release(host):
    current = host.file("/srv/comments/current")
    assert current.is_symlink
    assert current.linked_to.startswith("/srv/comments/releases/")
    assert host.file(current.linked_to + "/.release-complete").is_file
    assert host.file(current.linked_to + "/venv/bin/daphne").is_file


def test_django_deployment_checks_pass(site):
    result = site.manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.rc == 0, result.stdout + result.stderr


# --- A comment travels: HTTPS POST -> mod_wsgi -> PostgreSQL -> Redis -> Daphne -> every viewer ---


def post_comment(port: int, token: str, graph_id: int, body: str) -> dict:
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/api/v1/graphs/{graph_id}/comments/",
        data=json.dumps({"body": body}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    # An https:// URL built above, never a file: or custom scheme.
    with urllib.request.urlopen(request, context=insecure_tls(), timeout=10) as response:  # noqa: S310
        assert response.status == 201
        return json.load(response)


async def next_comment_event(socket, body: str) -> dict:
    async for raw in socket:
        frame = json.loads(raw)
        if frame.get("type") == "event" and frame["comment"]["body"] == body:
            return frame
    raise AssertionError("the WebSocket closed before the comment arrived")


def test_a_comment_posted_over_https_reaches_every_open_websocket(site, token, graph_id):
    port = site.published_https_port
    url = f"wss://127.0.0.1:{port}/ws/graphs/{graph_id}/"
    body = f"Checked by Testinfra {uuid.uuid4()}"

    async def scenario():
        headers = {"Authorization": f"Token {token}"}
        async with (
            websockets.connect(url, additional_headers=headers, ssl=insecure_tls()) as first,
            websockets.connect(url, additional_headers=headers, ssl=insecure_tls()) as second,
        ):
            for socket in (first, second):
                hello = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
                assert hello["type"] == "hello"
                assert hello["user"]["username"] == "alice"
            created = await asyncio.to_thread(post_comment, port, token, graph_id, body)
            # Bounds the wait only: a comment that never arrives fails here instead of hanging the run.
            events = await asyncio.wait_for(
                asyncio.gather(next_comment_event(first, body), next_comment_event(second, body)), timeout=10
            )
            for event in events:
                assert event["event"] == "comment.created"
                assert event["seq"] == created["seq"]
                assert event["comment"]["id"] == created["id"]

    asyncio.run(scenario())
