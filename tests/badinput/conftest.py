"""Fixtures of the bad-input suite: tokens of the demo users and a small world of graphs made for this run.

The stack is the one COMMENTS_BASE_URL names (default: the demo, https://127.0.0.1:8443;
scripts/molecule-and-browser.sh points it at the Molecule instance, https://127.0.0.1:18443). The demo users alice,
bob and carol come from `manage.py load_demo` (the Molecule verify step and `make demo` run it; if they are missing,
the `tokens` fixture runs it with COMMENTS_DEMO_PASSWORD); their tokens are read (or made, as `drf_create_token`
does) by manage.py inside the container COMMENTS_CONTAINER, as an operator would (see badstack.py).

Each run makes its own graphs as alice through the REST API and deletes them at the end, so that the suite neither
depends on nor disturbs the demo data or the browser tests:
- `public`: a public graph with a thread and a reply, where most bad input is sent;
- `private`: alice's, shared with nobody (carol is an outsider, visitors see nothing);
- `missing`: the id of a graph made and deleted again, so certainly no graph;
- `group`: a group of alice's (bad member names, bad shares).
The fuzz passes run as a user of their own, `badinput-fuzzer` (made once, kept: deleting a user is not what a test
should do to a deployment), which owns only what the `fuzzer` fixture makes and what the fuzz itself creates; its
random PATCH and DELETE calls can reach nothing of the demo's or the browser tests'. `badinput-crowd` opens the
sockets of the per-user limit.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from badstack import BASE_URL, CONTAINER, CROWD_USER, FUZZ_USER, client, loopback_problem, manage, tokens_for
from hypothesis.configuration import set_hypothesis_home_dir

from support.api import Api

# A small piece of the p53 network: real ids to anchor to, few enough to import quickly.
ELEMENTS = {
    "nodes": [{"data": {"id": node}} for node in ["TP53", "MDM2", "CDKN1A", "ATM"]],
    "edges": [
        {"data": {"id": "e1", "source": "MDM2", "target": "TP53"}},
        {"data": {"id": "e2", "source": "TP53", "target": "CDKN1A"}},
        {"data": {"id": "e3", "source": "ATM", "target": "TP53"}},
    ],
}
USERS = ("alice", "bob", "carol")
OWN_USERS = [FUZZ_USER, CROWD_USER]
# Hypothesis' caches (character tables, constants) under build/, not in the working tree.
set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / "build" / "hypothesis")


@dataclass
class World:
    """What the tests refer to by name: `{public}` in a case's path is `ids["public"]`."""

    tokens: dict[str, str]
    ids: dict[str, int] = field(default_factory=dict)

    def api(self, user: str | None) -> Api:
        return client(self.tokens[user] if user else None)


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """Tokens of the demo users; the run stops at once, with the reason, when the stack is not usable."""
    problem = loopback_problem()
    if problem:
        pytest.exit(problem, returncode=2)
    try:
        health = requests.get(f"{BASE_URL}/healthz", verify=False, timeout=10)  # noqa: S501 - self-signed on purpose
        if health.status_code != 200:
            problem = f"/healthz answered {health.status_code}: {health.text[:300]}"
    except requests.RequestException as error:
        problem = f"no answer ({error})"
    if problem:
        pytest.fail(f"The stack at {BASE_URL} is not usable: {problem}. Set COMMENTS_BASE_URL or deploy it first.")
    try:
        try:
            return tokens_for([*USERS, *OWN_USERS], make=OWN_USERS)
        except RuntimeError:
            # A stack without the demo data yet: load it (it never changes an existing user's password) and retry.
            password = os.environ.get("COMMENTS_DEMO_PASSWORD") or secrets.token_urlsafe(12)
            manage("load_demo", env={"DEMO_PASSWORD": password})
            return tokens_for([*USERS, *OWN_USERS], make=OWN_USERS)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(
            f"No token from container {CONTAINER} (COMMENTS_CONTAINER; the demo users come from load_demo): {error}"
        )


@pytest.fixture(scope="session")
def world(tokens: dict[str, str]) -> Iterator[World]:
    """The run's graphs and group, made as alice and removed afterwards."""
    world = World(tokens)
    alice = world.api("alice")
    suffix = uuid.uuid4().hex[:8]
    made: list[str] = []
    try:
        for name, public in (("public", True), ("private", False), ("missing", False)):
            graph = alice.ok(
                "POST",
                "/api/v1/graphs/",
                {"name": f"badinput {name} {suffix}", "public": public, "elements": ELEMENTS},
            )
            world.ids[name] = graph["id"]
            made.append(f"/api/v1/graphs/{graph['id']}/")
        alice.ok("DELETE", made.pop())  # `missing` is now an id no graph has
        thread = alice.ok(
            "POST", f"/api/v1/graphs/{world.ids['public']}/comments/", {"body": "A thread", "nodes": ["TP53"]}
        )
        world.ids["comment"] = thread["id"]
        reply = world.api("bob").ok(
            "POST", f"/api/v1/graphs/{world.ids['public']}/comments/", {"body": "A reply", "parent": thread["id"]}
        )
        world.ids["reply"] = reply["id"]
        private_thread = alice.ok("POST", f"/api/v1/graphs/{world.ids['private']}/comments/", {"body": "Private"})
        world.ids["private_comment"] = private_thread["id"]
        group = alice.ok("POST", "/api/v1/groups/", {"name": f"badinput {suffix}"})
        world.ids["group"] = group["id"]
        made.append(f"/api/v1/groups/{group['id']}/")
        yield world
    finally:
        for path in made:
            alice.call("DELETE", path)
        alice.close()


@pytest.fixture(scope="session")
def alice(world: World) -> Iterator[Api]:
    api = world.api("alice")
    yield api
    api.close()


@dataclass
class Fuzzer:
    """The REST fuzz's own user and objects: calls on these ids reach real code, not just 404s."""

    token: str
    user_id: int
    graph: int
    comment: int
    group: int


@pytest.fixture(scope="session")
def fuzzer(tokens: dict[str, str]) -> Iterator[Fuzzer]:
    token = tokens[FUZZ_USER]
    api = client(token)
    made: list[str] = []
    try:
        me = api.ok("GET", "/api/v1/me/")
        graph = api.ok(
            "POST",
            "/api/v1/graphs/",
            {"name": f"badinput fuzz {uuid.uuid4().hex[:8]}", "public": True, "elements": ELEMENTS},
        )
        made.append(f"/api/v1/graphs/{graph['id']}/")
        comment = api.ok("POST", f"/api/v1/graphs/{graph['id']}/comments/", {"body": "Fuzz me", "nodes": ["TP53"]})
        group = api.ok("POST", "/api/v1/groups/", {"name": f"badinput fuzz {uuid.uuid4().hex[:8]}"})
        made.append(f"/api/v1/groups/{group['id']}/")
        yield Fuzzer(token, me["id"], graph["id"], comment["id"], group["id"])
    finally:
        # Whatever the fuzz made or left: its graphs (with their comments and events) and groups.
        for kind in ("graphs", "groups"):
            made += [f"/api/v1/{kind}/{item['id']}/" for item in owned(api, kind)]
        for path in dict.fromkeys(made):
            api.call("DELETE", path)
        api.close()


def owned(api: Api, kind: str, pages: int = 20) -> list[dict]:
    """The fuzz user's own graphs or groups, from the first pages of the list (a bounded walk)."""
    found = []
    for page in range(1, pages + 1):
        listing = api.call("GET", f"/api/v1/{kind}/?page={page}")
        if listing.status_code != 200:
            break
        body = listing.json()
        found += [item for item in body.get("results", []) if item.get("owner", {}).get("username") == FUZZ_USER]
        if not body.get("next"):
            break
    return found
