"""Model families: how transformers 5 lays out each ``model_type``, from a ``config.json``.

Each family is data: the defaults transformers applies to absent keys (read from the
family's ``configuration_*.py``), the aliases it accepts (``attribute_map``), PEFT's
default ``target_modules`` for that model type, and a layout. Most decoder families
share one layout (:func:`_decoder`) and differ only in options: which norms, biases,
head sizes and MLP shape they use. Families that name things their own way (GPT-2,
GPT-J, GPT-NeoX, Falcon, BLOOM, OPT, MPT, T5, BERT) have their own short layouts.

Module names, shapes and biases follow the modeling code of transformers 5.23; a
property test builds every family on the meta device and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from functools import cache
from lora_lint.record import Record, replace

from lora_lint.arch.model import Architecture, Builder

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

CAUSAL_LM = "CAUSAL_LM"
SEQ_CLS = "SEQ_CLS"
SEQ_2_SEQ_LM = "SEQ_2_SEQ_LM"


class UnsupportedArchitecture(ValueError):
    """The config names a model type (or task) this package does not describe."""

    def __init__(self, model_type: str, detail: str = "") -> None:
        self.model_type = model_type
        super().__init__(f"unsupported model type {model_type!r}" + (f": {detail}" if detail else ""))


class Config:
    """A ``config.json`` read the way the transformers config class reads it.

    Keys absent from the file (or aliased through ``attribute_map``) take the class
    default; an explicit ``null`` stays ``None`` so a family can apply the same
    derivation transformers applies in ``__post_init__``.
    """

    def __init__(
        self,
        raw: Mapping[str, Any],
        defaults: Mapping[str, Any],
        aliases: Mapping[str, str],
    ) -> None:
        self.raw = raw
        self.defaults = defaults
        self.aliases = aliases
        self._read: dict[str, Any] = {}  # a layout asks for the same keys once per layer

    def __getitem__(self, key: str) -> Any:
        try:
            return self._read[key]
        except KeyError:
            value = self._read[key] = self._lookup(key)
            return value

    def _lookup(self, key: str) -> Any:
        key = self.aliases.get(key, key)
        if key in self.raw:
            return self.raw[key]
        for alias, target in self.aliases.items():
            if target == key and alias in self.raw:
                return self.raw[alias]
        return self.defaults.get(key)

    def either(self, key: str, fallback: Any) -> Any:
        """``config.key or fallback``: the idiom transformers uses for optional sizes."""
        value = self[key]
        return fallback if value is None else value


class Layout(Record):
    """What a family's layout reports besides its modules."""

    input_embedding: str
    output_layer: str | None
    classifier_head: str | None
    tied: bool
    text: Config | None = None  # a multimodal model's language-model config, which sizes the model


LayoutFn = Callable[[Config, Builder, str, int], Layout]
MlpFn = Callable[[Config, Builder, str, int], None]
"""Describes one layer's MLP under a prefix, given the layer's number."""


class Family(Record):
    layout: LayoutFn
    defaults: Mapping[str, Any]
    aliases: Mapping[str, str] = {}
    default_targets: tuple[str, ...] | str | None = None  # a str is a regex, as PEFT gives for gemma4
    tasks: frozenset[str] = frozenset({CAUSAL_LM, SEQ_CLS})
    moe_conversion: str | None = None
    model_class: str | None = None  # the class described when the task's Auto class has no entry for it
    default_task: str = CAUSAL_LM


# ---------------------------------------------------------------------------------------
# Shared pieces


def _head(
    b: Builder,
    c: Config,
    task: str,
    num_labels: int,
    *,
    embed: str,
    width: int,
    lm_bias: bool = False,
    score: str = "score",
) -> Layout:
    """The task head every decoder family adds on top of its body."""
    tied = bool(c["tie_word_embeddings"])
    if task == SEQ_CLS:
        b.linear(score, width, num_labels, False)
        return Layout(embed, None, score, False)
    b.linear("lm_head", width, c["vocab_size"], lm_bias, tied_to=embed if tied else None)
    return Layout(embed, "lm_head", None, tied)


def _kv_heads(c: Config) -> int:
    return c.either("num_key_value_heads", c["num_attention_heads"])


def _head_dim(c: Config) -> int:
    return c.either("head_dim", c["hidden_size"] // c["num_attention_heads"])


_RMS = "rms"  # weight only
_LN = "ln"  # weight and bias
_NONE = "none"  # parameter-free (OLMo)


def _decoder(
    *,
    norms: tuple[str, ...] | Callable[[Config], tuple[str, ...]] = (
        "input_layernorm",
        "post_attention_layernorm",
    ),
    norm_kind: str = _RMS,
    final_norm: str = "norm",
    qkv_bias: Callable[[Config], bool] = lambda c: False,
    o_bias: Callable[[Config], bool] = lambda c: False,
    o_name: str = "o_proj",
    fused_qkv: bool = False,
    qk_norm: Callable[[Config, Builder, str, int, int, int], None] | None = None,
    mlp: Callable[[Config, Builder, str, int], None] | None = None,
    head_dim: Callable[[Config], int] = _head_dim,
    lm_bias: bool = False,
) -> LayoutFn:
    """The Llama-style decoder most families share: ``model.layers.N.{self_attn,mlp}``."""
    mlp = mlp or _gated_mlp()

    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        hidden, heads, kv = c["hidden_size"], c["num_attention_heads"], _kv_heads(c)
        hd = head_dim(c)
        layer_norms = norms(c) if callable(norms) else norms
        has_qkv_bias, has_o_bias = qkv_bias(c), o_bias(c)  # the same for every layer
        b.embedding("model.embed_tokens", c["vocab_size"], hidden)

        def layer(b: Builder, p: str, i: int) -> None:
            if fused_qkv:
                b.linear(f"{p}.self_attn.{o_name}", heads * hd, hidden, has_o_bias)
                b.linear(
                    f"{p}.self_attn.qkv_proj",
                    hidden,
                    (heads + 2 * kv) * hd,
                    has_qkv_bias,
                )
            else:
                for name, out in (
                    ("q_proj", heads * hd),
                    ("k_proj", kv * hd),
                    ("v_proj", kv * hd),
                ):
                    b.linear(f"{p}.self_attn.{name}", hidden, out, has_qkv_bias)
                b.linear(f"{p}.self_attn.{o_name}", heads * hd, hidden, has_o_bias)
            if qk_norm:
                qk_norm(c, b, f"{p}.self_attn", heads, kv, hd)
            mlp(c, b, f"{p}.mlp", i)
            for norm in layer_norms:
                _norm(b, f"{p}.{norm}", hidden, norm_kind)

        variant = getattr(mlp, "variant", None)
        if variant is not None:
            b.repeat("model.layers", c["num_hidden_layers"], layer, lambda i: variant(c, i))
        else:
            for i in range(c["num_hidden_layers"]):
                layer(b, f"model.layers.{i}", i)
        _norm(b, f"model.{final_norm}", hidden, norm_kind)
        return _head(
            b,
            c,
            task,
            num_labels,
            embed="model.embed_tokens",
            width=hidden,
            lm_bias=lm_bias,
        )

    return layout


def _norm(b: Builder, name: str, shape: int | tuple[int, ...], kind: str) -> None:
    if kind != _NONE:
        b.norm(name, shape, bias=kind == _LN)


def _uniform(mlp: MlpFn) -> MlpFn:
    """Mark an MLP that is the same in every layer: :func:`_decoder` then describes one layer for all of them."""
    return _varying(lambda c, i: None)(mlp)


def _varying(variant: Callable[[Config, int], Hashable]) -> Callable[[MlpFn], MlpFn]:
    """Mark an MLP whose layers differ only as ``variant(config, layer)`` does (dense or sparse, say):
    :func:`_decoder` then describes one layer per variant."""

    def mark(mlp: MlpFn) -> MlpFn:
        mlp.variant = variant  # type: ignore[attr-defined]
        return mlp

    return mark


def _gated_mlp(
    bias: Callable[[Config], bool] = lambda c: False,
) -> MlpFn:
    def mlp(c: Config, b: Builder, p: str, layer: int, inter: int | None = None) -> None:
        hidden, inter, has_bias = c["hidden_size"], inter or c["intermediate_size"], bias(c)
        b.linear(f"{p}.gate_proj", hidden, inter, has_bias)
        b.linear(f"{p}.up_proj", hidden, inter, has_bias)
        b.linear(f"{p}.down_proj", inter, hidden, has_bias)

    return _uniform(mlp)


def _plain_mlp(up: str, down: str, bias: Callable[[Config], bool]) -> MlpFn:
    def mlp(c: Config, b: Builder, p: str, layer: int) -> None:
        hidden, inter, has_bias = c["hidden_size"], c["intermediate_size"], bias(c)
        b.linear(f"{p}.{up}", hidden, inter, has_bias)
        b.linear(f"{p}.{down}", inter, hidden, has_bias)

    return _uniform(mlp)


@_uniform
def _phi3_mlp(c: Config, b: Builder, p: str, layer: int) -> None:
    hidden, inter = c["hidden_size"], c["intermediate_size"]
    b.linear(f"{p}.gate_up_proj", hidden, 2 * inter, False)
    b.linear(f"{p}.down_proj", inter, hidden, False)


@_uniform
def _mixtral_moe(c: Config, b: Builder, p: str, layer: int) -> None:
    b.router(f"{p}.gate", c["num_local_experts"], c["hidden_size"])
    b.experts(f"{p}.experts", c["num_local_experts"], c["hidden_size"], c["intermediate_size"])


def _is_sparse_layer(c: Config, layer: int) -> bool:
    only_dense = c["mlp_only_layers"] or []
    return layer not in only_dense and c["num_experts"] > 0 and (layer + 1) % c["decoder_sparse_step"] == 0


def _qwen_moe(shared_expert: bool) -> Callable[[Config, Builder, str, int], None]:
    dense = _gated_mlp()

    @_varying(_is_sparse_layer)
    def mlp(c: Config, b: Builder, p: str, layer: int) -> None:
        hidden = c["hidden_size"]
        if not _is_sparse_layer(c, layer):
            dense(c, b, p, layer)
            return
        if shared_expert:
            b.router(f"{p}.gate", c["num_experts"], hidden)
            b.experts(f"{p}.experts", c["num_experts"], hidden, c["moe_intermediate_size"])
            dense(c, b, f"{p}.shared_expert", layer, c["shared_expert_intermediate_size"])
            b.linear(f"{p}.shared_expert_gate", hidden, 1, False)
        else:
            b.experts(f"{p}.experts", c["num_experts"], hidden, c["moe_intermediate_size"])
            b.router(f"{p}.gate", c["num_experts"], hidden)

    return mlp


def _per_head_norm(c: Config, b: Builder, p: str, heads: int, kv: int, hd: int) -> None:
    b.norm(f"{p}.q_norm", hd)
    b.norm(f"{p}.k_norm", hd)


def _olmo2_qk_norm(c: Config, b: Builder, p: str, heads: int, kv: int, hd: int) -> None:
    b.norm(f"{p}.q_norm", heads * hd)
    b.norm(f"{p}.k_norm", kv * hd)


def _cohere_qk_norm(c: Config, b: Builder, p: str, heads: int, kv: int, hd: int) -> None:
    if c["use_qk_norm"]:
        b.norm(f"{p}.q_norm", (heads, hd))
        b.norm(f"{p}.k_norm", (kv, hd))


def _phi_qk_norm(c: Config, b: Builder, p: str, heads: int, kv: int, hd: int) -> None:
    if c["qk_layernorm"]:
        width = c["hidden_size"] // c["num_attention_heads"]
        b.norm(f"{p}.q_layernorm", width, bias=True)
        b.norm(f"{p}.k_layernorm", width, bias=True)


def _stablelm_qk_norm(c: Config, b: Builder, p: str, heads: int, kv: int, hd: int) -> None:
    if c["qk_layernorm"]:
        for which, count in (("q_layernorm", heads), ("k_layernorm", kv)):
            for h in range(count):
                b.norm(f"{p}.{which}.norms.{h}", hd)


_LLAMA_LIKE = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": None,
    "head_dim": None,
    "tie_word_embeddings": False,
}
_ATTENTION_BIAS = {
    "qkv_bias": lambda c: bool(c["attention_bias"]),
    "o_bias": lambda c: bool(c["attention_bias"]),
}
"""Families whose config has ``attention_bias``: it applies to q, k, v and o alike."""


def _defaults(**overrides: Any) -> dict[str, Any]:
    return {**_LLAMA_LIKE, **overrides}


def _size(value: Any) -> int:
    """``image_size``/``patch_size`` may be a pair; the image models described are square."""
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _text_model(family: Family) -> LayoutFn:
    """A multimodal config described by its language model alone, from ``text_config``.

    What ``AutoModelForCausalLM`` builds from the configs of Qwen3.5, Llama 4 and Mllama:
    the text model, named as if it stood alone; the vision tower is never loaded.
    """

    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        raw = c["text_config"]
        text = Config(raw if isinstance(raw, Mapping) else {}, family.defaults, family.aliases)
        return replace(family.layout(text, b, task, num_labels), text=text)

    return layout


# ---------------------------------------------------------------------------------------
# Families with their own layouts


def _gpt2(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden = c["n_embd"]
    inner = c.either("n_inner", 4 * hidden)
    b.embedding("transformer.wte", c["vocab_size"], hidden)
    b.embedding("transformer.wpe", c["n_positions"], hidden)

    def layer(b: Builder, p: str, i: int) -> None:
        b.norm(f"{p}.ln_1", hidden, bias=True)
        b.conv1d(f"{p}.attn.c_attn", hidden, 3 * hidden)
        b.conv1d(f"{p}.attn.c_proj", hidden, hidden)
        b.norm(f"{p}.ln_2", hidden, bias=True)
        b.conv1d(f"{p}.mlp.c_fc", hidden, inner)
        b.conv1d(f"{p}.mlp.c_proj", inner, hidden)

    b.repeat("transformer.h", c["n_layer"], layer)
    b.norm("transformer.ln_f", hidden, bias=True)
    return _head(b, c, task, num_labels, embed="transformer.wte", width=hidden)


def _gptj(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden = c["n_embd"]
    inner = c.either("n_inner", 4 * hidden)
    b.embedding("transformer.wte", c["vocab_size"], hidden)

    def layer(b: Builder, p: str, i: int) -> None:
        b.norm(f"{p}.ln_1", hidden, bias=True)
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            b.linear(f"{p}.attn.{name}", hidden, hidden, False)
        b.linear(f"{p}.mlp.fc_in", hidden, inner, True)
        b.linear(f"{p}.mlp.fc_out", inner, hidden, True)

    b.repeat("transformer.h", c["n_layer"], layer)
    b.norm("transformer.ln_f", hidden, bias=True)
    return _head(b, c, task, num_labels, embed="transformer.wte", width=hidden, lm_bias=True)


def _gpt_neox(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden, inter, bias = (
        c["hidden_size"],
        c["intermediate_size"],
        bool(c["attention_bias"]),
    )
    b.embedding("gpt_neox.embed_in", c["vocab_size"], hidden)

    def layer(b: Builder, p: str, i: int) -> None:
        b.norm(f"{p}.input_layernorm", hidden, bias=True)
        b.norm(f"{p}.post_attention_layernorm", hidden, bias=True)
        b.linear(f"{p}.attention.query_key_value", hidden, 3 * hidden, bias)
        b.linear(f"{p}.attention.dense", hidden, hidden, bias)
        b.linear(f"{p}.mlp.dense_h_to_4h", hidden, inter, True)
        b.linear(f"{p}.mlp.dense_4h_to_h", inter, hidden, True)

    b.repeat("gpt_neox.layers", c["num_hidden_layers"], layer)
    b.norm("gpt_neox.final_layer_norm", hidden, bias=True)
    return _head(b, c, task, num_labels, embed="gpt_neox.embed_in", width=hidden)


def _falcon(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden, heads, bias = c["hidden_size"], c["num_attention_heads"], bool(c["bias"])
    kv = c.either("num_kv_heads", heads)
    hd = hidden // heads
    new_arch = c["new_decoder_architecture"]
    if new_arch:
        qkv_out = (2 * kv + heads) * hd
    elif c["multi_query"]:
        qkv_out = hidden + 2 * hd
    else:
        qkv_out = 3 * hidden
    ffn = c.either("ffn_hidden_size", 4 * hidden)
    ln_in_parallel = c.either("num_ln_in_parallel_attn", 2 if new_arch else None)
    b.embedding("transformer.word_embeddings", c["vocab_size"], hidden)

    def layer(b: Builder, p: str, i: int) -> None:
        b.linear(f"{p}.self_attention.query_key_value", hidden, qkv_out, bias)
        b.linear(f"{p}.self_attention.dense", hidden, hidden, bias)
        b.linear(f"{p}.mlp.dense_h_to_4h", hidden, ffn, bias)
        b.linear(f"{p}.mlp.dense_4h_to_h", ffn, hidden, bias)
        if not c["parallel_attn"]:
            norms = ("post_attention_layernorm", "input_layernorm")
        elif ln_in_parallel == 2:
            norms = ("ln_attn", "ln_mlp")
        else:
            norms = ("input_layernorm",)
        for norm in norms:
            b.norm(f"{p}.{norm}", hidden, bias=True)

    b.repeat("transformer.h", c["num_hidden_layers"], layer)
    b.norm("transformer.ln_f", hidden, bias=True)
    return _head(b, c, task, num_labels, embed="transformer.word_embeddings", width=hidden)


def _bloom(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden = c.either("n_embed", c["hidden_size"])
    b.embedding("transformer.word_embeddings", c["vocab_size"], hidden)
    b.norm("transformer.word_embeddings_layernorm", hidden, bias=True)

    def layer(b: Builder, p: str, i: int) -> None:
        b.norm(f"{p}.input_layernorm", hidden, bias=True)
        b.linear(f"{p}.self_attention.query_key_value", hidden, 3 * hidden, True)
        b.linear(f"{p}.self_attention.dense", hidden, hidden, True)
        b.norm(f"{p}.post_attention_layernorm", hidden, bias=True)
        b.linear(f"{p}.mlp.dense_h_to_4h", hidden, 4 * hidden, True)
        b.linear(f"{p}.mlp.dense_4h_to_h", 4 * hidden, hidden, True)

    b.repeat("transformer.h", c["n_layer"], layer)
    b.norm("transformer.ln_f", hidden, bias=True)
    return _head(b, c, task, num_labels, embed="transformer.word_embeddings", width=hidden)


def _opt(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden, ffn, bias = c["hidden_size"], c["ffn_dim"], bool(c["enable_bias"])
    proj = c.either("word_embed_proj_dim", hidden)
    affine = bool(c["layer_norm_elementwise_affine"])
    p0 = "model.decoder"
    b.embedding(f"{p0}.embed_tokens", c["vocab_size"], proj)
    b.embedding(f"{p0}.embed_positions", c["max_position_embeddings"] + 2, hidden)
    if proj != hidden:
        b.linear(f"{p0}.project_out", hidden, proj, False)
        b.linear(f"{p0}.project_in", proj, hidden, False)
    if c["do_layer_norm_before"] and not c["_remove_final_layer_norm"]:
        b.norm(f"{p0}.final_layer_norm", hidden, weight=affine, bias=affine)

    def layer(b: Builder, p: str, i: int) -> None:
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            b.linear(f"{p}.self_attn.{name}", hidden, hidden, bias)
        b.norm(f"{p}.self_attn_layer_norm", hidden, weight=affine, bias=affine)
        b.linear(f"{p}.fc1", hidden, ffn, bias)
        b.linear(f"{p}.fc2", ffn, hidden, bias)
        b.norm(f"{p}.final_layer_norm", hidden, weight=affine, bias=affine)

    b.repeat(f"{p0}.layers", c["num_hidden_layers"], layer)
    return _head(b, c, task, num_labels, embed=f"{p0}.embed_tokens", width=proj)


def _mpt(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden = c["d_model"]
    b.embedding("transformer.wte", c["vocab_size"], hidden)

    def layer(b: Builder, p: str, i: int) -> None:
        b.norm(f"{p}.norm_1", hidden)
        b.linear(f"{p}.attn.Wqkv", hidden, 3 * hidden, False)
        b.linear(f"{p}.attn.out_proj", hidden, hidden, False)
        b.norm(f"{p}.norm_2", hidden)
        b.linear(f"{p}.ffn.up_proj", hidden, 4 * hidden, False)
        b.linear(f"{p}.ffn.down_proj", 4 * hidden, hidden, False)

    b.repeat("transformer.blocks", c["n_layers"], layer)
    b.norm("transformer.norm_f", hidden)
    return _head(b, c, task, num_labels, embed="transformer.wte", width=hidden)


def _t5(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    d, d_ff, heads, d_kv = c["d_model"], c["d_ff"], c["num_heads"], c["d_kv"]
    inner = heads * d_kv
    gated = str(c["feed_forward_proj"]).split("-")[0] == "gated"
    b.embedding("shared", c["vocab_size"], d)
    for stack, layers in (
        ("encoder", c["num_layers"]),
        ("decoder", c.either("num_decoder_layers", c["num_layers"])),
    ):
        b.embedding(f"{stack}.embed_tokens", c["vocab_size"], d, tied_to="shared")
        attentions = ("SelfAttention", "EncDecAttention") if stack == "decoder" else ("SelfAttention",)
        for i in range(layers):
            p = f"{stack}.block.{i}.layer"
            for j, attention in enumerate(attentions):
                for name in ("q", "k", "v"):
                    b.linear(f"{p}.{j}.{attention}.{name}", d, inner, False)
                b.linear(f"{p}.{j}.{attention}.o", inner, d, False)
                if i == 0 and attention == "SelfAttention":
                    b.embedding(
                        f"{p}.{j}.{attention}.relative_attention_bias",
                        c["relative_attention_num_buckets"],
                        heads,
                    )
                b.norm(f"{p}.{j}.layer_norm", d)
            ff = f"{p}.{len(attentions)}.DenseReluDense"
            for name in ("wi_0", "wi_1") if gated else ("wi",):
                b.linear(f"{ff}.{name}", d, d_ff, False)
            b.linear(f"{ff}.wo", d_ff, d, False)
            b.norm(f"{p}.{len(attentions)}.layer_norm", d)
        b.norm(f"{stack}.final_layer_norm", d)
    b.linear("lm_head", d, c["vocab_size"], False, tied_to="shared")  # transformers 5 always ties T5 embeddings
    return Layout("shared", "lm_head", None, True)


def _bert_like(pooler: bool, prefix: str) -> LayoutFn:
    def layout(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
        hidden, inter = c["hidden_size"], c["intermediate_size"]
        e = f"{prefix}.embeddings"
        b.embedding(f"{e}.word_embeddings", c["vocab_size"], hidden)
        b.embedding(f"{e}.position_embeddings", c["max_position_embeddings"], hidden)
        b.embedding(f"{e}.token_type_embeddings", c["type_vocab_size"], hidden)
        b.norm(f"{e}.LayerNorm", hidden, bias=True)
        for i in range(c["num_hidden_layers"]):
            p = f"{prefix}.encoder.layer.{i}"
            for name in ("query", "key", "value"):
                b.linear(f"{p}.attention.self.{name}", hidden, hidden, True)
            b.linear(f"{p}.attention.output.dense", hidden, hidden, True)
            b.norm(f"{p}.attention.output.LayerNorm", hidden, bias=True)
            b.linear(f"{p}.intermediate.dense", hidden, inter, True)
            b.linear(f"{p}.output.dense", inter, hidden, True)
            b.norm(f"{p}.output.LayerNorm", hidden, bias=True)
        if pooler:
            b.linear(f"{prefix}.pooler.dense", hidden, hidden, True)
            b.linear("classifier", hidden, num_labels, True)
        else:
            b.linear("classifier.dense", hidden, hidden, True)
            b.linear("classifier.out_proj", hidden, num_labels, True)
        return Layout(f"{e}.word_embeddings", None, "classifier", False)

    return layout


_BERT_DEFAULTS = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "tie_word_embeddings": True,
}

FAMILIES: dict[str, Family] = {  # the families of this module; all_families() adds the others
    "llama": Family(
        _decoder(mlp=_gated_mlp(lambda c: bool(c["mlp_bias"])), **_ATTENTION_BIAS),
        _defaults(attention_bias=False, mlp_bias=False),
        default_targets=("q_proj", "v_proj"),
    ),
    "mistral": Family(
        _decoder(),
        _defaults(intermediate_size=14336, num_key_value_heads=8),
        default_targets=("q_proj", "v_proj"),
    ),
    "mixtral": Family(
        _decoder(mlp=_mixtral_moe),
        _defaults(intermediate_size=14336, num_key_value_heads=8, num_local_experts=8),
        aliases={"num_experts": "num_local_experts"},
        default_targets=("q_proj", "v_proj"),
        moe_conversion="mixtral",
    ),
    "qwen2": Family(
        _decoder(qkv_bias=lambda c: True, o_bias=lambda c: False),
        _defaults(vocab_size=151936, intermediate_size=22016, num_key_value_heads=32),
        default_targets=("q_proj", "v_proj"),
    ),
    "qwen2_moe": Family(
        _decoder(
            qkv_bias=lambda c: bool(c["qkv_bias"]),
            o_bias=lambda c: False,
            mlp=_qwen_moe(shared_expert=True),
        ),
        _defaults(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=24,
            num_attention_heads=16,
            num_key_value_heads=16,
            decoder_sparse_step=1,
            moe_intermediate_size=1408,
            shared_expert_intermediate_size=5632,
            num_experts=60,
            mlp_only_layers=None,
            qkv_bias=True,
        ),
    ),
    "qwen3": Family(
        _decoder(qk_norm=_per_head_norm, **_ATTENTION_BIAS),
        _defaults(
            vocab_size=151936,
            intermediate_size=22016,
            num_key_value_heads=32,
            head_dim=128,
            attention_bias=False,
        ),
        default_targets=("q_proj", "v_proj"),
    ),
    "qwen3_moe": Family(
        _decoder(
            qk_norm=_per_head_norm,
            mlp=_qwen_moe(shared_expert=False),
            **_ATTENTION_BIAS,
        ),
        _defaults(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=6144,
            num_hidden_layers=24,
            num_key_value_heads=4,
            decoder_sparse_step=1,
            moe_intermediate_size=768,
            num_experts=128,
            mlp_only_layers=None,
            attention_bias=False,
        ),
        aliases={"num_local_experts": "num_experts"},
        moe_conversion="qwen2_moe",
    ),
    "gemma": Family(
        _decoder(**_ATTENTION_BIAS),
        _defaults(
            vocab_size=256000,
            hidden_size=3072,
            intermediate_size=24576,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=16,
            head_dim=256,
            tie_word_embeddings=True,
            attention_bias=False,
        ),
        default_targets=("q_proj", "v_proj"),
    ),
    "gemma2": Family(
        _decoder(
            norms=(
                "input_layernorm",
                "post_attention_layernorm",
                "pre_feedforward_layernorm",
                "post_feedforward_layernorm",
            ),
            **_ATTENTION_BIAS,
        ),
        _defaults(
            vocab_size=256000,
            hidden_size=2304,
            intermediate_size=9216,
            num_hidden_layers=26,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            tie_word_embeddings=True,
            attention_bias=False,
        ),
        default_targets=("q_proj", "v_proj"),
    ),
    "gemma3_text": Family(
        _decoder(
            norms=(
                "input_layernorm",
                "post_attention_layernorm",
                "pre_feedforward_layernorm",
                "post_feedforward_layernorm",
            ),
            qk_norm=_per_head_norm,
            **_ATTENTION_BIAS,
        ),
        _defaults(
            vocab_size=262208,
            hidden_size=2304,
            intermediate_size=9216,
            num_hidden_layers=26,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            tie_word_embeddings=True,
            attention_bias=False,
        ),
        default_targets=("q_proj", "v_proj"),
    ),
    "phi": Family(
        _decoder(
            norms=("input_layernorm",),
            norm_kind=_LN,
            final_norm="final_layernorm",
            qkv_bias=lambda c: True,
            o_bias=lambda c: True,
            o_name="dense",
            qk_norm=_phi_qk_norm,
            mlp=_plain_mlp("fc1", "fc2", lambda c: True),
            lm_bias=True,
        ),
        _defaults(
            vocab_size=51200,
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=24,
            qk_layernorm=False,
        ),
        default_targets=("q_proj", "v_proj", "fc1", "fc2"),
    ),
    "phi3": Family(
        _decoder(
            fused_qkv=True,
            qkv_bias=lambda c: False,
            o_bias=lambda c: False,
            mlp=_phi3_mlp,
        ),
        _defaults(vocab_size=32064, hidden_size=3072, intermediate_size=8192),
    ),
    "stablelm": Family(
        _decoder(
            norms=lambda c: (
                ("input_layernorm",) if c["use_parallel_residual"] else ("input_layernorm", "post_attention_layernorm")
            ),
            norm_kind=_LN,
            qkv_bias=lambda c: bool(c["use_qkv_bias"]),
            o_bias=lambda c: False,
            qk_norm=_stablelm_qk_norm,
            head_dim=lambda c: c["hidden_size"] // c["num_attention_heads"],
        ),
        _defaults(
            vocab_size=50304,
            intermediate_size=6912,
            hidden_size=2560,
            num_key_value_heads=32,
            use_qkv_bias=False,
            qk_layernorm=False,
            use_parallel_residual=False,
        ),
        default_targets=("q_proj", "v_proj"),
    ),
    "starcoder2": Family(
        _decoder(
            norm_kind=_LN,
            qkv_bias=lambda c: bool(c["use_bias"]),
            o_bias=lambda c: bool(c["use_bias"]),
            mlp=_plain_mlp("c_fc", "c_proj", lambda c: bool(c["use_bias"])),
        ),
        _defaults(
            vocab_size=49152,
            hidden_size=3072,
            intermediate_size=12288,
            num_hidden_layers=30,
            num_attention_heads=24,
            num_key_value_heads=2,
            use_bias=True,
            tie_word_embeddings=True,
        ),
    ),
    "olmo": Family(
        _decoder(norm_kind=_NONE, **_ATTENTION_BIAS),
        _defaults(vocab_size=50304, attention_bias=False),
    ),
    "olmo2": Family(
        _decoder(
            norms=("post_attention_layernorm", "post_feedforward_layernorm"),
            qk_norm=_olmo2_qk_norm,
            **_ATTENTION_BIAS,
        ),
        _defaults(vocab_size=50304, attention_bias=False),
    ),
    "granite": Family(
        _decoder(mlp=_gated_mlp(lambda c: bool(c["mlp_bias"])), **_ATTENTION_BIAS),
        _defaults(attention_bias=False, mlp_bias=False),
        tasks=frozenset({CAUSAL_LM}),
    ),
    "cohere": Family(
        _decoder(norms=("input_layernorm",), qk_norm=_cohere_qk_norm, **_ATTENTION_BIAS),
        _defaults(
            vocab_size=256000,
            hidden_size=8192,
            intermediate_size=22528,
            num_hidden_layers=40,
            num_attention_heads=64,
            tie_word_embeddings=True,
            use_qk_norm=False,
            attention_bias=False,
        ),
        tasks=frozenset({CAUSAL_LM}),
    ),
    "gpt2": Family(
        _gpt2,
        {
            "vocab_size": 50257,
            "n_positions": 1024,
            "n_embd": 768,
            "n_layer": 12,
            "n_head": 12,
            "n_inner": None,
            "tie_word_embeddings": True,
        },
        aliases={
            "hidden_size": "n_embd",
            "max_position_embeddings": "n_positions",
            "num_attention_heads": "n_head",
            "num_hidden_layers": "n_layer",
        },
        default_targets=("c_attn",),
    ),
    "gptj": Family(
        _gptj,
        {
            "vocab_size": 50400,
            "n_positions": 2048,
            "n_embd": 4096,
            "n_layer": 28,
            "n_head": 16,
            "n_inner": None,
            "tie_word_embeddings": False,
        },
        aliases={
            "hidden_size": "n_embd",
            "max_position_embeddings": "n_positions",
            "num_attention_heads": "n_head",
            "num_hidden_layers": "n_layer",
        },
        default_targets=("q_proj", "v_proj"),
    ),
    "gpt_neox": Family(
        _gpt_neox,
        {
            "vocab_size": 50432,
            "hidden_size": 6144,
            "num_hidden_layers": 44,
            "num_attention_heads": 64,
            "intermediate_size": 24576,
            "tie_word_embeddings": False,
            "attention_bias": True,
        },
        default_targets=("query_key_value",),
    ),
    "falcon": Family(
        _falcon,
        {
            "vocab_size": 65024,
            "hidden_size": 4544,
            "num_hidden_layers": 32,
            "num_attention_heads": 71,
            "num_ln_in_parallel_attn": None,
            "num_kv_heads": None,
            "new_decoder_architecture": False,
            "multi_query": True,
            "parallel_attn": True,
            "bias": False,
            "ffn_hidden_size": None,
            "tie_word_embeddings": True,
        },
        aliases={"n_embed": "hidden_size"},
        default_targets=("query_key_value",),
    ),
    "bloom": Family(
        _bloom,
        {
            "vocab_size": 250880,
            "hidden_size": 64,
            "n_embed": None,
            "n_layer": 2,
            "n_head": 8,
            "tie_word_embeddings": True,
        },
        aliases={"num_hidden_layers": "n_layer", "num_attention_heads": "n_head"},
        default_targets=("query_key_value",),
    ),
    "opt": Family(
        _opt,
        {
            "vocab_size": 50272,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "ffn_dim": 3072,
            "max_position_embeddings": 2048,
            "do_layer_norm_before": True,
            "_remove_final_layer_norm": False,
            "word_embed_proj_dim": None,
            "num_attention_heads": 12,
            "enable_bias": True,
            "layer_norm_elementwise_affine": True,
            "tie_word_embeddings": True,
        },
        default_targets=("q_proj", "v_proj"),
    ),
    "mpt": Family(
        _mpt,
        {
            "d_model": 2048,
            "n_heads": 16,
            "n_layers": 24,
            "vocab_size": 50368,
            "tie_word_embeddings": True,
        },
        aliases={
            "num_attention_heads": "n_heads",
            "hidden_size": "d_model",
            "num_hidden_layers": "n_layers",
        },
        default_targets=("Wqkv",),
    ),
    "t5": Family(
        _t5,
        {
            "vocab_size": 32128,
            "d_model": 512,
            "d_kv": 64,
            "d_ff": 2048,
            "num_layers": 6,
            "num_decoder_layers": None,
            "num_heads": 8,
            "relative_attention_num_buckets": 32,
            "feed_forward_proj": "relu",
            "tie_word_embeddings": True,
        },
        aliases={
            "hidden_size": "d_model",
            "num_attention_heads": "num_heads",
            "num_hidden_layers": "num_layers",
            "head_dim": "d_kv",
        },
        default_targets=("q", "v"),
        tasks=frozenset({SEQ_2_SEQ_LM}),
        default_task=SEQ_2_SEQ_LM,
    ),
    "bert": Family(
        _bert_like(pooler=True, prefix="bert"),
        _BERT_DEFAULTS,
        default_targets=("query", "value"),
        tasks=frozenset({SEQ_CLS}),
        default_task=SEQ_CLS,
    ),
    "roberta": Family(
        _bert_like(pooler=False, prefix="roberta"),
        {**_BERT_DEFAULTS, "vocab_size": 50265},
        default_targets=("query", "value"),
        tasks=frozenset({SEQ_CLS}),
        default_task=SEQ_CLS,
    ),
}

_ADDED_FAMILY_MODULES = (
    "families_decoders",
    "families_hybrid",
    "families_moe",
    "families_multimodal",
    "families_encoders",
    "families_gemma",
)
"""Modules of families added by kind. Imported on first need: most configs name a family above, and the
static linter's start-up should not pay for describing the others."""


@cache
def all_families() -> dict[str, Family]:
    """``FAMILIES`` with the families of :data:`_ADDED_FAMILY_MODULES` registered in it (once per process)."""
    from importlib import import_module

    for name in _ADDED_FAMILY_MODULES:
        FAMILIES.update(import_module(f"lora_lint.arch.{name}").FAMILIES)
    return FAMILIES


def supported_model_types() -> list[str]:
    return sorted(all_families())


def architecture_for(
    config: Mapping[str, Any],
    task_type: str | None = None,
    num_labels: int | None = None,
) -> Architecture:
    """The model transformers builds from ``config`` for ``task_type``, as PEFT sees it.

    ``task_type`` None means the family's usual head (a language-model head for
    decoders). A multimodal config is described as the class ``AutoModelForCausalLM``
    builds from it where there is one (the text model alone for Qwen3.5, Llama 4 and
    Mllama; the whole model, vision tower included, for Gemma 3), and as its
    image-text-to-text class otherwise.
    """
    model_type = str(config.get("model_type", ""))
    family = FAMILIES.get(model_type) or all_families().get(model_type)
    if family is None:
        raise UnsupportedArchitecture(model_type or "<no model_type>")
    task = task_type or family.default_task
    if task not in family.tasks:
        raise UnsupportedArchitecture(model_type, f"task type {task} is not described")
    c = Config(config, family.defaults, family.aliases)
    labels = num_labels or _num_labels(config)
    builder = Builder()
    layout = family.layout(c, builder, task, labels)
    sizes = layout.text or c
    return Architecture(
        family=model_type,
        task_type=task,
        parts=builder.finish(),
        num_layers=int(sizes["num_hidden_layers"]),
        hidden_size=int(sizes["hidden_size"]),
        vocab_size=int(sizes["vocab_size"]),
        tied_embeddings=layout.tied,
        input_embedding=layout.input_embedding,
        output_layer=layout.output_layer,
        classifier_head=layout.classifier_head,
        moe_conversion=family.moe_conversion,
        default_targets=family.default_targets,
        config=dict(config),
        model_class=family.model_class,
        language_config=sizes,
    )


def _num_labels(config: Mapping[str, Any]) -> int:
    """transformers derives ``num_labels`` from ``id2label`` when present; 2 otherwise."""
    if isinstance(config.get("id2label"), Mapping):
        return len(config["id2label"])
    return int(config.get("num_labels") or 2)
