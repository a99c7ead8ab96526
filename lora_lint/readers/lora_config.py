"""A plain LoraConfig in YAML or JSON: PEFT's field names at the top level, plus the training context.

Teams that drive ``peft`` from their own script often keep the adapter in a small file
that is splatted into ``LoraConfig(**cfg)``. lora-lint reads the same file, and lets it
carry the training context the checks need, under the neutral names of
:data:`TRAINING_KEYS` (documented in ``examples/README.md``):

    base_model, trust_remote_code, load_in_4bit, load_in_8bit, bnb_4bit_quant_type,
    bnb_4bit_compute_dtype, bnb_4bit_use_double_quant, torch_dtype, sequence_len,
    micro_batch_size, gradient_accumulation_steps, num_epochs, max_steps, learning_rate,
    optimizer, gradient_checkpointing, sample_packing, attn_implementation, chunked_loss, datasets,
    val_datasets, val_size, max_samples, dataset_examples, resume_adapter, output_dir, num_labels

``datasets`` is a list whose items are a path/hub id or a mapping with ``path`` (and
optionally ``split``, ``type``, ``data_files``); ``max_samples`` caps each dataset.
"""

from __future__ import annotations


from lora_lint.document import Document
from lora_lint.lora_setup import TRAINING_SETTINGS, LoraSetup
from lora_lint.readers import peft
from lora_lint.readers.common import SetupBuilder
from lora_lint.readers.dataset_size import dataset_record

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

TRAINING_KEYS = frozenset(TRAINING_SETTINGS) | {"num_labels"}
"""Training-context keys of this format: exactly the normalized setting names."""

ALIASES = {
    **peft.ALIASES,
    "model_name_or_path": "base_model",
    "cutoff_len": "sequence_len",
    "max_seq_length": "sequence_len",
    "max_seq_len": "sequence_len",
    "per_device_train_batch_size": "micro_batch_size",
    "batch_size": "micro_batch_size",
    "num_train_epochs": "num_epochs",
    "epochs": "num_epochs",
    "lr": "learning_rate",
    "optim": "optimizer",
    "dataset": "datasets",
    "val_set_size": "val_size",
    "lora_model_dir": "resume_adapter",
    "adapter_name_or_path": "resume_adapter",
    "bf16": "torch_dtype",
    "fp16": "torch_dtype",
    "dtype": "torch_dtype",
}


def read(doc: Document) -> list[LoraSetup]:
    if not isinstance(doc.data, dict):
        return []
    builder = SetupBuilder(doc, "lora-config")
    peft.take_fields(builder)
    for name in (*TRAINING_SETTINGS, "num_labels"):
        if name not in ("datasets", "val_datasets"):
            builder.take(name, name)
    for name in ("datasets", "val_datasets"):
        entries = doc.data.get(name)
        if entries is not None:
            builder.datasets(name, _records(builder, name, entries), name, max_samples=builder.setup.get("max_samples"))
    builder.unknown_keys(doc.data, peft.known_fields() | TRAINING_KEYS, ALIASES)
    peft.apply_defaults(builder.setup)
    return [builder.setup]


def _records(builder: SetupBuilder, name: str, entries: Any) -> list[dict[str, Any]]:
    entries = entries if isinstance(entries, list) else [entries]
    records = []
    for index, entry in enumerate(entries):
        location = builder.doc.location(name, index, "path") or builder.location(name, index)
        if isinstance(entry, dict):
            fields = {k: entry[k] for k in ("split", "type", "name") if k in entry}
            record = dataset_record(entry.get("path"), location, builder.config_dir, data_files=entry.get("data_files"), **fields)
        else:
            record = dataset_record(entry, location, builder.config_dir)
        records.append(record)
    return records
