"""Shared steps of the operator's checks (the demo data, an API token, HTTPS requests made inside the host), and the
order in which the scenario's folders of checks run on its hosts."""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import sys
from pathlib import Path

import pytest

# What the scenarios share is the package tests/support (the live client, the API client, the fault trial, ...),
# imported as `support.<module>` by this folder and the ones under it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

MANAGE = "/usr/local/bin/comments-manage"

# One converged host answers every single-host question in turn: first what a fresh deployment must show (this
# folder), then the faults (each leaves the stack whole again), then the operations that change the most (a restore,
# new secrets). Molecule hands pytest the files sorted by path, which would put faults/ first.
FOLDER_ORDER = ("tests", "faults", "operations")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the folders in FOLDER_ORDER, each file's tests in their written order."""
    items.sort(key=lambda item: FOLDER_ORDER.index(item.path.parent.name))


class Site:
    """The deployed site as seen from inside one host (curl through Apache) and from the controller."""

    def __init__(self, host):
        self.host = host
        self.variables = host.ansible.get_variables()

    @property
    def published_https_port(self) -> int:
        """Apache's 443 as published on the controller's 127.0.0.1 (molecule.yml host_vars)."""
        return int(self.variables["molecule_https_port"])

    def manage(self, *args: str, env: dict[str, str] | None = None):
        """manage.py through the wrapper operators use (as the app user, with its environment file)."""
        assignments = [f"{name}={value}" for name, value in (env or {}).items()]
        return self.host.run(shlex.join(["env", *assignments, MANAGE, *args]))

    def curl(self, url: str, *options: str) -> tuple[int, dict[str, str], str]:
        """GET (or what the options say) through Apache inside the host: status, headers, body."""
        marker = "\n--curl-status:"
        command = [
            "curl",
            "--silent",
            "--show-error",
            "--insecure",
            "--include",
            *options,
            "--write-out",
            marker + "%{http_code}",
            url,
        ]
        result = self.host.run_expect([0], shlex.join(command))
        response, _, status = result.stdout.rpartition(marker)
        head, _, body = response.partition("\r\n\r\n")
        headers = {}
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status), headers, body


@pytest.fixture(scope="module")
def site(host) -> Site:
    return Site(host)


@pytest.fixture(scope="module")
def token(site: Site) -> str:
    """An API token of the demo user alice (load_demo is idempotent; drf_create_token returns her existing key).

    The demo users get COMMENTS_DEMO_PASSWORD when it is set: the browser tests that run after this scenario
    (scripts/molecule-and-browser.sh) sign in with it.
    """
    password = os.environ.get("COMMENTS_DEMO_PASSWORD") or secrets.token_urlsafe(12)
    loaded = site.manage("load_demo", env={"DEMO_PASSWORD": password})
    assert loaded.rc == 0, loaded.stderr
    created = site.manage("drf_create_token", "alice")
    assert created.rc == 0, created.stderr
    match = re.search(r"\b([0-9a-f]{40})\b", created.stdout)
    assert match, created.stdout
    return match.group(1)


@pytest.fixture(scope="module")
def graph_id(site: Site, token: str) -> int:
    """The id of a graph alice may see (the demo's TP53 network), found through the API as a client would."""
    status, _, body = site.curl("https://localhost/api/v1/graphs/", "--header", f"Authorization: Token {token}")
    assert status == 200, body
    graphs = json.loads(body)["results"]
    assert graphs, "load_demo made no graph visible to alice"
    return next((g["id"] for g in graphs if "TP53" in g["name"]), graphs[0]["id"])
