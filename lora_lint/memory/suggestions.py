"""Changes that bring a predicted peak under a memory limit, each re-estimated.

A message that says "out of memory" is only half useful; the other half is which
setting to change and what the peak becomes then. Every candidate change is applied to
the estimate's inputs and estimated again, so a suggestion states a number, not a hope.
Candidates that fit come first, largest saving first; lowering the LoRA rank comes
last because it changes what the adapter can learn rather than how it is trained.
"""

from __future__ import annotations

from lora_lint.record import Record, replace

from lora_lint.memory.estimate import estimate_for_shape
from lora_lint.memory.inputs import TrainingInputs, optimizer_named
from lora_lint.memory.shape import ModelShape

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

MIN_SEQUENCE_LEN = 256
"""Shorter sequences rarely hold one training example; the search stops there."""
SEQUENCE_STEP = 256
"""Suggested lengths are multiples of 256, the granularity recipes use."""


class Suggestion(Record):
    """One change (setting name -> new value) and the peak it leads to."""

    change: str
    settings: dict[str, Any]
    peak_memory_bytes: int

    def as_fact(self) -> dict[str, Any]:
        return {"change": self.change, "settings": self.settings, "peak_memory_bytes": self.peak_memory_bytes}


def suggest_changes(shape: ModelShape, training: TrainingInputs, limit_bytes: int, *, rank: int | None) -> list[Suggestion]:
    """Single changes that bring the peak to ``limit_bytes`` or below; if none does, the
    cheapest combination of them, built greedily. Empty when the peak already fits."""
    if estimate_for_shape(shape, training).peak_bytes <= limit_bytes:
        return []
    candidates = _training_changes(shape, training, limit_bytes)
    fitting = sorted((s for s in candidates if s.peak_memory_bytes <= limit_bytes), key=lambda s: s.peak_memory_bytes)
    rank_change = _rank_change(shape, training, limit_bytes, rank)
    if fitting or rank_change:
        return fitting + ([rank_change] if rank_change else [])
    combined = _combination(shape, training, limit_bytes)
    return [combined] if combined else []


def _training_changes(shape: ModelShape, t: TrainingInputs, limit: int) -> list[Suggestion]:
    """Each training-side change once; batch and length at the largest value that fits
    (the smallest tried when none does, for the combination)."""
    options: list[tuple[str, dict[str, Any]]] = []
    if not t.gradient_checkpointing:
        options.append(("gradient_checkpointing: true", {"gradient_checkpointing": True}))
    batch = _largest_fitting(shape, t, limit, "micro_batch_size", list(range(t.micro_batch_size - 1, 0, -1)))
    if batch is not None:
        options.append((f"micro_batch_size: {batch} (raise gradient_accumulation_steps to keep the effective batch)",
                        {"micro_batch_size": batch}))  # fmt: skip
    shorter = range((t.sequence_len - 1) // SEQUENCE_STEP * SEQUENCE_STEP, MIN_SEQUENCE_LEN - 1, -SEQUENCE_STEP)
    seq = _largest_fitting(shape, t, limit, "sequence_len", list(shorter))
    if seq is not None:
        options.append((f"sequence_len: {seq}", {"sequence_len": seq}))
    if not t.chunked_loss:
        options.append(("a chunked cross-entropy (Liger fused linear cross-entropy or Cut Cross-Entropy)",
                        {"chunked_loss": True}))  # fmt: skip
    if t.optimizer.state_bytes_per_param > 2.1:
        options.append(("optimizer: paged_adamw_8bit", {"optimizer": "paged_adamw_8bit"}))
    if t.quantization is None:
        options.append(("load_in_4bit: true (QLoRA, NF4 with double quantization)",
                        {"load_in_4bit": True, "bnb_4bit_use_double_quant": True}))  # fmt: skip
    return [Suggestion(change, settings, estimate_for_shape(shape, _apply(t, settings)).peak_bytes)
            for change, settings in options]  # fmt: skip


def _halvings(value: int, floor: int) -> list[int]:
    """``8 -> [4, 2, 1]``: smaller values to try, largest first."""
    values = []
    while value // 2 >= floor:
        value //= 2
        values.append(value)
    return values


def _largest_fitting(shape: ModelShape, t: TrainingInputs, limit: int, name: str, values: list[int]) -> int | None:
    for value in values:
        if estimate_for_shape(shape, t.with_changes(**{name: value})).peak_bytes <= limit:
            return value
    return values[-1] if values else None


def _rank_change(shape: ModelShape, t: TrainingInputs, limit: int, rank: int | None) -> Suggestion | None:
    """The largest halved rank that fits; trainable parameters and adapter widths scale with it."""
    if not rank or rank < 2:
        return None
    for smaller in _halvings(rank, 1):
        scaled = replace(
            shape,
            trainable_params=shape.trainable_params * smaller // rank,
            adapted_ranks_per_layer=shape.adapted_ranks_per_layer * smaller // rank,
        )
        peak = estimate_for_shape(scaled, t).peak_bytes
        if peak <= limit:
            return Suggestion(f"r: {smaller} (changes what the adapter can learn; try the others first)", {"r": smaller}, peak)
    return None


_PREFERENCE = ("gradient_checkpointing", "chunked_loss", "optimizer", "load_in_4bit", "micro_batch_size", "sequence_len")
"""Order in which changes are combined: cost-free switches before smaller batches and shorter sequences."""


def _combination(shape: ModelShape, t: TrainingInputs, limit: int) -> Suggestion | None:
    """Combine changes until the peak fits: the first fitting change in preference order, else the most
    effective switch (or, when none is left, the most effective batch or length cut), then look again.
    None when even all of them together do not fit."""
    applied: dict[str, Any] = {}
    changes: list[str] = []
    current = t
    while candidates := _training_changes(shape, current, limit):
        ranked = sorted(candidates, key=lambda s: _PREFERENCE.index(next(iter(s.settings))))
        fitting = [s for s in ranked if s.peak_memory_bytes <= limit]
        switches = [s for s in ranked if next(iter(s.settings)) not in ("micro_batch_size", "sequence_len")]
        chosen = fitting[0] if fitting else min(switches or ranked, key=lambda s: s.peak_memory_bytes)
        current = _apply(current, chosen.settings)
        applied.update(chosen.settings)
        changes.append(chosen.change)
        if fitting:
            return Suggestion(" and ".join(changes), applied, chosen.peak_memory_bytes)
    return None


def _apply(t: TrainingInputs, settings: dict[str, Any]) -> TrainingInputs:
    """Translate setting names back onto estimator inputs."""
    changes: dict[str, Any] = {}
    for name, value in settings.items():
        if name == "optimizer":
            changes["optimizer"] = optimizer_named(value)
        elif name == "load_in_4bit":
            changes["quantization"] = "nf4"
        elif name == "bnb_4bit_use_double_quant":
            changes["double_quant"] = value
        else:
            changes[name] = value
    return t.with_changes(**changes)
