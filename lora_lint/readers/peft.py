"""PEFT's own format: ``adapter_config.json`` as ``save_pretrained`` writes it.

Also the home of PEFT's field names and defaults, which the plain LoraConfig YAML and
the Python reader share: they are all spellings of ``peft.LoraConfig``.
"""

from __future__ import annotations

from lora_lint.document import Document
from lora_lint.lora_setup import LoraSetup
from lora_lint.readers.common import SetupBuilder, key_list, key_set

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
    return key_list("peft_keys")


def known_fields() -> frozenset[str]:
    return key_set("peft_keys")


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
    peft_type = data.get("peft_type")
    if peft_type is not None:
        return isinstance(peft_type, str) and peft_type.upper() == "LORA"
    return "r" in data or "lora_alpha" in data or "target_modules" in data


def read(doc: Document) -> list[LoraSetup]:
    if not isinstance(doc.data, dict) or not is_lora(doc.data):
        return []
    builder = SetupBuilder(doc, "peft")
    take_fields(builder)
    builder.unknown_keys(doc.data, known_fields(), ALIASES)
    apply_defaults(builder.setup)
    return [builder.setup]
