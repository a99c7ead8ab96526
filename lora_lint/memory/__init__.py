"""Peak GPU memory of LoRA/QLoRA training, predicted from the config alone (no torch).

``estimate`` holds the formulas, ``gpus`` the cards, ``facts`` what rules read,
``suggestions`` the changes that fit; ``measure`` (torch) checks the formulas on a real step.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def empty_facts() -> dict[str, Any]:
    """Every memory fact, unknown: what a run that predicts no memory reports (no estimator import)."""
    return {
        "peak_memory_bytes": None,
        "peak_memory_gib": None,
        "memory_phase": None,
        "memory_breakdown": {},
        "memory_assumed": [],
        "memory_convention": None,
        "memory_largest_terms": [],
        "memory_largest_terms_text": "",
        "gpu": None,
        "gpu_memory_gib": None,
        "gpu_error": None,
        "memory_headroom_bytes": None,
        "memory_unchecked": None,
        "memory_fits": None,
        "memory_within_margin": None,
        "memory_suggestions": [],
        "memory_suggestions_text": "",
    }


