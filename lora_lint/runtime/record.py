"""What a smoke run recorded: the raw material of every detector.

Plain Python values only, so detectors are pure functions that tests can feed with
hand-made curves, and the record serializes straight into the JSON report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunRecord:
    """Per-step measurements of one smoke run.

    ``losses[i]`` and ``grad_norms[i]`` belong to optimizer step ``i``; ``val_losses``
    holds ``(step, loss)`` pairs, measured before that step's update.
    """

    learning_rate: float
    vocab_size: int
    random_weights: bool  # the base model has random weights (no local checkpoint)
    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    update_ratios: list[float] = field(default_factory=list)  # largest |scale*B*A| / |W| over adapted layers
    base_loss: float | None = None  # first batch, adapter disabled, before training
    initial_loss: float | None = None  # first batch, adapter enabled, before training
    initial_output_change: float | None = None  # first batch: max |logits on - off| / max |logits off|
    grads_missing: list[str] = field(default_factory=list)  # trainable tensors without a grad after backward 1
    grads_zero: list[str] = field(default_factory=list)  # trainable tensors whose grad stayed exactly zero
    frozen_lora_b: list[str] = field(default_factory=list)  # lora_B tensors still all zero after the first steps
    watch_steps: int = 0  # how many steps the gradient watch covered

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
