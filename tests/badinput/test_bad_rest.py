"""Bad input to the REST API through Apache: each gets a clear 4xx JSON error, never a 5xx, and writes nothing.

One row per mistake a client can make (the answers are docs/protocol.md's). Every row checks:
- the status (a 429 `throttled` with Retry-After is also a clear answer: writes and logins are rate limited),
- a JSON body `{"detail", "code"}` with the expected code, whose detail names the field or parameter at fault,
- nothing was written: both graphs' `last_seq` and alice's numbers of graphs and groups are as before.
Bodies are sent as raw text: `\\u0000` and `\\ud800` below are JSON escapes, as a client would send them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

import pytest
from badstack import is_throttled, json_error

from support.api import MAX_RETRY_AFTER, Api

NESTED_70 = "[" * 70 + "]" * 70
OBJECTS_100 = '{"a":' * 100 + "1" + "}" * 100
LONG_BODY = "x" * 10_001
UPLOAD_LIMIT = 2 * 1024 * 1024 + 64 * 1024  # DATA_UPLOAD_MAX_MEMORY_SIZE
HUGE = 2**70
HUGE_ID = "99999999999999999999999"


def fill(text: str, ids: dict[str, int]) -> str:
    """Put the world's ids in for `{public}`, `{reply}`, ... (plain replacement: JSON braces stay as they are)."""
    for name, value in ids.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def j(value: object) -> str:
    """JSON as a client writes it (ASCII: NUL and lone surrogates travel as \\u escapes)."""
    return json.dumps(value)


@dataclass(frozen=True)
class Bad:
    """One bad request: what is sent, as whom, and the answer docs/protocol.md promises."""

    name: str
    method: str
    path: str  # {public}, {private}, {missing}, {comment}, {reply}, {group}, ... from the world fixture
    body: str | bytes | None = None
    user: str | None = "alice"  # None: a visitor without credentials
    status: int = 400
    code: str | None = "invalid"
    field: str | None = None  # the detail names it
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


COMMENTS = "/api/v1/graphs/{public}/comments/"
COMMENT = "/api/v1/comments/{comment}/"

CASES = [
    # --- text that cannot be stored: NUL and lone surrogates, in any string of the body ---
    Bad("nul-in-comment-body", "POST", COMMENTS, '{"body": "a\\u0000b"}', field="body"),
    Bad("lone-surrogate-in-comment-body", "POST", COMMENTS, '{"body": "\\ud800"}', field="body"),
    Bad("nul-in-unknown-field", "POST", COMMENTS, '{"body": "fine", "colour": "\\u0000"}', field="colour"),
    Bad("nul-in-node-anchor", "POST", COMMENTS, '{"body": "x", "nodes": ["TP53\\u0000"]}', field="nodes"),
    Bad("lone-surrogate-in-edge-anchor", "POST", COMMENTS, '{"body": "x", "edges": ["\\udfff"]}', field="edges"),
    Bad("nul-in-edited-body", "PATCH", COMMENT, '{"body": "a\\u0000"}', field="body"),
    Bad("lone-surrogate-beside-edit", "PATCH", COMMENT, '{"body": "fine", "resolved": "\\ud800"}', field="resolved"),
    Bad("nul-in-reaction", "POST", COMMENT + "reactions/", '{"reaction": "+1\\u0000"}', field="reaction"),
    Bad(
        "nul-in-graph-name",
        "POST",
        "/api/v1/graphs/",
        '{"name": "a\\u0000", "elements": {"nodes": [{"data": {"id": "A"}}], "edges": []}}',
        field="name",
    ),
    Bad(
        "lone-surrogate-in-node-id",
        "POST",
        "/api/v1/graphs/",
        '{"name": "s", "elements": {"nodes": [{"data": {"id": "\\ud800"}}], "edges": []}}',
        field="elements",
    ),
    Bad("nul-in-graph-rename", "PATCH", "/api/v1/graphs/{public}/", '{"name": "\\u0000"}', field="name"),
    Bad("nul-in-group-name", "POST", "/api/v1/groups/", '{"name": "lab\\u0000"}', field="name"),
    Bad(
        "nul-in-member-username",
        "POST",
        "/api/v1/groups/{group}/members/",
        '{"username": "bob\\u0000"}',
        field="username",
    ),
    # --- JSON that is not a JSON object, or too deep to parse safely ---
    Bad("nested-70-levels", "POST", COMMENTS, '{"body": ' + NESTED_70 + "}", code="parse_error"),
    Bad("objects-nested-100-levels", "POST", COMMENTS, OBJECTS_100, code="parse_error"),
    Bad("5000-open-brackets", "POST", COMMENTS, "[" * 5000, code="parse_error"),
    Bad("deep-elements", "POST", "/api/v1/graphs/", '{"name": "d", "elements": ' + NESTED_70 + "}", code="parse_error"),
    Bad("malformed-json", "POST", COMMENTS, '{"body": "x"', code="parse_error"),
    Bad("trailing-garbage", "POST", COMMENTS, '{"body": "x"} and more', code="parse_error"),
    Bad("json-array-body", "POST", COMMENTS, '["body"]', code="parse_error"),
    Bad("json-string-body", "POST", COMMENTS, '"hello"', code="parse_error"),
    Bad("json-null-body", "POST", COMMENTS, "null", code="parse_error"),
    Bad("nan-literal", "POST", COMMENTS, '{"body": "x", "parent": NaN}', code="parse_error"),
    Bad("5000-digit-integer", "POST", COMMENTS, '{"body": "x", "parent": ' + "7" * 5000 + "}", code="parse_error"),
    Bad("invalid-utf8", "POST", COMMENTS, b'{"body": "\xff\xfe"}', code="parse_error"),
    Bad("utf16-body", "POST", COMMENTS, '{"body": "x"}'.encode("utf-16"), code="parse_error"),
    # --- wrong types and values of known fields ---
    Bad("empty-body", "POST", COMMENTS, "", code=None),
    Bad("body-missing", "POST", COMMENTS, j({"nodes": ["TP53"]}), field="body"),
    Bad("body-number", "POST", COMMENTS, j({"body": 12}), field="body"),
    Bad("body-list", "POST", COMMENTS, j({"body": ["x"]}), field="body"),
    Bad("body-null", "POST", COMMENTS, j({"body": None}), field="body"),
    Bad("body-empty-string", "POST", COMMENTS, j({"body": ""}), field="body"),
    Bad("body-overlong", "POST", COMMENTS, j({"body": LONG_BODY}), field="body"),
    Bad("edited-body-overlong", "PATCH", COMMENT, j({"body": LONG_BODY}), field="body"),
    Bad("parent-huge-int", "POST", COMMENTS, j({"body": "x", "parent": HUGE}), field="parent"),
    Bad("parent-exponent-overflow", "POST", COMMENTS, '{"body": "x", "parent": 1e999}', field="parent"),
    Bad("parent-negative", "POST", COMMENTS, j({"body": "x", "parent": -1}), field="parent"),
    Bad("parent-float", "POST", COMMENTS, j({"body": "x", "parent": 1.5}), field="parent"),
    Bad("parent-string", "POST", COMMENTS, j({"body": "x", "parent": "abc"}), field="parent"),
    Bad("parent-in-private-graph", "POST", COMMENTS, '{"body": "x", "parent": {private_comment}}', field="parent"),
    Bad("reply-to-a-reply", "POST", COMMENTS, '{"body": "x", "parent": {reply}}', field="parent"),
    Bad("nodes-on-a-reply", "POST", COMMENTS, '{"body": "x", "parent": {comment}, "nodes": ["TP53"]}', code="invalid"),
    Bad("nodes-not-a-list", "POST", COMMENTS, j({"body": "x", "nodes": "TP53"}), field="nodes"),
    Bad("node-not-in-graph", "POST", COMMENTS, j({"body": "x", "nodes": ["NOPE"]}), field="nodes"),
    Bad("node-as-object", "POST", COMMENTS, j({"body": "x", "nodes": [{"id": "TP53"}]}), field="nodes"),
    Bad("edge-huge-int", "POST", COMMENTS, j({"body": "x", "edges": [HUGE]}), field="edges"),
    Bad("reaction-unknown", "POST", COMMENT + "reactions/", j({"reaction": "thumbsup"}), field="reaction"),
    Bad("reaction-as-list", "POST", COMMENT + "reactions/", j({"reaction": ["+1"]}), field="reaction"),
    Bad("graph-elements-string", "POST", "/api/v1/graphs/", j({"name": "g", "elements": "TP53"}), field="elements"),
    Bad(
        "graph-dangling-edge",
        "POST",
        "/api/v1/graphs/",
        j(
            {
                "name": "g",
                "elements": {
                    "nodes": [{"data": {"id": "A"}}],
                    "edges": [{"data": {"id": "e", "source": "A", "target": "Z"}}],
                },
            }
        ),
        field="elements",
    ),
    Bad(
        "graph-elements-changed", "PATCH", "/api/v1/graphs/{public}/", j({"elements": {"nodes": []}}), field="elements"
    ),
    Bad("graph-public-as-string", "PATCH", "/api/v1/graphs/{public}/", j({"public": "maybe"}), field="public"),
    Bad("share-group-string", "POST", "/api/v1/graphs/{public}/share/", j({"group": "abc"}), field="group"),
    Bad("share-group-huge-int", "POST", "/api/v1/graphs/{public}/share/", j({"group": HUGE}), field="group"),
    # --- bodies the API does not take at all ---
    Bad(
        "text-plain-content-type",
        "POST",
        COMMENTS,
        j({"body": "x"}),
        status=415,
        code="unsupported_media_type",
        content_type="text/plain",
    ),
    Bad(
        "form-encoded",
        "POST",
        COMMENTS,
        "body=x",
        status=415,
        code="unsupported_media_type",
        content_type="application/x-www-form-urlencoded",
    ),
    Bad(
        "no-content-type",
        "POST",
        COMMENTS,
        j({"body": "x"}),
        status=415,
        code="unsupported_media_type",
        content_type=None,
    ),
    Bad("body-over-upload-limit", "POST", COMMENTS, j({"body": "x" * UPLOAD_LIMIT}), status=413, code="too_large"),
    Bad("put-on-graph", "PUT", "/api/v1/graphs/{public}/", j({"name": "x"}), status=405, code="method_not_allowed"),
    # --- query parameters ---
    Bad("nul-in-node-filter", "GET", COMMENTS + "?node=%00", field="node"),
    Bad("nul-in-edge-filter", "GET", COMMENTS + "?edge=e1%00", field="edge"),
    Bad("nul-in-author-filter", "GET", COMMENTS + "?author=al%00", field="author"),
    Bad("nul-in-people-q", "GET", "/api/v1/graphs/{public}/people/?q=a%00", field="q"),
    Bad("parent-filter-not-a-number", "GET", COMMENTS + "?parent=abc", field="parent"),
    Bad("resolved-filter-maybe", "GET", COMMENTS + "?resolved=maybe", field="resolved"),
    Bad("after-seq-negative", "GET", "/api/v1/graphs/{public}/events/?after_seq=-1", field="after_seq"),
    Bad("after-seq-float", "GET", "/api/v1/graphs/{public}/events/?after_seq=1.5", field="after_seq"),
    Bad("after-seq-nul", "GET", "/api/v1/graphs/{public}/events/?after_seq=%00", field="after_seq"),
    Bad(
        "events-of-another-epoch",
        "GET",
        "/api/v1/graphs/{public}/events/?after_seq=0&epoch=nope",
        status=409,
        code="epoch_changed",
    ),
    Bad("unread-maybe", "GET", "/api/v1/notifications/?unread=maybe", field="unread"),
    Bad("page-not-a-number", "GET", COMMENTS + "?page=abc", status=404, code="not_found"),
    # --- ids in the path ---
    Bad("graph-id-huge", "GET", f"/api/v1/graphs/{HUGE_ID}/", status=404, code="not_found"),
    Bad("graph-id-negative", "GET", "/api/v1/graphs/-1/", status=404, code=None),
    Bad("graph-id-float", "GET", "/api/v1/graphs/1.5/comments/", status=404, code=None),
    Bad("comment-id-huge", "PATCH", f"/api/v1/comments/{HUGE_ID}/", j({"body": "x"}), status=404, code="not_found"),
    Bad("unknown-api-path", "GET", "/api/v1/nothing-here/", status=404, code=None),
    # --- who may see and change what: a private graph looks exactly like a missing one ---
    Bad("visitor-private-graph", "GET", "/api/v1/graphs/{private}/", user=None, status=401, code="not_authenticated"),
    Bad("visitor-missing-graph", "GET", "/api/v1/graphs/{missing}/", user=None, status=401, code="not_authenticated"),
    Bad("outsider-private-graph", "GET", "/api/v1/graphs/{private}/", user="carol", status=404, code="not_found"),
    Bad("outsider-missing-graph", "GET", "/api/v1/graphs/{missing}/", user="carol", status=404, code="not_found"),
    Bad(
        "outsider-comments-private-graph",
        "POST",
        "/api/v1/graphs/{private}/comments/",
        j({"body": "x"}),
        user="carol",
        status=404,
        code="not_found",
    ),
    Bad(
        "outsider-edits-comment",
        "PATCH",
        COMMENT,
        j({"body": "mine now"}),
        user="carol",
        status=403,
        code="permission_denied",
    ),
    Bad("visitor-posts-comment", "POST", COMMENTS, j({"body": "x"}), user=None, status=401, code="not_authenticated"),
    Bad(
        "visitor-reacts",
        "POST",
        COMMENT + "reactions/",
        j({"reaction": "+1"}),
        user=None,
        status=401,
        code="not_authenticated",
    ),
    Bad(
        "unknown-token",
        "GET",
        "/api/v1/me/",
        user=None,
        status=401,
        code="authentication_failed",
        headers=(("Authorization", "Token " + "0" * 40),),
    ),
    Bad(
        "token-with-spaces",
        "GET",
        "/api/v1/me/",
        user=None,
        status=401,
        code="authentication_failed",
        headers=(("Authorization", "Token a b"),),
    ),
]

# Comment writes are rate limited per user (30 a minute by default, bad ones counted too): the new comments of the
# table take turns among the three demo users, so that each row gets its own answer rather than a 429.
WRITERS = ("alice", "bob", "carol")
CASES = [
    replace(case, user=WRITERS[index % len(WRITERS)])
    if (case.method, case.path, case.user) == ("POST", COMMENTS, "alice")
    else case
    for index, case in enumerate(CASES)
]


def state(alice: Api, ids: dict[str, int], groups: bool) -> tuple:
    """What bad input must not change: both graphs' last_seq and alice's number of graphs (one call: the list
    carries last_seq), and her number of groups when the case is about groups."""
    listing = alice.ok("GET", "/api/v1/graphs/")
    seqs = {graph["id"]: graph["last_seq"] for graph in listing["results"]}
    public, private = (seqs.get(ids[name]) for name in ("public", "private"))
    if public is None or private is None:  # not on the first page: ask for each
        public, private = alice.last_seq(ids["public"]), alice.last_seq(ids["private"])
    return (public, private, listing["count"], alice.ok("GET", "/api/v1/groups/")["count"] if groups else None)


def test_cases_are_distinct() -> None:
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_request(case: Bad, world, alice: Api, record_property) -> None:
    groups = "/groups/" in case.path
    before = state(alice, world.ids, groups)
    api = world.api(case.user)
    body = fill(case.body, world.ids) if isinstance(case.body, str) else case.body

    def send():
        return api.call(
            case.method,
            fill(case.path, world.ids),
            data=body,
            content_type=case.content_type,
            headers=dict(case.headers),
        )

    try:
        response = send()
        wait = response.headers.get("Retry-After", "")
        if response.status_code == 429 and wait.isdigit() and int(wait) <= MAX_RETRY_AFTER:
            # Throttled (a clear answer, but not to this input): the window of a rate ends within a minute; wait for
            # it once, so that a run soon after another (or after the browser tests) still tests every row.
            time.sleep(int(wait) + 1)
            response = send()
    finally:
        api.close()
    after = state(alice, world.ids, groups)
    # The answer, in the JUnit report (build/junit/badinput.xml): what each bad input gets, for the record.
    record_property("answer", f"{response.status_code} {answer_code(response)}")
    problems = answer_problems(case, response)
    if after != before:
        problems.append(
            f"bad input changed the stored data: {before} -> {after} (last_seq public, private, graphs, groups)"
        )
    assert not problems, "; ".join(problems)


def answer_code(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"(not JSON: {response.headers.get('Content-Type')})"
    return str(body.get("code")) if isinstance(body, dict) else "(not an object)"


def answer_problems(case: Bad, response) -> list[str]:
    """How the answer differs from the documented one (nothing: as documented, or throttled)."""
    said = f"{response.status_code} {response.text[:300]}"
    if response.status_code >= 500:
        return [f"server error: {said}"]
    if is_throttled(response):
        return []
    if response.status_code != case.status:
        return [f"expected {case.status}, got {said}"]
    error = json_error(response)
    problems = []
    if case.code and error["code"] != case.code:
        problems.append(f"code {error['code']!r}, expected {case.code!r}: {error}")
    if case.field and case.field not in error["detail"]:
        problems.append(f"the detail does not name {case.field!r}: {error}")
    return problems
