"""Changes that bring a predicted peak under a memory limit, each re-estimated.

A message that says "out of memory" is only half useful; the other half is which
setting to change and what the peak becomes then. Every candidate change is applied to
the estimate's inputs and estimated again, so a suggestion states a number, not a hope.
Candidates that fit come first, largest saving first; lowering the LoRA rank comes
last because it changes what the adapter can learn rather than how it is trained.

A suggestion is worded in the config's own vocabulary (``batch_size`` in torchtune,
``cutoff_len`` in LLaMA-Factory); its ``settings`` keep the normalized names.
"""

from __future__ import annotations

from lora_lint.record import Record, replace

from lora_lint.memory.estimate import estimate_for_shape
from lora_lint.memory.inputs import TrainingInputs, optimizer_named
from lora_lint.memory.shape import ModelShape

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.lora_setup import LoraSetup

MIN_SEQUENCE_LEN = 256
"""Shorter sequences rarely hold one training example; the search stops there."""
SEQUENCE_STEP = 256
"""Suggested lengths are multiples of 256, the granularity recipes use."""


class Wording(Record):
    """How one config writes each change: ``names`` of the numeric settings, ``switches`` as whole phrases."""

    names: dict[str, str]
    switches: dict[str, str]
    separator: str = ": "

    def value(self, name: str, value: Any) -> str:
        return f"{self.names.get(name, name)}{self.separator}{value}"


_TRAINER_WORDING = Wording(
    names={"micro_batch_size": "per_device_train_batch_size", "sequence_len": "max_length"},
    switches={
        "gradient_checkpointing": "gradient_checkpointing=True",
        "chunked_loss": "use_liger_kernel=True (Liger fused linear cross-entropy)",
        "optimizer": 'optim="paged_adamw_8bit"',
        "load_in_4bit": 'BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)',
    },
    separator="=",
)
"""PEFT driven from a script: Hugging Face ``TrainingArguments`` / TRL ``SFTConfig`` names."""

WORDINGS: dict[str, Wording] = {
    "lora-config": Wording(
        names={},
        switches={
            "gradient_checkpointing": "gradient_checkpointing: true",
            "chunked_loss": "a fused cross-entropy in the training script (Liger, Cut Cross-Entropy), then chunked_loss: true",
            "optimizer": "optimizer: paged_adamw_8bit",
            "load_in_4bit": "load_in_4bit: true (QLoRA, NF4 with double quantization)",
        },
    ),
    "axolotl": Wording(
        names={"r": "lora_r"},
        switches={
            "gradient_checkpointing": "gradient_checkpointing: true",
            "chunked_loss": "plugins: [axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin] (Cut Cross-Entropy)",
            "optimizer": "optimizer: paged_adamw_8bit",
            "load_in_4bit": "adapter: qlora with load_in_4bit: true (NF4 with double quantization)",
        },
    ),
    "torchtune": Wording(
        names={"micro_batch_size": "batch_size", "sequence_len": "tokenizer.max_seq_len", "r": "model.lora_rank"},
        switches={
            "gradient_checkpointing": "enable_activation_checkpointing: true",
            "chunked_loss": "loss._component_: torchtune.modules.loss.LinearCrossEntropyLoss",
            "optimizer": "optimizer._component_: bitsandbytes.optim.PagedAdamW8bit",
            "load_in_4bit": "model._component_: the qlora_ builder of the model (4-bit NF4 base)",
        },
    ),
    "llamafactory": Wording(
        names={"micro_batch_size": "per_device_train_batch_size", "sequence_len": "cutoff_len", "r": "lora_rank"},
        switches={
            "gradient_checkpointing": "disable_gradient_checkpointing: false",
            "chunked_loss": "enable_liger_kernel: true (Liger fused linear cross-entropy)",
            "optimizer": "optim: paged_adamw_8bit",
            "load_in_4bit": "quantization_bit: 4 (NF4 with double quantization)",
        },
    ),
    "llamafactory-v1": Wording(
        names={"sequence_len": "cutoff_len", "r": "peft_config.r"},
        switches={
            "gradient_checkpointing": "enable_activation_checkpointing: true",
            "chunked_loss": "a fused cross-entropy (Liger, Cut Cross-Entropy)",
            "optimizer": "an 8-bit paged optimizer (paged_adamw_8bit)",
            "load_in_4bit": "quant_config.quantization_bit: 4",
        },
    ),
    "peft": _TRAINER_WORDING,
    "python": _TRAINER_WORDING,
}
"""Each format's names for the settings a suggestion changes; lora-config's are the normalized names."""

_WRITTEN_NAMES = ("micro_batch_size", "sequence_len", "gradient_accumulation_steps", "r")
"""Numeric settings whose key, when the file writes it, names the setting in the suggestion."""


def wording_for(setup: LoraSetup) -> Wording:
    """The format's wording, with the keys the file itself wrote for numeric settings."""
    fmt = "llamafactory-v1" if setup.extras.get("config_version") == "v1" else setup.format
    wording = WORDINGS.get(fmt, WORDINGS["lora-config"])
    names = dict(wording.names)
    for name in _WRITTEN_NAMES:
        location = setup.location_of(name)
        if location is not None and location.key:
            names[name] = location.key
    switches = dict(wording.switches)
    builder = setup.extras.get("builder")
    if fmt == "torchtune" and isinstance(builder, str) and ".lora_" in builder:
        switches["load_in_4bit"] = f"model._component_: {builder.replace('.lora_', '.qlora_')}"
    return replace(wording, names=names, switches=switches)


class Suggestion(Record):
    """One change (setting name -> new value) and the peak it leads to."""

    change: str
    settings: dict[str, Any]
    peak_memory_bytes: int

    def as_fact(self) -> dict[str, Any]:
        return {"change": self.change, "settings": self.settings, "peak_memory_bytes": self.peak_memory_bytes}


def suggest_changes(
    shape: ModelShape, training: TrainingInputs, limit_bytes: int, *, rank: int | None, wording: Wording | None = None
) -> list[Suggestion]:
    """Single changes that bring the peak to ``limit_bytes`` or below; if none does, the
    cheapest combination of them, built greedily. Empty when the peak already fits.
    ``wording`` (see :func:`wording_for`) names the settings as the config does."""
    words = wording or WORDINGS["lora-config"]
    if estimate_for_shape(shape, training).peak_bytes <= limit_bytes:
        return []
    candidates = _training_changes(shape, training, limit_bytes, words)
    fitting = sorted((s for s in candidates if s.peak_memory_bytes <= limit_bytes), key=lambda s: s.peak_memory_bytes)
    rank_change = _rank_change(shape, training, limit_bytes, rank, words)
    if fitting or rank_change:
        return fitting + ([rank_change] if rank_change else [])
    combined = _combination(shape, training, limit_bytes, words)
    return [combined] if combined else []


def _training_changes(shape: ModelShape, t: TrainingInputs, limit: int, words: Wording) -> list[Suggestion]:
    """Each training-side change once; batch and length at the largest value that fits
    (the smallest tried when none does, for the combination)."""
    options: list[tuple[str, dict[str, Any]]] = []
    if not t.gradient_checkpointing:
        options.append((words.switches["gradient_checkpointing"], {"gradient_checkpointing": True}))
    batch = _largest_fitting(shape, t, limit, "micro_batch_size", list(range(t.micro_batch_size - 1, 0, -1)))
    if batch is not None:
        accumulation = words.names.get("gradient_accumulation_steps", "gradient_accumulation_steps")
        options.append((f"{words.value('micro_batch_size', batch)} (raise {accumulation} to keep the effective batch)",
                        {"micro_batch_size": batch}))  # fmt: skip
    shorter = range((t.sequence_len - 1) // SEQUENCE_STEP * SEQUENCE_STEP, MIN_SEQUENCE_LEN - 1, -SEQUENCE_STEP)
    seq = _largest_fitting(shape, t, limit, "sequence_len", list(shorter))
    if seq is not None:
        options.append((words.value("sequence_len", seq), {"sequence_len": seq}))
    if not t.chunked_loss:
        options.append((words.switches["chunked_loss"], {"chunked_loss": True}))
    if t.optimizer.state_bytes_per_param > 2.1:
        options.append((words.switches["optimizer"], {"optimizer": "paged_adamw_8bit"}))
    if t.quantization is None:
        options.append((words.switches["load_in_4bit"], {"load_in_4bit": True, "bnb_4bit_use_double_quant": True}))
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


def _rank_change(shape: ModelShape, t: TrainingInputs, limit: int, rank: int | None, words: Wording) -> Suggestion | None:
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
            change = f"{words.value('r', smaller)} (changes what the adapter can learn; try the others first)"
            return Suggestion(change, {"r": smaller}, peak)
    return None


_PREFERENCE = ("gradient_checkpointing", "chunked_loss", "optimizer", "load_in_4bit", "micro_batch_size", "sequence_len")
"""Order in which changes are combined: cost-free switches before smaller batches and shorter sequences."""


def _combination(shape: ModelShape, t: TrainingInputs, limit: int, words: Wording) -> Suggestion | None:
    """Combine changes until the peak fits: the first fitting change in preference order, else the most
    effective switch (or, when none is left, the most effective batch or length cut), then look again.
    None when even all of them together do not fit."""
    applied: dict[str, Any] = {}
    changes: list[str] = []
    current = t
    while candidates := _training_changes(shape, current, limit, words):
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
