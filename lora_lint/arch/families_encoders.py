"""Encoders and encoder-decoders added after the first release: DistilBERT, ViT, Whisper.

DistilBERT is described with its sequence-classification head (``pre_classifier`` and
``classifier``), ViT with its image-classification head (PEFT has no task type for it:
the head is a plain ``nn.Linear`` that ``all-linear`` adapts unless ``modules_to_save``
names it), Whisper as ``WhisperForConditionalGeneration`` (a speech encoder of two
convolutions and a text decoder; ``proj_out`` is the output layer, tied to the decoder's
embeddings by default).
"""

from __future__ import annotations

from lora_lint.arch.families import SEQ_2_SEQ_LM, SEQ_CLS, Builder, Config, Family, Layout, _size

IMAGE_CLASSIFICATION = "IMAGE_CLASSIFICATION"
"""``AutoModelForImageClassification``: not a PEFT task type, so nothing is added to ``modules_to_save``."""


def _distilbert(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    dim, hidden = c["dim"], c["hidden_dim"]
    e = "distilbert.embeddings"
    b.embedding(f"{e}.word_embeddings", c["vocab_size"], dim)
    b.embedding(f"{e}.position_embeddings", c["max_position_embeddings"], dim)
    b.norm(f"{e}.LayerNorm", dim, bias=True)

    def layer(b: Builder, p: str, i: int) -> None:
        for name in ("q_lin", "k_lin", "v_lin", "out_lin"):
            b.linear(f"{p}.attention.{name}", dim, dim, True)
        b.norm(f"{p}.sa_layer_norm", dim, bias=True)
        b.linear(f"{p}.ffn.lin1", dim, hidden, True)
        b.linear(f"{p}.ffn.lin2", hidden, dim, True)
        b.norm(f"{p}.output_layer_norm", dim, bias=True)

    b.repeat("distilbert.transformer.layer", c["n_layers"], layer)
    b.linear("pre_classifier", dim, dim, True)
    b.linear("classifier", dim, num_labels, True)
    return Layout(f"{e}.word_embeddings", None, "classifier", False)


def _vit(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    hidden, inter, bias = c["hidden_size"], c["intermediate_size"], bool(c["qkv_bias"])
    patch, image = _size(c["patch_size"]), _size(c["image_size"])
    b.other("vit.embeddings", ("cls_token", (1, 1, hidden)), ("position_embeddings", (1, (image // patch) ** 2 + 1, hidden)))
    b.conv("vit.embeddings.patch_embeddings.projection", c["num_channels"], hidden, (patch, patch), bias=True)

    def layer(b: Builder, p: str, i: int) -> None:
        for name in ("q_proj", "k_proj", "v_proj"):
            b.linear(f"{p}.attention.{name}", hidden, hidden, bias)
        b.linear(f"{p}.attention.o_proj", hidden, hidden, True)
        b.norm(f"{p}.layernorm_before", hidden, bias=True)
        b.norm(f"{p}.layernorm_after", hidden, bias=True)
        b.linear(f"{p}.mlp.fc1", hidden, inter, True)
        b.linear(f"{p}.mlp.fc2", inter, hidden, True)

    b.repeat("vit.layers", c["num_hidden_layers"], layer)
    b.norm("vit.layernorm", hidden, bias=True)
    b.linear("classifier", hidden, num_labels, True)
    return Layout("vit.embeddings.patch_embeddings", None, "classifier", False)


def _whisper_attention(b: Builder, p: str, width: int) -> None:
    b.linear(f"{p}.k_proj", width, width, False)
    for name in ("v_proj", "q_proj", "out_proj"):
        b.linear(f"{p}.{name}", width, width, True)


def _whisper(c: Config, b: Builder, task: str, num_labels: int) -> Layout:
    d = c["d_model"]
    enc, dec = "model.encoder", "model.decoder"
    b.conv(f"{enc}.conv1", c["num_mel_bins"], d, (3,), bias=True)
    b.conv(f"{enc}.conv2", d, d, (3,), bias=True)
    b.embedding(f"{enc}.embed_positions", c["max_source_positions"], d)
    for stack, layers, ffn in ((enc, c["encoder_layers"], c["encoder_ffn_dim"]), (dec, c["decoder_layers"], c["decoder_ffn_dim"])):
        if stack == dec:
            b.embedding(f"{dec}.embed_tokens", c["vocab_size"], d)
            b.embedding(f"{dec}.embed_positions", c["max_target_positions"], d)
        for i in range(layers):
            p = f"{stack}.layers.{i}"
            _whisper_attention(b, f"{p}.self_attn", d)
            b.norm(f"{p}.self_attn_layer_norm", d, bias=True)
            if stack == dec:
                _whisper_attention(b, f"{p}.encoder_attn", d)
                b.norm(f"{p}.encoder_attn_layer_norm", d, bias=True)
            b.linear(f"{p}.fc1", d, ffn, True)
            b.linear(f"{p}.fc2", ffn, d, True)
            b.norm(f"{p}.final_layer_norm", d, bias=True)
        b.norm(f"{stack}.layer_norm", d, bias=True)
    tied = bool(c["tie_word_embeddings"])
    b.linear("proj_out", d, c["vocab_size"], False, tied_to=f"{dec}.embed_tokens" if tied else None)
    return Layout(f"{dec}.embed_tokens", "proj_out", None, tied)


FAMILIES: dict[str, Family] = {
    "distilbert": Family(
        _distilbert,
        {"vocab_size": 30522, "max_position_embeddings": 512, "n_layers": 6, "n_heads": 12, "dim": 768,
         "hidden_dim": 3072, "tie_word_embeddings": True},
        aliases={"hidden_size": "dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers"},
        tasks=frozenset({SEQ_CLS}),
        default_task=SEQ_CLS,
    ),
    "vit": Family(
        _vit,
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
         "image_size": 224, "patch_size": 16, "num_channels": 3, "qkv_bias": True, "vocab_size": 0},
        tasks=frozenset({IMAGE_CLASSIFICATION}),
        default_task=IMAGE_CLASSIFICATION,
        model_class="ViTForImageClassification",
    ),
    "whisper": Family(
        _whisper,
        {"vocab_size": 51865, "num_mel_bins": 80, "encoder_layers": 4, "encoder_attention_heads": 6,
         "decoder_layers": 4, "decoder_attention_heads": 6, "decoder_ffn_dim": 1536, "encoder_ffn_dim": 1536,
         "d_model": 384, "max_source_positions": 1500, "max_target_positions": 448, "tie_word_embeddings": True},
        aliases={"num_attention_heads": "encoder_attention_heads", "hidden_size": "d_model",
                 "num_hidden_layers": "encoder_layers"},
        tasks=frozenset({SEQ_2_SEQ_LM}),
        default_task=SEQ_2_SEQ_LM,
        model_class="WhisperForConditionalGeneration",
    ),
}  # fmt: skip
