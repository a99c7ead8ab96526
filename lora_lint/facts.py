"""Facts: everything derived from a setup, exact and opinion-free.

Rules read facts by name. Facts are plain JSON values (``lora-lint check --format json``
prints them); objects that only code needs (the architecture model) sit under keys
starting with ``_`` and are left out of reports.
"""

from __future__ import annotations

import math
import os

from lora_lint.lora_setup import ADAPTER_SETTINGS, TRAINING_SETTINGS, UNKNOWN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.lora_setup import LoraSetup
    from lora_lint.project import Project


_SETTINGS = ADAPTER_SETTINGS + TRAINING_SETTINGS


def compute_facts(setup: LoraSetup, project: Project, *, predict_memory: bool = True) -> dict[str, Any]:
    """All facts of one setup, in the project's context (its models, GPU, dataset size).

    ``predict_memory=False`` leaves the memory facts unknown: without a target GPU no rule can
    use them, so a run that does not report facts skips the estimator (~3 ms of start-up).
    """
    facts: dict[str, Any] = {"path": setup.path, "format": setup.format}
    for name in _SETTINGS:  # a tuple, not the set: reports keep one key order
        facts[name] = setup.get(name)
    facts["explicit"] = {name: setting.explicit for name, setting in setup.settings.items()}
    facts["unknown_values"] = sorted(name for name, s in setup.settings.items() if s.value is UNKNOWN)
    facts["extras"] = setup.extras
    facts.update(_scaling_facts(facts))
    facts["quantization"] = "4bit" if facts["load_in_4bit"] else "8bit" if facts["load_in_8bit"] else None
    if facts["dataset_examples"] is None:
        facts["dataset_examples"] = project.dataset_examples
    facts.update(_dataset_bound_facts(facts))
    facts["notes"] = [
        {"kind": note.kind, "line": note.location.line, "column": note.location.column, "key": note.location.key, **note.data}
        for note in setup.notes
    ]
    facts["unknown_keys"] = [note for note in facts["notes"] if note["kind"] == "unknown-key"]

    from lora_lint.adapter_facts import adapter_facts
    from lora_lint.arch.facts import architecture_facts

    facts.update(adapter_facts(setup, facts))
    facts.update(architecture_facts(setup, cwd=os.getcwd(), user_models=project.models))
    facts.update(saved_weights=None, saved_weights_mismatch=None)
    if setup.format == "peft":  # only a saved adapter has weights beside it
        from lora_lint.adapter_weights import saved_weights_facts

        facts.update(saved_weights_facts(setup, facts))
    if facts["trainable_params"] is None and facts["saved_weights"]:
        facts["trainable_params"] = facts["saved_weights"]["params"]  # exact from the saved shapes
    if not (predict_memory or project.gpu or project.usable_memory_gb):
        from lora_lint.memory import empty_facts

        facts.update(empty_facts())
        return facts
    from lora_lint.memory.facts import memory_facts

    near_oom = project.options.get("near-oom") or project.options.get("LL411") or {}
    facts.update(
        memory_facts(
            setup,
            facts,
            gpu=project.gpu,
            usable_bytes=_gib(project.usable_memory_gb),
            safety_margin=float(near_oom.get("margin", 0.1)),
        )
    )
    return facts


def _dataset_bound_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """``dataset_examples_max``: the most training examples the run can reach, exact count included.

    It equals ``dataset_examples`` when that is known and nothing caps it further; otherwise it is
    the bound that :func:`~lora_lint.readers.dataset_size.examples_bound` finds (``max_samples``,
    ``max_steps`` x batch, a sliced split), with ``dataset_examples_max_source`` saying which.
    """
    from lora_lint.readers.dataset_size import examples_bound

    bound = examples_bound(
        facts["datasets"],
        max_samples=facts["max_samples"],
        max_steps=facts["max_steps"],
        micro_batch=facts["micro_batch_size"],
        accumulation=facts["gradient_accumulation_steps"],
        packed=facts["sample_packing"] is not False and facts["sample_packing"] is not None,
    )
    exact = facts["dataset_examples"]
    if _is_number(exact) and (bound is None or exact <= bound[0]):
        return {"dataset_examples_max": exact, "dataset_examples_max_source": "the dataset size"}
    if bound is None:
        return {"dataset_examples_max": None, "dataset_examples_max_source": None}
    return {"dataset_examples_max": bound[0], "dataset_examples_max_source": bound[1]}


def _gib(gigabytes: float | None) -> int | None:
    return None if gigabytes is None else int(gigabytes * 1024**3)


def _scaling_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """alpha/r and the factor PEFT actually multiplies the update by (alpha/sqrt(r) under rsLoRA)."""
    r, alpha = facts["r"], facts["lora_alpha"]
    usable = _is_number(r) and _is_number(alpha) and r > 0
    alpha_over_r = alpha / r if usable else None
    scaling = None
    if usable:
        scaling = alpha / math.sqrt(r) if facts["use_rslora"] else alpha / r
    return {"alpha_over_r": alpha_over_r, "scaling": scaling}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def public_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts fit for a report: without the ``_`` keys that hold code-only objects."""
    return {key: value for key, value in facts.items() if not key.startswith("_")}
