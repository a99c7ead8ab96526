"""Architecture facts of one setup: what the adapter touches on its base model, in numbers.

Every key is always present (``None`` where the base model is unknown), so rules can
test ``base_params is not None`` instead of guarding against missing keys. The
Architecture and ParamCount objects themselves travel under ``_architecture`` and
``_param_count`` for code (the memory estimator); reports leave ``_`` keys out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from lora_lint.arch.blocks import Block
from lora_lint.arch.counting import AdapterSpec, ParamCount, count_parameters
from lora_lint.arch.families import SEQ_CLS, UnsupportedArchitecture, architecture_for
from lora_lint.arch.model import EMBEDDING, Architecture
from lora_lint.near_miss import closest

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from lora_lint.lora_setup import LoraSetup

SWEEP_RANKS = tuple(2**i for i in range(11))  # 1 .. 1024
"""Ranks listed in ``percent_by_rank``, for budget rules and ``lora-lint params``."""

TORCHTUNE_EXACT_FAMILIES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2"})
"""torchtune builds these with the same shapes as transformers (only names differ), so the
counts carry over; other torchtune models (Phi-3 splits the fused qkv projection) are not counted."""

_NEAR_MISS = 0.85
"""difflib ratio above which an unknown target is taken for a typo (``v_prj`` -> ``v_proj``, 0.91) rather than
a name from another family (``q_proj`` vs MPT's ``up_proj``, 0.77)."""

FACT_KEYS = (
    "base_model",
    "architecture",
    "architecture_skipped",
    "architecture_skip_fix",
    "base_params",
    "trainable_params",
    "total_params",
    "trainable_percent",
    "lora_params",
    "modules_to_save_params",
    "modules_to_save_copies",
    "naive_4bit_params",
    "naive_4bit_percent",
    "adapted_layers",
    "target_matches",
    "unmatched_targets",
    "lora_module_names",
    "no_target_matched",
    "peft_errors",
    "hidden_size",
    "max_rank",
    "oversized_rank_layers",
    "percent_by_rank",
    "classifier_head_trainable",
    "tied_embeddings",
    "tied_embedding_adapted",
    "unused_pattern_keys",
    "modules_to_save_heavy",
)


def architecture_facts(setup: LoraSetup, *, cwd: str | os.PathLike[str], user_models: Mapping[str, dict]) -> dict[str, Any]:
    """Facts about the base model and the adapter's footprint on it."""
    facts: dict[str, Any] = dict.fromkeys(FACT_KEYS)
    facts.update(_architecture=None, _param_count=None)
    name = base_model_name(setup)
    facts["base_model"] = name
    if name is None:
        return facts
    from lora_lint.arch.resolve import ModelConfigError, resolve_base_model

    try:
        resolution = resolve_base_model(name, config_dir=os.path.dirname(setup.path), cwd=cwd, user_models=user_models)
    except ModelConfigError as exc:
        facts["architecture_skipped"] = f"the config of {name} cannot be used ({exc})"
        facts["architecture_skip_fix"] = DESCRIBE_MODEL
        return facts
    if resolution is None:
        facts["architecture_skipped"] = f"unknown base model {name}"
        facts["architecture_skip_fix"] = DESCRIBE_MODEL
        return facts
    spec = AdapterSpec.from_setup(setup)
    task = spec.task_type or (SEQ_CLS if spec.num_labels else None)
    try:
        arch_key = repr((resolution.config, task, spec.num_labels))
        arch = _memo(arch_key, lambda: architecture_for(resolution.config, task, spec.num_labels))
    except UnsupportedArchitecture as exc:
        facts["architecture_skipped"] = f"{name}: {exc}"
        facts["architecture_skip_fix"] = "the architecture model does not describe this family yet"
        return facts
    facts["architecture"] = {
        "family": arch.family,
        "resolved_via": resolution.source,
        "model_id": resolution.model_id,
        "note": arch.note,
    }
    facts["hidden_size"] = arch.hidden_size
    facts["tied_embeddings"] = arch.tied_embeddings
    facts["base_params"] = arch.total_params
    facts["_architecture"] = arch
    if setup.format == "torchtune" and arch.family not in TORCHTUNE_EXACT_FAMILIES:
        facts["architecture_skipped"] = (
            f"torchtune builds {arch.family} with other shapes than transformers; adapter counts are not computed"
        )
        facts["architecture_skip_fix"] = "the torchtune layout of this family is not modelled yet"
        return facts
    if setup.extras.get("loads_multimodal") and _text_model_only(arch):
        facts["architecture_skipped"] = (
            f"{name}: this config loads the image-text model, and the architecture model describes only its text "
            "model (what AutoModelForCausalLM builds); adapter counts are not computed"
        )
        facts["architecture_skip_fix"] = "the image-text class of this family is not modelled yet"
        return facts
    if not isinstance(spec.r, int) or spec.r <= 0:
        return facts  # an invalid rank has no adapter to count (LL101 reports it)
    unknown = [name for name in COUNTED_SETTINGS if name in setup.settings and not setup.settings[name].known]
    if unknown:
        facts["architecture_skipped"] = f"{', '.join(unknown)} cannot be known without running the code"
        facts["architecture_skip_fix"] = "write the adapter settings as literals to have them checked"
        return facts
    count = _memo(repr((arch_key, spec)), lambda: count_parameters(arch, spec))
    facts["_param_count"] = count
    facts.update(_count_facts(count))
    facts.update(_target_facts(setup, arch, spec, count))
    facts.update(_head_facts(arch, spec, count))
    facts["percent_by_rank"] = rank_sweep(arch, spec, known=count)
    return facts


def _text_model_only(arch: Architecture) -> bool:
    """A multimodal checkpoint (a vision config) described without any of its vision modules: its text model alone.

    Module names differ between the two classes (``model.layers`` vs ``model.language_model.layers``), so a
    count or a target check on the text model would be wrong for a run that loads the image-text class.
    """
    if "vision_config" not in arch.config:
        return False
    names = (
        [part.stack, *(m.name for template in part.templates for m in template)] if isinstance(part, Block) else [part.name]
        for part in arch.parts
    )  # a layer's number cannot join two halves of "vision": stack and relative names are read apart
    return not any("vision" in name or "visual" in name for group in names for name in group)


DESCRIBE_MODEL = "describe the model with a local directory holding its config.json, or an entry in [tool.lora-lint.models]"

COUNTED_SETTINGS = (
    "r", "target_modules", "target_linear", "exclude_modules", "layers_to_transform", "layers_pattern",
    "rank_pattern", "modules_to_save", "use_dora", "bias", "task_type", "num_labels",
)  # fmt: skip
"""Settings the parameter count depends on: when one is not a literal, a count would be a guess."""

_MEMO_LIMIT = 256
_MEMO: dict[str, Any] = {}
"""Architectures and parameter counts this process has built, by the ``repr`` of their inputs. The configs
of a folder often share a base model and adapter; building the model's hundreds of module records and
matching each name against the targets is the costly part of these facts. Both are pure functions of
their inputs, and the objects are only read."""


def _memo(key: str, build: Callable[[], Any]) -> Any:
    if key not in _MEMO:
        if len(_MEMO) >= _MEMO_LIMIT:  # a long-lived launcher process must not grow without bound
            _MEMO.clear()
        _MEMO[key] = build()
    return _MEMO[key]


def base_model_name(setup: LoraSetup) -> str | None:
    """The name to resolve the base model by, for the static facts and the runtime alike.

    A torchtune recipe names its weights by a checkpoint folder (often under /tmp), but its
    builder fixes the architecture: the folder wins when it exists here, else the builder's model.
    """
    name = setup.get("base_model")
    name = name.strip() if isinstance(name, str) and name.strip() else None
    builder = setup.extras.get("builder")
    if setup.format == "torchtune" and isinstance(builder, str):
        config_dir = os.path.dirname(setup.path)
        if name and any(os.path.isfile(os.path.join(folder, name, "config.json")) for folder in (config_dir, "")):
            return name
        from lora_lint.arch.resolve import torchtune_model_id

        return torchtune_model_id(builder) or name
    return name


def _count_facts(count: ParamCount) -> dict[str, Any]:
    naive_total = count.naive_4bit_numel
    return {
        "trainable_params": count.trainable_params,
        "total_params": count.total_params,
        "trainable_percent": count.trainable_percent,
        "lora_params": count.lora_params,
        "modules_to_save_params": count.modules_to_save_params,
        "modules_to_save_copies": [
            {"entry": entry, "params": params} for entry, params in count.modules_to_save.items()
        ],
        "naive_4bit_params": naive_total,
        "naive_4bit_percent": 100.0 * count.trainable_params / naive_total if naive_total else None,
        "adapted_layers": len(count.layers),
        "max_rank": count.layers.max_rank(),
        "oversized_rank_layers": [
            {
                "name": layer.name,
                "r": layer.r,
                "in_features": layer.in_features,
                "out_features": layer.out_features,
            }
            for layer in count.layers.where(lambda layer: layer.r > layer.in_features or layer.r > layer.out_features)
        ],
    }


def _target_facts(setup: LoraSetup, arch: Architecture, spec: AdapterSpec, count: ParamCount) -> dict[str, Any]:
    location = setup.location_of("target_modules") or setup.start
    line, column = (location.line, location.column) if location else (1, 1)
    valid = list(arch.leaf_names)
    unmatched = [
        {
            "key": "target_modules",
            "line": line,
            "column": column,
            "target": target,
            "suggestion": _near_miss(target, valid),
            "valid_names": valid,
        }
        for target in count.unmatched_targets
    ]
    no_match = not count.layers and not any(m.present for m in count.targets) and len(count.errors) == 1
    pattern_location = {kind: setup.location_of(kind) or setup.start for kind in ("rank_pattern", "alpha_pattern")}
    unused = [
        {
            "key": kind,
            "pattern": key,
            "line": pattern_location[kind].line if pattern_location[kind] else 1,
            "column": pattern_location[kind].column if pattern_location[kind] else 1,
        }
        for kind, keys in (
            ("rank_pattern", count.unused_rank_pattern),
            ("alpha_pattern", count.unused_alpha_pattern),
        )
        for key in keys
    ]
    return {
        "target_matches": [
            {
                "target": m.target,
                "present": m.present,
                "adapted": m.adapted,
                "shapes": [list(s) for s in m.shapes],
            }
            for m in count.targets
        ],
        "unmatched_targets": unmatched,
        "lora_module_names": valid,
        "no_target_matched": no_match,
        "peft_errors": [] if no_match else list(count.errors),
        "unused_pattern_keys": unused,
    }


def _near_miss(target: str, valid: list[str]) -> str | None:
    return closest(target, valid, cutoff=_NEAR_MISS)


def _head_facts(arch: Architecture, spec: AdapterSpec, count: ParamCount) -> dict[str, Any]:
    head = arch.classifier_head
    copied = {entry for entry, params in count.modules_to_save.items() if params}
    head_trainable = None
    if head is not None:
        in_head = count.layers.contains(head, below=True)
        head_trainable = in_head or spec.task_type == SEQ_CLS or any(head.endswith(entry) for entry in copied)
    tied_adapted = None
    if arch.tied_embeddings:
        tied_names = (arch.input_embedding, arch.output_layer)
        tied_adapted = any(name and count.layers.contains(name) for name in tied_names) or any(
            name and name.endswith(entry) for name in tied_names for entry in copied
        )
    heavy_copies = []
    if copied:  # the embedding names are looked up only when modules_to_save copied something
        heavy = {m.name for m in arch.modules if m.kind == EMBEDDING} | {arch.output_layer}
        heavy_copies = [
            {"entry": entry, "params": params}
            for entry, params in count.modules_to_save.items()
            if params and any(name and name.endswith(entry) for name in heavy)
        ]
    return {
        "classifier_head_trainable": head_trainable,
        "tied_embedding_adapted": tied_adapted,
        "modules_to_save_heavy": heavy_copies,
    }


def rank_sweep(
    arch: Architecture,
    spec: AdapterSpec,
    ranks: tuple[int, ...] = SWEEP_RANKS,
    known: ParamCount | None = None,
) -> list[dict[str, Any]]:
    """Trainable and total parameters for each rank, other settings as written.

    One count gives the whole sweep (counts are exactly linear in r); ``known``, the
    count at ``spec.r``, saves even that one.
    """
    count = known or count_parameters(arch, spec)
    rows = []
    for r in ranks:
        trainable, total = count.at_rank(r, spec.r)
        rows.append({"r": r, "trainable_params": trainable, "total_params": total, "percent": 100.0 * trainable / total if total else 0.0})
    return rows
