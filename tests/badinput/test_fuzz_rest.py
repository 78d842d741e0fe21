"""Fuzz pass 1: schemathesis drives every operation of the app's own OpenAPI schema through Apache: no 5xx.

The schema is the one the stack serves (/api/v1/schema/?format=json); requests go to the same 127.0.0.1 URL only,
as the fuzz user with its token (conftest.py `fuzzer`). For each operation schemathesis generates valid and invalid
bodies, query and path parameters (its positive and negative modes); half the strategies point the path's ids at
the fuzz user's own graph, comment and group, so that the fuzz reaches real code rather than 404s. DELETE calls
keep their random ids, so that the fuzz never removes its own fixtures halfway, and they cannot reach anything of
others (only owners and authors delete). Each response goes through schemathesis' `not_a_server_error` check.

Schemathesis' pytest plugin (`schema.parametrize()`) is not used: the pinned schemathesis sets a node attribute that
the pinned pytest no longer has. Its strategies are driven with hypothesis directly instead, one operation at a time.

Bounds: MAX_EXAMPLES per operation and BUDGET_SECONDS for the whole pass, shared out among the operations so that
every one is fuzzed however slow the stack is (examples past an operation's share are not sent).
"""

from __future__ import annotations

import time
from collections import Counter

import schemathesis
from badstack import BASE_URL, HTTP_TIMEOUT, client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from support.api import Api

MAX_EXAMPLES = 50
BUDGET_SECONDS = 70.0
# Text that the app must refuse with a 400 (a NUL, lone surrogates, deep nesting, too many mentions), put by
# hypothesis into one string of a generated case (a query parameter or a field of the JSON body) now and then:
# schemathesis alone rarely makes them.
SPIKES = ["\x00", "TP53\x00", "\ud800", "x\udfffy", "[" * 100 + "]" * 100, "@carol " * 30]


def spike(case, value: str, where: int) -> None:
    """Replace the where-th string (modulo their number) of the case's query or JSON body with `value`."""
    leaves: list[tuple[dict | list, object]] = []

    def walk(container: dict | list) -> None:
        for key, item in list(container.items() if isinstance(container, dict) else enumerate(container)):
            if isinstance(item, str):
                leaves.append((container, key))
            elif isinstance(item, dict | list):
                walk(item)

    # A lone surrogate cannot be sent in a URL at all (the client fails to encode it): bodies only.
    if isinstance(case.query, dict) and value.encode("utf-8", "surrogatepass") == value.encode("utf-8", "ignore"):
        walk(case.query)
    if isinstance(case.body, dict | list):
        walk(case.body)
    if leaves:
        container, key = leaves[where % len(leaves)]
        container[key] = value


def load_schema(api: Api):
    """The served schema, fetched through the test's own session (no proxy, certificate not verified)."""
    loaded = api.call("GET", "/api/v1/schema/?format=json")
    assert loaded.status_code == 200, loaded.text[:300]
    config = SchemathesisConfig.from_dict({"base-url": BASE_URL, "tls-verify": False, "request-timeout": HTTP_TIMEOUT})
    return schemathesis.openapi.from_dict(loaded.json(), config=config)


def own_ids(operation, fuzzer) -> dict[str, int]:
    """The fuzz user's own objects for the ids in this operation's path (by what the path is about)."""
    path = operation.path
    ids = {}
    for parameter in operation.path_parameters:
        name = parameter.name
        if name == "group_id" or (name == "id" and path.startswith("/api/v1/groups/")):
            ids[name] = fuzzer.group
        elif name == "user_id":
            ids[name] = fuzzer.user_id
        elif name == "graph_id" or (name == "id" and path.startswith("/api/v1/graphs/")):
            ids[name] = fuzzer.graph
        elif name == "id" and path.startswith("/api/v1/comments/"):
            ids[name] = fuzzer.comment
    return ids


def strategies(operation, fuzzer) -> st.SearchStrategy:
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    chosen = [operation.as_strategy(mode) for mode in modes]
    ids = own_ids(operation, fuzzer)
    if ids and operation.method.upper() != "DELETE":
        chosen += [operation.as_strategy(mode, path_parameters=ids) for mode in modes]
    return st.one_of(chosen)


def test_no_server_error(fuzzer) -> None:
    api = client(fuzzer.token)
    schema = load_schema(api)
    auth = {"Authorization": f"Token {fuzzer.token}"}
    deadline = time.monotonic() + BUDGET_SECONDS
    statuses: Counter[int] = Counter()
    failures: dict[str, str] = {}
    not_reached: list[str] = []
    share = [deadline]  # when the current operation's share of the budget ends
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert operations, "the schema lists no operation"
    for index, operation in enumerate(operations):
        label = f"{operation.method.upper()} {operation.path}"
        now = time.monotonic()
        if now > deadline:
            not_reached.append(label)
            continue
        # An equal share of the time left for each operation still to come: a slow stack gets fewer examples
        # per operation, never a pass that stops before the last operations.
        share[0] = now + (deadline - now) / (len(operations) - index)

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing case is reported as sent
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=strategies(operation, fuzzer),
            spiked=st.one_of(st.none(), st.sampled_from(SPIKES)),
            where=st.integers(min_value=0, max_value=100),
        )
        def send(case, spiked: str | None, where: int) -> None:
            if time.monotonic() > share[0]:
                return
            if spiked is not None:
                spike(case, spiked, where)
            response = case.call(session=api.session, headers=auth, verify=False, timeout=HTTP_TIMEOUT)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])

        try:
            send()
        except (Exception, FailureGroup) as error:  # noqa: BLE001 - any failure of an operation is reported by label
            failures[label] = f"{type(error).__name__}: {str(error)[:1500]}"
    api.close()
    print(
        f"schemathesis: {sum(statuses.values())} requests over {len(operations)} operations: {sorted(statuses.items())}"
    )
    if not_reached:
        print(f"not reached within {BUDGET_SECONDS} s: {not_reached}")
    assert sum(statuses.values()) > 0, "the fuzz sent nothing"
    assert not failures, "\n\n".join(f"{label}:\n{failure}" for label, failure in failures.items())
