"""Inline suppressions: ``# lora-lint: disable=CODE[,CODE] -- reason``.

A comment at the end of a line silences findings on that line; a comment on a line
of its own silences the next line; ``disable-file=`` silences the whole file.
Suppressions that silence nothing are reported, so stale ones do not pile up.
"""

from __future__ import annotations

import re

_DIRECTIVE = r"#\s*lora-lint:\s*(disable|disable-file)=([\w\-, ]+?)\s*(?:--\s*(.*))?$"
"""Compiled by ``re`` (and cached there) on first use: most files have no directive, and compiling costs ~1 M instructions."""


class Suppression:
    """One directive: which codes or names it silences, on which line (None: whole file)."""

    __slots__ = ("line", "column", "target_line", "codes", "reason", "used")

    def __init__(self, line: int, column: int, target_line: int | None, codes: list[str], reason: str | None) -> None:
        self.line = line
        self.column = column
        self.target_line = target_line
        self.codes = codes
        self.reason = reason
        self.used: set[str] = set()

    def silences(self, line: int, code: str, name: str) -> str | None:
        """The listed code that silences a finding at ``line``, or None."""
        if self.target_line is not None and self.target_line != line:
            return None
        for listed in self.codes:
            if listed in (code, name, "all"):
                return listed
        return None


def find_suppressions(text: str) -> list[Suppression]:
    """Directives in ``#`` comments of YAML or Python text (JSON has no comments)."""
    if "lora-lint:" not in text:
        return []
    found = []
    lines = text.splitlines()
    for index, content in enumerate(lines):
        match = re.search(_DIRECTIVE, content)
        if match is None:
            continue
        kind, codes, reason = match.groups()
        line = index + 1
        own_line = content[: match.start()].strip() == ""
        target: int | None = None
        if kind == "disable":
            target = _next_content_line(lines, index) if own_line else line
        parsed = [code.strip() for code in codes.split(",") if code.strip()]
        found.append(Suppression(line, match.start() + 1, target, parsed, reason))
    return found


def _next_content_line(lines: list[str], index: int) -> int:
    for later in range(index + 1, len(lines)):
        stripped = lines[later].strip()
        if stripped and not stripped.startswith("#"):
            return later + 1
    return index + 1
