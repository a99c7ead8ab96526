"""Check the built PEFT model against the architecture model's expectations.

The expectations come from :mod:`lora_lint.arch` (pure Python, the same code behind
the static ``trainable_params`` fact), so this is an independent cross-check of PEFT
and of the static count, not PEFT compared with itself.

When the trained model is a scaled-down CPU proxy, the full-size model is also built on
PyTorch's meta device (accelerate's ``init_empty_weights``: shapes without storage, so
seconds and no memory for 70B as for 1B) and PEFT's adapter on it is checked the same
way: a CPU-only CI checks the real model's adapter too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PEFT_PREFIX = "base_model.model."
_ADAPTER_PARAM_MARKERS = ("lora_", "modules_to_save")


@dataclass
class ShapeReport:
    adapted_layers: int
    trainable_params: int
    expected_trainable_params: int | None
    expected_from: str  # "config" or "proxy config"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    full_size: dict[str, Any] | None = None  # the meta-device check of the full-size model, beside a proxy

    def as_dict(self) -> dict[str, Any]:
        return {
            "full_size": self.full_size,
            "adapted_layers": self.adapted_layers,
            "trainable_params": self.trainable_params,
            "expected_trainable_params": self.expected_trainable_params,
            "expected_from": self.expected_from,
            "problems": self.problems,
            "notes": self.notes,
        }


def check_shapes(built: Any, full_size_setup: Any = None, full_size_config: dict[str, Any] | None = None) -> ShapeReport:
    """Every adapted layer's lora_A (r, in) and lora_B (out, r), frozen base, exact trainable count.

    With ``full_size_setup`` and ``full_size_config`` (the config's own adapter and model)
    and a proxy ``built``, the full-size model is checked on the meta device as well; its
    problems are prefixed "full size:".
    """
    report = _check(built)
    if built.proxy is not None and full_size_setup is not None and full_size_config is not None:
        full = check_full_size(type(built.model.get_base_model()), full_size_setup, full_size_config, built.task_type)
        report.full_size = full.as_dict()
        report.problems += [f"full size: {problem}" for problem in full.problems]
    return report


def check_full_size(model_class: Any, setup: Any, config: dict[str, Any], task_type: str) -> ShapeReport:
    """The full-size model and its adapter on the meta device, checked like a built one."""
    from accelerate import init_empty_weights

    from lora_lint.runtime.build import BuildError, BuiltModel, Unsupported, apply_adapter, transformers_config

    try:
        hf_config = transformers_config(config, None, trust_remote_code=False)
    except Unsupported as exc:
        return ShapeReport(0, 0, None, "config", notes=[f"full-size check skipped: {exc}"])
    try:
        with init_empty_weights():
            model = model_class(hf_config)
            peft_model = apply_adapter(model, setup, task_type)
    except BuildError as exc:
        return ShapeReport(0, 0, None, "config", [str(exc)])
    built = BuiltModel(peft_model, model.config.to_dict(), setup, "meta", "float32", None, "random", task_type)
    return _check(built)


def _check(built: Any) -> ShapeReport:
    from lora_lint.arch.counting import AdapterSpec, count_parameters
    from lora_lint.arch.families import UnsupportedArchitecture, architecture_for

    model = built.model
    actual = _lora_layers(model)
    trainable, _ = model.get_nb_trainable_parameters()
    problems = _frozen_base_problems(model, built.setup.get("bias") or "none")
    try:
        arch = architecture_for(built.config, built.task_type)
    except UnsupportedArchitecture as exc:
        problems += _self_consistency_problems(actual)
        note = f"no architecture model for this family ({exc}): checked PEFT's shapes for self-consistency only"
        return ShapeReport(len(actual), trainable, None, "unavailable", problems, [note])
    count = count_parameters(arch, AdapterSpec.from_setup(built.setup))
    expected = {layer.name: layer for layer in count.layers}
    for name in sorted(set(expected) - set(actual)):
        problems.append(f"{name}: expected a LoRA adapter, PEFT added none")
    for name in sorted(set(actual) - set(expected)):
        problems.append(f"{name}: PEFT adapted it, the architecture model did not expect it")
    for name in sorted(set(expected) & set(actual)):
        layer, shapes = expected[name], actual[name]
        want_a, want_b = (layer.r, layer.in_features), (layer.out_features, layer.r)
        if layer.kind == "Parameter":
            continue  # fused expert tensors: PEFT stores them differently, the count below still checks them
        if shapes != (want_a, want_b):
            problems.append(f"{name}: lora_A {shapes[0]} / lora_B {shapes[1]}, expected {want_a} / {want_b}")
    for target in count.unmatched_targets:
        problems.append(f"target module {target!r} matched no layer")
    if trainable != count.trainable_params:
        problems.append(f"{trainable:,} trainable parameters, the architecture model counts {count.trainable_params:,}")
    return ShapeReport(len(actual), trainable, count.trainable_params,
                       "proxy config" if built.proxy else "config", problems)  # fmt: skip


def _lora_layers(model: Any) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Module name (as in the base model) -> (lora_A shape, lora_B shape) of the default adapter."""
    layers = {}
    for name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        lora_b = getattr(module, "lora_B", None)
        if lora_a is None or lora_b is None or "default" not in lora_a:
            continue
        a, b = lora_a["default"], lora_b["default"]
        weight_a = getattr(a, "weight", a)
        weight_b = getattr(b, "weight", b)
        layers[name.removeprefix(PEFT_PREFIX)] = (tuple(weight_a.shape), tuple(weight_b.shape))
    embeddings = {}
    for name, module in model.named_modules():
        embedding_a = getattr(module, "lora_embedding_A", None)
        if embedding_a is not None and "default" in embedding_a:
            a, b = embedding_a["default"], module.lora_embedding_B["default"]
            embeddings[name.removeprefix(PEFT_PREFIX)] = (tuple(a.shape), tuple(b.shape))
    return {**layers, **embeddings}


def _frozen_base_problems(model: Any, bias: str) -> list[str]:
    problems = []
    for name, param in model.named_parameters():
        if not param.requires_grad or any(marker in name for marker in _ADAPTER_PARAM_MARKERS):
            continue
        if bias != "none" and name.endswith(".bias"):
            continue
        problems.append(f"{name.removeprefix(PEFT_PREFIX)}: base weight is trainable")
    return problems


def _self_consistency_problems(actual: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]) -> list[str]:
    return [
        f"{name}: lora_A {a} and lora_B {b} disagree on the rank" for name, (a, b) in actual.items() if a[0] != b[-1]
    ]
