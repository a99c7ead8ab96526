"""Mixture-of-experts decoders added after the first release: DeepSeek-V2/V3, GLM-4-MoE (and GLM-4.7-Flash), gpt-oss, Llama 4.

Transformers 5 stores the routed experts of these families as fused 3-D parameters
(:meth:`Builder.experts`), not ``nn.Linear`` layers: ``all-linear`` leaves them alone.
DeepSeek and GLM-4-MoE go through PEFT's transformers-v5 target conversion (their
``model_type`` maps to the ``qwen2_moe`` pattern): ``gate_proj``/``up_proj``/``down_proj``
in a target list also reach the experts' fused tensors. gpt-oss and Llama 4 have no such
conversion, so an expert projection name matches only the shared or dense layers.

DeepSeek-V2/V3 attend with multi-head latent attention (low-rank query and key-value
projections); the multi-token-prediction layers of DeepSeek-V3 and GLM-4.5 are not
built by transformers and are not described. A multimodal Llama 4 config is described
by its language model, which is what ``AutoModelForCausalLM`` builds from it.
"""

from __future__ import annotations

from lora_lint.arch.families import (
    _ATTENTION_BIAS,
    CAUSAL_LM,
    Builder,
    Config,
    Family,
    Layout,
    _decoder,
    _defaults,
    _gated_mlp,
    _head,
    _text_model,
    _per_head_norm,
    _uniform,
    _varying,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def _latent_attention(c: Config, b: Builder, p: str) -> None:
    """DeepSeek's multi-head latent attention."""
    hidden, heads, bias = c["hidden_size"], c["num_attention_heads"], bool(c["attention_bias"])
    rope, nope, value, kv_rank = c["qk_rope_head_dim"], c["qk_nope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
    q_rank = c["q_lora_rank"]
    if q_rank is None:
        b.linear(f"{p}.q_proj", hidden, heads * (nope + rope), False)
    else:
        b.linear(f"{p}.q_a_proj", hidden, q_rank, bias)
        b.norm(f"{p}.q_a_layernorm", q_rank)
        b.linear(f"{p}.q_b_proj", q_rank, heads * (nope + rope), False)
    b.linear(f"{p}.kv_a_proj_with_mqa", hidden, kv_rank + rope, bias)
    b.norm(f"{p}.kv_a_layernorm", kv_rank)
    b.linear(f"{p}.kv_b_proj", kv_rank, heads * (nope + value), False)
    b.linear(f"{p}.o_proj", heads * value, hidden, bias)


def _first_k_dense(c: Config, layer: int) -> bool:
    return layer < (c["first_k_dense_replace"] or 0)


def _listed_dense(c: Config, layer: int) -> bool:
    """GLM-4.7-Flash lists each layer's MLP kind; by default only the first is dense."""
    kinds = c["mlp_layer_types"] or ["dense"] + ["sparse"] * (c["num_hidden_layers"] - 1)
    return kinds[layer] != "sparse"


def _shared_experts_moe(
    mlp_bias: Callable[[Config], bool], dense: Callable[[Config, int], bool] = _first_k_dense
) -> Callable[[Config, Builder, str, int], None]:
    """DeepSeek / GLM-4-MoE: dense layers first, then routed experts beside one wide shared expert."""

    @_varying(dense)
    def mlp(c: Config, b: Builder, p: str, layer: int) -> None:
        if dense(c, layer):
            _gated_mlp(mlp_bias)(c, b, p, layer)
            return
        hidden, experts = c["hidden_size"], c["n_routed_experts"]
        b.experts(f"{p}.experts", experts, hidden, c["moe_intermediate_size"])
        b.router(f"{p}.gate", experts, hidden)
        shared = c["moe_intermediate_size"] * c["n_shared_experts"]
        _gated_mlp(mlp_bias)(c, b, f"{p}.shared_experts", layer, shared)

    return mlp


def _deepseek(
    mlp_bias: Callable[[Config], bool], dense: Callable[[Config, int], bool] = _first_k_dense
) -> Callable[..., Layout]:
    mlp = _shared_experts_moe(mlp_bias, dense)

    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        hidden = c["hidden_size"]
        b.embedding("model.embed_tokens", c["vocab_size"], hidden)

        def layer(b: Builder, p: str, i: int) -> None:
            _latent_attention(c, b, f"{p}.self_attn")
            mlp(c, b, f"{p}.mlp", i)
            b.norm(f"{p}.input_layernorm", hidden)
            b.norm(f"{p}.post_attention_layernorm", hidden)

        b.repeat("model.layers", c["num_hidden_layers"], layer, lambda i: dense(c, i))
        b.norm("model.norm", hidden)
        return _head(b, c, task, num_labels, embed="model.embed_tokens", width=hidden)

    return layout


def _glm4_moe_qk_norm(c: Config, b: Builder, p: str, heads: int, kv: int, hd: int) -> None:
    if c["use_qk_norm"]:
        _per_head_norm(c, b, p, heads, kv, hd)


@_uniform
def _gpt_oss(c: Config, b: Builder, p: str, layer: int) -> None:
    hidden, experts, inter = c["hidden_size"], c["num_local_experts"], c["intermediate_size"]
    b.router(f"{p}.router", experts, hidden, bias=True)
    b.fused_experts(
        f"{p}.experts",
        ("gate_up_proj", (experts, hidden, 2 * inter)),
        ("gate_up_proj_bias", (experts, 2 * inter)),
        ("down_proj", (experts, inter, hidden)),
        ("down_proj_bias", (experts, hidden)),
    )


def _attention_sinks(c: Config, b: Builder, p: str, heads: int, kv: int, hd: int) -> None:
    b.other(p, ("sinks", (heads,)))  # one learned sink logit per head, on the attention module itself


def _moe_layers(c: Config) -> list[int]:
    listed = c["moe_layers"]
    if listed is not None:
        return list(listed)
    step = c["interleave_moe_layer_step"]
    return list(range(step - 1, c["num_hidden_layers"], step))


@_varying(lambda c, layer: layer in _moe_layers(c))
def _llama4_feed_forward(c: Config, b: Builder, p: str, layer: int) -> None:
    hidden = c["hidden_size"]
    if layer not in _moe_layers(c):
        _gated_mlp()(c, b, p, layer, c["intermediate_size_mlp"])
        return
    experts, inter = c["num_local_experts"], c["intermediate_size"]
    b.fused_experts(
        f"{p}.experts",
        ("gate_up_proj", (experts, hidden, 2 * inter)),
        ("down_proj", (experts, inter, hidden)),
    )
    b.linear(f"{p}.router", hidden, experts, False)  # Llama4Router subclasses nn.Linear: all-linear adapts it
    _gated_mlp()(c, b, f"{p}.shared_expert", layer)


def _renamed_mlp(mlp: Callable[[Config, Builder, str, int], None], name: str) -> Callable[..., None]:
    """Llama 4 calls its MLP ``feed_forward``: the shared decoder layout names it ``mlp``."""

    def placed(c: Config, b: Builder, p: str, layer: int) -> None:
        mlp(c, b, p.rsplit(".", 1)[0] + f".{name}", layer)

    variant = getattr(mlp, "variant", None)
    return _varying(variant)(placed) if variant is not None else placed


_DEEPSEEK_V2 = Family(
    _deepseek(lambda c: bool(c["mlp_bias"])),
    _defaults(
        vocab_size=102400,
        first_k_dense_replace=0,
        kv_lora_rank=512,
        q_lora_rank=1536,
        n_routed_experts=64,
        n_shared_experts=2,
        qk_nope_head_dim=128,
        qk_rope_head_dim=64,
        v_head_dim=128,
        moe_intermediate_size=1407,
        attention_bias=False,
        mlp_bias=False,
    ),
    aliases={"num_experts": "n_routed_experts"},
    tasks=frozenset({CAUSAL_LM}),
    moe_conversion="qwen2_moe",
)
_LLAMA4_TEXT = Family(
    _decoder(mlp=_renamed_mlp(_llama4_feed_forward, "feed_forward"), **_ATTENTION_BIAS),
    _defaults(
        vocab_size=202048,
        hidden_size=5120,
        intermediate_size=8192,
        intermediate_size_mlp=16384,
        num_hidden_layers=48,
        num_attention_heads=40,
        num_key_value_heads=8,
        head_dim=128,
        num_local_experts=16,
        moe_layers=None,
        interleave_moe_layer_step=1,
        attention_bias=False,
    ),
    tasks=frozenset({CAUSAL_LM}),
)

FAMILIES: dict[str, Family] = {
    "deepseek_v2": _DEEPSEEK_V2,
    "deepseek_v3": Family(
        _deepseek(lambda c: False),
        _defaults(
            vocab_size=129280,
            hidden_size=7168,
            intermediate_size=18432,
            moe_intermediate_size=2048,
            num_hidden_layers=61,
            num_attention_heads=128,
            n_shared_experts=1,
            n_routed_experts=256,
            kv_lora_rank=512,
            q_lora_rank=1536,
            qk_nope_head_dim=128,
            qk_rope_head_dim=64,
            v_head_dim=128,
            first_k_dense_replace=3,
            attention_bias=False,
        ),
        aliases={"num_local_experts": "n_routed_experts"},
        tasks=frozenset({CAUSAL_LM}),
        moe_conversion="qwen2_moe",
    ),
    "glm4_moe": Family(
        _decoder(
            qkv_bias=lambda c: bool(c["attention_bias"]),
            qk_norm=_glm4_moe_qk_norm,
            mlp=_shared_experts_moe(lambda c: False),
        ),
        _defaults(
            vocab_size=151552,
            intermediate_size=10944,
            num_hidden_layers=46,
            num_attention_heads=96,
            num_key_value_heads=8,
            moe_intermediate_size=1408,
            n_shared_experts=1,
            n_routed_experts=128,
            first_k_dense_replace=1,
            use_qk_norm=False,
            attention_bias=False,
        ),
        aliases={"num_local_experts": "n_routed_experts"},
        tasks=frozenset({CAUSAL_LM}),
        moe_conversion="qwen2_moe",
    ),
    "glm4_moe_lite": Family(  # GLM-4.7-Flash: DeepSeek's latent attention with GLM's experts
        _deepseek(lambda c: False, _listed_dense),
        _defaults(
            vocab_size=154880,
            hidden_size=2048,
            intermediate_size=10240,
            moe_intermediate_size=1536,
            num_hidden_layers=47,
            num_attention_heads=20,
            n_shared_experts=1,
            n_routed_experts=64,
            kv_lora_rank=512,
            q_lora_rank=768,
            qk_nope_head_dim=192,
            qk_rope_head_dim=64,
            v_head_dim=256,
            mlp_layer_types=None,
            attention_bias=False,
        ),
        aliases={"num_local_experts": "n_routed_experts", "head_dim": "qk_rope_head_dim"},
        tasks=frozenset({CAUSAL_LM}),
        moe_conversion="qwen2_moe",
    ),
    "gpt_oss": Family(
        _decoder(qk_norm=_attention_sinks, mlp=_gpt_oss, **_ATTENTION_BIAS),
        _defaults(
            vocab_size=201088,
            hidden_size=2880,
            intermediate_size=2880,
            num_hidden_layers=36,
            num_attention_heads=64,
            num_key_value_heads=8,
            head_dim=64,
            num_local_experts=128,
            attention_bias=True,
        ),
        aliases={"num_experts": "num_local_experts"},
        tasks=frozenset({CAUSAL_LM}),
    ),
    "llama4_text": _LLAMA4_TEXT,
    # The text model's config says llama4_text, which PEFT has no default target_modules for.
    "llama4": Family(_text_model(_LLAMA4_TEXT), {"text_config": None}, tasks=frozenset({CAUSAL_LM})),
}
