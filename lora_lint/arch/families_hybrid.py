"""Hybrid decoders: linear-attention (Gated DeltaNet) layers between full-attention layers.

Qwen3.5 and Qwen3-Next interleave Gated DeltaNet layers (``linear_attn``: input
projections, a depthwise short convolution, per-head decay parameters) with gated full
attention (``q_proj`` twice as wide: queries and their output gate). Which layer is which
comes from ``layer_types``, or from ``full_attention_interval`` when the config lists none.

A multimodal Qwen3.5 config (``model_type`` ``qwen3_5``/``qwen3_5_moe``) is described by
its language model: ``AutoModelForCausalLM`` builds ``Qwen3_5ForCausalLM`` from it and
leaves the vision tower out (a text fine-tune never loads it).
"""

from __future__ import annotations

from lora_lint.arch.families import (
    CAUSAL_LM,
    Builder,
    Config,
    Family,
    Layout,
    _defaults,
    _gated_mlp,
    _head,
    _text_model,
    _is_sparse_layer,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _layer_types(c: Config) -> list[str]:
    listed = c["layer_types"]
    if listed:
        return list(listed)
    interval = c["full_attention_interval"]
    return ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(c["num_hidden_layers"])]


def _gated_delta_net(c: Config, b: Builder, p: str, fused_inputs: bool) -> None:
    hidden, kernel = c["hidden_size"], c["linear_conv_kernel_dim"]
    value_heads = c["linear_num_value_heads"]
    key_dim = c["linear_key_head_dim"] * c["linear_num_key_heads"]
    value_dim = c["linear_value_head_dim"] * value_heads
    conv_dim = 2 * key_dim + value_dim
    b.other(p, ("dt_bias", (value_heads,)), ("A_log", (value_heads,)))
    b.conv(f"{p}.conv1d", conv_dim, conv_dim, (kernel,), bias=False, groups=conv_dim)
    if fused_inputs:  # Qwen3-Next: q, k, v and the output gate z in one projection; b and a in another
        b.linear(f"{p}.in_proj_qkvz", hidden, conv_dim + value_dim, False)
        b.linear(f"{p}.in_proj_ba", hidden, 2 * value_heads, False)
    else:
        b.linear(f"{p}.in_proj_qkv", hidden, conv_dim, False)
        b.linear(f"{p}.in_proj_z", hidden, value_dim, False)
        b.linear(f"{p}.in_proj_b", hidden, value_heads, False)
        b.linear(f"{p}.in_proj_a", hidden, value_heads, False)
    b.norm(f"{p}.norm", c["linear_value_head_dim"])
    b.linear(f"{p}.out_proj", value_dim, hidden, False)


def _gated_attention(c: Config, b: Builder, p: str) -> None:
    hidden, heads, hd = c["hidden_size"], c["num_attention_heads"], c["head_dim"]
    kv, bias = c["num_key_value_heads"], bool(c["attention_bias"])
    b.linear(f"{p}.q_proj", hidden, 2 * heads * hd, bias)  # queries and their output gate
    b.linear(f"{p}.k_proj", hidden, kv * hd, bias)
    b.linear(f"{p}.v_proj", hidden, kv * hd, bias)
    b.linear(f"{p}.o_proj", heads * hd, hidden, bias)
    b.norm(f"{p}.q_norm", hd)
    b.norm(f"{p}.k_norm", hd)


def _shared_expert_moe(c: Config, b: Builder, p: str) -> None:
    hidden, experts = c["hidden_size"], c["num_experts"]
    b.router(f"{p}.gate", experts, hidden)
    b.experts(f"{p}.experts", experts, hidden, c["moe_intermediate_size"])
    _gated_mlp()(c, b, f"{p}.shared_expert", 0, c["shared_expert_intermediate_size"])
    b.linear(f"{p}.shared_expert_gate", hidden, 1, False)


def _hybrid(*, fused_inputs: bool, sparse: Callable[[Config, int], bool]) -> Callable[..., Layout]:
    dense = _gated_mlp()

    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        hidden = c["hidden_size"]
        b.embedding("model.embed_tokens", c["vocab_size"], hidden)
        for i, kind in enumerate(_layer_types(c)):
            p = f"model.layers.{i}"
            if kind == "linear_attention":
                _gated_delta_net(c, b, f"{p}.linear_attn", fused_inputs)
            else:
                _gated_attention(c, b, f"{p}.self_attn")
            if sparse(c, i):
                _shared_expert_moe(c, b, f"{p}.mlp")
            else:
                dense(c, b, f"{p}.mlp", i)
            b.norm(f"{p}.input_layernorm", hidden)
            b.norm(f"{p}.post_attention_layernorm", hidden)
        b.norm("model.norm", hidden)
        return _head(b, c, task, num_labels, embed="model.embed_tokens", width=hidden)

    return layout


_GATED_DELTA_NET: dict[str, Any] = {
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128,
    "linear_value_head_dim": 128,
    "linear_num_key_heads": 16,
    "linear_num_value_heads": 32,
    "layer_types": None,
    "full_attention_interval": 4,
    "attention_bias": False,
    "head_dim": 256,
}

_QWEN3_5_TEXT = Family(
    _hybrid(fused_inputs=False, sparse=lambda c, i: False),
    _defaults(
        vocab_size=248320,
        hidden_size=4096,
        intermediate_size=12288,
        num_hidden_layers=32,
        num_attention_heads=16,
        num_key_value_heads=4,
        **_GATED_DELTA_NET,
    ),
    tasks=frozenset({CAUSAL_LM}),
)
_QWEN3_5_MOE_TEXT = Family(
    _hybrid(fused_inputs=False, sparse=lambda c, i: True),
    _defaults(
        vocab_size=248320,
        hidden_size=2048,
        num_hidden_layers=40,
        num_attention_heads=16,
        num_key_value_heads=2,
        moe_intermediate_size=512,
        shared_expert_intermediate_size=512,
        num_experts=256,
        **_GATED_DELTA_NET,
    ),
    tasks=frozenset({CAUSAL_LM}),
)

FAMILIES: dict[str, Family] = {
    "qwen3_5_text": _QWEN3_5_TEXT,
    "qwen3_5_moe_text": _QWEN3_5_MOE_TEXT,
    "qwen3_5": Family(_text_model(_QWEN3_5_TEXT), {}, tasks=frozenset({CAUSAL_LM})),
    "qwen3_5_moe": Family(_text_model(_QWEN3_5_MOE_TEXT), {}, tasks=frozenset({CAUSAL_LM})),
    "qwen3_next": Family(
        _hybrid(fused_inputs=True, sparse=_is_sparse_layer),
        _defaults(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=48,
            num_attention_heads=16,
            num_key_value_heads=2,
            decoder_sparse_step=1,
            moe_intermediate_size=512,
            shared_expert_intermediate_size=512,
            num_experts=512,
            mlp_only_layers=None,
            **_GATED_DELTA_NET,
        ),
        tasks=frozenset({CAUSAL_LM}),
        moe_conversion="qwen2_moe",
    ),
}
