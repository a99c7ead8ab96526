"""Which reader a loaded file belongs to, judged from its keys alone.

Each format has keys only it uses (``lora_r`` for axolotl, ``lora_rank`` for LLaMA-Factory,
``r`` for PEFT) and keys it shares with others (``lora_alpha``, ``learning_rate``). A file
scores 2 per format-specific key and 1 per shared key; the best format wins if it scores
at least :data:`MIN_SCORE` and has one key of its own, so a random YAML file (a workflow,
a compose file, another tool's settings) is not claimed. Unambiguous shapes are decided first: ``peft_type`` (PEFT), a file
named ``adapter_config.json`` (PEFT, or no format), ``use_peft`` (TRL), a ``_component_`` section (torchtune), a
``peft_config:`` mapping (LLaMA-Factory v1).
"""

from __future__ import annotations

import os

from lora_lint.lora_setup import TRAINING_SETTINGS
from lora_lint.readers import peft

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

MIN_SCORE = 3

SPECIFIC_KEYS = {
    "axolotl": frozenset(
        {
            "adapter",
            "lora_r",
            "lora_target_linear",
            "lora_target_modules",
            "lora_model_dir",
            "lora_modules_to_save",
            "lora_fan_in_fan_out",
            "peft_use_dora",
            "peft_use_rslora",
            "val_set_size",
            "dataset_prepared_path",
            "tokenizer_type",
            "wandb_project",
        }
    ),
    "llamafactory": frozenset(
        {
            "model_name_or_path",
            "finetuning_type",
            "lora_rank",
            "lora_target",
            "cutoff_len",
            "stage",
            "dataset_dir",
            "quantization_bit",
            "additional_target",
            "per_device_train_batch_size",
        }
    ),
    "trl": frozenset(
        {
            "use_peft",
            "lora_task_type",
            "use_bnb_nested_quant",
            "dataset_name",
            "dataset_config",
            "dataset_mixture",
            "dataset_text_field",
            "dataset_train_split",
            "model_revision",
            "max_seq_length",
        }
    ),
    "lora-config": frozenset({"r", "target_modules", "base_model_name_or_path"}),
}
SHARED_KEYS = {
    "axolotl": frozenset(
        {
            "base_model",
            "datasets",
            "micro_batch_size",
            "sequence_len",
            "num_epochs",
            "sample_packing",
            "lora_alpha",
            "lora_dropout",
            "load_in_4bit",
            "load_in_8bit",
            "learning_rate",
            "optimizer",
            "gradient_accumulation_steps",
            "gradient_checkpointing",
        }
    ),
    "llamafactory": frozenset(
        {
            "dataset",
            "template",
            "do_train",
            "num_train_epochs",
            "learning_rate",
            "gradient_accumulation_steps",
            "lora_alpha",
            "lora_dropout",
            "output_dir",
        }
    ),
    "trl": frozenset(
        {
            "model_name_or_path",
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "lora_target_modules",
            "per_device_train_batch_size",
            "num_train_epochs",
            "learning_rate",
            "gradient_accumulation_steps",
            "gradient_checkpointing",
            "max_length",
            "torch_dtype",
            "dtype",
            "bf16",
            "output_dir",
        }
    ),
    "lora-config": frozenset(set(peft.FIELD_SETTINGS) - {"r", "target_modules", "base_model_name_or_path"})
    | frozenset(TRAINING_SETTINGS),
}
PREFERENCE = ("axolotl", "llamafactory", "trl", "lora-config")
"""Order that breaks a tie."""


def detect_format(path: str, data: Any) -> str | None:
    """The format name of a file (see ``LoraSetup.format``), or None when it is no LoRA config we read."""
    if path.endswith(".py"):
        return "python"
    if not isinstance(data, dict):
        return None
    if "peft_type" in data:
        return "peft" if peft.is_lora(data) else None
    if os.path.basename(path) == "adapter_config.json":
        return "peft" if peft.is_lora(data) else None
    if "use_peft" in data:
        return "trl"
    for value in data.values():
        if isinstance(value, dict) and "_component_" in value:
            return "torchtune"
    if is_llamafactory_v1(data) and ("model" in data or "train_dataset" in data or "model_class" in data):
        return "llamafactory"
    keys = data.keys()  # the key sets hold only strings, so other keys never count
    scores = {fmt: 2 * len(keys & SPECIFIC_KEYS[fmt]) + len(keys & SHARED_KEYS[fmt]) for fmt in PREFERENCE}
    best = max(PREFERENCE, key=lambda fmt: scores[fmt])  # max keeps the first of equal scores
    return best if scores[best] >= MIN_SCORE and keys & SPECIFIC_KEYS[best] else None


def is_llamafactory_v1(data: dict[str, Any]) -> bool:
    """LLaMA-Factory's v1 form nests PEFT field names under ``peft_config:``."""
    return isinstance(data.get("peft_config"), dict)
