"""Near-miss suggestions: the same answer as difflib, found faster."""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from lora_lint import near_miss

words = st.text(alphabet="abcde_", max_size=14)


@settings(max_examples=300, deadline=None)
@given(word=words, candidates=st.lists(words, max_size=40), cutoff=st.sampled_from([0.0, 0.6, 0.75, 0.8, 1.0]))
def test_length_filter_never_changes_difflibs_answer(word: str, candidates: list[str], cutoff: float) -> None:
    kept = near_miss._near_in_length(word, candidates, cutoff)
    assert difflib.get_close_matches(word, kept, n=1, cutoff=cutoff) == difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)


def test_closest_suggests_the_misspelled_key() -> None:
    known = frozenset({"lora_alpha", "lora_dropout", "lora_r", "learning_rate", "micro_batch_size"})
    assert near_miss.closest("lora_alhpa", known, cutoff=0.8) == "lora_alpha"
    assert near_miss.closest("completely_different", known, cutoff=0.8) is None
