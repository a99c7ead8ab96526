"""Hybrid decoders: linear-attention (Gated DeltaNet) or Mamba-2 layers between full-attention layers.

Qwen3.5 and Qwen3-Next interleave Gated DeltaNet layers (``linear_attn``: input
projections, a depthwise short convolution, per-head decay parameters) with gated full
attention (``q_proj`` twice as wide: queries and their output gate). Which layer is which
comes from ``layer_types``, or from ``full_attention_interval`` when the config lists none.

A multimodal Qwen3.5 config (``model_type`` ``qwen3_5``/``qwen3_5_moe``) is described by
its language model: ``AutoModelForCausalLM`` builds ``Qwen3_5ForCausalLM`` from it and
leaves the vision tower out (a text fine-tune never loads it).

Nemotron-H stacks single-mixer blocks (``model.layers.N.mixer``): Mamba-2, attention, a
plain MLP or routed experts, one kind per block as ``layers_block_type`` (or the older
``hybrid_override_pattern`` string) lists them.
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
        kinds = _layer_types(c)

        def layer(b: Builder, p: str, i: int) -> None:
            if kinds[i] == "linear_attention":
                _gated_delta_net(c, b, f"{p}.linear_attn", fused_inputs)
            else:
                _gated_attention(c, b, f"{p}.self_attn")
            if sparse(c, i):
                _shared_expert_moe(c, b, f"{p}.mlp")
            else:
                dense(c, b, f"{p}.mlp", i)
            b.norm(f"{p}.input_layernorm", hidden)
            b.norm(f"{p}.post_attention_layernorm", hidden)

        b.repeat("model.layers", len(kinds), layer, lambda i: (kinds[i] == "linear_attention", sparse(c, i)))
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
    "qwen3_5": Family(_text_model(_QWEN3_5_TEXT), {"text_config": None}, tasks=frozenset({CAUSAL_LM})),
    "qwen3_5_moe": Family(_text_model(_QWEN3_5_MOE_TEXT), {"text_config": None}, tasks=frozenset({CAUSAL_LM})),
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


_NEMOTRON_PATTERN = {"M": "linear_attention", "E": "moe", "*": "full_attention", "-": "mlp"}
_LEGACY_BLOCK_TYPES = {"mamba": "linear_attention", "attention": "full_attention"}


def _nemotron_blocks(c: Config) -> list[str]:
    listed = c["layers_block_type"]
    if listed is None and isinstance(c.raw.get("hybrid_override_pattern"), str):
        listed = [_NEMOTRON_PATTERN[char] for char in c.raw["hybrid_override_pattern"]]
    if listed is None:
        listed = ["linear_attention", "moe", "full_attention", "mlp"]
    return [_LEGACY_BLOCK_TYPES.get(kind, kind) for kind in listed]


def _mamba2(c: Config, b: Builder, p: str) -> None:
    hidden, heads, bias = c["hidden_size"], c["mamba_num_heads"], bool(c["use_bias"])
    inner = heads * c["mamba_head_dim"]
    conv_dim = inner + 2 * c["n_groups"] * c["ssm_state_size"]
    b.other(p, ("dt_bias", (heads,)), ("A_log", (heads,)), ("D", (heads,)))
    b.conv(f"{p}.conv1d", conv_dim, conv_dim, (c["conv_kernel"],), bias=bool(c["use_conv_bias"]), groups=conv_dim)
    b.linear(f"{p}.in_proj", hidden, inner + conv_dim + heads, bias)
    b.norm(f"{p}.norm", inner)
    b.linear(f"{p}.out_proj", inner, hidden, bias)


def _relu2_mlp(b: Builder, p: str, hidden: int, inter: int, bias: bool) -> None:
    b.linear(f"{p}.up_proj", hidden, inter, bias)
    b.linear(f"{p}.down_proj", inter, hidden, bias)


def _nemotron_h(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden, bias = c["hidden_size"], bool(c["mlp_bias"])
    heads, kv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    blocks = _nemotron_blocks(c)
    b.embedding("model.embeddings", c["vocab_size"], hidden)

    def layer(b: Builder, p: str, i: int) -> None:
        kind = blocks[i]
        b.norm(f"{p}.norm", hidden)
        m = f"{p}.mixer"
        if kind == "linear_attention":
            _mamba2(c, b, m)
        elif kind == "full_attention":
            for name, n_out in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
                b.linear(f"{m}.{name}", hidden, n_out, False)
            b.linear(f"{m}.o_proj", heads * hd, hidden, False)
        elif kind == "mlp":
            _relu2_mlp(b, m, hidden, c["intermediate_size"], bias)
        else:
            experts, inter, latent = c["n_routed_experts"], c["moe_intermediate_size"], c["moe_latent_size"]
            width = latent or hidden
            b.fused_experts(f"{m}.experts", ("up_proj", (experts, inter, width)), ("down_proj", (experts, width, inter)))
            b.router(f"{m}.gate", experts, hidden)
            _relu2_mlp(b, f"{m}.shared_experts", hidden, c["moe_shared_expert_intermediate_size"], bias)
            if latent is not None:
                b.linear(f"{m}.fc1_latent_proj", hidden, latent, bias)
                b.linear(f"{m}.fc2_latent_proj", latent, hidden, bias)

    b.repeat("model.layers", len(blocks), layer, blocks.__getitem__)
    b.norm("model.norm_f", hidden)
    b.linear("lm_head", hidden, c["vocab_size"], False)  # NemotronHForCausalLM never ties it, whatever the config says
    sizes = Config({**c.raw, "num_hidden_layers": len(blocks)}, c.defaults, c.aliases)
    return Layout("model.embeddings", "lm_head", None, False, text=sizes)


FAMILIES["nemotron_h"] = Family(
    _nemotron_h,
    {
        "vocab_size": 131072,
        "hidden_size": 4096,
        "layers_block_type": None,
        "tie_word_embeddings": False,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "intermediate_size": 21504,
        "mlp_bias": False,
        "ssm_state_size": 128,
        "mamba_num_heads": 128,
        "mamba_head_dim": 64,
        "n_groups": 8,
        "conv_kernel": 4,
        "use_conv_bias": True,
        "use_bias": False,
        "n_routed_experts": 8,
        "moe_intermediate_size": 7688,
        "moe_shared_expert_intermediate_size": 7688,
        "moe_latent_size": None,
    },
    aliases={
        "layer_types": "layers_block_type",
        "num_local_experts": "n_routed_experts",
        "mamba_n_groups": "n_groups",
        "mamba_d_conv": "conv_kernel",
        "mamba_conv_bias": "use_conv_bias",
    },
    default_targets=("q_proj", "k_proj", "v_proj", "o_proj"),
    tasks=frozenset({CAUSAL_LM}),
)
