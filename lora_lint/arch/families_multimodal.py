"""Vision-language models: a vision tower, a projector and a language model in one class.

Transformers 5 builds these as ``...ForConditionalGeneration`` with the vision tower
at ``model.vision_tower`` (``model.vision_model`` for Idefics3/SmolVLM), the projector
beside it and the language model at ``model.language_model`` (``model.text_model``);
the output layer ``lm_head`` stays at the top. PEFT's ``all-linear`` collects every
``nn.Linear`` of the whole model except ``lm_head``: the vision tower's attention and
MLP layers and the projector are adapted too. Patch embeddings are convolutions, which
LoRA adapts only when a target names them.

Each sub-config is read the way the composite config class reads it: a dict is built
with its own ``model_type``'s defaults (the composite's default type when the dict has
none); an absent sub-config takes the composite's defaults for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lora_lint.record import Record, replace

from lora_lint.arch import families
from lora_lint.arch.families import CAUSAL_LM, Builder, Config, Family, Layout, _size
from lora_lint.arch.blocks import Block
from lora_lint.arch.model import Module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Part(Record):
    """How a composite config fills one sub-config."""

    key: str  # "text_config" | "vision_config"
    model_type: str  # used when the dict names none, or the sub-config is absent
    absent: Mapping[str, Any] = {}  # the composite's own values when the sub-config is absent
    flat: bool = False  # an absent sub-config is read from the composite's own keys (Qwen2-VL hub configs)


class Tower(Record):
    """A vision encoder: its layout under a prefix and its config class defaults."""

    layout: Callable[[Config, Builder, str], None]
    defaults: Mapping[str, Any]
    aliases: Mapping[str, str] = {}


def _sub(c: Config, part: Part, registry: Mapping[str, Any]) -> Config:
    raw = c[part.key]
    if not isinstance(raw, Mapping):
        own = {k: v for k, v in c.raw.items() if k != "model_type"} if part.flat else part.absent
        raw = {"model_type": part.model_type, **own}
    model_type = str(raw.get("model_type") or part.model_type)
    described = registry.get(model_type)
    if described is None:
        raise families.UnsupportedArchitecture(model_type, f"as the {part.key} of {c['model_type']}")
    return Config(raw, described.defaults, described.aliases)


def _text_family(c: Config, part: Part) -> tuple[Config, Family]:
    registry = {**families.all_families(), **LANGUAGE_MODELS}
    text = _sub(c, part, registry)
    return text, registry[str(text.raw.get("model_type") or part.model_type)]


def _language_model(
    c: Config,
    b: Builder,
    part: Part,
    prefix: str,
    tied: bool | Callable[[Config], bool],
    task: str,
    num_labels: int,
) -> Layout:
    """The text family's layout with ``model.`` moved to ``prefix`` and the composite's tying rule."""
    text, family = _text_family(c, part)
    tie = tied(text) if callable(tied) else tied
    text_view = Config({**text.raw, "tie_word_embeddings": tie}, text.defaults, text.aliases)
    inner = Builder()
    layout = family.layout(text_view, inner, task, num_labels)
    b.parts += [_moved(part, prefix) if isinstance(part, Module) else _moved_block(part, prefix) for part in inner.parts]
    return replace(layout, input_embedding=_moved_name(layout.input_embedding, prefix), text=text)


def _either_tied(c: Config) -> Callable[[Config], bool]:
    """LLaVA and Qwen-VL tie ``lm_head`` when either the composite or its text config says so."""
    return lambda text: bool(c["tie_word_embeddings"]) or bool(text["tie_word_embeddings"])


def _moved_name(name: str, prefix: str) -> str:
    return prefix + name.removeprefix("model.") if name.startswith("model.") else name


def _moved(module: Module, prefix: str) -> Module:
    tied = _moved_name(module.tied_to, prefix) if module.tied_to else None
    return module.renamed(_moved_name(module.name, prefix), tied)


def _moved_block(block: Block, prefix: str) -> Block:
    """A block of repeated layers under the composite's prefix (its modules' names are relative to the layer)."""
    templates = tuple(
        tuple(m.renamed(m.name, _moved_name(m.tied_to, prefix) if m.tied_to else None) for m in template)
        for template in block.templates
    )
    return replace(block, stack=_moved_name(block.stack, prefix), templates=templates)


# ---------------------------------------------------------------------------------------
# Vision towers


def _vit_layers(vc: Config, b: Builder, p: str, *, bias: bool = True) -> None:
    """The CLIP/SigLIP encoder layer: ``self_attn.{q,k,v,out}_proj``, ``mlp.fc1/fc2``, two LayerNorms."""
    hidden, inter = vc["hidden_size"], vc["intermediate_size"]

    def layer(b: Builder, q: str, i: int) -> None:
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            b.linear(f"{q}.self_attn.{name}", hidden, hidden, bias)
        b.norm(f"{q}.layer_norm1", hidden, bias=True)
        b.linear(f"{q}.mlp.fc1", hidden, inter, bias)
        b.linear(f"{q}.mlp.fc2", inter, hidden, bias)
        b.norm(f"{q}.layer_norm2", hidden, bias=True)

    b.repeat(f"{p}.encoder.layers", vc["num_hidden_layers"], layer)


def _siglip(vc: Config, b: Builder, p: str) -> None:
    hidden, patch = vc["hidden_size"], _size(vc["patch_size"])
    b.conv(f"{p}.embeddings.patch_embedding", vc["num_channels"], hidden, (patch, patch), bias=True)
    b.embedding(f"{p}.embeddings.position_embedding", (_size(vc["image_size"]) // patch) ** 2, hidden)
    _vit_layers(vc, b, p)
    b.norm(f"{p}.post_layernorm", hidden, bias=True)
    if vc["vision_use_head"]:
        h = f"{p}.head"
        b.other(h, ("probe", (1, 1, hidden)))
        b.other(f"{h}.attention", ("in_proj_weight", (3 * hidden, hidden)), ("in_proj_bias", (3 * hidden,)))
        b.linear(f"{h}.attention.out_proj", hidden, hidden, True)
        b.norm(f"{h}.layernorm", hidden, bias=True)
        b.linear(f"{h}.mlp.fc1", hidden, vc["intermediate_size"], True)
        b.linear(f"{h}.mlp.fc2", vc["intermediate_size"], hidden, True)


def _clip(vc: Config, b: Builder, p: str) -> None:
    hidden, patch = vc["hidden_size"], _size(vc["patch_size"])
    b.other(f"{p}.embeddings", ("class_embedding", (hidden,)))
    b.conv(f"{p}.embeddings.patch_embedding", vc["num_channels"], hidden, (patch, patch), bias=False)
    b.embedding(f"{p}.embeddings.position_embedding", (_size(vc["image_size"]) // patch) ** 2 + 1, hidden)
    b.norm(f"{p}.pre_layrnorm", hidden, bias=True)
    _vit_layers(vc, b, p)
    b.norm(f"{p}.post_layernorm", hidden, bias=True)


def _pixtral(vc: Config, b: Builder, p: str) -> None:
    hidden, inter, patch = vc["hidden_size"], vc["intermediate_size"], _size(vc["patch_size"])
    b.conv(f"{p}.patch_conv", vc["num_channels"], hidden, (patch, patch), bias=False)
    b.norm(f"{p}.ln_pre", hidden)

    def layer(b: Builder, q: str, i: int) -> None:
        b.norm(f"{q}.attention_norm", hidden)
        b.linear(f"{q}.feed_forward.gate_proj", hidden, inter, False)
        b.linear(f"{q}.feed_forward.up_proj", hidden, inter, False)
        b.linear(f"{q}.feed_forward.down_proj", inter, hidden, False)
        for name in ("k_proj", "v_proj", "q_proj", "o_proj"):
            b.linear(f"{q}.attention.{name}", hidden, hidden, False)
        b.norm(f"{q}.ffn_norm", hidden)

    b.repeat(f"{p}.transformer.layers", vc["num_hidden_layers"], layer)


def _qwen2_vl_vision(vc: Config, b: Builder, p: str) -> None:
    width, merged = vc["embed_dim"], vc["embed_dim"] * vc["spatial_merge_size"] ** 2
    patch, frames = _size(vc["patch_size"]), _size(vc["temporal_patch_size"])
    b.conv(f"{p}.patch_embed.proj", vc["in_channels"], width, (frames, patch, patch), bias=False)

    def layer(b: Builder, q: str, i: int) -> None:
        b.norm(f"{q}.norm1", width, bias=True)
        b.norm(f"{q}.norm2", width, bias=True)
        b.linear(f"{q}.attn.qkv", width, 3 * width, True)
        b.linear(f"{q}.attn.proj", width, width, True)
        b.linear(f"{q}.mlp.fc1", width, width * vc["mlp_ratio"], True)
        b.linear(f"{q}.mlp.fc2", width * vc["mlp_ratio"], width, True)

    b.repeat(f"{p}.blocks", vc["depth"], layer)
    b.norm(f"{p}.merger.ln_q", width, bias=True)
    b.linear(f"{p}.merger.mlp.0", merged, merged, True)
    b.linear(f"{p}.merger.mlp.2", merged, vc["hidden_size"], True)


def _qwen2_5_vl_vision(vc: Config, b: Builder, p: str) -> None:
    width, inter, merged = vc["hidden_size"], vc["intermediate_size"], vc["hidden_size"] * vc["spatial_merge_size"] ** 2
    patch, frames = _size(vc["patch_size"]), _size(vc["temporal_patch_size"])
    b.conv(f"{p}.patch_embed.proj", vc["in_channels"], width, (frames, patch, patch), bias=False)

    def layer(b: Builder, q: str, i: int) -> None:
        b.norm(f"{q}.norm1", width)
        b.norm(f"{q}.norm2", width)
        b.linear(f"{q}.attn.qkv", width, 3 * width, True)
        b.linear(f"{q}.attn.proj", width, width, True)
        for name, n_in, n_out in (("gate_proj", width, inter), ("up_proj", width, inter), ("down_proj", inter, width)):
            b.linear(f"{q}.mlp.{name}", n_in, n_out, True)

    b.repeat(f"{p}.blocks", vc["depth"], layer)
    b.norm(f"{p}.merger.ln_q", width)
    b.linear(f"{p}.merger.mlp.0", merged, merged, True)
    b.linear(f"{p}.merger.mlp.2", merged, vc["out_hidden_size"], True)


def _qwen3_vl_merger(vc: Config, b: Builder, p: str, *, post_shuffle_norm: bool) -> None:
    width, merged = vc["hidden_size"], vc["hidden_size"] * vc["spatial_merge_size"] ** 2
    b.norm(f"{p}.norm", merged if post_shuffle_norm else width, bias=True)
    b.linear(f"{p}.linear_fc1", merged, merged, True)
    b.linear(f"{p}.linear_fc2", merged, vc["out_hidden_size"], True)


def _qwen3_vl_vision(vc: Config, b: Builder, p: str) -> None:
    width, inter = vc["hidden_size"], vc["intermediate_size"]
    patch, frames = _size(vc["patch_size"]), _size(vc["temporal_patch_size"])
    b.conv(f"{p}.patch_embed.proj", vc["in_channels"], width, (frames, patch, patch), bias=True)
    b.embedding(f"{p}.pos_embed", vc["num_position_embeddings"], width)

    def layer(b: Builder, q: str, i: int) -> None:
        b.norm(f"{q}.norm1", width, bias=True)
        b.norm(f"{q}.norm2", width, bias=True)
        b.linear(f"{q}.attn.qkv", width, 3 * width, True)
        b.linear(f"{q}.attn.proj", width, width, True)
        b.linear(f"{q}.mlp.linear_fc1", width, inter, True)
        b.linear(f"{q}.mlp.linear_fc2", inter, width, True)

    b.repeat(f"{p}.blocks", vc["depth"], layer)
    _qwen3_vl_merger(vc, b, f"{p}.merger", post_shuffle_norm=False)
    for k in range(len(vc["deepstack_visual_indexes"])):
        _qwen3_vl_merger(vc, b, f"{p}.deepstack_merger_list.{k}", post_shuffle_norm=True)


_VIT = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12, "num_channels": 3}
_IDEFICS3_VISION = Tower(
    _siglip,
    {**_VIT, "hidden_size": 1152, "num_attention_heads": 16, "image_size": 224, "patch_size": 32, "vision_use_head": False},
)
_QWEN_VISION = {"depth": 32, "num_heads": 16, "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2,
                "temporal_patch_size": 2}
_QWEN2_VL_VISION = Tower(_qwen2_vl_vision, {**_QWEN_VISION, "embed_dim": 1280, "hidden_size": 3584, "mlp_ratio": 4},
                         {"num_attention_heads": "num_heads", "num_hidden_layers": "depth"})
_QWEN2_5_VL_VISION = Tower(_qwen2_5_vl_vision, {**_QWEN_VISION, "hidden_size": 3584, "intermediate_size": 3420,
                                                "out_hidden_size": 3584},
                           {"num_attention_heads": "num_heads", "num_hidden_layers": "depth"})
_QWEN3_VL_VISION = Tower(_qwen3_vl_vision, {**_QWEN_VISION, "depth": 27, "hidden_size": 1152, "intermediate_size": 4304,
                                            "patch_size": 16, "out_hidden_size": 3584, "num_position_embeddings": 2304,
                                            "deepstack_visual_indexes": (8, 16, 24)},
                         {"num_attention_heads": "num_heads", "num_hidden_layers": "depth"})
TOWERS: dict[str, Tower] = {
    "siglip_vision_model": Tower(_siglip, {**_VIT, "image_size": 224, "patch_size": 16, "vision_use_head": True}),
    "clip_vision_model": Tower(_clip, {**_VIT, "image_size": 224, "patch_size": 32}),
    "pixtral": Tower(_pixtral, {**_VIT, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                "num_attention_heads": 16, "image_size": 1024, "patch_size": 16}),
    "idefics3_vision": _IDEFICS3_VISION,
    "smolvlm_vision": _IDEFICS3_VISION,
    "qwen2_vl_vision": _QWEN2_VL_VISION,
    "qwen2_vl": _QWEN2_VL_VISION,  # the model type older hub configs give their vision config
    "qwen2_5_vl_vision": _QWEN2_5_VL_VISION,
    "qwen2_5_vl": _QWEN2_5_VL_VISION,
    "qwen3_vl_vision": _QWEN3_VL_VISION,
    "qwen3_vl": _QWEN3_VL_VISION,
}  # fmt: skip


def _tower(c: Config, b: Builder, part: Part, prefix: str, towers: Mapping[str, Tower] = TOWERS) -> Config:
    """The vision encoder of ``part``, read with the defaults of its model type in ``towers``, built under ``prefix``."""
    vc = _sub(c, part, towers)
    towers[str(vc.raw.get("model_type") or part.model_type)].layout(vc, b, prefix)
    return vc


# ---------------------------------------------------------------------------------------
# Composite models


def _feature_layers(c: Config) -> int:
    layers = c["vision_feature_layer"]
    return len(layers) if isinstance(layers, (list, tuple)) else 1


def _gemma3(text: Part, vision: Part) -> Callable[..., Layout]:
    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        vc = _tower(c, b, vision, "model.vision_tower")
        width = vc["hidden_size"]
        text_config, _ = _text_family(c, text)
        b.other("model.multi_modal_projector", ("mm_input_projection_weight", (width, text_config["hidden_size"])))
        b.norm("model.multi_modal_projector.mm_soft_emb_norm", width)
        return _language_model(c, b, text, "model.language_model.", bool(c["tie_word_embeddings"]), task, num_labels)

    return layout


def _paligemma(text: Part, vision: Part) -> Callable[..., Layout]:
    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        vc = _tower(c, b, vision, "model.vision_tower")
        b.linear("model.multi_modal_projector.linear", vc["hidden_size"], c["projection_dim"], True)
        return _language_model(c, b, text, "model.language_model.", bool(c["tie_word_embeddings"]), task, num_labels)

    return layout


def _llava(text: Part, vision: Part) -> Callable[..., Layout]:
    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        vc = _tower(c, b, vision, "model.vision_tower")
        hidden = _text_family(c, text)[0]["hidden_size"]
        bias = bool(c["multimodal_projector_bias"])
        b.linear("model.multi_modal_projector.linear_1", vc["hidden_size"] * _feature_layers(c), hidden, bias)
        b.linear("model.multi_modal_projector.linear_2", hidden, hidden, bias)
        return _language_model(c, b, text, "model.language_model.", _either_tied(c), task, num_labels)

    return layout


def _mistral3(text: Part, vision: Part) -> Callable[..., Layout]:
    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        vc = _tower(c, b, vision, "model.vision_tower")
        width, merge = vc["hidden_size"], c["spatial_merge_size"]
        hidden = _text_family(c, text)[0]["hidden_size"]
        bias = bool(c["multimodal_projector_bias"])
        b.norm("model.multi_modal_projector.norm", width)
        b.linear("model.multi_modal_projector.patch_merger.merging_layer", width * merge * merge, width, False)
        b.linear("model.multi_modal_projector.linear_1", width * _feature_layers(c), hidden, bias)
        b.linear("model.multi_modal_projector.linear_2", hidden, hidden, bias)
        return _language_model(c, b, text, "model.language_model.", bool(c["tie_word_embeddings"]), task, num_labels)

    return layout


def _idefics3(text: Part, vision: Part) -> Callable[..., Layout]:
    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        vc = _tower(c, b, vision, "model.vision_model")
        hidden = _text_family(c, text)[0]["hidden_size"]
        scale = c["scale_factor"]
        b.linear("model.connector.modality_projection.proj", vc["hidden_size"] * scale * scale, hidden, False)
        return _language_model(c, b, text, "model.text_model.", bool(c["tie_word_embeddings"]), task, num_labels)

    return layout


def _qwen_vl(text: Part, vision: Part) -> Callable[..., Layout]:
    """Qwen2-VL, Qwen2.5-VL: the vision tower and its patch merger at ``model.visual``."""

    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        _tower(c, b, vision, "model.visual")
        return _language_model(c, b, text, "model.language_model.", _either_tied(c), task, num_labels)

    return layout


def _qwen3_vl(text: Part, vision: Part) -> Callable[..., Layout]:
    """Qwen3-VL: as Qwen2-VL, but only the composite's own flag ties ``lm_head``."""

    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        _tower(c, b, vision, "model.visual")
        return _language_model(c, b, text, "model.language_model.", bool(c["tie_word_embeddings"]), task, num_labels)

    return layout


def _mllama_text(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    """Llama 3.2 Vision's language model: self-attention layers and gated cross-attention layers to the image."""
    hidden, heads, kv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = hidden // heads
    listed = c["cross_attention_layers"]
    cross = set([3, 8, 13, 18, 23, 28, 33, 38] if listed is None else listed)
    b.embedding("model.embed_tokens", c["vocab_size"] + 8, hidden)  # eight extra rows for image tokens
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        attention = f"{p}.cross_attn" if i in cross else f"{p}.self_attn"
        if i in cross:
            b.other(p, ("cross_attn_attn_gate", (1,)), ("cross_attn_mlp_gate", (1,)))
        for name, n_out in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            b.linear(f"{attention}.{name}", hidden, n_out, False)
        b.linear(f"{attention}.o_proj", heads * hd, hidden, False)
        if i in cross:
            b.norm(f"{attention}.q_norm", hd)
            b.norm(f"{attention}.k_norm", hd)
        families._gated_mlp()(c, b, f"{p}.mlp", i)
        b.norm(f"{p}.input_layernorm", hidden)
        b.norm(f"{p}.post_attention_layernorm", hidden)
    b.norm("model.norm", hidden)
    b.linear("lm_head", hidden, c["vocab_size"], False)  # never tied: the embeddings have eight rows more
    return Layout("model.embed_tokens", "lm_head", None, False)


def _composite(
    layout: Callable[[Part, Part], Callable[..., Layout]],
    text: Part,
    vision: Part,
    defaults: Mapping[str, Any],
    model_class: str | None,
) -> Family:
    return Family(
        layout(text, vision),
        {"text_config": None, "vision_config": None, **defaults},
        tasks=frozenset({CAUSAL_LM}),
        model_class=model_class,
    )


_MISTRAL3_TEXT = {"head_dim": 128, "hidden_size": 5120, "intermediate_size": 32768, "num_attention_heads": 32,
                  "num_hidden_layers": 40, "num_key_value_heads": 8, "vocab_size": 131072}  # fmt: skip
_LLAVA_VISION = {"intermediate_size": 4096, "hidden_size": 1024, "patch_size": 14, "image_size": 336,
                 "num_hidden_layers": 24, "num_attention_heads": 16}  # fmt: skip

_QWEN2_VL_TEXT = families.Family(
    families._decoder(qkv_bias=lambda c: True),
    families._defaults(vocab_size=152064, hidden_size=8192, intermediate_size=29568, num_hidden_layers=80,
                       num_attention_heads=64, num_key_value_heads=8),
    tasks=frozenset({CAUSAL_LM}),
)  # fmt: skip

_MLLAMA_TEXT = families.Family(
    _mllama_text,
    families._defaults(vocab_size=128256, intermediate_size=14336, num_hidden_layers=40, num_key_value_heads=8,
                       cross_attention_layers=None),
    tasks=frozenset({CAUSAL_LM}),
)  # fmt: skip

LANGUAGE_MODELS: dict[str, Family] = {
    "mllama_text_model": _MLLAMA_TEXT,
    "qwen2_vl_text": _QWEN2_VL_TEXT,
    "qwen2_5_vl_text": _QWEN2_VL_TEXT,
    "qwen3_vl_text": families.Family(
        families._decoder(qk_norm=families._per_head_norm, **families._ATTENTION_BIAS),
        families._defaults(vocab_size=151936, intermediate_size=22016, head_dim=128, attention_bias=False),
        tasks=frozenset({CAUSAL_LM}),
    ),
}
"""Language models that exist only inside a multimodal model (transformers builds no causal LM from them alone)."""


FAMILIES: dict[str, Family] = {
    # AutoModelForCausalLM builds MllamaForCausalLM from a whole Llama 3.2 Vision config: the text model alone.
    "mllama": families.Family(families._text_model(_MLLAMA_TEXT), {"text_config": None}, tasks=frozenset({CAUSAL_LM})),
    "qwen2_vl": _composite(
        _qwen_vl,
        Part("text_config", "qwen2_vl_text", flat=True),
        Part("vision_config", "qwen2_vl_vision"),
        {"tie_word_embeddings": False},
        "Qwen2VLForConditionalGeneration",
    ),
    "qwen2_5_vl": _composite(
        _qwen_vl,
        Part("text_config", "qwen2_5_vl_text", flat=True),
        Part("vision_config", "qwen2_5_vl_vision"),
        {"tie_word_embeddings": False},
        "Qwen2_5_VLForConditionalGeneration",
    ),
    "qwen3_vl": _composite(
        _qwen3_vl,
        Part("text_config", "qwen3_vl_text"),
        Part("vision_config", "qwen3_vl_vision"),
        {"tie_word_embeddings": False},
        "Qwen3VLForConditionalGeneration",
    ),
    "gemma3": _composite(
        _gemma3,
        Part("text_config", "gemma3_text"),
        Part("vision_config", "siglip_vision_model"),
        {"tie_word_embeddings": True},
        None,  # AutoModelForCausalLM builds Gemma3ForConditionalGeneration
    ),
    "paligemma": _composite(
        _paligemma,
        Part("text_config", "gemma", {"hidden_size": 2048, "num_hidden_layers": 18, "intermediate_size": 16384,
                                      "num_attention_heads": 8, "num_key_value_heads": 1, "vocab_size": 257152}),
        Part("vision_config", "siglip_vision_model", {"intermediate_size": 4096, "hidden_size": 1152, "patch_size": 14,
                                                      "image_size": 224, "num_hidden_layers": 27,
                                                      "num_attention_heads": 16, "vision_use_head": False}),
        {"tie_word_embeddings": True, "projection_dim": 2048},
        "PaliGemmaForConditionalGeneration",
    ),
    "llava": _composite(
        _llava,
        Part("text_config", "llama"),
        Part("vision_config", "clip_vision_model", _LLAVA_VISION),
        {"tie_word_embeddings": False, "vision_feature_layer": -2, "multimodal_projector_bias": True},
        "LlavaForConditionalGeneration",
    ),
    "mistral3": _composite(
        _mistral3,
        Part("text_config", "mistral", _MISTRAL3_TEXT),
        Part("vision_config", "pixtral", {**_LLAVA_VISION, "image_size": 1540}),
        {"tie_word_embeddings": True, "vision_feature_layer": -1, "multimodal_projector_bias": False,
         "spatial_merge_size": 2},
        "Mistral3ForConditionalGeneration",
    ),
    "idefics3": _composite(
        _idefics3,
        Part("text_config", "llama"),
        Part("vision_config", "idefics3_vision"),
        {"tie_word_embeddings": False, "scale_factor": 2},
        "Idefics3ForConditionalGeneration",
    ),
    "smolvlm": _composite(
        _idefics3,
        Part("text_config", "llama"),
        Part("vision_config", "smolvlm_vision"),
        {"tie_word_embeddings": False, "scale_factor": 2},
        "SmolVLMForConditionalGeneration",
    ),
}  # fmt: skip
