"""Property: the pure-Python counts equal PEFT's on the real model, for every supported family.

Random small configs of each family are built by transformers on the meta device,
random LoraConfigs are applied with PEFT, and ``get_nb_trainable_parameters()`` must
equal :func:`count_parameters` exactly. Where PEFT refuses a config, the counter must
report an error too. Needs the ``[torch]`` extra; skipped without it.

A focused run for one family, with more examples than CI's 60:

    LORA_LINT_ARCH_FAMILIES=qwen3_5,qwen3_next LORA_LINT_ARCH_EXAMPLES=300 pytest tests/test_arch_vs_peft.py
"""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network, even by accident
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_lint.arch import AdapterSpec, all_families, architecture_for, count_parameters
from lora_lint.arch.model import LORA_MODULE_KINDS

transformers.logging.set_verbosity_error()

FAMILIES = all_families()

FOCUS = [f for f in os.environ.get("LORA_LINT_ARCH_FAMILIES", "").split(",") if f]
EXAMPLES = int(os.environ.get("LORA_LINT_ARCH_EXAMPLES", "60"))

_AUTO = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
}


def _maybe(draw, config: dict, key: str, strategy) -> None:
    """Set ``key`` or leave it to the config class default: both paths must agree."""
    if draw(st.booleans()):
        config[key] = draw(strategy)


def _decoder_config(draw, family: str) -> dict:
    heads = draw(st.sampled_from([2, 4]))
    head_dim = draw(st.sampled_from([4, 8]))
    config = {
        "vocab_size": draw(st.sampled_from([32, 40])),
        "hidden_size": heads * head_dim,
        "intermediate_size": draw(st.sampled_from([16, 24])),
        "num_hidden_layers": draw(st.integers(1, 3)),
        "num_attention_heads": heads,
        "max_position_embeddings": 64,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    kv_choices = [k for k in (1, 2, heads) if heads % k == 0]
    if family in {"gemma", "gemma2", "gemma3_text", "qwen3", "glm4", "ministral3"}:
        config["head_dim"] = draw(st.sampled_from([4, 8]))
        config["num_key_value_heads"] = draw(st.sampled_from(kv_choices))
    else:
        _maybe(draw, config, "num_key_value_heads", st.sampled_from(kv_choices))
    _maybe(draw, config, "tie_word_embeddings", st.booleans())
    for flag in (
        "attention_bias",
        "mlp_bias",
        "qkv_bias",
        "use_bias",
        "use_qkv_bias",
        "qk_layernorm",
        "use_qk_norm",
    ):
        if flag in FAMILIES[family].defaults:
            _maybe(draw, config, flag, st.booleans())
    if family in {"mixtral"}:
        config["num_local_experts"] = draw(st.sampled_from([2, 3]))
    if family in {"qwen2_moe", "qwen3_moe"}:
        config["num_experts"] = draw(st.sampled_from([2, 3]))
        config["moe_intermediate_size"] = draw(st.sampled_from([8, 12]))
        _maybe(draw, config, "decoder_sparse_step", st.sampled_from([1, 2]))
        _maybe(draw, config, "mlp_only_layers", st.sampled_from([[], [0]]))
    if family == "qwen2_moe":
        config["shared_expert_intermediate_size"] = draw(st.sampled_from([8, 20]))
    if family == "stablelm":
        _maybe(draw, config, "use_parallel_residual", st.booleans())
    return config


_HYBRID_TEXT = {"qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text"}


def _hybrid_config(draw, family: str) -> dict:
    """Gated DeltaNet hybrids, small enough that a depthwise convolution sometimes takes LoRA (r divisible by groups)."""
    config = _decoder_config(draw, "qwen3")
    config.update(
        linear_conv_kernel_dim=draw(st.sampled_from([2, 4])),
        linear_key_head_dim=draw(st.sampled_from([1, 2, 4])),
        linear_value_head_dim=draw(st.sampled_from([2, 4])),
        linear_num_key_heads=1,
        linear_num_value_heads=draw(st.sampled_from([1, 2])),
    )
    if draw(st.booleans()):
        config["layer_types"] = draw(
            st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=config["num_hidden_layers"], max_size=config["num_hidden_layers"])
        )
    else:
        _maybe(draw, config, "full_attention_interval", st.sampled_from([1, 2]))
    if family in {"qwen3_5_moe", "qwen3_5_moe_text", "qwen3_next"}:
        config["num_experts"] = draw(st.sampled_from([2, 3]))
        config["moe_intermediate_size"] = draw(st.sampled_from([8, 12]))
        config["shared_expert_intermediate_size"] = draw(st.sampled_from([8, 20]))
    if family == "qwen3_next":
        _maybe(draw, config, "decoder_sparse_step", st.sampled_from([1, 2]))
        _maybe(draw, config, "mlp_only_layers", st.sampled_from([[], [0]]))
    if family in _HYBRID_TEXT:
        config = {"text_config": {"model_type": _HYBRID_TEXT[family], **config}}
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    return config


_MULTIMODAL = {
    "gemma3": (["gemma3_text"], "siglip_vision_model"),
    "paligemma": (["gemma"], "siglip_vision_model"),
    "llava": (["llama", "mistral", "qwen2"], "clip_vision_model"),
    "mistral3": (["mistral", "ministral3"], "pixtral"),
    "idefics3": (["llama"], "idefics3_vision"),
    "smolvlm": (["llama"], "smolvlm_vision"),
}
"""Multimodal families: the text families their language model is drawn from, and their vision tower."""


def _multimodal_config(draw, family: str) -> dict:
    text_types, vision_type = _MULTIMODAL[family]
    text_type = draw(st.sampled_from(text_types))
    text = _config(draw, text_type)
    vision = {
        "model_type": vision_type,
        "hidden_size": draw(st.sampled_from([8, 16])),
        "intermediate_size": draw(st.sampled_from([12, 24])),
        "num_hidden_layers": draw(st.integers(1, 2)),
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
    }
    if vision_type == "siglip_vision_model":
        _maybe(draw, vision, "vision_use_head", st.booleans())
    config = {"text_config": text, "vision_config": vision}
    _maybe(draw, config, "tie_word_embeddings", st.booleans())
    if family in {"llava", "mistral3"}:
        _maybe(draw, config, "vision_feature_layer", st.sampled_from([-1, [-2, -1]]))
        _maybe(draw, config, "multimodal_projector_bias", st.booleans())
    if family == "mistral3":
        _maybe(draw, config, "spatial_merge_size", st.sampled_from([1, 2]))
    if family in {"idefics3", "smolvlm"}:
        _maybe(draw, config, "scale_factor", st.sampled_from([1, 2]))
    if family == "paligemma":
        _maybe(draw, config, "projection_dim", st.sampled_from([8, 24]))
    return config


_QWEN_VL_TEXT = {"qwen2_vl": "qwen2_vl_text", "qwen2_5_vl": "qwen2_5_vl_text", "qwen3_vl": "qwen3_vl_text"}


def _qwen_vl_config(draw, family: str) -> dict:
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL; the first two also as flat hub configs (text keys at the top)."""
    text = _decoder_config(draw, "qwen3" if family == "qwen3_vl" else "qwen2")
    vision = {"depth": draw(st.integers(1, 2)), "num_heads": 2, "patch_size": 2, "temporal_patch_size": draw(st.sampled_from([1, 2]))}
    _maybe(draw, vision, "spatial_merge_size", st.sampled_from([1, 2]))
    if family == "qwen2_vl":
        vision.update(embed_dim=draw(st.sampled_from([8, 16])), hidden_size=text["hidden_size"], mlp_ratio=2)
    else:
        vision.update(hidden_size=draw(st.sampled_from([8, 16])), intermediate_size=12, out_hidden_size=text["hidden_size"])
    if family == "qwen3_vl":
        vision.update(num_position_embeddings=16, deepstack_visual_indexes=draw(st.sampled_from([[], [0]])))
    if family != "qwen3_vl" and draw(st.booleans()):
        config = {**text, "vision_config": vision}
    else:
        if draw(st.booleans()):
            text["model_type"] = _QWEN_VL_TEXT[family]
        config = {"text_config": text, "vision_config": vision}
    _maybe(draw, config, "tie_word_embeddings", st.booleans())
    return config


def _nemotron_h_config(draw) -> dict:
    config = _decoder_config(draw, "qwen3")
    blocks = draw(st.lists(st.sampled_from("ME*-"), min_size=1, max_size=4))
    if draw(st.booleans()):
        config["hybrid_override_pattern"] = "".join(blocks)
    else:
        names = {"M": "mamba", "E": "moe", "*": "full_attention", "-": "mlp"}
        config["layers_block_type"] = [names[b] for b in blocks]
    config.update(
        mamba_num_heads=2,
        mamba_head_dim=4,
        ssm_state_size=draw(st.sampled_from([1, 2])),
        n_groups=draw(st.sampled_from([1, 2])),
        n_routed_experts=draw(st.sampled_from([2, 3])),
        moe_intermediate_size=8,
        moe_shared_expert_intermediate_size=12,
        num_experts_per_tok=1,
    )
    for key, strategy in (("use_bias", st.booleans()), ("use_conv_bias", st.booleans()), ("mlp_bias", st.booleans()),
                          ("moe_latent_size", st.sampled_from([None, 4])), ("conv_kernel", st.sampled_from([2, 4]))):
        _maybe(draw, config, key, strategy)
    config.pop("num_hidden_layers")
    return config


def _mllama_config(draw, family: str) -> dict:
    config = _decoder_config(draw, "llama")
    config["cross_attention_layers"] = draw(st.lists(st.integers(0, config["num_hidden_layers"] - 1), unique=True))
    if family == "mllama":
        config = {"text_config": {"model_type": "mllama_text_model", **config}}
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    return config


def _moe_config(draw, family: str) -> dict:
    """DeepSeek (latent attention), GLM-4-MoE, gpt-oss and Llama 4: dense and sparse layers, fused experts."""
    config = _decoder_config(draw, "qwen3")
    experts = draw(st.sampled_from([2, 3]))
    if family in {"deepseek_v2", "deepseek_v3", "glm4_moe", "glm4_moe_lite"}:
        config.update(
            n_routed_experts=experts,
            n_shared_experts=draw(st.sampled_from([1, 2])),
            moe_intermediate_size=draw(st.sampled_from([8, 12])),
            first_k_dense_replace=draw(st.integers(0, 2)),
            num_experts_per_tok=1,
            n_group=1,
            topk_group=1,
        )
    if family == "glm4_moe_lite":
        _maybe(draw, config, "mlp_layer_types", st.sampled_from([["sparse"] * config["num_hidden_layers"]]))
    if family in {"deepseek_v2", "deepseek_v3", "glm4_moe_lite"}:
        config.update(
            kv_lora_rank=draw(st.sampled_from([4, 8])),
            q_lora_rank=draw(st.sampled_from([None, 8])),
            qk_rope_head_dim=draw(st.sampled_from([2, 4])),
            qk_nope_head_dim=draw(st.sampled_from([2, 4])),
            v_head_dim=draw(st.sampled_from([4, 8])),
        )
        config.pop("head_dim")
    if family == "glm4_moe":
        _maybe(draw, config, "use_qk_norm", st.booleans())
    if family == "gpt_oss":
        config["num_local_experts"] = experts
        config["num_experts_per_tok"] = 1
    if family in {"llama4", "llama4_text"}:
        config.update(
            num_local_experts=experts,
            intermediate_size_mlp=draw(st.sampled_from([16, 20])),
            num_experts_per_tok=1,
        )
        _maybe(draw, config, "interleave_moe_layer_step", st.sampled_from([1, 2]))
        _maybe(draw, config, "moe_layers", st.sampled_from([[], [0]]))
    if family == "llama4":
        config = {"text_config": {"model_type": "llama4_text", **config}}
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    return config


def _gemma4_text_config(draw) -> dict:
    """Sliding and full-attention layers of their own head sizes, shared key-value layers, per-layer inputs, experts."""
    config = _decoder_config(draw, "qwen3")
    layers = config["num_hidden_layers"]
    kinds = None
    if draw(st.booleans()):
        kinds = draw(st.lists(st.sampled_from(["sliding_attention", "full_attention"]), min_size=layers, max_size=layers))
        config["layer_types"] = kinds
    kinds = list(kinds or ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(layers)])
    kinds[-1] = "full_attention"
    if draw(st.booleans()):
        full = {"head_dim": draw(st.sampled_from([8, 16]))}
        _maybe(draw, full, "num_key_value_heads", st.sampled_from([1, 2]))
        config["per_layer_config"] = {str(i): full for i, kind in enumerate(kinds) if kind == "full_attention"}
    else:
        _maybe(draw, config, "global_head_dim", st.sampled_from([8, 16]))
        _maybe(draw, config, "num_global_key_value_heads", st.sampled_from([1, 2]))
    # transformers refuses shared layers of a kind no earlier layer computes
    shareable = [k for k in range(layers) if set(kinds[: layers - k]) == set(kinds)]
    _maybe(draw, config, "num_kv_shared_layers", st.sampled_from(shareable))
    for key, strategy in (("attention_k_eq_v", st.booleans()), ("use_double_wide_mlp", st.booleans()),
                          ("hidden_size_per_layer_input", st.sampled_from([0, 4, 8])),
                          ("vocab_size_per_layer_input", st.sampled_from([16, 40]))):  # fmt: skip
        _maybe(draw, config, key, strategy)
    if draw(st.booleans()):
        config.update(enable_moe_block=True, num_experts=draw(st.sampled_from([2, 3])), top_k_experts=1,
                      moe_intermediate_size=draw(st.sampled_from([8, 12])))  # fmt: skip
    return config


def _gemma4_config(draw, family: str) -> dict:
    """Gemma 4 with its towers; Gemma 4 12B (unified) with keys of the others, which its classes ignore."""
    config = _gemma4_text_config(draw)
    if family in {"gemma4_text", "gemma4_unified_text"}:
        return config
    if family == "gemma4_unified":
        config = {"text_config": {"model_type": "gemma4_unified_text", **config}}
        if draw(st.booleans()):
            config["vision_config"] = {"model_type": "gemma4_unified_vision", "patch_size": 2,
                                       "pooling_kernel_size": draw(st.sampled_from([1, 2])),
                                       "mm_embed_dim": draw(st.sampled_from([8, 16])), "mm_posemb_size": 4}  # fmt: skip
            _maybe(draw, config["vision_config"], "output_proj_dims", st.sampled_from([8, 12]))
        if draw(st.booleans()):
            config["audio_config"] = {"model_type": "gemma4_unified_audio"}
            for key in ("audio_embed_dim", "hidden_size"):
                _maybe(draw, config["audio_config"], key, st.sampled_from([8, 12]))
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
        return config
    config = {"text_config": {"model_type": "gemma4_text", **config}}
    if draw(st.booleans()):
        config["vision_config"] = {
            "model_type": "gemma4_vision", "hidden_size": draw(st.sampled_from([8, 16])),
            "intermediate_size": draw(st.sampled_from([12, 24])), "num_hidden_layers": draw(st.integers(1, 2)),
            "num_attention_heads": 2, "num_key_value_heads": draw(st.sampled_from([1, 2])),
            "head_dim": draw(st.sampled_from([4, 8])), "patch_size": 2, "position_embedding_size": 8,
            "use_clipped_linears": draw(st.booleans()),
        }  # fmt: skip
    if draw(st.booleans()):
        config["audio_config"] = {
            "model_type": "gemma4_audio", "hidden_size": draw(st.sampled_from([8, 16])), "num_hidden_layers": 1,
            "num_attention_heads": 2, "subsampling_conv_channels": draw(st.sampled_from([[8, 4], [4, 2]])),
            "conv_kernel_size": draw(st.sampled_from([2, 3])), "output_proj_dims": draw(st.sampled_from([8, 12])),
        }  # fmt: skip
    _maybe(draw, config, "tie_word_embeddings", st.booleans())
    return config


def _config(draw, family: str) -> dict:
    if family.startswith("gemma4"):
        config = _gemma4_config(draw, family)
    elif family in _QWEN_VL_TEXT:
        config = _qwen_vl_config(draw, family)
    elif family == "nemotron_h":
        config = _nemotron_h_config(draw)
    elif family in {"mllama", "mllama_text_model"}:
        config = _mllama_config(draw, family)
    elif family in {"deepseek_v2", "deepseek_v3", "glm4_moe", "glm4_moe_lite", "gpt_oss", "llama4", "llama4_text"}:
        config = _moe_config(draw, family)
    elif family in _MULTIMODAL:
        config = _multimodal_config(draw, family)
    elif family in {"qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text", "qwen3_next"}:
        config = _hybrid_config(draw, family)
    elif family in {"gpt2", "gptj"}:
        config = {
            "vocab_size": 40,
            "n_embd": 16,
            "n_layer": draw(st.integers(1, 2)),
            "n_head": 2,
            "n_positions": 32,
            "rotary_dim": 4,
        }
        _maybe(draw, config, "n_inner", st.sampled_from([24, None]))
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    elif family == "falcon":
        config = {
            "vocab_size": 40,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        }
        new_arch = draw(st.booleans())
        config["new_decoder_architecture"] = new_arch
        if new_arch:
            config["num_kv_heads"] = draw(st.sampled_from([1, 2]))
        else:
            config["multi_query"] = draw(st.booleans())
            config["parallel_attn"] = draw(st.booleans())
        _maybe(draw, config, "bias", st.booleans())
        _maybe(draw, config, "ffn_hidden_size", st.sampled_from([24, None]))
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    elif family == "bloom":
        config = {"vocab_size": 40, "hidden_size": 16, "n_layer": 2, "n_head": 2}
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    elif family == "opt":
        config = {
            "vocab_size": 40,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "ffn_dim": 24,
            "max_position_embeddings": 32,
        }
        for key, strategy in (
            ("word_embed_proj_dim", st.sampled_from([8, 16])),
            ("enable_bias", st.booleans()),
            ("do_layer_norm_before", st.booleans()),
            ("layer_norm_elementwise_affine", st.booleans()),
            ("tie_word_embeddings", st.booleans()),
        ):
            _maybe(draw, config, key, strategy)
    elif family == "mpt":
        config = {
            "vocab_size": 40,
            "d_model": 16,
            "n_heads": 2,
            "n_layers": 2,
            "max_seq_len": 32,
        }
    elif family == "gpt_neox":
        config = {
            "vocab_size": 40,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 24,
        }
        _maybe(draw, config, "attention_bias", st.booleans())
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    elif family == "t5":
        config = {
            "vocab_size": 40,
            "d_model": 16,
            "d_kv": 4,
            "d_ff": 24,
            "num_layers": draw(st.integers(1, 2)),
            "num_heads": 2,
            "relative_attention_num_buckets": 8,
        }
        _maybe(draw, config, "num_decoder_layers", st.integers(1, 2))
        _maybe(draw, config, "feed_forward_proj", st.sampled_from(["relu", "gated-gelu"]))
    elif family == "gpt_neo":
        layers = draw(st.integers(1, 3))
        config = {
            "vocab_size": 40,
            "hidden_size": 16,
            "num_layers": layers,
            "num_heads": 2,
            "max_position_embeddings": 32,
            "attention_types": [[["global", "local"], layers // 2]] + [[["global"], 1]] * (layers % 2),
        }
        _maybe(draw, config, "intermediate_size", st.sampled_from([24, None]))
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    elif family == "distilbert":
        config = {"vocab_size": 40, "dim": 16, "hidden_dim": 24, "n_layers": draw(st.integers(1, 2)), "n_heads": 2,
                  "max_position_embeddings": 20, "pad_token_id": 0}
        _maybe(draw, config, "sinusoidal_pos_embds", st.booleans())
    elif family == "vit":
        config = {"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": draw(st.integers(1, 2)),
                  "num_attention_heads": 2, "image_size": 28, "patch_size": 14}
        _maybe(draw, config, "qkv_bias", st.booleans())
    elif family == "whisper":
        config = {"encoder_layers": draw(st.integers(1, 2)), "decoder_layers": draw(st.integers(1, 2)), "d_model": 16,
                  "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 24,
                  "decoder_ffn_dim": 20, "vocab_size": 40, "num_mel_bins": 8, "max_source_positions": 10,
                  "max_target_positions": 12, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
                  "decoder_start_token_id": 1}
        _maybe(draw, config, "tie_word_embeddings", st.booleans())
    elif family in {"bert", "roberta"}:
        config = {
            "vocab_size": 40,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 24,
            "max_position_embeddings": 40,
            "pad_token_id": 1,
        }
        _maybe(draw, config, "type_vocab_size", st.sampled_from([1, 2]))
    else:
        config = _decoder_config(draw, family)
    return {"model_type": family, **config}


def _names(draw, pool: list[str], min_size: int = 1) -> list[str]:
    return draw(
        st.lists(
            st.sampled_from(pool),
            min_size=min_size,
            max_size=min(4, len(pool)),
            unique=True,
        )
    )


@st.composite
def cases(draw):
    family = draw(st.sampled_from(FOCUS or sorted(FAMILIES)))
    config = _config(draw, family)
    tasks = sorted(FAMILIES[family].tasks)
    task = draw(st.sampled_from([*tasks, None]))
    arch = architecture_for(config, task)
    leaves = list(arch.leaf_names)
    layered = sorted(
        {m.name.rsplit(".", 1)[-1] for m in arch.modules if m.kind in LORA_MODULE_KINDS and ".0." in m.name}
    )
    kind = draw(st.sampled_from(["list", "list", "regex", "all-linear", "default"]))
    spec = AdapterSpec(
        r=draw(st.integers(1, 6)),
        lora_alpha=draw(st.sampled_from([1, 8, 16])),
        task_type=task,
    )
    if kind == "list":
        spec.target_modules = _names(draw, leaves + ["not_a_module"])
        if draw(st.booleans()):
            spec.layers_to_transform = draw(st.lists(st.integers(0, 2), max_size=2, unique=True)) or 0
            if draw(st.booleans()):
                spec.layers_pattern = draw(st.sampled_from(["layers", "h", "block", ["blocks", "layer"]]))
    elif kind == "regex":
        chosen = _names(draw, layered or leaves)
        spec.target_modules = r".*\.(" + "|".join(chosen) + ")"
    elif kind == "all-linear":
        spec.target_modules = "all-linear"
    if draw(st.booleans()):
        keys = _names(draw, (layered or leaves) + ["layers.0.mlp.down_proj", "nothing_here"])
        spec.rank_pattern = {key: draw(st.integers(1, 6)) for key in keys}
    if draw(st.booleans()):
        spec.alpha_pattern = {key: 32 for key in _names(draw, leaves + ["nothing_here"])}
    if draw(st.booleans()):
        spec.exclude_modules = draw(st.one_of(st.just(_names(draw, leaves)), st.just(r".*\.0\..*")))
    spec.bias = draw(st.sampled_from(["none", "all", "lora_only"]))
    spec.use_dora = draw(st.booleans())
    spec.lora_dropout = draw(st.sampled_from([0.0, 0.1]))
    if draw(st.booleans()):
        heads = [n for n in ("lm_head", "score", "classifier", "proj_out", arch.input_embedding.rsplit(".", 1)[-1]) if n in leaves]
        spec.modules_to_save = _names(draw, heads + ["mlp", "norm", "ln_f"])
    return config, task, spec


def _build(config: dict, task: str | None = None):
    """The model ``architecture_for`` describes, built by transformers on the meta device."""
    arch = architecture_for(config, task)
    cfg = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if arch.model_class:
            return getattr(transformers, arch.model_class)._from_config(cfg)
        return getattr(transformers, _AUTO[arch.task_type]).from_config(cfg)


def _peft_counts(config: dict, task: str | None, spec: AdapterSpec) -> tuple[int, tuple[int, int] | None]:
    model = _build(config, task)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = sum(p.numel() for p in model.parameters())
        try:
            lora = peft.LoraConfig(
                r=spec.r,
                lora_alpha=spec.lora_alpha,
                target_modules=spec.target_modules,
                exclude_modules=spec.exclude_modules,
                layers_to_transform=spec.layers_to_transform,
                layers_pattern=spec.layers_pattern,
                rank_pattern=spec.rank_pattern,
                alpha_pattern=spec.alpha_pattern,
                bias=spec.bias,
                use_dora=spec.use_dora,
                modules_to_save=spec.modules_to_save,
                task_type=task if task in _AUTO else None,
                lora_dropout=spec.lora_dropout,
            )
            peft_model = peft.get_peft_model(model, lora)
        except (ValueError, TypeError, KeyError):
            return base, None
        return base, peft_model.get_nb_trainable_parameters()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_counts_equal_peft(case):
    config, task, spec = case
    arch = architecture_for(config, task)
    count = count_parameters(arch, spec)
    base, peft_counts = _peft_counts(config, task, spec)
    assert arch.total_params == base
    if peft_counts is None:
        assert count.errors, "PEFT refused this config but the counter reported no error"
    else:
        assert not count.errors, count.errors
        assert (count.trainable_params, count.total_params) == peft_counts


@pytest.mark.parametrize("family", FOCUS or sorted(FAMILIES))
def test_every_family_builds_like_transformers(family):
    """Each family's defaults and layout, with transformers' own defaults for every absent key."""
    config = {
        "model_type": family,
        "num_hidden_layers": 1,
        "n_layer": 1,
        "n_layers": 1,
        "num_layers": 1,
    }
    if family == "phi3":
        config["pad_token_id"] = 0
    if family == "gpt_neo":
        config["attention_types"] = [[["global"], 1]]
    if "text_config" in FAMILIES[family].defaults:  # a multimodal model: its parts' defaults, one layer deep
        config["text_config"] = {"num_hidden_layers": 1}
        if "vision_config" in FAMILIES[family].defaults:
            config["vision_config"] = {"num_hidden_layers": 1}
    arch = architecture_for(config)
    model = _build(config)
    real = {name: tuple(p.shape) for name, p in model.named_parameters()}
    described = {
        f"{m.name}.{param}": shape
        for m in arch.modules
        for param, shape in m.params
        if not (m.tied_to and param == "weight")
    }
    assert described == real


_LANGUAGE_MODEL = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@pytest.mark.parametrize(
    ("model_id", "spec"),
    [
        ("google/gemma-4-E2B", AdapterSpec(r=16, target_modules="all-linear")),
        ("google/gemma-4-E4B", AdapterSpec(r=8)),  # PEFT's default for gemma4: the language model's q_proj, v_proj
        ("google/gemma-4-31B", AdapterSpec(r=16, target_modules=_LANGUAGE_MODEL)),
        ("google/gemma-4-26B-A4B", AdapterSpec(r=16, target_modules="all-linear")),
        ("google/gemma-4-12B", AdapterSpec(r=16, target_modules="all-linear")),
    ],
)
def test_gemma4_checkpoints_count_like_peft(model_id, spec):
    """The published Gemma 4 configs, whose layers differ from one another in ways small random configs may miss."""
    from lora_lint.arch.resolve import resolve_base_model

    config = resolve_base_model(model_id, config_dir=None, cwd=".", user_models=None).config
    count = count_parameters(architecture_for(config), spec)
    assert not count.errors
    assert _peft_counts(config, None, spec) == (count.base_params, (count.trainable_params, count.total_params))
