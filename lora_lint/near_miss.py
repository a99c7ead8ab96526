"""The known word a mistyped one most likely meant: one helper for keys, targets, settings and rule names."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_MEMO_LIMIT = 1024
_MEMO: dict[tuple[str, float, frozenset[str] | tuple[str, ...]], str | None] = {}
"""Answers already found in this process. The same unknown key (``gptq_groupsize``) recurs across a folder of
configs, and each look-up compares it with every known key (~3 ms against axolotl's ~500)."""


def closest(word: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The entry of ``known`` most like ``word`` (difflib ratio of at least ``cutoff``), or None."""
    candidates = known if isinstance(known, frozenset) else tuple(known)
    key = (word, cutoff, candidates)
    if key not in _MEMO:
        import difflib  # imported here: ~1 ms of start-up, only a mistake needs it

        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
        _MEMO[key] = matches[0] if matches else None
    return _MEMO[key]
