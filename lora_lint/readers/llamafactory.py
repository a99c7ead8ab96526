"""LLaMA-Factory training configs, in both of its forms.

- The flat form (``llamafactory-cli train x.yaml``): ``lora_rank``, ``lora_target``, ...
  next to Hugging Face ``TrainingArguments``. Defaults from ``hparams/finetuning_args.py``:
  ``lora_rank`` 8, ``lora_alpha`` None meaning ``lora_rank * 2``, ``lora_dropout`` 0,
  ``lora_target`` "all" (every linear layer); gradient checkpointing is on unless
  ``disable_gradient_checkpointing``. Unknown keys stop LLaMA-Factory with an error.
- The v1 form (``llamafactory/v1``): a nested ``peft_config:`` with PEFT field names
  (``name: lora``, ``r``, ``lora_alpha``, ...); its LoRA plugin defaults are r 8,
  alpha 16, dropout 0.05, target "all". Unknown ``peft_config`` keys are silently ignored.

``enable_liger_kernel: true`` in a ``pt`` or ``sft`` stage applies Liger's kernels with their
defaults, which include the fused linear cross-entropy (``model/model_utils/liger_kernel.py``);
other stages keep the logits and get Liger's plain cross-entropy, so only the first is a
``chunked_loss``.

Both read YAML with OmegaConf, which takes ``2e-4`` as a number.
Dataset names are looked up in ``<dataset_dir>/dataset_info.json`` to find local files.
"""

from __future__ import annotations

import json
from pathlib import Path

from lora_lint.document import Document
from lora_lint.lora_setup import UNKNOWN, LoraSetup
from lora_lint.readers import peft
from lora_lint.readers.common import SetupBuilder, coerce_omegaconf_numbers, key_set, split_names
from lora_lint.readers.dataset_size import dataset_record, resolve
from lora_lint.readers.detection import is_llamafactory_v1
from lora_lint.readers.schemas import schema

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

KEY_SETTINGS = {
    "lora_rank": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "use_rslora": "use_rslora",
    "use_dora": "use_dora",
    "model_name_or_path": "base_model",
    "trust_remote_code": "trust_remote_code",
    "cutoff_len": "sequence_len",
    "per_device_train_batch_size": "micro_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "num_train_epochs": "num_epochs",
    "max_steps": "max_steps",
    "learning_rate": "learning_rate",
    "optim": "optimizer",
    "packing": "sample_packing",
    "flash_attn": "attn_implementation",
    "val_size": "val_size",
    "max_samples": "max_samples",
    "output_dir": "output_dir",
    "quantization_type": "bnb_4bit_quant_type",
    "double_quantization": "bnb_4bit_use_double_quant",
}

DEFAULTS = {
    "r": 8,
    "lora_dropout": 0.0,
    "target_linear": True,
    "bias": "none",
    "use_rslora": False,
    "use_dora": False,
    "init_lora_weights": True,
    "task_type": "CAUSAL_LM",
    "trust_remote_code": False,
    "load_in_4bit": False,
    "load_in_8bit": False,
    "sequence_len": 2048,
    "micro_batch_size": 8,  # transformers TrainingArguments
    "gradient_accumulation_steps": 1,
    "num_epochs": 3.0,
    "learning_rate": 5e-5,
    "optimizer": "adamw_torch_fused",
    "gradient_checkpointing": True,
    "chunked_loss": False,
    "attn_implementation": "auto",
    "val_size": 0.0,
    "torch_dtype": "auto",
}

EXTRA_KEYS = (
    "stage",
    "finetuning_type",
    "template",
    "pissa_init",
    "create_new_adapter",
    "loraplus_lr_ratio",
    "quantization_bit",
    "quantization_method",
    "use_unsloth",
    "deepspeed",
    "resume_from_checkpoint",
)

ALIASES = {
    "r": "lora_rank",
    "lora_r": "lora_rank",
    "rank": "lora_rank",
    "alpha": "lora_alpha",
    "target_modules": "lora_target",
    "lora_target_modules": "lora_target",
    "lora_target_linear": "lora_target",
    "modules_to_save": "additional_target",
    "lora_modules_to_save": "additional_target",
    "peft_use_dora": "use_dora",
    "peft_use_rslora": "use_rslora",
    "base_model": "model_name_or_path",
    "base_model_name_or_path": "model_name_or_path",
    "model": "model_name_or_path",
    "sequence_len": "cutoff_len",
    "max_seq_length": "cutoff_len",
    "max_seq_len": "cutoff_len",
    "micro_batch_size": "per_device_train_batch_size",
    "batch_size": "per_device_train_batch_size",
    "num_epochs": "num_train_epochs",
    "epochs": "num_train_epochs",
    "lr": "learning_rate",
    "optimizer": "optim",
    "datasets": "dataset",
    "val_set_size": "val_size",
    "load_in_4bit": "quantization_bit",
    "load_in_8bit": "quantization_bit",
    "lora_model_dir": "adapter_name_or_path",
    "sample_packing": "packing",
}
"""Other formats' names for LLaMA-Factory keys."""

V1_PEFT_KEYS = frozenset(
    {
        "name",
        "r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "use_rslora",
        "use_dora",
        "modules_to_save",
        "adapter_name_or_path",
        "export_dir",
        "export_size",
        "export_hub_model_id",
        "infer_dtype",
        "export_legacy_format",
    }
)
"""What the v1 LoRA plugin reads from ``peft_config`` (``LoraConfigDict``, v1/plugins/model_plugins/peft.py)."""

V1_DEFAULTS = {
    "r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "target_linear": True,
    "bias": "none",
    "use_rslora": False,
    "use_dora": False,
    "init_lora_weights": True,
    "task_type": "CAUSAL_LM",
    "trust_remote_code": False,
    "attn_implementation": "sdpa",
    "sequence_len": 2048,
    "micro_batch_size": 1,
    "learning_rate": 1e-4,
    "num_epochs": 3,
    "gradient_checkpointing": True,
    "torch_dtype": "bfloat16",
    "load_in_4bit": False,
    "load_in_8bit": False,
}

V1_KEY_SETTINGS = {
    "model": "base_model",
    "trust_remote_code": "trust_remote_code",
    "flash_attn": "attn_implementation",
    "cutoff_len": "sequence_len",
    "micro_batch_size": "micro_batch_size",
    "learning_rate": "learning_rate",
    "num_train_epochs": "num_epochs",
    "max_steps": "max_steps",
    "enable_activation_checkpointing": "gradient_checkpointing",
    "output_dir": "output_dir",
}

MAX_DATASET_INFO_BYTES = 16 * 1024 * 1024


def read(doc: Document) -> list[LoraSetup]:
    if not isinstance(doc.data, dict):
        return []
    coerce_omegaconf_numbers(doc)
    return _read_v1(doc) if is_llamafactory_v1(doc.data) else _read_flat(doc)


LORA_ONLY_KEYS = (
    "lora_rank", "lora_alpha", "lora_dropout", "lora_target", "additional_target", "use_rslora", "use_dora",
    "pissa_init", "pissa_iter", "pissa_convert", "loraplus_lr_ratio", "loraplus_lr_embedding", "create_new_adapter",
)  # fmt: skip
"""Keys LLaMA-Factory reads only when ``finetuning_type`` is ``lora``."""


def _read_flat(doc: Document) -> list[LoraSetup]:
    data = doc.data
    finetuning_type = data.get("finetuning_type", "lora")
    if finetuning_type != "lora":
        return _ignored_lora_keys(doc, finetuning_type)
    builder = SetupBuilder(doc, "llamafactory")
    setup = builder.setup
    builder.take_all(KEY_SETTINGS)
    if isinstance(setup.get("max_steps"), int) and setup.get("max_steps") <= 0:
        del setup.settings["max_steps"]  # transformers' -1: train by epochs
    _targets(builder, data)
    builder.take("modules_to_save", "additional_target", transform=split_names)
    if data.get("pissa_init") is True:
        setup.set("init_lora_weights", "pissa", builder.location("pissa_init"))
    _quantization(builder, data)
    _precision(builder, data)
    _chunked_loss(builder, data)
    if isinstance(data.get("disable_gradient_checkpointing"), bool):
        setup.set("gradient_checkpointing", not data["disable_gradient_checkpointing"], builder.location("disable_gradient_checkpointing"))
    _resume_adapter(builder, data)
    _flat_datasets(builder, data)
    for key in EXTRA_KEYS:
        builder.extra(key, key)
    setup.extras.setdefault("stage", "sft")
    setup.extras.setdefault("finetuning_type", "lora")
    setup.extras["loads_multimodal"] = True  # its loader picks the image-text class whenever the model has one
    builder.unknown_keys(data, schema("llamafactory"), ALIASES)
    for name, value in DEFAULTS.items():
        setup.default(name, value)
    setup.default("sample_packing", setup.extras["stage"] == "pt")  # packing defaults on for pre-training
    rank = setup.get("r")
    if isinstance(rank, int) and not setup.get("lora_alpha"):
        # LLaMA-Factory passes `lora_alpha or lora_rank * 2`: absent, null and 0 all mean twice the rank.
        setup.set("lora_alpha", rank * 2, setup.location_of("lora_alpha"), explicit=False)
    if setup.get("load_in_4bit"):
        setup.default("bnb_4bit_quant_type", "nf4")
        setup.default("bnb_4bit_use_double_quant", True)
        setup.default("bnb_4bit_compute_dtype", setup.get("torch_dtype"))
    return [setup]


def _ignored_lora_keys(doc: Document, finetuning_type: Any) -> list[LoraSetup]:
    """A full/freeze/OFT run: no adapter, but LoRA-only keys written in it are silently ignored."""
    written = [key for key in LORA_ONLY_KEYS if doc.data.get(key) is not None]
    if not written:
        return []
    builder = SetupBuilder(doc, "llamafactory")
    builder.take("base_model", "model_name_or_path")
    builder.setup.extras["finetuning_type"] = finetuning_type
    builder.setup.extras["adapter"] = False
    for key in written:
        builder.note("lora-key-ignored", builder.location(key), key=key, finetuning_type=finetuning_type)
    return [builder.setup]


def _targets(builder: SetupBuilder, data: dict[str, Any]) -> None:
    """``lora_target: all`` means every linear layer; anything else is a comma-separated list of names."""
    if data.get("lora_target") is None:
        return
    location = builder.location("lora_target")
    if not builder.take("target_modules", "lora_target", transform=split_names):
        return
    if builder.setup.get("target_modules") == ["all"]:
        del builder.setup.settings["target_modules"]
        builder.setup.set("target_linear", True, location)
    elif builder.setup.settings["target_modules"].value is not UNKNOWN:
        builder.setup.set("target_linear", False, location)


def _quantization(builder: SetupBuilder, data: dict[str, Any]) -> None:
    bits = data.get("quantization_bit")
    if bits is None:
        return
    location = builder.location("quantization_bit")
    if data.get("quantization_method", "bnb") in ("bnb", "bitsandbytes"):
        if bits == 4:
            builder.setup.set("load_in_4bit", True, location)
        elif bits == 8:
            builder.setup.set("load_in_8bit", True, location)


def _precision(builder: SetupBuilder, data: dict[str, Any]) -> None:
    for key, dtype in (("pure_bf16", "bfloat16"), ("bf16", "bfloat16"), ("fp16", "float16")):
        if data.get(key) is True:
            builder.setup.set("torch_dtype", dtype, builder.location(key))
            return


def _chunked_loss(builder: SetupBuilder, data: dict[str, Any]) -> None:
    if data.get("enable_liger_kernel") is True:
        fused = data.get("stage", "sft") in ("pt", "sft")
        builder.setup.set("chunked_loss", fused, builder.location("enable_liger_kernel"))


def _resume_adapter(builder: SetupBuilder, data: dict[str, Any]) -> None:
    """Training continues the last adapter of ``adapter_name_or_path`` unless ``create_new_adapter``."""
    if not data.get("create_new_adapter"):
        builder.take("resume_adapter", "adapter_name_or_path", transform=_last_adapter)


def _last_adapter(value: Any) -> Any:
    """The adapter training continues from: the last of a comma-separated list."""
    names = split_names(value)
    return names[-1] if isinstance(names, list) and names else value


def _flat_datasets(builder: SetupBuilder, data: dict[str, Any]) -> None:
    dataset_dir = data.get("dataset_dir", "data")
    info, info_dir = _dataset_info(dataset_dir, builder.config_dir)
    for setting, key in (("datasets", "dataset"), ("val_datasets", "eval_dataset")):
        names = split_names(data.get(key))
        if not isinstance(names, list):
            continue
        location = builder.location(key)
        records = []
        for name in names:
            entry = info.get(name) if info is not None and isinstance(name, str) else None
            if info is not None and entry is None and dataset_dir != "ONLINE":
                builder.note("unknown-dataset", location, key=key, name=name, dataset_info=str(info_dir / "dataset_info.json"))
            records.append(_info_record(name, entry, info_dir, location, builder.config_dir))
        builder.datasets(setting, records, key, max_samples=builder.setup.get("max_samples"))


def _info_record(name: Any, entry: Any, info_dir: Path | None, location: Any, config_dir: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return dataset_record(name, location, config_dir)
    fields = {key: entry[key] for key in ("hf_hub_url", "ms_hub_url", "file_name", "subset", "split", "num_samples", "formatting") if key in entry}
    file_name = entry.get("file_name")
    if isinstance(file_name, str) and info_dir is not None:
        return dataset_record(name, location, config_dir, data_files=str(info_dir / file_name), **fields)
    return dataset_record(name, location, config_dir, data_files=[None], **fields)


def _dataset_info(dataset_dir: Any, config_dir: str) -> tuple[dict[str, Any] | None, Path | None]:
    """LLaMA-Factory's dataset registry, when a local ``dataset_info.json`` can be found."""
    if not isinstance(dataset_dir, str) or dataset_dir == "ONLINE":
        return None, None
    local = resolve(str(Path(dataset_dir) / "dataset_info.json"), config_dir)
    if local is None:
        return None, None
    found = Path(local)
    try:
        if found.stat().st_size > MAX_DATASET_INFO_BYTES:
            return None, None
        info = json.loads(found.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None, None
    return (info, found.parent) if isinstance(info, dict) else (None, None)


def _read_v1(doc: Document) -> list[LoraSetup]:
    data = doc.data
    peft_config = data["peft_config"]
    if peft_config.get("name") != "lora":
        return []
    builder = SetupBuilder(doc, "llamafactory")
    setup = builder.setup
    for field in ("r", "lora_alpha", "lora_dropout", "use_rslora", "use_dora", "modules_to_save"):
        builder.take(field, "peft_config", field)
    if builder.take("target_modules", "peft_config", "target_modules"):
        location = builder.location("peft_config", "target_modules")
        if setup.get("target_modules") == "all":
            del setup.settings["target_modules"]
            setup.set("target_linear", True, location)
        else:
            setup.set("target_linear", False, location)
    builder.take("resume_adapter", "peft_config", "adapter_name_or_path", transform=_last_adapter)
    builder.take_all(V1_KEY_SETTINGS)
    if isinstance(data.get("bf16"), bool):
        setup.set("torch_dtype", "bfloat16" if data["bf16"] else "float32", builder.location("bf16"))
    quant = data.get("quant_config")
    if isinstance(quant, dict) and quant.get("quantization_bit") in (4, 8):
        name = "load_in_4bit" if quant["quantization_bit"] == 4 else "load_in_8bit"
        setup.set(name, True, builder.location("quant_config", "quantization_bit"))
    for setting, key in (("datasets", "train_dataset"), ("val_datasets", "eval_dataset")):
        if isinstance(data.get(key), str):
            builder.datasets(setting, [dataset_record(data[key], builder.location(key), builder.config_dir)], key)
    for key in ("model_class", "template", "global_batch_size", "quant_config", "resume_from_checkpoint"):
        builder.extra(key, key)
    setup.extras["config_version"] = "v1"
    setup.extras["finetuning_type"] = "lora"
    builder.unknown_keys(data, key_set("llamafactory_v1_keys"), ALIASES)
    builder.unknown_keys(peft_config, V1_PEFT_KEYS, peft.ALIASES, prefix=("peft_config",))
    for name, value in V1_DEFAULTS.items():
        setup.default(name, value)
    return [setup]
