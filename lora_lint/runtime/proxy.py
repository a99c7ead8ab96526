"""Scale a model config down to a CPU proxy of the same family.

The proxy keeps what the adapter sees: the model class, the module names, the
grouped-query ratio, the ratio of MLP to hidden width, tied embeddings. It shrinks
what only costs time: depth, width, vocabulary, position tables, expert count.

Random Hugging Face inits draw weights with a fixed standard deviation
(``initializer_range``, typically 0.02). At 4096 wide that is about 1/sqrt(width); at
64 wide it is eight times too small, and the proxy's activations would be eight times
weaker than the real model's. The proxy therefore scales the init by
sqrt(full width / proxy width), which keeps each layer's signal gain, and reports the
width ratio so training can scale lora_A's learning rate the same way (muP: Adam's
step on a matrix must shrink with its fan-in to move features equally).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PROXY_HEAD_DIM = 16
PROXY_HEADS = 4
PROXY_LAYERS = 2
PROXY_VOCAB = 512  # random weights: the task's tokens are remapped into this range
PROXY_MAX_POSITIONS = 1024
PROXY_EXPERTS = 4
FULL_SIZE_LIMIT = 20_000_000
"""Models estimated below this many parameters are built as they are (a few ms per step on a CPU)."""

_KV_HEAD_KEYS = ("num_key_value_heads", "num_kv_heads", "multi_query_group_num")
_INTERMEDIATE_KEYS = ("intermediate_size", "n_inner", "ffn_dim", "d_ff", "ffn_hidden_size", "moe_intermediate_size",
                      "shared_expert_intermediate_size")  # fmt: skip
_HEAD_DIM_KEYS = ("head_dim", "d_kv", "kv_channels")
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")
_TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "sep_token_id")


@dataclass
class ProxyPlan:
    """How a config was shrunk: the width ratio for training and notes for the report."""

    width_ratio: float = 1.0
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # attribute -> (full, proxy)
    notes: list[str] = field(default_factory=list)


def estimated_parameters(config: Any) -> int:
    """Rough size (12 L h^2 + 2 V h) to decide whether a model needs a proxy at all."""
    text = _text_config(config)
    hidden = getattr(text, "hidden_size", 0) or 0
    layers = getattr(text, "num_hidden_layers", 0) or 0
    vocab = getattr(text, "vocab_size", 0) or 0
    experts = max([getattr(text, key, 1) or 1 for key in _EXPERT_KEYS])
    return int(12 * layers * hidden * hidden * max(1, experts // 2) + 2 * vocab * hidden)


def shrink_config(config: Any) -> ProxyPlan:
    """Shrink ``config`` (a transformers config, changed in place) to proxy size."""
    plan = ProxyPlan()
    text = _text_config(config)
    hidden = text.hidden_size
    heads = text.num_attention_heads
    kv_key = next((key for key in _KV_HEAD_KEYS if getattr(text, key, None)), None)
    kv_heads = getattr(text, kv_key) if kv_key else heads
    group = heads // kv_heads if kv_heads and heads % kv_heads == 0 else 1
    if kv_heads == 1 and heads > 1:
        proxy_heads, proxy_kv = PROXY_HEADS, 1  # multi-query stays multi-query
    else:
        proxy_kv = max(1, PROXY_HEADS // group)
        proxy_heads = proxy_kv * group
    proxy_hidden = proxy_heads * PROXY_HEAD_DIM
    plan.width_ratio = hidden / proxy_hidden
    layers = text.num_hidden_layers

    _change(plan, text, "hidden_size", proxy_hidden)
    _change(plan, text, "num_attention_heads", proxy_heads)
    if kv_key:
        _change(plan, text, kv_key, proxy_kv)
    for key in _HEAD_DIM_KEYS:
        if getattr(text, key, None):
            _change(plan, text, key, PROXY_HEAD_DIM)
    for key in _INTERMEDIATE_KEYS:
        value = getattr(text, key, None)
        if isinstance(value, int) and value > 0:
            _change(plan, text, key, max(8, round(value / plan.width_ratio / 8) * 8))
    if getattr(text, "word_embed_proj_dim", None) == hidden:
        _change(plan, text, "word_embed_proj_dim", proxy_hidden)
    if isinstance(getattr(text, "rotary_dim", None), int):
        _change(plan, text, "rotary_dim", min(text.rotary_dim, PROXY_HEAD_DIM))
    _change(plan, text, "num_hidden_layers", min(layers, PROXY_LAYERS))
    if isinstance(getattr(text, "num_decoder_layers", None), int):
        _change(plan, text, "num_decoder_layers", min(text.num_decoder_layers, PROXY_LAYERS))
    for key, value in list(vars(text).items()):
        if isinstance(value, list) and len(value) == layers and layers > PROXY_LAYERS:
            _change(plan, text, key, value[:PROXY_LAYERS])  # per-layer settings (layer_types, ...)
    for key in _EXPERT_KEYS:
        if isinstance(getattr(text, key, None), int) and getattr(text, key) > PROXY_EXPERTS:
            _change(plan, text, key, PROXY_EXPERTS)
    if isinstance(getattr(text, "num_experts_per_tok", None), int):
        _change(plan, text, "num_experts_per_tok", min(text.num_experts_per_tok, 2))
    if isinstance(getattr(text, "max_position_embeddings", None), int):
        _change(plan, text, "max_position_embeddings", min(text.max_position_embeddings, PROXY_MAX_POSITIONS))
    set_vocabulary(text, min(text.vocab_size, PROXY_VOCAB), plan)
    _shrink_vision_tower(config, plan)
    for target in {id(config): config, id(text): text}.values():
        if isinstance(getattr(target, "initializer_range", None), float):
            _change(plan, target, "initializer_range", target.initializer_range * math.sqrt(plan.width_ratio))
    plan.notes.append(
        f"CPU proxy: {layers} -> {text.num_hidden_layers} layers, hidden {hidden} -> {proxy_hidden}, "
        f"{heads}/{kv_heads} -> {proxy_heads}/{proxy_kv} attention/key-value heads"
    )
    return plan


def _shrink_vision_tower(config: Any, plan: ProxyPlan) -> None:
    """A vision-language model keeps its vision tower's width (the adapter's shapes) but only the first layers."""
    vision = getattr(config, "vision_config", None)
    key = next((k for k in ("num_hidden_layers", "depth") if isinstance(getattr(vision, k, None), int)), None)
    if key is None or getattr(vision, key) <= PROXY_LAYERS:
        return
    plan.notes.append(f"CPU proxy: vision tower {getattr(vision, key)} -> {PROXY_LAYERS} layers")
    setattr(vision, key, PROXY_LAYERS)
    for indexes in ("deepstack_visual_indexes", "fullatt_block_indexes"):  # layer indices into the tower
        if isinstance(getattr(vision, indexes, None), (list, tuple)):
            setattr(vision, indexes, [i for i in getattr(vision, indexes) if i < PROXY_LAYERS])


def set_vocabulary(config: Any, vocab_size: int, plan: ProxyPlan | None = None) -> None:
    """Set the vocabulary size and keep special token ids inside it."""
    text = _text_config(config)
    if plan is not None:
        _change(plan, text, "vocab_size", vocab_size)
    else:
        text.vocab_size = vocab_size
    for target in {id(config): config, id(text): text}.values():
        for key in _TOKEN_ID_KEYS:
            value = getattr(target, key, None)
            if isinstance(value, int) and value >= vocab_size:
                setattr(target, key, vocab_size - 1)
            elif isinstance(value, list):
                setattr(target, key, [min(v, vocab_size - 1) for v in value])


def _change(plan: ProxyPlan, config: Any, key: str, value: Any) -> None:
    before = getattr(config, key)
    if before != value:
        plan.changes.setdefault(key, (before, value))
        plan.changes[key] = (plan.changes[key][0], value)
        setattr(config, key, value)


def _text_config(config: Any) -> Any:
    """The language-model part of a config (multimodal configs nest it)."""
    getter = getattr(config, "get_text_config", None)
    return getter() if getter else config
