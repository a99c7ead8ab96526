"""The reference adapter: the config's adapter with alpha = 2r, the yardstick for "learns too slowly".

An absolute bar cannot tell a slow adapter from a slow model (a narrow model, a hard task).
Training the same model on the same batches with the same seed and learning rate, with only
the update scale set to the common alpha = 2r, isolates the one knob a LoRA config gets
wrong most: the scale lora_alpha / r. It is the same PEFT model with its scaling swapped,
so no second model is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REFERENCE_ALPHA_PER_RANK = 2.0


def _lora_layers(model: Any) -> list[Any]:
    return [m for m in model.modules() if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling]


def reference_scaling(layer: Any) -> float:
    """alpha / r (or alpha / sqrt(r) under rsLoRA) with alpha = 2r, for this layer's rank."""
    rank = layer.r["default"]
    alpha = REFERENCE_ALPHA_PER_RANK * rank
    return alpha / math.sqrt(rank) if layer.use_rslora.get("default", False) else alpha / rank


def differs_from_reference(model: Any) -> bool:
    """Whether any adapted layer's scale differs from the reference's (else the run is its own reference)."""
    return any(not math.isclose(layer.scaling["default"], reference_scaling(layer)) for layer in _lora_layers(model))


@contextmanager
def reference_adapter(model: Any) -> Iterator[None]:
    """Swap every adapted layer's scale to the reference's for the duration of the block."""
    layers = _lora_layers(model)
    saved = [layer.scaling["default"] for layer in layers]
    try:
        for layer in layers:
            layer.scaling["default"] = reference_scaling(layer)
        yield
    finally:
        for layer, scale in zip(layers, saved, strict=True):
            layer.scaling["default"] = scale
