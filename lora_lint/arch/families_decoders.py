"""Dense decoder families added after the first release: Cohere 2, OLMo 3, GLM-4, Ministral 3 and GPT-Neo.

Each is data over the shared decoder layout of :mod:`lora_lint.arch.families`, except
GPT-Neo, which names its blocks the GPT-2 way with plain ``nn.Linear`` layers.
"""

from __future__ import annotations

from lora_lint.arch.families import (
    _ATTENTION_BIAS,
    CAUSAL_LM,
    FAMILIES,
    Builder,
    Config,
    Family,
    Layout,
    _decoder,
    _defaults,
    _head,
    _phi3_mlp,
)


def _gpt_neo(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden = c["hidden_size"]
    inner = c.either("intermediate_size", 4 * hidden)
    b.embedding("transformer.wte", c["vocab_size"], hidden)
    b.embedding("transformer.wpe", c["max_position_embeddings"], hidden)

    def layer(b: Builder, p: str, i: int) -> None:
        b.norm(f"{p}.ln_1", hidden, bias=True)
        for name in ("k_proj", "v_proj", "q_proj"):
            b.linear(f"{p}.attn.attention.{name}", hidden, hidden, False)
        b.linear(f"{p}.attn.attention.out_proj", hidden, hidden, True)
        b.norm(f"{p}.ln_2", hidden, bias=True)
        b.linear(f"{p}.mlp.c_fc", hidden, inner, True)
        b.linear(f"{p}.mlp.c_proj", inner, hidden, True)

    b.repeat("transformer.h", c["num_layers"], layer)
    b.norm("transformer.ln_f", hidden, bias=True)
    return _head(b, c, task, num_labels, embed="transformer.wte", width=hidden)


FAMILIES: dict[str, Family] = {
    "cohere2": Family(
        _decoder(norms=("input_layernorm",), **_ATTENTION_BIAS),
        _defaults(
            vocab_size=256000,
            hidden_size=8192,
            intermediate_size=22528,
            num_hidden_layers=40,
            num_attention_heads=64,
            tie_word_embeddings=True,
            attention_bias=False,
        ),
        tasks=frozenset({CAUSAL_LM}),
    ),
    "olmo3": FAMILIES["olmo2"],  # OLMo 3 adds sliding-window layers, which hold no other weights than OLMo 2's
    "glm4": Family(
        _decoder(
            norms=("input_layernorm", "post_attention_layernorm", "post_self_attn_layernorm", "post_mlp_layernorm"),
            qkv_bias=lambda c: bool(c["attention_bias"]),
            mlp=_phi3_mlp,
        ),
        _defaults(
            vocab_size=151552,
            intermediate_size=13696,
            num_hidden_layers=40,
            num_key_value_heads=2,
            head_dim=128,
            attention_bias=True,
        ),
    ),
    "ministral3": Family(  # the language model of Ministral 3 (Mistral3ForConditionalGeneration)
        _decoder(),
        _defaults(vocab_size=131072, intermediate_size=14336, num_hidden_layers=34, num_key_value_heads=8, head_dim=128),
    ),
    "gpt_neo": Family(
        _gpt_neo,
        {
            "vocab_size": 50257,
            "max_position_embeddings": 2048,
            "hidden_size": 2048,
            "num_layers": 24,
            "num_heads": 16,
            "intermediate_size": None,
            "tie_word_embeddings": True,
        },
        aliases={"num_attention_heads": "num_heads", "num_hidden_layers": "num_layers"},
        default_targets=("q_proj", "v_proj"),
    ),
}
