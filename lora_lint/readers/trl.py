"""TRL and alignment-handbook recipe YAML (``trl sft --config recipe.yaml``, ``use_peft: true``).

``TrlParser`` feeds the file's keys to the fields of ``ScriptArguments``, the trainer's config
(``SFTConfig``, ``DPOConfig``, ...: transformers' ``TrainingArguments`` plus TRL's own) and
``ModelConfig``; ``trl/trainer/utils.py`` builds the adapter from ``ModelConfig``
(``get_peft_config``) only when ``use_peft`` is true, with ``bias="none"``. Defaults are
TRL 1.16.0's (``trl/trainer/model_config.py``, ``sft_config.py``, ``base_config.py``):

- ``lora_r`` 16, ``lora_alpha`` 32, ``lora_dropout`` 0.05, ``lora_target_modules`` None
  (PEFT's per-architecture default), ``lora_task_type`` CAUSAL_LM; a one-item
  ``lora_target_modules`` list becomes that string, so ``[all-linear]`` means every linear layer.
- ``load_in_4bit`` computes in ``dtype`` (``torch_dtype`` before TRL 0.20), default float32, with
  ``bnb_4bit_quant_type`` nf4 and double quantization only with ``use_bnb_nested_quant``.
- ``learning_rate`` 2e-5, ``max_length`` 1024 (``max_seq_length`` in older TRL),
  ``gradient_checkpointing`` true, ``packing`` false; the rest are ``TrainingArguments``' defaults.

The YAML is read with ``yaml.safe_load`` and handed to argparse as defaults, which argparse
converts with the field's type: ``2e-4`` written plainly is a number here too. Unknown keys
stop the run (``Unknown arguments from config file``). alignment-handbook recipes run through
the handbook's scripts, whose argument classes add ``dataset_mixture`` and ``chat_template``.
"""

from __future__ import annotations

from lora_lint.document import Document
from lora_lint.lora_setup import LoraSetup
from lora_lint.readers.common import SetupBuilder, coerce_omegaconf_numbers
from lora_lint.readers.dataset_size import dataset_record
from lora_lint.readers.schemas import schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KEY_SETTINGS = {
    "lora_r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "lora_modules_to_save": "modules_to_save",
    "lora_task_type": "task_type",
    "use_rslora": "use_rslora",
    "use_dora": "use_dora",
    "model_name_or_path": "base_model",
    "trust_remote_code": "trust_remote_code",
    "load_in_4bit": "load_in_4bit",
    "load_in_8bit": "load_in_8bit",
    "bnb_4bit_quant_type": "bnb_4bit_quant_type",
    "use_bnb_nested_quant": "bnb_4bit_use_double_quant",
    "dtype": "torch_dtype",
    "torch_dtype": "torch_dtype",
    "attn_implementation": "attn_implementation",
    "learning_rate": "learning_rate",
    "per_device_train_batch_size": "micro_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "num_train_epochs": "num_epochs",
    "max_steps": "max_steps",
    "max_length": "sequence_len",
    "max_seq_length": "sequence_len",
    "gradient_checkpointing": "gradient_checkpointing",
    "packing": "sample_packing",
    "optim": "optimizer",
    "output_dir": "output_dir",
}
"""TRL key -> normalized setting (``torch_dtype`` and ``max_seq_length`` are the names of older TRL)."""

PEFT_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_target_parameters",
             "lora_modules_to_save", "use_rslora", "use_dora")  # fmt: skip
"""Keys ``get_peft_config`` reads: they do nothing unless ``use_peft`` is true."""

DEFAULTS = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": None,
    "bias": "none",
    "use_rslora": False,
    "use_dora": False,
    "init_lora_weights": True,
    "task_type": "CAUSAL_LM",
    "trust_remote_code": False,
    "load_in_4bit": False,
    "load_in_8bit": False,
    "torch_dtype": "float32",
    "learning_rate": 2e-5,
    "sequence_len": 1024,
    "micro_batch_size": 8,  # transformers TrainingArguments
    "gradient_accumulation_steps": 1,
    "num_epochs": 3.0,
    "gradient_checkpointing": True,
    "sample_packing": False,
    "optimizer": "adamw_torch_fused",
    "chunked_loss": False,
    "output_dir": "trainer_output",
}
"""TRL 1.16.0's defaults for the settings rules read (checked against TRL's source by the tests)."""

ALIASES = {
    "r": "lora_r",
    "lora_rank": "lora_r",
    "rank": "lora_r",
    "alpha": "lora_alpha",
    "target_modules": "lora_target_modules",
    "lora_target": "lora_target_modules",
    "lora_target_linear": "lora_target_modules",
    "modules_to_save": "lora_modules_to_save",
    "peft_use_dora": "use_dora",
    "peft_use_rslora": "use_rslora",
    "base_model": "model_name_or_path",
    "base_model_name_or_path": "model_name_or_path",
    "sequence_len": "max_length",
    "cutoff_len": "max_length",
    "max_seq_len": "max_length",
    "micro_batch_size": "per_device_train_batch_size",
    "batch_size": "per_device_train_batch_size",
    "num_epochs": "num_train_epochs",
    "epochs": "num_train_epochs",
    "lr": "learning_rate",
    "optimizer": "optim",
    "quantization_bit": "load_in_4bit",
    "bnb_4bit_use_double_quant": "use_bnb_nested_quant",
    "adapter": "use_peft",
}
"""Other formats' names for TRL keys."""

DATASET_FIELDS = ("name", "split", "config", "data_dir")


def read(doc: Document) -> list[LoraSetup]:
    data = doc.data
    if not isinstance(data, dict):
        return []
    coerce_omegaconf_numbers(doc)  # argparse converts "2e-4" with the field's type: a number, not a mistake
    data = doc.data
    if data.get("use_peft") is not True:
        return _peft_disabled(doc)
    builder = SetupBuilder(doc, "trl")
    setup = builder.setup
    builder.take_all(KEY_SETTINGS)
    _targets(builder)
    _datasets(builder, data)
    for key in ("lora_target_parameters", "use_liger_kernel", "resume_from_checkpoint", "use_peft"):
        builder.extra(key, key)
    trl = schema("trl")
    builder.unknown_keys(data, trl, ALIASES, also_known=frozenset(trl.extras.get("alignment_handbook", {}).get("keys", ())))
    if isinstance(setup.get("max_steps"), int) and setup.get("max_steps") <= 0:
        del setup.settings["max_steps"]  # transformers' -1: train by epochs
    for name, value in DEFAULTS.items():
        setup.default(name, value)
    if setup.get("load_in_4bit"):
        setup.default("bnb_4bit_quant_type", "nf4")
        setup.default("bnb_4bit_use_double_quant", False)
        setup.default("bnb_4bit_compute_dtype", setup.get("torch_dtype"))
    return [setup]


def _peft_disabled(doc: Document) -> list[LoraSetup]:
    """Without ``use_peft: true`` TRL trains every weight: LoRA keys written beside it do nothing."""
    written = [key for key in PEFT_KEYS if doc.data.get(key) is not None]
    if not written:
        return []
    builder = SetupBuilder(doc, "trl")
    builder.take("base_model", "model_name_or_path")
    builder.setup.extras["adapter"] = False
    builder.extra("use_peft", "use_peft")
    for key in written:
        builder.note("peft-disabled", builder.location(key), key=key, use_peft=doc.data.get("use_peft"))
    return [builder.setup]


def _targets(builder: SetupBuilder) -> None:
    """``target_modules`` from ``lora_target_modules``; ``target_linear`` when that is ``all-linear``."""
    if not builder.take("target_modules", "lora_target_modules"):
        return
    targets = builder.setup.get("target_modules")
    if isinstance(targets, list) and len(targets) == 1:  # ModelConfig.__post_init__ unwraps a one-item list
        targets = targets[0]
        builder.setup.settings["target_modules"].value = targets
    location = builder.location("lora_target_modules")
    builder.setup.set("target_linear", targets == "all-linear", location)


def _datasets(builder: SetupBuilder, data: dict[str, Any]) -> None:
    """``dataset_name`` (ScriptArguments), ``datasets`` (DatasetMixtureConfig) or the handbook's ``dataset_mixture``."""
    records = []
    split = data.get("dataset_train_split", "train")
    if isinstance(data.get("dataset_name"), str):
        fields = {"split": split} | ({"name": data["dataset_config"]} if isinstance(data.get("dataset_config"), str) else {})
        records.append(dataset_record(data["dataset_name"], builder.location("dataset_name"), builder.config_dir, **fields))
    path: tuple[str, ...] = ("datasets",)
    entries = data.get("datasets")
    mixture = data.get("dataset_mixture")
    if entries is None and isinstance(mixture, dict):
        path, entries = ("dataset_mixture", "datasets"), mixture.get("datasets")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        source = entry.get("path", entry.get("id"))
        location = builder.doc.location(*path, index, "path" if "path" in entry else "id") or builder.location(*path, index)
        fields = {key: entry[key] for key in DATASET_FIELDS if key in entry}
        records.append(dataset_record(source, location, builder.config_dir, data_files=entry.get("data_files"), **fields))
    if records:
        key = "dataset_name" if isinstance(data.get("dataset_name"), str) else path[0]
        builder.datasets("datasets", records, key)
