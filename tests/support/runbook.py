"""The commands of docs/runbook.md, read from it, so that a scenario runs what the on-call operator reads.

A scenario that proves a procedure takes its commands from here rather than from a copy: when the runbook changes, the
test runs the new text, and a command that no longer works fails the test instead of an operator at 3 a.m.

The runbook's shell blocks (```sh fences) say where each command runs with a comment: a comment line names the hosts
of the lines under it ("# web host: ..."), a comment after a command names its own ("... # Daphne host"). Placeholders
the operator fills in are left as written (`<previous>`, `REDISCLI_AUTH=...`): a test fills them with `fill`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


@dataclass(frozen=True)
class Command:
    """One shell line of the runbook and where it runs: "web", "daphne", "data", "backup" or "" (every host
    it concerns)."""

    line: str
    where: str

    def fill(self, **values: str) -> str:
        """The line with its placeholders replaced: fill(previous=...) replaces `<previous>`, and
        fill(REDISCLI_AUTH=...) the `...` after `REDISCLI_AUTH=`. A placeholder left unfilled is an error."""
        line = self.line
        for name, value in values.items():
            line = line.replace(f"<{name}>", value).replace(f"{name}=...", f"{name}={value}")
        left = re.findall(r"<[a-z_ ]+>|\b[A-Z_]+=\.\.\.", line)
        if left:
            raise ValueError(f"placeholders left unfilled in {line!r}: {left}")
        return line


# The runbook's words for the hosts of each inventory group (its table "What runs where").
_HOSTS = (
    ("web host", "web"),
    ("daphne host", "daphne"),
    ("data host", "data"),
    ("db host", "data"),
    ("backup host", "backup"),
)


def _where(comment: str) -> str:
    comment = comment.lower()
    return next((group for words, group in _HOSTS if words in comment), "")


def section(title: str) -> str:
    """The text of the section `## title` (up to the next `## `), or an error naming the sections there are."""
    text = RUNBOOK.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    for part in parts[1:]:
        heading, _, body = part.partition("\n")
        if heading.strip() == title:
            return body
    titles = [part.partition("\n")[0].strip() for part in parts[1:]]
    raise KeyError(f"docs/runbook.md has no section {title!r}; it has {titles}")


def commands(title: str, block: int = 0) -> list[Command]:
    """The commands of the `block`-th shell block of a section, each with where it runs."""
    blocks = re.findall(r"^```sh\n(.*?)^```", section(title), flags=re.MULTILINE | re.DOTALL)
    if block >= len(blocks):
        raise IndexError(f"docs/runbook.md, {title!r}: {len(blocks)} shell blocks, no block {block}")
    found: list[Command] = []
    heading = ""
    for raw in blocks[block].splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            heading = _where(line)
            continue
        # A comment after the command: two spaces or more, then "#" (a "#" inside the command is not one).
        trailing = re.match(r"(.*?)\s{2,}#(.*)$", line)
        command, comment = trailing.groups() if trailing else (line, "")
        found.append(Command(command.strip(), _where(comment) or heading))
    return found


def command(title: str, starting: str, block: int = 0) -> Command:
    """The one command of a section's block that starts with `starting`."""
    matches = [c for c in commands(title, block) if c.line.startswith(starting)]
    if len(matches) != 1:
        raise LookupError(f"docs/runbook.md, {title!r}: {len(matches)} commands start with {starting!r}")
    return matches[0]
