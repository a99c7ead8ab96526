"""torchtune recipe configs whose ``model:`` is a LoRA or QLoRA builder.

The adapter lives in the builder's arguments (``lora_rank``, ``lora_alpha``,
``lora_attn_modules``, ``apply_lora_to_mlp``, ...). Their defaults come from the builder
signatures of torchtune's releases and main branch, kept in ``framework_schemas/torchtune.json`` (read from
``torchtune/models/*/_model_builders.py`` by ``scripts/regenerate_schemas.py``; ``qlora_*``
builders are ``lora_*`` with ``quantize_base=True``). Only keys of the ``model:`` section are judged as unknown: a
builder rejects unexpected arguments, while the rest of a recipe config is free-form.

Module names are kept as written in ``extras["torchtune_modules"]``; ``target_modules``
carries the Hugging Face names the architecture model uses (``output_proj`` -> ``o_proj``,
``w1``/``w3``/``w2`` -> ``gate_proj``/``up_proj``/``down_proj``, output -> ``lm_head``).
torchtune ignores attention module names it does not know, so ``o_proj`` adapts nothing:
such names get an ``unknown-module`` note and are left out of ``target_modules``.

``loss._component_`` names the loss; ``CEWithChunkedOutputLoss`` (upcasts one chunk of logits at a
time) and ``LinearCrossEntropyLoss`` (projects and scores chunk by chunk) never hold the full fp32
logits, which is what ``chunked_loss`` tells the memory estimate.
"""

from __future__ import annotations

from lora_lint.document import Document
from lora_lint.lora_setup import LoraSetup
from lora_lint.readers.common import SetupBuilder, closest, coerce_omegaconf_numbers
from lora_lint.readers.dataset_size import dataset_record
from lora_lint.readers.schemas import bundled_data

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

ATTENTION_MODULES = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "output_proj": "o_proj"}
"""torchtune attention projections (``LORA_ATTN_MODULES``) and their Hugging Face names."""
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")  # torchtune w1, w3, w2
OUTPUT_MODULE = "lm_head"  # torchtune "output"

MODEL_SETTINGS = {
    "lora_rank": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "use_dora": "use_dora",
}

MODEL_ALIASES = {
    "r": "lora_rank",
    "lora_r": "lora_rank",
    "rank": "lora_rank",
    "alpha": "lora_alpha",
    "target_modules": "lora_attn_modules",
    "lora_target_modules": "lora_attn_modules",
    "lora_modules": "lora_attn_modules",
    "attn_modules": "lora_attn_modules",
    "lora_target_linear": "apply_lora_to_mlp",
    "load_in_4bit": "quantize_base",
    "dropout": "lora_dropout",
}
MODULE_ALIASES = {"o_proj": "output_proj", "out_proj": "output_proj", "wo": "output_proj", "wq": "q_proj", "wk": "k_proj", "wv": "v_proj"}

CHUNKED_LOSSES = ("CEWithChunkedOutputLoss", "LinearCrossEntropyLoss")
"""torchtune.modules.loss classes that never hold the full fp32 logits."""

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def builders() -> dict[str, dict[str, Any]]:
    """LoRA builder path -> {"defaults": {...}, "required": [...], "versions": [...]} (``framework_schemas/torchtune.json``)."""
    return bundled_data("torchtune")["builders"]


def builder_of(data: Any) -> str | None:
    model = data.get("model") if isinstance(data, dict) else None
    component = model.get("_component_") if isinstance(model, dict) else None
    return component if isinstance(component, str) else None


def is_lora_builder(component: str) -> bool:
    return component in builders() or component.rsplit(".", 1)[-1].startswith(("lora_", "qlora_"))


def read(doc: Document) -> list[LoraSetup]:
    component = builder_of(doc.data)
    if component is None or not is_lora_builder(component):
        return []  # full fine-tune, generation or evaluation config
    coerce_omegaconf_numbers(doc)
    data = doc.data
    model = data["model"]
    builder = SetupBuilder(doc, "torchtune")
    setup = builder.setup
    signature = builders().get(component)
    setup.start = builder.location("model") or setup.start
    setup.extras.update(builder=component, builder_known=signature is not None)
    defaults = signature["defaults"] if signature else {}

    for key, setting in MODEL_SETTINGS.items():
        builder.take(setting, "model", key)
    _targets(builder, model, defaults)
    if not builder.take("load_in_4bit", "model", "quantize_base"):
        setup.default("load_in_4bit", bool(defaults.get("quantize_base", False)))
    if setup.get("load_in_4bit"):
        setup.default("bnb_4bit_quant_type", "nf4")  # torchao NF4

    _context(builder, data)
    if signature is not None:
        builder.unknown_keys(model, frozenset(defaults) | set(signature["required"]) | {"_component_"}, MODEL_ALIASES, prefix=("model",))
    for key, setting in MODEL_SETTINGS.items():
        if key in defaults:
            setup.default(setting, defaults[key])
    for name, value in (("bias", "none"), ("use_rslora", False), ("init_lora_weights", True), ("task_type", "CAUSAL_LM")):
        setup.default(name, value)
    setup.default("gradient_checkpointing", False)
    setup.default("sample_packing", False)
    setup.default("chunked_loss", False)
    return [setup]


def _targets(builder: SetupBuilder, model: dict[str, Any], defaults: dict[str, Any]) -> None:
    setup = builder.setup
    written = model.get("lora_attn_modules")
    location = builder.location("model", "lora_attn_modules")
    hf_names: list[str] = []
    if written is not None:
        builder.typed("target_modules", written, location, "model.lora_attn_modules")
        names = written if isinstance(written, list) else [written]
        for index, name in enumerate(names):
            if name in ATTENTION_MODULES:
                hf_names.append(ATTENTION_MODULES[name])
            else:
                suggestion = MODULE_ALIASES.get(name) if isinstance(name, str) else None
                suggestion = suggestion or (closest(name, ATTENTION_MODULES) if isinstance(name, str) else None)
                builder.note(
                    "unknown-module",
                    builder.location("model", "lora_attn_modules", index),
                    key="model.lora_attn_modules",
                    value=name,
                    suggestion=suggestion,
                    choices=sorted(ATTENTION_MODULES),
                )
        setup.extras["torchtune_modules"] = list(names)
    mlp = _flag(builder, model, "apply_lora_to_mlp", defaults)
    output = _flag(builder, model, "apply_lora_to_output", defaults)
    if mlp:
        hf_names.extend(MLP_MODULES)
    if output:
        hf_names.append(OUTPUT_MODULE)
    setup.set("target_modules", hf_names, location, explicit=written is not None)
    setup.set("target_linear", False, location, explicit=written is not None)


def _flag(builder: SetupBuilder, model: dict[str, Any], key: str, defaults: dict[str, Any]) -> bool:
    value = model.get(key, defaults.get(key, False))
    builder.setup.extras[key] = value
    return value is True


def _is_chunked_loss(component: Any) -> Any:
    return isinstance(component, str) and component.rsplit(".", 1)[-1] in CHUNKED_LOSSES


def _context(builder: SetupBuilder, data: dict[str, Any]) -> None:
    setup = builder.setup
    builder.take("base_model", "checkpointer", "checkpoint_dir")
    builder.take("sequence_len", "tokenizer", "max_seq_len")
    builder.take("micro_batch_size", "batch_size")
    builder.take("gradient_accumulation_steps", "gradient_accumulation_steps")
    builder.take("num_epochs", "epochs")
    builder.take("learning_rate", "optimizer", "lr")
    builder.take("optimizer", "optimizer", "_component_")
    builder.take("gradient_checkpointing", "enable_activation_checkpointing")
    builder.take("output_dir", "output_dir")
    builder.take("chunked_loss", "loss", "_component_", transform=_is_chunked_loss)
    loss = builder.value("loss", "_component_")
    if isinstance(loss, str) and loss.endswith("CEWithChunkedOutputLoss"):
        setup.extras["loss_keeps_logits"] = True  # it upcasts chunk by chunk but builds the full logits
    if isinstance(data.get("dtype"), str):
        setup.set("torch_dtype", DTYPES.get(data["dtype"], data["dtype"]), builder.location("dtype"))
    builder.extra("max_steps_per_epoch", "max_steps_per_epoch")
    builder.extra("resume_from_checkpoint", "resume_from_checkpoint")
    if data.get("resume_from_checkpoint") is True:
        builder.take("resume_adapter", "checkpointer", "adapter_checkpoint")
    datasets = data.get("dataset")
    entries = datasets if isinstance(datasets, list) else [datasets] if isinstance(datasets, dict) else []
    records = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        path = ("dataset", index) if isinstance(datasets, list) else ("dataset",)
        if entry.get("packed") is True:
            setup.set("sample_packing", True, builder.location(*path, "packed"))
        fields = {key: entry[key] for key in ("_component_", "split") if key in entry}
        records.append(
            dataset_record(entry.get("source", entry.get("_component_")), builder.location(*path), builder.config_dir, data_files=entry.get("data_files"), **fields)
        )
    if records:
        builder.datasets("datasets", records, "dataset")
