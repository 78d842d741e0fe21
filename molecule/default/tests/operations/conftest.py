"""What the operations checks share: the accounts they use and where they reach the host."""

# Testinfra checks are plain pytest asserts.
# ruff: noqa: S101

from __future__ import annotations

import json
import shlex

import pytest

from support.live_client import accounts_script

MANAGE = "/usr/local/bin/comments-manage"
# Writers: each stays under the per-user comment rate (30/min by default): the restore's writes use writer-1..3,
# the rotation's writer-4..7.
USERS = [f"viewer-{i}" for i in range(4)] + [f"writer-{i}" for i in range(8)]

# The accounts the clients use (idempotent), printed with their API tokens as JSON.
ACCOUNTS = accounts_script(USERS)


@pytest.fixture(scope="module")
def base_url(host) -> str:
    return f"https://127.0.0.1:{int(host.ansible.get_variables()['molecule_https_port'])}"


@pytest.fixture(scope="module")
def tokens(host) -> dict[str, str]:
    made = host.run(shlex.join([MANAGE, "shell", "-c", ACCOUNTS]))
    assert made.rc == 0, made.stderr
    return json.loads(made.stdout.strip().splitlines()[-1])
