"""Checks every text from a client passes before it reaches a JSON parser, PostgreSQL or a JSON encoder.

- Nesting is bounded *before* parsing: Python's JSON parser recurses, so a body of 5,000 `[` raises RecursionError
  (a crash, not an answer), and a deep but parseable document would crash the encoders and PostgreSQL later.
- NUL characters: PostgreSQL refuses them in text and in jsonb ("A string literal cannot contain NUL").
- Lone surrogates (`"\\ud800"` is valid JSON, but no UTF-8 can hold it): the database driver and the encoders that
  write UTF-8 fail on them.
Each failure names the field, so the client gets a 400 (REST) or an `invalid` error frame (WebSocket) saying where.
"""

from __future__ import annotations

import json
import re

# A JSON string literal (with its escapes), matched in C by the regex engine: strings are removed before the
# brackets are counted, so that a "[" inside a comment's text is not nesting.
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class TooDeep(ValueError):
    """The document nests arrays and objects deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels.")
        self.limit = limit


def nesting_depth_exceeds(text: str, limit: int) -> bool:
    """True if arrays and objects in the JSON text nest deeper than `limit` (malformed text is left to the parser)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot nest deeper than the number of openers
    depth = 0
    for bracket in _BRACKET.findall(_STRING_LITERAL.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def loads(text: str | bytes, max_depth: int):
    """json.loads, refusing documents nested deeper than max_depth with TooDeep (a ValueError) before parsing."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    if nesting_depth_exceeds(text, max_depth):
        raise TooDeep(max_depth)
    return json.loads(text)


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored or sent (None if it can)."""
    if "\x00" in value:
        return "Contains a NUL character (\\u0000), which cannot be stored."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Contains a lone surrogate (such as \\ud800), which is not valid Unicode text."
    return None


def find_bad_text(data, path: str = "") -> tuple[str, str] | None:
    """The first (field path, problem) of a string or key in parsed JSON that text_problem refuses, else None.

    Paths read like the fields they name: `body`, `elements.nodes.3.data.id`. Call after `loads`, whose depth bound
    keeps this recursion shallow.
    """
    if isinstance(data, str):
        problem = text_problem(data)
        return (path or "non_field_errors", problem) if problem else None
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            problem = text_problem(key) if isinstance(key, str) else None
            if problem:
                return (path or "non_field_errors", f"A key {problem[0].lower()}{problem[1:]}")
            found = find_bad_text(value, where)
            if found:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = find_bad_text(value, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None
