"""Build the base model a config names and apply its adapter with PEFT.

On CUDA the real architecture is built at full size: from local weights when the base
model is a local folder that has them, else with random weights of the right shapes.
4-bit configs load through bitsandbytes NF4, which only ``from_pretrained`` applies, so
random weights are saved to a temporary folder first and loaded back quantized.
On a CPU the same family is scaled down (:mod:`lora_lint.runtime.proxy`) unless it is
already small. The network is never used: ``HF_HUB_OFFLINE=1`` is set before
transformers is imported, and remote code runs only when the caller allows it.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_lint.lora_setup import LoraSetup
from lora_lint.runtime.proxy import FULL_SIZE_LIMIT, ProxyPlan, estimated_parameters, shrink_config

os.environ["HF_HUB_OFFLINE"] = "1"

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16", "fp32": "float32",
           "float32": "float32"}  # fmt: skip


class BuildError(Exception):
    """The model or the adapter cannot be built as the config describes."""


class Unsupported(Exception):
    """The runtime cannot check this config here (not the config's fault): the check is skipped."""


@dataclass
class BuiltModel:
    """A PEFT model ready to train, and how it relates to the model the config describes."""

    model: Any
    config: dict[str, Any]  # config.json of the model actually built
    setup: LoraSetup  # the adapter actually applied (ranks clamped on a narrow proxy)
    device: str
    dtype: str
    quantization: str | None  # "nf4" or None
    weights: str  # "random" or "local"
    task_type: str
    proxy: ProxyPlan | None = None
    gradient_checkpointing: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def width_ratio(self) -> float:
        return self.proxy.width_ratio if self.proxy else 1.0

    def describe(self) -> dict[str, Any]:
        return {
            "model_type": self.config.get("model_type"),
            "model_class": type(self.model.get_base_model()).__name__,
            "device": self.device,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "weights": self.weights,
            "proxy": self.proxy is not None,
            "proxy_changes": {k: list(v) for k, v in self.proxy.changes.items()} if self.proxy else {},
            "gradient_checkpointing": self.gradient_checkpointing,
            "notes": self.notes,
        }


def transformers_config(config: dict[str, Any], model_dir: str | None, trust_remote_code: bool) -> Any:
    """A transformers config object for a config.json dict (custom code only when trusted)."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type in CONFIG_MAPPING:
        values = {k: v for k, v in config.items() if k != "model_type"}
        return AutoConfig.for_model(model_type, **values)
    if not trust_remote_code:
        raise Unsupported(f"model type {model_type!r} is not built into transformers; its code runs only with "
                          "--lora-trust-remote-code")  # fmt: skip
    if not model_dir:
        raise Unsupported(f"model type {model_type!r} needs its own code, and no local folder holds it")
    return AutoConfig.from_pretrained(model_dir, trust_remote_code=True)


def local_weights_dir(model_path: str | None) -> Path | None:
    """The folder of a locally resolved model when it holds weights."""
    if not model_path:
        return None
    folder = Path(model_path)
    folder = folder if folder.is_dir() else folder.parent
    return folder if any((folder / name).is_file() for name in WEIGHT_FILES) else None


def build_model(
    setup: LoraSetup,
    config: dict[str, Any],
    *,
    model_path: str | None,
    device: str,
    trust_remote_code: bool,
    seed: int,
) -> BuiltModel:
    """Build the base model (full size on CUDA, a proxy on CPU when large) and apply the adapter."""
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # shard-writing bars would drown the check's own output
    hf_config = transformers_config(config, model_path, trust_remote_code)
    notes: list[str] = []
    proxy = None
    if device == "cpu" and estimated_parameters(hf_config) > FULL_SIZE_LIMIT:
        proxy = shrink_config(hf_config)
        notes += proxy.notes
    weights_dir = local_weights_dir(model_path) if proxy is None else None
    quantize = setup.get("load_in_4bit") is True
    if setup.get("load_in_8bit") is True:
        notes.append("8-bit loading is not reproduced: the base model is built unquantized")
    dtype = _train_dtype(setup, device)
    task_type = _task_type(setup, config)
    model_class = _described_class(config, task_type) or _model_class(task_type)
    torch.manual_seed(seed)
    try:
        if quantize:
            model = _load_nf4(model_class, hf_config, weights_dir, device, dtype, setup, trust_remote_code)
        elif weights_dir is not None:
            model = model_class.from_pretrained(str(weights_dir), dtype=dtype, device_map={"": device},
                                                trust_remote_code=trust_remote_code)  # fmt: skip
        else:
            with torch.device(device):
                model = model_class.from_config(hf_config, dtype=dtype, trust_remote_code=trust_remote_code)
    except (ValueError, RuntimeError, TypeError, AttributeError, KeyError) as exc:
        if "Unrecognized configuration class" in str(exc):
            raise Unsupported(f"transformers has no {task_type} model for {config.get('model_type')!r}") from exc
        raise BuildError(f"transformers cannot build {config.get('model_type')!r}: {exc}") from exc
    model.config.use_cache = False
    checkpointing = setup.get("gradient_checkpointing") is True
    if quantize:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})  # fmt: skip
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    applied = adapter_for_model(setup, model.config.to_dict(), proxy, notes)
    peft_model = apply_adapter(model, applied, task_type)
    keep_training_mode(peft_model)
    return BuiltModel(
        model=peft_model,
        config=model.config.to_dict(),
        setup=applied,
        device=device,
        dtype=str(dtype).removeprefix("torch."),
        quantization="nf4" if quantize else None,
        weights="local" if weights_dir is not None else "random",
        task_type=task_type,
        proxy=proxy,
        gradient_checkpointing=checkpointing,
        notes=notes,
    )


def keep_training_mode(model: Any) -> None:
    """Train mode, and no inference-only 4-bit kernels, whatever forward comes first.

    bitsandbytes repacks a Linear4bit for a CPU kernel that has no backward the first
    time it runs in eval mode without grad (on CPUs with AVX512-BF16); every LoRA grad
    is None from then on. Turning that path off keeps evaluation forwards safe.
    """
    model.train()
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def _load_nf4(model_class: Any, hf_config: Any, weights_dir: Path | None, device: str, dtype: Any,
              setup: LoraSetup, trust_remote_code: bool) -> Any:  # fmt: skip
    import torch
    from transformers import BitsAndBytesConfig

    compute = _DTYPES.get(str(setup.get("bnb_4bit_compute_dtype") or ""), None)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=str(setup.get("bnb_4bit_quant_type") or "nf4"),
        bnb_4bit_use_double_quant=setup.get("bnb_4bit_use_double_quant") is True,
        bnb_4bit_compute_dtype=getattr(torch, compute) if compute else dtype,
    )
    load = {"quantization_config": quantization, "device_map": {"": device}, "dtype": dtype,
            "trust_remote_code": trust_remote_code}  # fmt: skip
    if weights_dir is not None:
        return model_class.from_pretrained(str(weights_dir), **load)
    with tempfile.TemporaryDirectory(prefix="lora-lint-") as folder:
        with torch.device(device):
            random_model = model_class.from_config(hf_config, dtype=dtype, trust_remote_code=trust_remote_code)
        random_model.save_pretrained(folder)
        del random_model
        return model_class.from_pretrained(folder, **load)


def adapter_for_model(
    setup: LoraSetup, built_config: dict[str, Any], proxy: ProxyPlan | None, notes: list[str]
) -> LoraSetup:
    """The setup to apply: on a narrow proxy, ranks above its width are clamped (alpha/r kept)."""
    if proxy is None:
        return setup
    applied = copy.deepcopy(setup)
    width = _narrowest_width(built_config)
    rslora = setup.get("use_rslora") is True
    r, alpha = setup.get("r"), setup.get("lora_alpha")
    if isinstance(r, int) and r > width:
        applied.set("r", width, setup.location_of("r"))
        if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
            ratio = math.sqrt(width / r) if rslora else width / r
            applied.set("lora_alpha", alpha * ratio, setup.location_of("lora_alpha"))
        notes.append(f"rank {r} is wider than the proxy's narrowest adapted layer ({width}): clamped to {width}, "
                     "lora_alpha scaled to keep the update scale")  # fmt: skip
    pattern = setup.get("rank_pattern")
    if isinstance(pattern, dict) and any(isinstance(v, int) and v > width for v in pattern.values()):
        applied.set("rank_pattern", {k: min(v, width) if isinstance(v, int) else v for k, v in pattern.items()})
        notes.append(f"rank_pattern values above {width} clamped on the proxy")
    layers = setup.get("layers_to_transform")
    depth = int(built_config.get("num_hidden_layers") or built_config.get("n_layer") or 0)
    if isinstance(layers, int):
        layers = [layers]
    if isinstance(layers, list) and depth and any(isinstance(i, int) and i >= depth for i in layers):
        kept = sorted({i for i in layers if isinstance(i, int) and i < depth}) or [depth - 1]
        applied.set("layers_to_transform", kept, setup.location_of("layers_to_transform"))
        notes.append(f"layers_to_transform {layers} mapped onto the proxy's {depth} layers as {kept}")
    return applied


def _narrowest_width(config: dict[str, Any]) -> int:
    text = config.get("text_config") or config
    hidden = int(text.get("hidden_size") or text.get("n_embd") or 64)
    heads = int(text.get("num_attention_heads") or text.get("n_head") or 1)
    kv = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or hidden // heads)
    return min(hidden, kv * head_dim)


def lora_config(setup: LoraSetup, built_config: dict[str, Any], task_type: str) -> Any:
    """PEFT's LoraConfig for a setup, with PEFT's defaults where the setup is silent."""
    from peft import LoraConfig

    from lora_lint.arch.counting import AdapterSpec

    spec = AdapterSpec.from_setup(setup)
    targets = spec.target_modules
    if spec.target_linear:
        targets = (
            "all-linear" if not targets else sorted({*_listed(targets), *linear_leaf_names(built_config, task_type)})
        )
    init = setup.get("init_lora_weights", True)
    kwargs: dict[str, Any] = {
        "r": spec.r,
        "lora_alpha": spec.lora_alpha,
        "lora_dropout": spec.lora_dropout,
        "target_modules": targets,
        "exclude_modules": spec.exclude_modules,
        "layers_to_transform": spec.layers_to_transform,
        "layers_pattern": spec.layers_pattern,
        "rank_pattern": spec.rank_pattern,
        "alpha_pattern": spec.alpha_pattern,
        "bias": spec.bias,
        "use_dora": spec.use_dora,
        "use_rslora": spec.use_rslora,
        "modules_to_save": spec.modules_to_save,
        "init_lora_weights": init if isinstance(init, (bool, str)) else True,
        "task_type": task_type,
    }
    if setup.get("fan_in_fan_out") is True:
        kwargs["fan_in_fan_out"] = True
    try:
        return LoraConfig(**kwargs)
    except (ValueError, TypeError) as exc:
        raise BuildError(f"PEFT rejects the adapter settings: {exc}") from exc


def _listed(targets: list[str] | str) -> list[str]:
    return [targets] if isinstance(targets, str) else list(targets)


def linear_leaf_names(config: dict[str, Any], task_type: str) -> list[str]:
    """Leaf names of the layers "all-linear" adapts, from the architecture model."""
    from lora_lint.arch.counting import AdapterSpec, count_parameters
    from lora_lint.arch.families import architecture_for

    count = count_parameters(architecture_for(config, task_type), AdapterSpec(target_linear=True))
    return sorted({layer.name.rsplit(".", 1)[-1] for layer in count.layers})


def apply_adapter(model: Any, setup: LoraSetup, task_type: str) -> Any:
    from peft import get_peft_model

    config = lora_config(setup, model.config.to_dict(), task_type)
    try:
        return get_peft_model(model, config)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise BuildError(f"PEFT cannot apply the adapter: {exc}") from exc


def _train_dtype(setup: LoraSetup, device: str) -> Any:
    """fp32 on CPU (bf16 matmuls are slow there and add nothing to a check); the config's precision on CUDA."""
    import torch

    if device == "cpu":
        return torch.float32
    name = _DTYPES.get(str(setup.get("torch_dtype") or "").lower(), "bfloat16")
    if name == "bfloat16" and not torch.cuda.is_bf16_supported():
        name = "float16"
    return getattr(torch, name)


def _task_type(setup: LoraSetup, config: dict[str, Any]) -> str:
    task = setup.get("task_type")
    if isinstance(task, str) and task.upper() in ("CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM"):
        return task.upper()
    return "SEQ_2_SEQ_LM" if config.get("is_encoder_decoder") else "CAUSAL_LM"


def _described_class(config: dict[str, Any], task_type: str) -> Any:
    """The Auto class that builds what the architecture model describes, where the task's own has no entry for the
    family (vision-language models, Whisper, ViT): counts and the smoke run then see the same model."""
    import transformers
    from transformers.models.auto import modeling_auto

    from lora_lint.arch.families import UnsupportedArchitecture, architecture_for

    try:
        name = architecture_for(config, task_type).model_class
    except (UnsupportedArchitecture, TypeError, KeyError, ValueError):
        return None
    autos = {
        "AutoModelForImageTextToText": modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
        "AutoModelForSpeechSeq2Seq": modeling_auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
        "AutoModelForImageClassification": modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
    }
    model_type = config.get("model_type")
    return next((getattr(transformers, auto) for auto, names in autos.items() if name and names.get(model_type) == name), None)


def _model_class(task_type: str) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    return {"SEQ_CLS": AutoModelForSequenceClassification, "SEQ_2_SEQ_LM": AutoModelForSeq2SeqLM}.get(
        task_type, AutoModelForCausalLM
    )
