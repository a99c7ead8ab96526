"""Memory facts: the predicted peak of one config and how it compares with the target GPU.

The peak is reported whenever the model is known; the comparison only when a GPU (or a
usable memory size) is given, because a linter cannot know where a config will run.
"""

from __future__ import annotations


from lora_lint.memory import empty_facts
from lora_lint.memory.estimate import MemoryEstimate, estimate_for_shape
from lora_lint.memory.inputs import TrainingInputs, why_memory_unchecked
from lora_lint.memory.shape import shape_from_architecture

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.lora_setup import LoraSetup
    from lora_lint.memory.suggestions import Suggestion

GIB = 1024**3
LARGEST_TERMS = 3


def memory_facts(
    setup: LoraSetup,
    arch_facts: dict[str, Any],
    *,
    gpu: str | None,
    usable_bytes: int | None,
    safety_margin: float,
) -> dict[str, Any]:
    """Facts about the predicted peak memory of ``setup`` on ``gpu`` (JSON values only).

    ``usable_bytes``, when given, replaces the catalog's memory for the GPU (or stands
    alone for a card the catalog does not know). ``safety_margin`` is the share of the
    GPU's memory a run should leave free; suggestions aim below it.
    """
    facts = empty_facts()
    target = _target(gpu, usable_bytes, facts)
    arch, param_count = arch_facts.get("_architecture"), arch_facts.get("_param_count")
    if arch is None or param_count is None:
        return facts
    shape = shape_from_architecture(arch, param_count)
    training = TrainingInputs.from_setup(setup)
    estimate = estimate_for_shape(shape, training)
    facts.update(_estimate_facts(estimate), memory_unchecked=why_memory_unchecked(setup, arch_facts.get("base_model")))
    if target is None or facts["memory_unchecked"]:
        return facts
    # imported here: only runs with a target GPU need it
    from lora_lint.memory.suggestions import suggest_changes, wording_for

    peak, limit = estimate.peak_bytes, target["memory_bytes"]
    budget = int(limit * (1 - safety_margin))
    rank = setup.get("r")
    suggestions = suggest_changes(
        shape, training, budget, rank=rank if isinstance(rank, int) else None, wording=wording_for(setup)
    )
    facts.update(
        memory_headroom_bytes=limit - peak,
        memory_fits=peak <= limit,
        memory_within_margin=peak <= budget,
        memory_suggestions=[s.as_fact() for s in suggestions],
        memory_suggestions_text=_suggestions_text(suggestions, needed=peak > budget),
    )
    return facts


def _target(gpu: str | None, usable_bytes: int | None, facts: dict[str, Any]) -> dict[str, Any] | None:
    """The GPU to compare against, recorded in ``facts``; None when there is none."""
    name, memory = gpu, usable_bytes
    if gpu:
        # imported here: only runs that name a GPU need the catalog
        from lora_lint.memory.gpus import UnknownGpuError, find_gpu

        try:
            found = find_gpu(gpu)
        except UnknownGpuError as error:
            if usable_bytes is None:
                facts["gpu_error"] = str(error)
        else:
            name, memory = found.name, usable_bytes or found.memory_bytes
    if memory is None:
        return None
    target = {"name": name or "GPU", "memory_bytes": memory}
    facts.update(gpu=target, gpu_memory_gib=memory / GIB)
    return target


def _estimate_facts(estimate: MemoryEstimate) -> dict[str, Any]:
    terms = {term.name: term for term in estimate.terms}
    largest = estimate.largest_terms(LARGEST_TERMS)
    return {
        "peak_memory_bytes": estimate.peak_bytes,
        "peak_memory_gib": estimate.peak_bytes / GIB,
        "memory_phase": estimate.phase,
        "memory_breakdown": estimate.breakdown(),
        "memory_assumed": list(estimate.training.assumed),
        "memory_convention": estimate.training.convention,
        "memory_largest_terms": largest,
        "memory_largest_terms_text": ", ".join(f"{name} {terms[name].bytes / GIB:.1f} GiB" for name in largest),
    }


def _suggestions_text(suggestions: list[Suggestion], *, needed: bool) -> str:
    if suggestions or not needed:
        return "; ".join(f"{s.change} -> {s.peak_memory_bytes / GIB:.1f} GiB" for s in suggestions)
    return "none of the settings lint can change is enough; use a larger GPU or shard the model"
