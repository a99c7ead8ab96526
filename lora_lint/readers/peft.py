"""PEFT's own format: ``adapter_config.json`` as ``save_pretrained`` writes it.

Also the home of PEFT's field names and defaults, which the plain LoraConfig YAML and
the Python reader share: they are all spellings of ``peft.LoraConfig``.

Not every ``adapter_config.json`` is a PEFT LoRA config. One whose ``peft_type`` names
another PEFT method (LoHa, LoKr, AdaLoRA, IA3, prefix tuning, ...) is out of scope, and one
with neither ``peft_type`` nor LoRA's own fields (``r`` with ``lora_alpha`` or
``target_modules``) is another tool's file (an MLX or JAX adapter, a model card dump):
both are skipped with the reason from :func:`out_of_scope`.
"""

from __future__ import annotations

from lora_lint.document import Document
from lora_lint.lora_setup import LoraSetup
from lora_lint.readers.common import SetupBuilder
from lora_lint.readers.schemas import schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FIELD_SETTINGS = {
    "r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "target_modules",
    "exclude_modules": "exclude_modules",
    "rank_pattern": "rank_pattern",
    "alpha_pattern": "alpha_pattern",
    "use_rslora": "use_rslora",
    "use_dora": "use_dora",
    "init_lora_weights": "init_lora_weights",
    "bias": "bias",
    "modules_to_save": "modules_to_save",
    "layers_to_transform": "layers_to_transform",
    "layers_pattern": "layers_pattern",
    "fan_in_fan_out": "fan_in_fan_out",
    "task_type": "task_type",
    "base_model_name_or_path": "base_model",
}
"""PEFT LoraConfig field -> normalized setting (most are the same name)."""

DEFAULTS = {
    "r": 8,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "target_modules": None,
    "bias": "none",
    "use_rslora": False,
    "use_dora": False,
    "init_lora_weights": True,
    "fan_in_fan_out": False,
    "task_type": None,
}
"""``peft.LoraConfig`` defaults (peft 0.21.2) for the fields rules look at."""

EXTRA_FIELDS = ("peft_type", "inference_mode", "target_parameters", "lora_bias", "use_qalora", "layer_replication", "revision")
"""PEFT fields with no normalized setting that rules may still want."""

ALIASES = {
    "lora_r": "r",
    "lora_rank": "r",
    "rank": "r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "lora_target_modules": "target_modules",
    "lora_target": "target_modules",
    "target_module": "target_modules",
    "lora_modules_to_save": "modules_to_save",
    "additional_target": "modules_to_save",
    "peft_use_dora": "use_dora",
    "peft_use_rslora": "use_rslora",
    "use_rs_lora": "use_rslora",
    "lora_fan_in_fan_out": "fan_in_fan_out",
    "lora_rank_pattern": "rank_pattern",
    "lora_alpha_pattern": "alpha_pattern",
}
"""Names other formats use for PEFT fields: the likely meaning of such a key in a PEFT file."""


def field_names() -> tuple[str, ...]:
    """LoraConfig's fields in signature order (positional arguments map onto this order)."""
    return schema("peft").order


def known_fields() -> frozenset[str]:
    return schema("peft").known


def take_fields(builder: SetupBuilder, *prefix: str) -> None:
    """Read every PEFT field the file has (under ``prefix``) into normalized settings and extras."""
    for field, setting in FIELD_SETTINGS.items():
        builder.take(setting, *prefix, field)
    if builder.setup.get("target_modules") == "all-linear":
        builder.setup.set("target_linear", True, builder.setup.location_of("target_modules"))
    for field in EXTRA_FIELDS:
        builder.extra(field, *prefix, field)


def apply_defaults(setup: LoraSetup) -> None:
    for name, value in DEFAULTS.items():
        setup.default(name, value)


def is_lora(data: dict) -> bool:
    """A PEFT LoRA config: ``peft_type`` LORA, or without ``peft_type`` LoRA's own ``r`` with ``lora_alpha`` or ``target_modules``."""
    peft_type = data.get("peft_type")
    if peft_type is not None:
        return isinstance(peft_type, str) and peft_type.upper() == "LORA"
    return "r" in data and ("lora_alpha" in data or "target_modules" in data)


def out_of_scope(data: Any) -> str | None:
    """Why an ``adapter_config.json``-like mapping is not linted, or None when it is no such file."""
    if not isinstance(data, dict) or is_lora(data):
        return None
    peft_type = data.get("peft_type")
    if peft_type is None:
        return "not a PEFT config: neither peft_type nor LoRA's own fields (r with lora_alpha or target_modules)"
    peft = schema("peft")
    if isinstance(peft_type, str) and peft_type.upper() in peft.extras.get("peft_types", ()):
        return f"a PEFT {peft_type} adapter: lora-lint checks LoRA adapters only"
    return f"not a PEFT LoRA config: peft_type {peft_type!r} is no method of {peft.label}"


def read(doc: Document) -> list[LoraSetup]:
    if not isinstance(doc.data, dict) or not is_lora(doc.data):
        return []
    builder = SetupBuilder(doc, "peft")
    take_fields(builder)
    builder.unknown_keys(doc.data, schema("peft"), ALIASES)
    apply_defaults(builder.setup)
    return [builder.setup]
