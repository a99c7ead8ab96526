"""The known word a mistyped one most likely meant: one helper for keys, targets, settings and rule names."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def closest(word: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The entry of ``known`` most like ``word`` (difflib ratio of at least ``cutoff``), or None."""
    import difflib  # imported here: ~1 ms of start-up, only a mistake needs it

    matches = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return matches[0] if matches else None
