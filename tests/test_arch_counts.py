"""Exact counts for known models, and PEFT's matching rules one by one (no torch needed)."""

from __future__ import annotations

import pytest

from lora_lint.arch import (
    AdapterSpec,
    UnsupportedArchitecture,
    architecture_for,
    count_parameters,
)

LLAMA_2_7B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
}
MISTRAL_7B = {
    "model_type": "mistral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
}
PHI_3_MINI = {
    "model_type": "phi3",
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32064,
}
GEMMA_7B = {
    "model_type": "gemma",
    "hidden_size": 3072,
    "intermediate_size": 24576,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "head_dim": 256,
    "vocab_size": 256000,
}
LLAMA_31_70B = {
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
}
MIXTRAL_8X7B = {
    "model_type": "mixtral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "num_local_experts": 8,
}


@pytest.mark.parametrize(
    ("config", "base"),
    [
        (LLAMA_2_7B, 6_738_415_616),
        (MISTRAL_7B, 7_241_732_096),
        ({"model_type": "gpt2"}, 124_439_808),
        (PHI_3_MINI, 3_821_079_552),
        (GEMMA_7B, 8_537_680_896),
        (LLAMA_31_70B, 70_553_706_496),
    ],
)
def test_base_parameters_of_known_models(config, base):
    assert architecture_for(config).total_params == base


@pytest.mark.parametrize(
    ("config", "targets", "per_rank"),
    [
        (LLAMA_2_7B, ["q_proj", "v_proj"], 524_288),
        (MISTRAL_7B, ["q_proj", "v_proj"], 425_984),
        ({"model_type": "gpt2"}, ["c_attn"], 36_864),
        (PHI_3_MINI, ["qkv_proj"], 393_216),
        (GEMMA_7B, ["q_proj", "v_proj"], 401_408),
    ],
)
@pytest.mark.parametrize("r", [4, 8, 16])
def test_trainable_parameters_scale_with_rank(config, targets, per_rank, r):
    count = count_parameters(
        architecture_for(config),
        AdapterSpec(r=r, lora_alpha=2 * r, target_modules=targets),
    )
    assert count.trainable_params == per_rank * r
    assert count.total_params == count.base_params + count.trainable_params
    assert not count.errors


def test_llama2_percent_against_the_true_total_not_the_4bit_packed_one():
    count = count_parameters(
        architecture_for(LLAMA_2_7B),
        AdapterSpec(r=4, target_modules=["q_proj", "v_proj"]),
    )
    assert round(count.trainable_percent, 3) == 0.031
    assert count.naive_4bit_numel == 3_502_510_080  # what sum(p.numel()) shows after NF4 packing
    assert round(100 * count.trainable_params / count.naive_4bit_numel, 3) == 0.06


def test_all_linear_leaves_out_the_output_layer():
    count = count_parameters(architecture_for(LLAMA_31_70B), AdapterSpec(r=16, target_modules="all-linear"))
    assert count.trainable_params == 207_093_760
    assert not any(layer.name == "lm_head" for layer in count.layers)


def test_unmatched_and_partially_matched_targets():
    count = count_parameters(architecture_for(LLAMA_2_7B), AdapterSpec(target_modules=["q_proj", "c_attn"]))
    assert count.unmatched_targets == ("c_attn",)
    assert [(t.target, t.present, t.adapted) for t in count.targets] == [
        ("q_proj", 32, 32),
        ("c_attn", 0, 0),
    ]
    assert not count.errors


def test_no_match_is_an_error_like_peft():
    count = count_parameters(architecture_for({"model_type": "gpt2"}), AdapterSpec(target_modules=["q_proj"]))
    assert count.trainable_params == 0
    assert count.errors and "not found" in count.errors[0]


def test_regex_target_must_match_the_whole_name():
    arch = architecture_for(LLAMA_2_7B)
    assert not count_parameters(arch, AdapterSpec(target_modules=r"q_proj")).layers
    count = count_parameters(arch, AdapterSpec(target_modules=r".*\.(0|1)\.self_attn\.q_proj"))
    assert [layer.name for layer in count.layers] == [
        "model.layers.0.self_attn.q_proj",
        "model.layers.1.self_attn.q_proj",
    ]


def test_layers_to_transform_and_exclude_modules():
    arch = architecture_for(LLAMA_2_7B)
    count = count_parameters(
        arch,
        AdapterSpec(
            target_modules=["q_proj", "v_proj"],
            layers_to_transform=[0, 31],
            exclude_modules=["v_proj"],
        ),
    )
    assert [layer.name for layer in count.layers] == [
        "model.layers.0.self_attn.q_proj",
        "model.layers.31.self_attn.q_proj",
    ]


def test_rank_and_alpha_patterns_take_the_first_matching_key():
    arch = architecture_for(LLAMA_2_7B)
    spec = AdapterSpec(
        r=8,
        target_modules=["q_proj", "v_proj"],
        rank_pattern={r"layers\.0\..*": 2, "q_proj": 4},
        alpha_pattern={"nothing": 1},
    )
    count = count_parameters(arch, spec)
    ranks = {layer.name: layer.r for layer in count.layers}
    assert ranks["model.layers.0.self_attn.q_proj"] == 2
    assert ranks["model.layers.1.self_attn.q_proj"] == 4
    assert ranks["model.layers.1.self_attn.v_proj"] == 8
    assert count.unused_alpha_pattern == ("nothing",)
    assert count.unused_rank_pattern == ()


def test_modules_to_save_copies_count_in_trainable_and_total():
    arch = architecture_for(LLAMA_2_7B)
    count = count_parameters(arch, AdapterSpec(r=8, target_modules=["q_proj"], modules_to_save=["lm_head"]))
    assert count.modules_to_save == {"lm_head": 32000 * 4096}
    assert count.trainable_params == 32 * 8 * 8192 + 32000 * 4096
    assert count.total_params == arch.total_params + count.trainable_params


def test_seq_cls_adds_the_head_to_modules_to_save():
    arch = architecture_for({"model_type": "bert"}, "SEQ_CLS", num_labels=3)
    count = count_parameters(arch, AdapterSpec(r=8, target_modules=["query", "value"], task_type="SEQ_CLS"))
    assert count.modules_to_save["classifier"] == 768 * 3 + 3
    assert count.trainable_params == 12 * 2 * 8 * (768 + 768) + 768 * 3 + 3


def test_dora_and_bias():
    arch = architecture_for({"model_type": "gpt2"})
    plain = count_parameters(arch, AdapterSpec(r=4, target_modules=["c_attn"]))
    dora = count_parameters(arch, AdapterSpec(r=4, target_modules=["c_attn"], use_dora=True))
    assert dora.trainable_params - plain.trainable_params == 12 * 2304
    lora_only = count_parameters(arch, AdapterSpec(r=4, target_modules=["c_attn"], bias="lora_only"))
    assert lora_only.trainable_bias_params == 12 * 2304
    every_bias = count_parameters(arch, AdapterSpec(r=4, target_modules=["c_attn"], bias="all"))
    assert every_bias.trainable_bias_params > lora_only.trainable_bias_params


def test_mixtral_experts_follow_peft_fused_parameter_conversion():
    arch = architecture_for(MIXTRAL_8X7B)
    count = count_parameters(arch, AdapterSpec(r=8, target_modules=["w1", "w2", "w3"]))
    assert not count.errors
    gate_up = next(layer for layer in count.layers if layer.name.endswith("experts.gate_up_proj"))
    assert (gate_up.r, gate_up.alpha) == (
        16,
        16,
    )  # w1 and w3 share one fused tensor: rank and alpha doubled
    assert gate_up.lora_params == 16 * 8 * (4096 + 2 * 14336)
    half = count_parameters(arch, AdapterSpec(r=8, target_modules=["w1"]))
    assert any("fuses" in error for error in half.errors)
    dropout = count_parameters(arch, AdapterSpec(r=8, target_modules=["w2"], lora_dropout=0.05))
    assert any("lora_dropout" in error for error in dropout.errors)


def test_peft_has_no_default_targets_for_some_families():
    count = count_parameters(architecture_for(PHI_3_MINI), AdapterSpec())
    assert count.errors == ("PEFT has no default target_modules for model type 'phi3'",)


def test_gemma3_is_described_with_its_vision_tower():
    """AutoModelForCausalLM builds Gemma3ForConditionalGeneration: all-linear reaches the vision tower too."""
    config = {"model_type": "gemma3", "text_config": {"hidden_size": 64, "num_hidden_layers": 1}}
    arch = architecture_for(config)
    assert arch.family == "gemma3"
    assert "model.language_model.layers.0.self_attn.q_proj" in arch.by_name
    assert "model.vision_tower.encoder.layers.0.self_attn.q_proj" in arch.by_name
    assert arch.by_name["lm_head"].tied_to == arch.input_embedding == "model.language_model.embed_tokens"
    adapted = {layer.name for layer in count_parameters(arch, AdapterSpec(target_modules="all-linear")).layers}
    assert "model.vision_tower.encoder.layers.0.mlp.fc1" in adapted and "lm_head" not in adapted


def _catalog_config(model_id: str) -> dict:
    from lora_lint.arch.resolve import resolve_base_model

    found = resolve_base_model(model_id, config_dir=None, cwd=".", user_models=None)
    assert found is not None and found.source == "catalog"
    return found.config


def test_gemma4_full_attention_layers_have_their_own_head_size_and_no_v_proj():
    """Gemma 4 31B: 50 sliding layers of 16 x 256 key-value heads, 10 full ones of 4 x 512 with keys as values.

    PEFT's default for gemma4 is a regex over the language model's q_proj and v_proj; by hand, at r = 8:
    sliding q 8 * (5376 + 8192), v 8 * (5376 + 4096); full q 8 * (5376 + 16384), no v.
    """
    arch = architecture_for(_catalog_config("google/gemma-4-31B-it"))
    full = "model.language_model.layers.5.self_attn"
    assert (arch.by_name[f"{full}.q_proj"].out_features, arch.by_name[f"{full}.k_proj"].out_features) == (16384, 2048)
    assert f"{full}.v_proj" not in arch.by_name
    assert arch.by_name["model.language_model.layers.4.self_attn.v_proj"].out_features == 4096
    count = count_parameters(arch, AdapterSpec(r=8))
    assert not count.errors
    assert count.trainable_params == 50 * 8 * (5376 + 8192 + 5376 + 4096) + 10 * 8 * (5376 + 16384)
    assert {layer.name.split(".")[1] for layer in count.layers} == {"language_model"}


def test_gemma4_shared_key_value_layers_and_per_layer_inputs():
    """Gemma 4 E2B: the last 20 of 35 layers reuse keys and values (no k/v projections) and have a double-wide MLP."""
    arch = architecture_for(_catalog_config("google/gemma-4-E2B-it"))
    own, shared = "model.language_model.layers.14", "model.language_model.layers.15"
    assert f"{own}.self_attn.k_proj" in arch.by_name and f"{shared}.self_attn.k_proj" not in arch.by_name
    assert arch.by_name[f"{own}.mlp.up_proj"].out_features == 6144
    assert arch.by_name[f"{shared}.mlp.up_proj"].out_features == 2 * 6144
    assert arch.by_name["model.language_model.embed_tokens_per_layer"].params == (("weight", (262144, 35 * 256)),)
    assert arch.total_params == 5_104_297_504  # rounds to the "5.1B with embeddings" of Google's model card


def test_gemma4_tower_projections_are_wrapped_so_a_plain_target_list_fails_like_peft():
    """The towers' Gemma4ClippableLinear holds its nn.Linear at ``.linear``: ``q_proj`` names the wrapper too."""
    arch = architecture_for(_catalog_config("google/gemma-4-E4B-it"))
    refused = count_parameters(arch, AdapterSpec(target_modules=["q_proj", "v_proj"]))
    assert refused.errors[0] == (  # 16 in the vision tower, 12 in the audio encoder
        "28 targeted container modules named q_proj, which LoRA cannot adapt "
        "(e.g. model.vision_tower.encoder.layers.0.self_attn.q_proj)"
    )
    text_only = count_parameters(arch, AdapterSpec(target_modules=r".*language_model.*\.(q_proj|v_proj)"))
    assert not text_only.errors
    adapted = {layer.name for layer in count_parameters(arch, AdapterSpec(target_modules="all-linear")).layers}
    for name in (
        "model.vision_tower.encoder.layers.0.self_attn.q_proj.linear",
        "model.audio_tower.layers.0.self_attn.relative_k_proj",
        "model.embed_audio.embedding_projection",
    ):
        assert name in adapted
    assert "model.audio_tower.layers.0.lconv1d.depthwise_conv1d" not in adapted


def test_gemma4_experts_sit_beside_a_dense_mlp_and_only_the_router_is_linear():
    arch = architecture_for(_catalog_config("google/gemma-4-26B-A4B-it"))
    layer = "model.language_model.layers.0"
    experts = (("gate_up_proj", (128, 2 * 704, 2816)), ("down_proj", (128, 2816, 704)))
    assert arch.by_name[f"{layer}.experts"].params == experts
    assert arch.by_name[f"{layer}.mlp.down_proj"].in_features == 2112
    adapted = {layer.name for layer in count_parameters(arch, AdapterSpec(target_modules="all-linear")).layers}
    assert f"{layer}.router.proj" in adapted and f"{layer}.experts" not in adapted
    assert count_parameters(arch, AdapterSpec(target_modules=["experts"])).errors


def test_unsupported_family_raises_with_its_name():
    with pytest.raises(UnsupportedArchitecture) as info:
        architecture_for({"model_type": "rwkv"})
    assert info.value.model_type == "rwkv"


@pytest.mark.parametrize(
    ("config", "spec"),
    [
        (LLAMA_2_7B, AdapterSpec(r=8, target_modules=["q_proj", "v_proj"])),
        (LLAMA_2_7B, AdapterSpec(r=16, target_linear=True, use_dora=True, rank_pattern={"v_proj": 4}, modules_to_save=["lm_head"])),
        (LLAMA_2_7B, AdapterSpec(r=4, target_modules=["q_proj", "embed_tokens"], layers_to_transform=[0, 3], bias="all")),
        (MIXTRAL_8X7B, AdapterSpec(r=8, target_modules=["q_proj", "w1", "w3"], rank_pattern={"q_proj": 2})),
    ],
)
def test_rank_sweep_from_one_count_equals_recounting(config, spec):
    arch = architecture_for(config)
    counted = count_parameters(arch, spec)
    for r in (1, 2, 5, 32, 64):
        recount = count_parameters(arch, spec.with_rank(r))
        assert counted.at_rank(r, spec.r) == (recount.trainable_params, recount.total_params)


QWEN3_5_TINY = {
    "model_type": "qwen3_5",
    "text_config": {
        "model_type": "qwen3_5_text", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 4,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "vocab_size": 64,
        "linear_key_head_dim": 2, "linear_value_head_dim": 4, "linear_num_key_heads": 1, "linear_num_value_heads": 2,
        "linear_conv_kernel_dim": 4,
    },
}  # fmt: skip


def test_multimodal_qwen3_5_is_described_by_its_language_model():
    arch = architecture_for(QWEN3_5_TINY)
    assert arch.model_class is None and not any("visual" in m.name for m in arch.modules)
    assert [m.name.split(".")[3] for m in arch.modules if m.name.endswith((".linear_attn", ".self_attn.q_proj"))] == [
        "linear_attn", "linear_attn", "linear_attn", "self_attn"
    ]  # fmt: skip
    assert arch.by_name["model.layers.3.self_attn.q_proj"].out_features == 2 * 2 * 8  # queries and their gate


def test_depthwise_convolution_takes_lora_only_with_a_rank_divisible_by_its_groups():
    arch = architecture_for(QWEN3_5_TINY)
    conv_dim = 2 * 2 + 8  # 2 x key dim + value dim, one group per channel
    refused = count_parameters(arch, AdapterSpec(r=5, target_modules=["conv1d"]))
    assert refused.errors and "12 convolution groups" in refused.errors[0]
    counted = count_parameters(arch, AdapterSpec(r=conv_dim, target_modules=["conv1d"]))
    assert not counted.errors
    per_layer = conv_dim * (conv_dim * 4) + conv_dim * conv_dim // conv_dim  # lora_A over the whole fan-in, lora_B grouped
    assert counted.lora_params == 3 * per_layer


def test_nemotron_h_refuses_all_linear_as_peft_does():
    config = {"model_type": "nemotron_h", "hybrid_override_pattern": "M*", "hidden_size": 16, "num_attention_heads": 2,
              "num_key_value_heads": 1, "head_dim": 8, "mamba_num_heads": 2, "mamba_head_dim": 4, "n_groups": 1,
              "ssm_state_size": 2, "vocab_size": 64}  # fmt: skip
    arch = architecture_for(config)
    (error,) = count_parameters(arch, AdapterSpec(target_modules="all-linear")).errors
    assert "out_proj" in error and "nemotron_h" in error
    assert not count_parameters(arch, AdapterSpec(target_modules=["in_proj", "q_proj"])).errors


def test_nemotron_h_reports_each_refused_mamba_layer_name_once():
    config = {"model_type": "nemotron_h", "hybrid_override_pattern": "M*M", "hidden_size": 16, "num_attention_heads": 2,
              "num_key_value_heads": 1, "head_dim": 8, "mamba_num_heads": 2, "mamba_head_dim": 4, "n_groups": 1,
              "ssm_state_size": 2, "vocab_size": 64}  # fmt: skip
    arch = architecture_for(config)
    errors = count_parameters(arch, AdapterSpec(target_modules=["out_proj", "conv1d", "in_proj"])).errors
    assert errors == (
        "PEFT refuses LoRA on conv1d in Mamba-based nemotron_h models (e.g. model.layers.0.mixer.conv1d)",
        "PEFT refuses LoRA on out_proj in Mamba-based nemotron_h models (e.g. model.layers.0.mixer.out_proj)",
    )
