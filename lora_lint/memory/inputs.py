"""The training settings that decide memory, read from a setup with trainers' defaults.

A setup says ``optimizer: paged_adamw_8bit`` or ``torch_dtype: bfloat16``; the estimator
needs bytes per optimizer state, bytes per activation and a quantization scheme. This
module does that translation once, so the estimator works on plain numbers.
"""

from __future__ import annotations

from lora_lint.record import Record, replace

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lora_lint.lora_setup import LoraSetup

DEFAULT_SEQUENCE_LEN = 2048
"""axolotl's default ``sequence_len``; the length most LoRA recipes train at."""
DEFAULT_MICRO_BATCH = 1


class Optimizer(Record):
    """How much state an optimizer keeps per trainable parameter."""

    name: str
    state_bytes_per_param: float
    paged: bool = False
    """bitsandbytes paged optimizers keep their state in CUDA unified memory: same size, but
    the driver evicts it to CPU RAM under pressure instead of failing the allocation."""


_EIGHT_BIT_STATE = 1 + 4 / 2048
"""bitsandbytes 8-bit optimizer state: 1 byte per value plus one fp32 absmax per 2048-value block
(``bitsandbytes.optim.optimizer.Optimizer8bit``, blockwise=True)."""

_ADAMW_NAMES = (
    "adamw_torch", "adamw_torch_fused", "adamw_hf", "adamw", "adam", "adamw_apex_fused", "adamw_anyprecision",
    "adamw_torch_xla", "adamw_torch_npu_fused", "schedule_free_adamw", "adamw_bnb_32bit", "adamw_32bit",
    "bnb_adamw_32bit",
)  # fmt: skip
"""Names (HF ``optim``, axolotl ``optimizer``) of AdamW with two fp32 moments (``exp_avg``, ``exp_avg_sq``)."""
_ADAMW_8BIT_NAMES = ("adamw_bnb_8bit", "adamw_8bit", "adam8bit", "adamw8bit", "bnb_8bit", "adamw_torch_8bit")

_OPTIMIZERS: dict[str, Optimizer] = {
    **{name: Optimizer(name, 8.0) for name in _ADAMW_NAMES},
    **{name: Optimizer(name, 2 * _EIGHT_BIT_STATE) for name in _ADAMW_8BIT_NAMES},
    "adamw_torch_4bit": Optimizer("adamw_torch_4bit", 1.0),
    "paged_adamw_32bit": Optimizer("paged_adamw_32bit", 8.0, paged=True),
    "paged_adamw_8bit": Optimizer("paged_adamw_8bit", 2 * _EIGHT_BIT_STATE, paged=True),
    "lion_32bit": Optimizer("lion_32bit", 4.0),
    "lion_8bit": Optimizer("lion_8bit", _EIGHT_BIT_STATE),
    "paged_lion_32bit": Optimizer("paged_lion_32bit", 4.0, paged=True),
    "paged_lion_8bit": Optimizer("paged_lion_8bit", _EIGHT_BIT_STATE, paged=True),
    "ademamix": Optimizer("ademamix", 12.0),
    "ademamix_8bit": Optimizer("ademamix_8bit", 3 * _EIGHT_BIT_STATE),
    "paged_ademamix_32bit": Optimizer("paged_ademamix_32bit", 12.0, paged=True),
    "paged_ademamix_8bit": Optimizer("paged_ademamix_8bit", 3 * _EIGHT_BIT_STATE, paged=True),
    "rmsprop": Optimizer("rmsprop", 4.0),
    "adagrad": Optimizer("adagrad", 4.0),
    "sgd": Optimizer("sgd", 0.0),  # HF's "sgd" is torch.optim.SGD without momentum
}
ASSUMED_OPTIMIZER = _OPTIMIZERS["adamw_torch"]
"""Unnamed or unknown optimizers are costed as AdamW, the trainers' default (and the largest common one)."""


def optimizer_named(name: str | None) -> Optimizer | None:
    """The optimizer for a trainer's name (``paged_adamw_8bit``), None when unknown."""
    if not isinstance(name, str):
        return None
    return _OPTIMIZERS.get(name.strip().lower().replace("-", "_"))


_DTYPE_BYTES = {"bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2, "float32": 4, "fp32": 4, "float": 4}


class TrainingInputs(Record):
    """Everything besides the model that decides the memory of a LoRA run.

    ``assumed`` lists the settings the file did not give and the estimate filled in
    (sequence length 2048, micro batch 1, AdamW, bf16), so a report can say so.
    """

    sequence_len: int = DEFAULT_SEQUENCE_LEN
    micro_batch_size: int = DEFAULT_MICRO_BATCH
    gradient_checkpointing: bool = False
    optimizer: Optimizer = ASSUMED_OPTIMIZER
    weight_bytes: int = 2
    """Bytes per unquantized base weight (the checkpoint's dtype: bf16 for current models)."""
    activation_bytes: int = 2
    """Bytes per activation value: 2 under bf16/fp16 mixed precision, 4 in fp32."""
    quantization: str | None = None  # None | "int8" | "nf4" | "fp4"
    double_quant: bool = False
    """Quantization constants quantized again (bitsandbytes' ``bnb_4bit_use_double_quant``; always for torchtune,
    whose torchao ``NF4Tensor`` keeps int8 scalers per 64 weights with one scale per 256 of them)."""
    kbit_upcast: bool = True
    """PEFT's ``prepare_model_for_kbit_training`` casts every non-quantized fp16/bf16 parameter to fp32
    (``peft/utils/other.py``) and leaves them there; whether embeddings, head and norms end that way
    depends on the framework (see :func:`kbit_convention`)."""
    kbit_prepared: bool = True
    """``prepare_model_for_kbit_training`` ran. Fused MoE experts that were not quantized stay in fp32 then,
    even where the framework casts embeddings, head and norms back (axolotl)."""
    experts_quantized: bool = False
    """Fused MoE expert weights quantized like the linears (axolotl's ``quantize_moe_experts``)."""
    norms_fp32: bool = False
    """Only the norm weights are fp32 (LLaMA-Factory's ``upcast_layernorm``); embeddings and head are not."""
    convention: str | None = None
    """Which framework's handling of the unquantized weights of a 4/8-bit model was assumed, in words."""
    attn_implementation: str = "sdpa"  # "eager" | "sdpa" | "flash_attention_2" (and _3)
    lora_dropout: float = 0.0
    chunked_loss: bool = False
    """A fused linear + cross-entropy loss (Liger, Cut Cross-Entropy) that never builds full logits."""
    loss_keeps_logits: bool = False
    """A chunked loss that still builds the full logits and only upcasts one chunk at a time (torchtune's
    ``CEWithChunkedOutputLoss``, axolotl's ``chunked_cross_entropy``)."""
    assumed: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        """Tokens in one micro batch: what activations scale with (packing fills each row to sequence_len)."""
        return self.sequence_len * self.micro_batch_size

    def with_changes(self, **changes: Any) -> TrainingInputs:
        """A copy with some settings changed: what a suggestion re-estimates."""
        return replace(self, **changes)

    @classmethod
    def from_setup(cls, setup: LoraSetup) -> TrainingInputs:
        """Read the memory-relevant settings of ``setup``; absent ones take the trainers' defaults."""
        assumed: list[str] = []

        def positive_int(name: str, default: int) -> int:
            value = setup.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
            assumed.append(name)
            return default

        optimizer = optimizer_named(setup.get("optimizer"))
        if optimizer is None:
            assumed.append("optimizer")
            optimizer = ASSUMED_OPTIMIZER
        weight_bytes = _DTYPE_BYTES.get(str(setup.get("torch_dtype", "")).lower().removeprefix("torch."))
        if weight_bytes is None:
            assumed.append("torch_dtype")
            weight_bytes = 2
        quantization = None
        if setup.get("load_in_4bit") is True:
            quantization = "fp4" if str(setup.get("bnb_4bit_quant_type", "nf4")).lower() == "fp4" else "nf4"
        elif setup.get("load_in_8bit") is True:
            quantization = "int8"
        prepared, upcast, norms_fp32, convention = kbit_convention(setup) if quantization else (True, True, False, None)
        experts_quantized = quantization is not None and setup.format == "axolotl" and setup.extras.get("quantize_moe_experts") is True
        if experts_quantized:
            prepared = upcast = False
            convention = ("axolotl quantizes the MoE experts while loading (quantize_moe_experts) and then skips "
                          "prepare_model_for_kbit_training: embeddings, head and norms stay in the training dtype")  # fmt: skip
        compute = _DTYPE_BYTES.get(str(setup.get("bnb_4bit_compute_dtype", "")).lower().removeprefix("torch."))
        dropout = setup.get("lora_dropout", 0.0)
        return cls(
            sequence_len=positive_int("sequence_len", DEFAULT_SEQUENCE_LEN),
            micro_batch_size=positive_int("micro_batch_size", DEFAULT_MICRO_BATCH),
            gradient_checkpointing=_is_on(setup.get("gradient_checkpointing")),
            optimizer=optimizer,
            weight_bytes=weight_bytes,
            activation_bytes=compute or weight_bytes,
            quantization=quantization,
            double_quant=setup.get("bnb_4bit_use_double_quant") is True or (setup.format == "torchtune" and quantization == "nf4"),
            kbit_upcast=upcast,
            kbit_prepared=prepared,
            experts_quantized=experts_quantized,
            norms_fp32=norms_fp32,
            convention=convention,
            attn_implementation=str(setup.get("attn_implementation") or "sdpa").lower(),
            lora_dropout=float(dropout) if isinstance(dropout, (int, float)) and not isinstance(dropout, bool) else 0.0,
            chunked_loss=setup.get("chunked_loss") is True,
            loss_keeps_logits=setup.extras.get("loss_keeps_logits") is True,
            assumed=tuple(assumed),
        )


PEFT_CONVENTION = "PEFT's prepare_model_for_kbit_training keeps embeddings, head and norms in fp32"

_KBIT_CONVENTIONS: dict[str, tuple[bool, bool, str]] = {
    "torchtune": (False, False, ("torchtune QLoRA keeps embeddings and output in the training dtype (it never calls "
                                 "prepare_model_for_kbit_training)")),
    "axolotl": (True, False, ("axolotl calls prepare_model_for_kbit_training, then casts embeddings, head and norms "
                              "back to the training dtype")),
    "trl": (False, False, ("TRL's trainers do not call prepare_model_for_kbit_training: embeddings, head and norms "
                           "stay in the training dtype")),
    "peft": (True, True, PEFT_CONVENTION + " (assumed: the trainer is not named in the file)"),
    "lora-config": (True, True, PEFT_CONVENTION + " (assumed: the trainer is not named in the file)"),
}
"""Per reader format: whether ``prepare_model_for_kbit_training`` runs, whether its fp32 upcast of embeddings,
head and norms is still in place while training, and why.

Read in each framework's model loading code: torchtune builds QLoRA models with ``quantize_base`` and
plain bf16 embeddings and output; axolotl's ``ModelLoader._configure_embedding_dtypes`` runs
``prepare_model_for_kbit_training`` and then ``_convert_embedding_modules_dtype`` back to ``torch_dtype``
for every LoRA/QLoRA run (FSDP-QLoRA and DeepSpeed ZeRO-3 skip the upcast instead); LLaMA-Factory and
TRL's SFTTrainer never call it. A Python script does exactly when it calls it. axolotl's cast back
(``_convert_embedding_modules_dtype``) reaches norms, router gates and embeddings by name, not fused experts."""


def kbit_convention(setup: LoraSetup) -> tuple[bool, bool, bool, str]:
    """(prepare_model_for_kbit_training runs, its fp32 upcast of embeddings/head/norms kept, only norms in fp32,
    the convention in words) for a 4/8-bit model of ``setup``."""
    if setup.format == "llamafactory":
        norms = any(use.key == "upcast_layernorm" and use.value is True for use in setup.keys)
        text = "LLaMA-Factory does not call prepare_model_for_kbit_training: embeddings and head stay in the compute dtype"
        return False, False, norms, text + (", norms in fp32 (upcast_layernorm)" if norms else "")
    if setup.format == "python":
        if setup.extras.get("prepare_model_for_kbit_training") is True:
            return True, True, False, "the script calls prepare_model_for_kbit_training: embeddings, head and norms in fp32"
        return False, False, False, "the script does not call prepare_model_for_kbit_training: embeddings, head and norms stay in their loaded dtype"
    if setup.format == "axolotl" and _axolotl_skips_kbit_preparation(setup):
        return False, False, False, ("axolotl skips prepare_model_for_kbit_training under FSDP-QLoRA and DeepSpeed "
                                     "ZeRO-3: every unquantized weight stays in the training dtype")  # fmt: skip
    prepared, upcast, text = _KBIT_CONVENTIONS.get(setup.format, _KBIT_CONVENTIONS["peft"])
    return prepared, upcast, False, text


_STORED_QUANTIZATION = (
    r"[-_.](nvfp4|mxfp4|fp8(?:-dynamic)?|gptq(?:-int[48])?|awq|int[48]|w[48]a(?:8|16)|exl2|hqq|aqlm)(?:$|[-_.])"
)
"""Name parts of checkpoints that store their weights in a format other than bitsandbytes' (which the estimator
models): the loaded model's size depends on that format's own layout."""


def why_memory_unchecked(setup: LoraSetup, base_model: Any) -> str | None:
    """Why no single GPU can be compared with the estimate, or None when it can.

    FSDP and DeepSpeed ZeRO-3 spread the weights over a number of devices that is a launcher setting, never in the
    config; a checkpoint stored as NVFP4, FP8, GPTQ, AWQ... loads at a size the estimator does not model.
    """
    extras = setup.extras
    if extras.get("fsdp") is True:
        return "FSDP shards the weights over a number of GPUs the config does not state"
    if _deepspeed_stage(extras.get("deepspeed"), setup.path) == 3:
        return "DeepSpeed ZeRO-3 shards the weights over a number of GPUs the config does not state"
    if isinstance(base_model, str):
        import re

        stored = re.search(_STORED_QUANTIZATION, base_model.rsplit("/", 1)[-1], flags=re.IGNORECASE)
        if stored:
            return f"{base_model} stores its weights as {stored.group(1).upper()}, a format the estimate does not model"
    return None


def _axolotl_skips_kbit_preparation(setup: LoraSetup) -> bool:
    """axolotl's ``ModelLoader``: FSDP with ``adapter: qlora``, or a DeepSpeed ZeRO-3 config, keeps one dtype."""
    extras = setup.extras
    if extras.get("fsdp") is True and extras.get("adapter") == "qlora":
        return True
    return _deepspeed_stage(extras.get("deepspeed"), setup.path) == 3


def _deepspeed_stage(deepspeed: Any, config_path: str) -> int | None:
    """The ZeRO stage of an inline DeepSpeed config or of the JSON file it names (axolotl's ``zero3*.json`` by name)."""
    if isinstance(deepspeed, dict):
        zero = deepspeed.get("zero_optimization")
        stage = zero.get("stage") if isinstance(zero, dict) else None
        return stage if isinstance(stage, int) else None
    if not isinstance(deepspeed, str) or not deepspeed:
        return None
    import json
    import os

    for candidate in (os.path.join(os.path.dirname(config_path), deepspeed), deepspeed):
        try:
            if not os.path.isfile(candidate) or os.path.getsize(candidate) > 1_000_000:  # a device, a FIFO, not a config
                continue
            with open(candidate, encoding="utf-8") as handle:
                return _deepspeed_stage(json.load(handle), config_path)
        except (OSError, ValueError, RecursionError):
            continue
    return 3 if "zero3" in os.path.basename(deepspeed).lower() else None


def _is_on(value: Any) -> bool:
    """``True``, or a mode name such as axolotl's ``unsloth`` / ``offload``, turns checkpointing on."""
    return value is True or (isinstance(value, str) and value.strip().lower() not in {"", "false", "no", "off", "none"})
