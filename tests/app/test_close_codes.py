"""The close codes (live/close_codes.py): one list, the documented one, and plain ints on the wire."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import metrics
from live.close_codes import CloseCode
from wsclient import accepted, ws

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_every_close_code_is_an_application_code():
    # Daphne (autobahn) refuses an application's close codes other than 1000 and 3000-4999.
    assert all(4000 <= code <= 4999 for code in CloseCode)


def test_the_protocol_documents_exactly_these_codes():
    table = re.findall(r"^\| (\d{4}) \|", PROTOCOL.read_text(), flags=re.MULTILINE)
    assert sorted(int(code) for code in table) == sorted(CloseCode)


def test_the_metrics_know_every_close_code_and_the_standard_ones():
    assert frozenset(CloseCode) | {1000, 1001, 1005, 1006, 1011, 1012} == metrics.KNOWN_CLOSE_CODES
    assert [metrics.close_code_label(code) for code in CloseCode] == [str(int(code)) for code in CloseCode]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("presence_settled")
@pytest.mark.parametrize("path", ["/ws/nothing-here/", "/ws/graphs/999999/"])
async def test_a_close_code_reaches_the_server_as_a_plain_int(path):
    # autobahn refuses a close code whose type is not exactly int: an IntEnum member would fail the close.
    async with ws(path) as client:
        await accepted(client)
        message = await client.output()
    assert message["type"] == "websocket.close"
    assert type(message["code"]) is int
    assert message["code"] in (CloseCode.NOT_FOUND, CloseCode.NOT_AUTHENTICATED)
