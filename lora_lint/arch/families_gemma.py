"""Gemma 4: a language model whose layers differ from one another, with optional vision and audio towers.

``AutoModelForCausalLM`` builds ``Gemma4ForConditionalGeneration`` from a ``gemma4`` config (every
published checkpoint): the whole model, ``model.vision_tower`` and ``model.audio_tower`` included
when the config has them, and ``Gemma4ForCausalLM`` from a bare ``gemma4_text`` config. What sets
the language model apart:

- sliding-window and full-attention layers (``layer_types``) differ in head size and key-value
  heads: full-attention layers take ``global_head_dim`` (512 unless given) and, with
  ``attention_k_eq_v``, ``num_global_key_value_heads``, or whatever a saved ``per_layer_config``
  says; with ``attention_k_eq_v`` their keys double as values, so they have no ``v_proj``;
- the last ``num_kv_shared_layers`` layers reuse earlier layers' keys and values: no ``k_proj``,
  ``v_proj`` or their norms, and a twice-as-wide MLP with ``use_double_wide_mlp`` (E2B);
- per-layer input embeddings (``hidden_size_per_layer_input``, the E2B/E4B models): one packed
  embedding table ``embed_tokens_per_layer`` for all layers, a projection beside it, and in each
  layer ``per_layer_input_gate``/``per_layer_projection``;
- with ``enable_moe_block`` (26B-A4B), a routed expert block beside each layer's dense MLP: the
  router's ``proj`` is an ``nn.Linear``, the experts fused 3-D parameters no target reaches.

The towers wrap every projection in ``Gemma4ClippableLinear``, a container whose ``nn.Linear`` is
``.linear``: ``all-linear`` adapts the vision tower's attention and MLP (and the audio tower's
every projection) through it, while a target list naming ``q_proj`` also names the container
itself, which PEFT refuses. PEFT's own default for ``gemma4`` is therefore a regex limited to the
language model; it has no default for ``gemma4_text``. ``all-linear`` also reaches the projectors
``embed_vision``/``embed_audio.embedding_projection`` and, in the audio tower, the plain
``relative_k_proj``, ``input_proj_linear`` and ``output_proj``; the audio tower's depthwise
``lconv1d.depthwise_conv1d`` and subsampling convolutions take LoRA only when a target names them.

Gemma 4 12B (``gemma4_unified``, built as ``Gemma4UnifiedForConditionalGeneration``) has the same
language model without per-layer inputs or experts, and no towers: image patches and audio frames
are projected straight in (``embed_vision``, ``embed_audio``), plain ``nn.Linear`` layers that
``all-linear`` adapts too; PEFT has no default target for it.
"""

from __future__ import annotations

from collections.abc import Mapping

from lora_lint.arch import families
from lora_lint.arch.families import CAUSAL_LM, Builder, Config, Family, Layout
from lora_lint.arch.families_multimodal import Part, Tower, _language_model, _tower

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# ---------------------------------------------------------------------------------------
# The language model


def _layer_types(c: Config) -> list[str]:
    """``layer_types``, or one full-attention layer in six; the last layer is always full attention."""
    layers = c["num_hidden_layers"]
    listed = c["layer_types"]
    default = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(layers)]
    types = list(listed) if listed else default
    if types:
        types[-1] = "full_attention"
    return types


def _per_layer_overrides(c: Config, types: list[str]) -> dict[int, Mapping[str, Any]]:
    """The head size and key-value heads each full-attention layer takes instead of the global ones.

    A config saved by transformers 5.15 or later spells them out as ``per_layer_config``; the
    published configs give ``global_head_dim`` and ``num_global_key_value_heads`` instead.
    """
    if "per_layer_config" in c.raw:
        saved = c.raw["per_layer_config"] or {}
        return {int(index): values for index, values in saved.items() if isinstance(values, Mapping)}
    override: dict[str, Any] = {"head_dim": c.raw.get("global_head_dim", 512)}
    global_kv = c.raw.get("num_global_key_value_heads")
    if c["attention_k_eq_v"] and global_kv is not None:
        override["num_key_value_heads"] = global_kv
    return {i: override for i, kind in enumerate(types) if kind == "full_attention"}


def _gemma4_text(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden, heads, layers = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
    per_layer = c["hidden_size_per_layer_input"] or 0
    bias = bool(c["attention_bias"])
    types = _layer_types(c)
    overrides = _per_layer_overrides(c, types)
    first_shared = layers - c["num_kv_shared_layers"]
    b.embedding("model.embed_tokens", c["vocab_size"], hidden)

    def shape(i: int) -> tuple[int, int, bool, bool]:
        """What layer ``i`` depends on its number for: head size, key-value heads, KV sharing, full attention."""
        hd = overrides.get(i, {}).get("head_dim", c["head_dim"])
        kv = overrides.get(i, {}).get("num_key_value_heads", c["num_key_value_heads"])
        return hd, kv, i >= first_shared, types[i] != "sliding_attention"

    def layer(b: Builder, p: str, i: int) -> None:
        a = f"{p}.self_attn"
        hd, kv, shared, full = shape(i)
        b.linear(f"{a}.q_proj", hidden, heads * hd, bias)
        b.norm(f"{a}.q_norm", hd)
        if not shared:
            b.norm(f"{a}.k_norm", hd)
            b.linear(f"{a}.k_proj", hidden, kv * hd, bias)
            if not (c["attention_k_eq_v"] and full):
                b.linear(f"{a}.v_proj", hidden, kv * hd, bias)
        b.linear(f"{a}.o_proj", heads * hd, hidden, bias)
        inter = c["intermediate_size"] * (2 if c["use_double_wide_mlp"] and shared else 1)
        families._gated_mlp()(c, b, f"{p}.mlp", i, inter)
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):  # fmt: skip
            b.norm(f"{p}.{norm}", hidden)
        if per_layer:
            b.linear(f"{p}.per_layer_input_gate", hidden, per_layer, False)
            b.linear(f"{p}.per_layer_projection", per_layer, hidden, False)
            b.norm(f"{p}.post_per_layer_input_norm", hidden)
        if c["enable_moe_block"]:
            experts = c["num_experts"]
            b.other(f"{p}.router", ("scale", (hidden,)), ("per_expert_scale", (experts,)))
            b.linear(f"{p}.router.proj", hidden, experts, False)
            b.experts(f"{p}.experts", experts, hidden, c["moe_intermediate_size"])
            for norm in ("post_feedforward_layernorm_1", "post_feedforward_layernorm_2", "pre_feedforward_layernorm_2"):
                b.norm(f"{p}.{norm}", hidden)

    b.repeat("model.layers", layers, layer, shape)
    b.norm("model.norm", hidden)
    if per_layer:
        b.embedding("model.embed_tokens_per_layer", c["vocab_size_per_layer_input"], layers * per_layer)
        b.linear("model.per_layer_model_projection", hidden, layers * per_layer, False)
        b.norm("model.per_layer_projection_norm", per_layer)
    return families._head(b, c, task, num_labels, embed="model.embed_tokens", width=hidden)


_TEXT_DEFAULTS = {
    "vocab_size": 262_144,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 30,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "tie_word_embeddings": True,
    "attention_bias": False,
    "layer_types": None,
    "vocab_size_per_layer_input": 262_144,
    "hidden_size_per_layer_input": 256,
    "attention_k_eq_v": False,
    "num_kv_shared_layers": 0,
    "enable_moe_block": False,
    "use_double_wide_mlp": False,
    "num_experts": None,
    "moe_intermediate_size": None,
}
"""``Gemma4TextConfig``'s defaults."""


# ---------------------------------------------------------------------------------------
# The towers


def _clippable(b: Builder, name: str, in_features: int, out_features: int) -> None:
    """``Gemma4ClippableLinear``: its ``nn.Linear`` one level down; the clipping bounds are buffers."""
    b.linear(f"{name}.linear", in_features, out_features, False)


def _gemma4_vision(vc: Config, b: Builder, p: str) -> None:
    hidden, inter, hd = vc["hidden_size"], vc["intermediate_size"], vc["head_dim"]
    heads, kv, patch = vc["num_attention_heads"], vc["num_key_value_heads"], vc["patch_size"]
    b.linear(f"{p}.patch_embedder.input_proj", 3 * patch * patch, hidden, False)
    b.other(f"{p}.patch_embedder", ("position_embedding_table", (2, vc["position_embedding_size"], hidden)))

    def layer(b: Builder, q: str, i: int) -> None:
        for name, n_in, n_out in (("q_proj", hidden, heads * hd), ("k_proj", hidden, kv * hd),
                                  ("v_proj", hidden, kv * hd), ("o_proj", heads * hd, hidden)):  # fmt: skip
            _clippable(b, f"{q}.self_attn.{name}", n_in, n_out)
        b.norm(f"{q}.self_attn.q_norm", hd)
        b.norm(f"{q}.self_attn.k_norm", hd)
        for name, n_in, n_out in (("gate_proj", hidden, inter), ("up_proj", hidden, inter),
                                  ("down_proj", inter, hidden)):  # fmt: skip
            _clippable(b, f"{q}.mlp.{name}", n_in, n_out)
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):  # fmt: skip
            b.norm(f"{q}.{norm}", hidden)

    b.repeat(f"{p}.encoder.layers", vc["num_hidden_layers"], layer)


def _gemma4_audio(ac: Config, b: Builder, p: str) -> None:
    """The Conformer audio encoder: convolutional subsampling, then attention, light-convolution and MLP blocks."""
    hidden, heads = ac["hidden_size"], ac["num_attention_heads"]
    hd = hidden // heads
    first, second = ac["subsampling_conv_channels"]
    s = f"{p}.subsample_conv_projection"
    for layer, n_in, n_out in (("layer0", 1, first), ("layer1", first, second)):
        b.conv(f"{s}.{layer}.conv", n_in, n_out, (3, 3), bias=False)
        b.norm(f"{s}.{layer}.norm", n_out)
    b.linear(f"{s}.input_proj_linear", (first // 4) * second, hidden, False)

    def layer(b: Builder, q: str, i: int) -> None:
        for block in ("feed_forward1", "feed_forward2"):
            _clippable(b, f"{q}.{block}.ffw_layer_1", hidden, 4 * hidden)
            _clippable(b, f"{q}.{block}.ffw_layer_2", 4 * hidden, hidden)
            b.norm(f"{q}.{block}.pre_layer_norm", hidden)
            b.norm(f"{q}.{block}.post_layer_norm", hidden)
        b.other(f"{q}.self_attn", ("per_dim_scale", (hd,)))
        for name in ("q_proj", "k_proj", "v_proj"):
            _clippable(b, f"{q}.self_attn.{name}", hidden, heads * hd)
        _clippable(b, f"{q}.self_attn.post", hidden, hidden)
        b.linear(f"{q}.self_attn.relative_k_proj", hidden, heads * hd, False)
        _clippable(b, f"{q}.lconv1d.linear_start", hidden, 2 * hidden)
        _clippable(b, f"{q}.lconv1d.linear_end", hidden, hidden)
        b.conv(f"{q}.lconv1d.depthwise_conv1d", hidden, hidden, (ac["conv_kernel_size"],), bias=False, groups=hidden)
        b.norm(f"{q}.lconv1d.pre_layer_norm", hidden)
        b.norm(f"{q}.lconv1d.conv_norm", hidden)
        for norm in ("norm_pre_attn", "norm_post_attn", "norm_out"):
            b.norm(f"{q}.{norm}", hidden)

    b.repeat(f"{p}.layers", ac["num_hidden_layers"], layer)
    b.linear(f"{p}.output_proj", hidden, ac["output_proj_dims"], True)


TOWERS: dict[str, Tower] = {
    "gemma4_vision": Tower(_gemma4_vision, {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 16,
                                            "num_attention_heads": 12, "num_key_value_heads": 12, "head_dim": 64,
                                            "patch_size": 16, "position_embedding_size": 10 * 1024}),
    "gemma4_audio": Tower(_gemma4_audio, {"hidden_size": 1024, "num_hidden_layers": 12, "num_attention_heads": 8,
                                          "subsampling_conv_channels": (128, 32), "conv_kernel_size": 5,
                                          "output_proj_dims": 1536}),
}  # fmt: skip
"""``Gemma4VisionConfig`` and ``Gemma4AudioConfig`` with their defaults."""


# ---------------------------------------------------------------------------------------
# The whole model

_TEXT = Part("text_config", "gemma4_text")
_VISION = Part("vision_config", "gemma4_vision")
_AUDIO = Part("audio_config", "gemma4_audio")


def _optional_tower(c: Config, b: Builder, part: Part, prefix: str) -> Config | None:
    """A tower the config names, built under ``prefix``; an absent or null sub-config builds none."""
    return _tower(c, b, part, prefix, TOWERS) if isinstance(c[part.key], Mapping) else None


def _gemma4(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    """``Gemma4ForConditionalGeneration``: towers and language model under ``model``, ``lm_head`` on top."""
    vision = _optional_tower(c, b, _VISION, "model.vision_tower")
    layout = _language_model(c, b, _TEXT, "model.language_model.", bool(c["tie_word_embeddings"]), task, num_labels)
    audio = _optional_tower(c, b, _AUDIO, "model.audio_tower")
    width = layout.text["hidden_size"]
    if vision is not None:
        b.linear("model.embed_vision.embedding_projection", vision["hidden_size"], width, False)
    if audio is not None:
        b.linear("model.embed_audio.embedding_projection", audio["output_proj_dims"], width, False)
    return layout


# ---------------------------------------------------------------------------------------
# Gemma 4 12B ("unified"): no towers, the image patches and audio frames projected straight in


def _gemma4_unified_text(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    """Gemma 4's layers without per-layer inputs or experts: the class ignores those keys where a config has them."""
    plain = Config({**c.raw, "hidden_size_per_layer_input": 0, "enable_moe_block": False}, c.defaults, c.aliases)
    return _gemma4_text(plain, b, task, num_labels)


def _unified_vision(vc: Config, b: Builder, p: str, width: int) -> None:
    """``Gemma4UnifiedVisionEmbedder``: merged patches through LayerNorms, a dense layer and a position table."""
    patch = (vc["patch_size"] * vc["pooling_kernel_size"]) ** 2 * 3
    embed = vc["mm_embed_dim"]
    b.norm(f"{p}.patch_ln1", patch, bias=True)
    b.linear(f"{p}.patch_dense", patch, embed, True)
    b.norm(f"{p}.patch_ln2", embed, bias=True)
    b.other(p, ("pos_embedding", (vc["mm_posemb_size"], 2, embed)))
    b.norm(f"{p}.pos_norm", embed, bias=True)
    b.linear(f"{p}.multimodal_embedder.embedding_projection", vc["output_proj_dims"], width, False)


def _audio_frame_size(raw: Mapping[str, Any]) -> int:
    """``Gemma4UnifiedAudioConfig.audio_embed_dim``, which three aliases set too; the last one read wins."""
    size = raw.get("audio_embed_dim", 640)
    for key, value in raw.items():
        if key in ("hidden_size", "output_proj_dims", "audio_samples_per_token"):
            size = value
    return size


def _gemma4_unified(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    """``Gemma4UnifiedForConditionalGeneration``."""
    tied = bool(c["tie_word_embeddings"])
    layout = _language_model(c, b, _UNIFIED_TEXT, "model.language_model.", tied, task, num_labels)
    width = layout.text["hidden_size"]
    if isinstance(c["vision_config"], Mapping):
        _unified_vision(Config(c["vision_config"], _UNIFIED_VISION, {}), b, "model.embed_vision", width)
    if isinstance(c["audio_config"], Mapping):
        b.linear("model.embed_audio.embedding_projection", _audio_frame_size(c["audio_config"]), width, False)
    return layout


_UNIFIED_TEXT = Part("text_config", "gemma4_unified_text")
_UNIFIED_VISION = {"patch_size": 16, "pooling_kernel_size": 3, "mm_embed_dim": 3840, "mm_posemb_size": 1120,
                   "output_proj_dims": 3840}  # fmt: skip
"""``Gemma4UnifiedVisionConfig``'s defaults."""


FAMILIES: dict[str, Family] = {
    "gemma4_text": Family(_gemma4_text, _TEXT_DEFAULTS, tasks=frozenset({CAUSAL_LM})),
    "gemma4": Family(
        _gemma4,
        {"text_config": None, "vision_config": None, "audio_config": None, "tie_word_embeddings": True},
        default_targets=r".*language_model\..*\.(q_proj|v_proj)",
        tasks=frozenset({CAUSAL_LM}),
    ),
    "gemma4_unified_text": Family(_gemma4_unified_text, _TEXT_DEFAULTS, tasks=frozenset({CAUSAL_LM})),
    "gemma4_unified": Family(
        _gemma4_unified,
        {"text_config": None, "vision_config": None, "audio_config": None, "tie_word_embeddings": True},
        tasks=frozenset({CAUSAL_LM}),
    ),
}
