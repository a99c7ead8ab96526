"""The live guard: the rollback plan inside real training runs.

``LoraGuardCallback`` (transformers ``Trainer``, TRL, LLaMA-Factory), ``LoraGuardLightningCallback``
(Lightning), ``LoraGuardPlugin`` (axolotl) and ``Guard`` (a plain PyTorch loop) share one
decision core, :mod:`lora_lint.guard.core`. Each integration imports its framework only
when it is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Guard": "lora_lint.guard.core",
    "Decision": "lora_lint.guard.decision",
    "LoraGuardCallback": "lora_lint.guard.hf_trainer",
    "LoraGuardLightningCallback": "lora_lint.guard.lightning_callback",
    "LoraGuardPlugin": "lora_lint.guard.axolotl_plugin",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lora_lint.guard' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
