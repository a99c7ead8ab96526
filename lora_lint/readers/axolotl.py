"""axolotl training configs (``adapter: lora`` / ``qlora``).

Key names and defaults follow axolotl's pydantic schema (``axolotl/utils/schemas``) and
how ``axolotl/loaders/adapter.py`` builds the ``peft.LoraConfig``:

- ``lora_r`` and ``lora_alpha`` have no default: axolotl passes None to PEFT, so they stay absent here.
- ``lora_dropout`` defaults to 0.0 once an adapter is set; ``bias`` is always ``"none"``.
- ``lora_target_linear: true`` adds every linear layer to ``lora_target_modules``.
- QLoRA loads NF4 with double quantization and computes in the training dtype, unless
  ``bnb_config_kwargs`` says otherwise.
- The loss skips the full fp32 logits with Cut Cross-Entropy (its plugin listed in ``plugins``;
  ``cut_cross_entropy`` defaults to true there), Liger's fused linear cross-entropy (the Liger
  plugin and ``liger_fused_linear_cross_entropy: true``) or ``chunked_cross_entropy: true``.
  Plugin options take effect only when their plugin is listed.

axolotl drops keys its schema does not know without a word, so an ``unknown-key`` note
here is a setting that has no effect.
"""

from __future__ import annotations

from lora_lint.document import Document
from lora_lint.lora_setup import LoraSetup
from lora_lint.readers.common import SetupBuilder
from lora_lint.readers.dataset_size import dataset_record
from lora_lint.readers.schemas import Schema, schema

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

KEY_SETTINGS = {
    "lora_r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "lora_target_modules": "target_modules",
    "lora_target_linear": "target_linear",
    "lora_rank_pattern": "rank_pattern",
    "lora_alpha_pattern": "alpha_pattern",
    "peft_use_rslora": "use_rslora",
    "peft_use_dora": "use_dora",
    "peft_init_lora_weights": "init_lora_weights",
    "lora_modules_to_save": "modules_to_save",
    "peft_layers_to_transform": "layers_to_transform",
    "peft_layers_pattern": "layers_pattern",
    "lora_fan_in_fan_out": "fan_in_fan_out",
    "num_labels": "num_labels",
    "base_model": "base_model",
    "trust_remote_code": "trust_remote_code",
    "load_in_4bit": "load_in_4bit",
    "load_in_8bit": "load_in_8bit",
    "sequence_len": "sequence_len",
    "micro_batch_size": "micro_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "num_epochs": "num_epochs",
    "max_steps": "max_steps",
    "learning_rate": "learning_rate",
    "optimizer": "optimizer",
    "gradient_checkpointing": "gradient_checkpointing",
    "sample_packing": "sample_packing",
    "attn_implementation": "attn_implementation",
    "val_set_size": "val_size",
    "lora_model_dir": "resume_adapter",
    "output_dir": "output_dir",
}

DEFAULTS = {
    "lora_dropout": 0.0,
    "bias": "none",
    "target_modules": [],
    "target_linear": False,
    "use_rslora": False,
    "use_dora": False,
    "init_lora_weights": True,
    "fan_in_fan_out": False,
    "task_type": "CAUSAL_LM",
    "trust_remote_code": False,
    "load_in_4bit": False,
    "load_in_8bit": False,
    "sequence_len": 512,
    "micro_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "num_epochs": 1.0,
    "optimizer": "adamw_torch_fused",
    "gradient_checkpointing": False,
    "sample_packing": False,
    "val_size": 0.0,
    "output_dir": "./model-out",
    "chunked_loss": False,
}

CUT_CROSS_ENTROPY_PLUGIN = "CutCrossEntropyPlugin"  # axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin
LIGER_PLUGIN = "LigerPlugin"  # axolotl.integrations.liger.LigerPlugin

QLORA_DEFAULTS = {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}

LEGACY_ATTENTION = {
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "xformers_attention": "xformers",
    "flex_attention": "flex_attention",
    "sage_attention": "sage",
    "eager_attention": "eager",
}
"""Deprecated boolean switches that still select the attention backend."""

EXTRA_KEYS = (
    "adapter",
    "quantize_moe_experts",
    "deepspeed",
    "lora_target_parameters",
    "loraplus_lr_ratio",
    "resume_from_checkpoint",
    "rl",
    "model_type",
    "plugins",
    "gptq",
    "bnb_config_kwargs",
    "peft_layer_replication",
    "unfrozen_parameters",
    "chat_template",
)

ALIASES = {
    "r": "lora_r",
    "rank": "lora_r",
    "lora_rank": "lora_r",
    "alpha": "lora_alpha",
    "target_modules": "lora_target_modules",
    "lora_target": "lora_target_modules",
    "modules_to_save": "lora_modules_to_save",
    "additional_target": "lora_modules_to_save",
    "use_dora": "peft_use_dora",
    "use_rslora": "peft_use_rslora",
    "init_lora_weights": "peft_init_lora_weights",
    "layers_to_transform": "peft_layers_to_transform",
    "layers_pattern": "peft_layers_pattern",
    "rank_pattern": "lora_rank_pattern",
    "alpha_pattern": "lora_alpha_pattern",
    "fan_in_fan_out": "lora_fan_in_fan_out",
    "model_name_or_path": "base_model",
    "base_model_name_or_path": "base_model",
    "cutoff_len": "sequence_len",
    "max_seq_length": "sequence_len",
    "max_seq_len": "sequence_len",
    "per_device_train_batch_size": "micro_batch_size",
    "num_train_epochs": "num_epochs",
    "epochs": "num_epochs",
    "lr": "learning_rate",
    "optim": "optimizer",
    "val_size": "val_set_size",
    "adapter_name_or_path": "lora_model_dir",
    "quantization_bit": "load_in_4bit",
    "torch_dtype": "bf16",
    "dtype": "bf16",
}
"""Other formats' names (PEFT, LLaMA-Factory, HF Trainer, torchtune) for axolotl keys."""

LORA_MARKERS = ("adapter", "lora_r", "lora_alpha", "lora_target_modules", "lora_target_linear")


def known_keys() -> Schema:
    return schema("axolotl")


def read(doc: Document) -> list[LoraSetup]:
    data = doc.data
    if not isinstance(data, dict) or not any(data.get(key) is not None for key in LORA_MARKERS):
        return []  # a full fine-tune: no adapter to check
    builder = SetupBuilder(doc, "axolotl", lenient=True)
    setup = builder.setup
    builder.take_all(KEY_SETTINGS)
    _attention(builder, data)
    _precision(builder, data)
    _chunked_loss(builder, data)
    _task_type(builder, data)
    for name, key in (("datasets", "datasets"), ("val_datasets", "test_datasets")):
        if isinstance(data.get(key), list):
            builder.datasets(name, _records(builder, key, data[key]), key)
    for key in EXTRA_KEYS:
        builder.extra(key, key)
    setup.extras.setdefault("adapter", None)
    # With a processor axolotl loads the image-text class of a multimodal model, not its text-only causal LM.
    setup.extras["loads_multimodal"] = data.get("processor_type") is not None
    setup.extras["fsdp"] = data.get("fsdp_config") is not None or data.get("fsdp") is not None  # axolotl's is_fsdp_enabled
    builder.unknown_keys(data, known_keys(), ALIASES)
    for name, value in DEFAULTS.items():
        setup.default(name, value)
    if setup.get("load_in_4bit"):
        for name, value in QLORA_DEFAULTS.items():
            setup.default(name, value)
        setup.default("bnb_4bit_compute_dtype", setup.get("torch_dtype"))
    return [setup]


def _attention(builder: SetupBuilder, data: dict[str, Any]) -> None:
    if "attn_implementation" in builder.setup.settings:
        return
    for key, backend in LEGACY_ATTENTION.items():
        if data.get(key) is True:
            builder.setup.set("attn_implementation", backend, builder.location(key))
            return


def _precision(builder: SetupBuilder, data: dict[str, Any]) -> None:
    """bf16 / fp16 (and the older bfloat16 / float16 switches) -> one training dtype."""
    for key, dtype in (("bf16", "bfloat16"), ("bfloat16", "bfloat16"), ("fp16", "float16"), ("float16", "float16")):
        value = data.get(key)
        if value is True or (key == "bf16" and value == "auto"):
            builder.setup.set("torch_dtype", dtype if value is True else "auto", builder.location(key))
            break
    else:
        written = next((key for key in ("bf16", "fp16") if key in data), None)
        if written and data[written] is False:
            builder.setup.set("torch_dtype", "float32", builder.location(written))
        else:
            builder.setup.default("torch_dtype", "auto")  # axolotl: bf16 defaults to "auto"
    overrides = data.get("bnb_config_kwargs")
    if isinstance(overrides, dict):
        for key in ("bnb_4bit_quant_type", "bnb_4bit_compute_dtype", "bnb_4bit_use_double_quant"):
            if overrides.get(key) is not None:
                builder.take(key, "bnb_config_kwargs", key)


def _chunked_loss(builder: SetupBuilder, data: dict[str, Any]) -> None:
    """Whether the loss avoids the full logits; the location is the key that turns it on."""
    plugins = data.get("plugins") if isinstance(data.get("plugins"), list) else []
    listed = {name.rsplit(".", 1)[-1]: index for index, name in enumerate(plugins) if isinstance(name, str)}
    if CUT_CROSS_ENTROPY_PLUGIN in listed and data.get("cut_cross_entropy") is not False:
        key = ("cut_cross_entropy",) if "cut_cross_entropy" in data else ("plugins", listed[CUT_CROSS_ENTROPY_PLUGIN])
        builder.setup.set("chunked_loss", True, builder.location(*key))
    elif LIGER_PLUGIN in listed and data.get("liger_fused_linear_cross_entropy") is True:
        builder.setup.set("chunked_loss", True, builder.location("liger_fused_linear_cross_entropy"))
    elif data.get("chunked_cross_entropy") is True:
        builder.setup.set("chunked_loss", True, builder.location("chunked_cross_entropy"))
        builder.setup.extras["loss_keeps_logits"] = True  # it upcasts chunk by chunk but builds the full logits


def _task_type(builder: SetupBuilder, data: dict[str, Any]) -> None:
    """axolotl picks the PEFT task type from the model class (``model_type``)."""
    model_type = data.get("model_type")
    if isinstance(model_type, str):
        for marker, task in (("SequenceClassification", "SEQ_CLS"), ("TokenClassification", "TOKEN_CLS")):
            if marker in model_type:
                builder.setup.set("task_type", task, builder.location("model_type"))


def _records(builder: SetupBuilder, key: str, entries: list[Any]) -> list[dict[str, Any]]:
    records = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            records.append(dataset_record(entry, builder.location(key, index), builder.config_dir))
            continue
        fields = {name: entry[name] for name in ("type", "split", "name", "ds_type") if name in entry}
        location = builder.doc.location(key, index, "path") or builder.location(key, index)
        records.append(dataset_record(entry.get("path"), location, builder.config_dir, data_files=entry.get("data_files"), **fields))
    return records
