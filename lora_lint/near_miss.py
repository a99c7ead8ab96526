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
        matches = difflib.get_close_matches(word, _near_in_length(word, candidates, cutoff), n=1, cutoff=cutoff)
        _MEMO[key] = matches[0] if matches else None
    return _MEMO[key]


def _near_in_length(word: str, candidates: Iterable[str], cutoff: float) -> list[str]:
    """The candidates whose length alone does not rule them out: difflib's own first test, done in one pass.

    A ratio is at most ``2 * min(len) / (len + len)`` (difflib's ``real_quick_ratio``), so a much
    shorter or longer key can never reach ``cutoff``; dropping it first leaves the answer unchanged.
    """
    size = len(word)
    fits: dict[int, bool] = {}
    kept = []
    for candidate in candidates:
        length = len(candidate)
        ok = fits.get(length)
        if ok is None:
            ok = fits[length] = size + length == 0 or 2.0 * min(size, length) / (size + length) >= cutoff
        if ok:
            kept.append(candidate)
    return kept
