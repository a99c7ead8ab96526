"""Each term of the memory estimate, pinned against hand computation and published figures."""

from __future__ import annotations

import math
import subprocess
import sys
from lora_lint.record import replace

import pytest

from lora_lint.memory.estimate import (
    CUDA_CONTEXT_BYTES,
    estimate_for_shape,
    layer_activation_bytes_per_token,
    logits_bytes,
    lora_activation_bytes_per_token,
    quantized_weight_bytes,
)
from lora_lint.memory.inputs import TrainingInputs, optimizer_named
from lora_lint.memory.shape import ModelShape

GB = 1e9

# Llama-2-7B with LoRA r=16 on q,k,v,o (hand-computed from its config.json):
# block linears 32 x (4 x 4096^2 + 3 x 4096 x 11008) = 6,476,005,376 weights.
LLAMA2_7B = ModelShape(
    num_layers=32, hidden_size=4096, num_heads=32, num_kv_heads=32, head_dim=128, intermediate_size=11008,
    vocab_size=32000, gated_mlp=True, base_params=6_738_415_616, quantizable_params=6_476_005_376,
    quantizable_rows=32 * (4 * 4096 + 2 * 11008 + 4096), quantizable_inputs_per_layer=4 * 4096 + 2 * 4096 + 11008,
    trainable_params=32 * 4 * 16 * (4096 + 4096),
    adapted_inputs_per_layer=4 * 4096, adapted_ranks_per_layer=4 * 16,
)  # fmt: skip
LLAMA3_VOCAB = 128_256


def test_nf4_double_quant_constants_are_0_127_bits_per_weight():
    """QLoRA §3: 8/64 + 32/(64*256) = 0.127 bits of constants per parameter, from 32/64 = 0.5 without."""
    params = 64 * 256 * 1000
    _, single = quantized_weight_bytes(params, "nf4")
    _, double = quantized_weight_bytes(params, "nf4", double_quant=True)
    assert 8 * single / params == 0.5
    assert 8 * double / params == pytest.approx(8 / 64 + 32 / (64 * 256))
    assert round(8 * double / params, 3) == 0.127


def test_double_quant_saves_about_3_gb_on_65b():
    """QLoRA §3: double quantization saves 0.373 bits per parameter, "about 3 GB for a 65B model"."""
    _, single = quantized_weight_bytes(65_000_000_000, "nf4")
    _, double = quantized_weight_bytes(65_000_000_000, "nf4", double_quant=True)
    assert (single - double) / GB == pytest.approx(65e9 * 0.373 / 8 / 1e9, rel=0.01)
    assert 2.9 < (single - double) / GB < 3.1


def test_int8_is_one_byte_per_weight_plus_a_row_scale():
    packed, constants = quantized_weight_bytes(4096 * 11008, "int8", rows=11008)
    assert (packed, constants) == (4096 * 11008, 4 * 11008)


def test_qlora_7b_weights_are_3_6_to_4_gb():
    """LLaMA-7B in NF4 with double quantization, embeddings and head in bf16 (not upcast): the paper's
    "a 7B model in 4-bit" is ~3.5 GB of packed weights plus constants and 16-bit embeddings."""
    training = TrainingInputs(quantization="nf4", double_quant=True, kbit_upcast=False)
    terms = estimate_for_shape(LLAMA2_7B, training).breakdown()
    weights = terms["quantized_weights"] + terms["quantization_constants"] + terms["unquantized_weights"]
    assert terms["quantized_weights"] == 6_476_005_376 // 2
    assert terms["unquantized_weights"] == (6_738_415_616 - 6_476_005_376) * 2
    assert 3.6 < weights / GB < 4.0


def test_prepare_for_kbit_training_upcasts_unquantized_weights_to_fp32():
    upcast = estimate_for_shape(LLAMA2_7B, TrainingInputs(quantization="nf4")).breakdown()
    kept = estimate_for_shape(LLAMA2_7B, TrainingInputs(quantization="nf4", kbit_upcast=False)).breakdown()
    assert upcast["unquantized_weights"] == 2 * kept["unquantized_weights"]
    assert upcast["head_compute_copy"] == 32000 * 4096 * 2  # autocast's bf16 copy of the fp32 head
    assert "head_compute_copy" not in kept


def test_bf16_lora_weights_and_training_state():
    terms = estimate_for_shape(LLAMA2_7B, TrainingInputs()).breakdown()
    trainable = LLAMA2_7B.trainable_params
    assert terms["base_weights"] == 2 * 6_738_415_616
    assert terms["adapter_weights"] == terms["gradients"] == 4 * trainable
    assert terms["optimizer_states"] == 8 * trainable
    assert terms["cuda_context"] == CUDA_CONTEXT_BYTES


@pytest.mark.parametrize(
    ("name", "per_param", "paged"),
    [("adamw_torch", 8, False), ("paged_adamw_32bit", 8, True), ("adamw_bnb_8bit", 2, False),
     ("paged_adamw_8bit", 2, True), ("sgd", 0, False), ("lion_32bit", 4, False)],
)  # fmt: skip
def test_optimizer_state_sizes(name, per_param, paged):
    optimizer = optimizer_named(name)
    assert optimizer.state_bytes_per_param == pytest.approx(per_param, rel=0.01)
    assert optimizer.paged is paged


def test_unknown_optimizer_is_assumed_adamw():
    assert optimizer_named("my_optimizer") is None
    assert TrainingInputs().optimizer.state_bytes_per_param == 8


def test_logits_hold_three_fp32_copies_at_the_loss_backward():
    """12 bytes per token per vocabulary entry: ~12.6 GB for Llama 3 at 4 x 2048 tokens."""
    shape = replace(LLAMA2_7B, vocab_size=LLAMA3_VOCAB)
    training = TrainingInputs(sequence_len=2048, micro_batch_size=4)
    assert logits_bytes(shape, training) == 12 * 4 * 2048 * LLAMA3_VOCAB
    assert logits_bytes(shape, training) / GB == pytest.approx(12.6, abs=0.05)


def test_chunked_loss_keeps_only_a_chunk_of_rows():
    """Liger's chunk: tokens / ceil(vocab / hidden), rounded up to a power of two."""
    shape = replace(LLAMA2_7B, vocab_size=LLAMA3_VOCAB)
    training = TrainingInputs(sequence_len=2048, micro_batch_size=4, chunked_loss=True)
    rows = 2 ** math.ceil(math.log2(8192 / math.ceil(LLAMA3_VOCAB / 4096)))
    assert logits_bytes(shape, training) == 12 * rows * LLAMA3_VOCAB


def test_layer_activations_by_hand_sdpa_and_eager():
    h, i, s = 4096, 11008, 2048
    sdpa = TrainingInputs(sequence_len=s)
    norms = 2 * (4 * h + 4)
    assert layer_activation_bytes_per_token(LLAMA2_7B, sdpa) == norms + 2 * (2 * h + 2 * h) + 4 * 32 + 3 * 2 * i
    eager = sdpa.with_changes(attn_implementation="eager")
    assert layer_activation_bytes_per_token(LLAMA2_7B, eager) == norms + 3 * 2 * h + (4 + 2) * 32 * s + 3 * 2 * i


def test_eager_attention_grows_quadratically_with_length():
    short = estimate_for_shape(LLAMA2_7B, TrainingInputs(sequence_len=1024, attn_implementation="eager"))
    long = estimate_for_shape(LLAMA2_7B, TrainingInputs(sequence_len=4096, attn_implementation="eager"))
    ratio = long.breakdown()["activations"] / short.breakdown()["activations"]
    assert ratio > 4.5  # linear growth would give 4


def test_lora_activations_by_hand_with_and_without_dropout():
    plain = TrainingInputs()
    assert lora_activation_bytes_per_token(LLAMA2_7B, plain) == 2 * (4 * 4096 + 4 * 16)
    dropout = TrainingInputs(lora_dropout=0.05)
    assert lora_activation_bytes_per_token(LLAMA2_7B, dropout) == 2 * (4 * 4096 + 4 * 16) + 4 * 4096


def test_int8_layers_keep_their_inputs():
    int8 = layer_activation_bytes_per_token(LLAMA2_7B, TrainingInputs(quantization="int8"))
    nf4 = layer_activation_bytes_per_token(LLAMA2_7B, TrainingInputs(quantization="nf4"))
    assert int8 - nf4 == 2 * LLAMA2_7B.quantizable_inputs_per_layer


def test_checkpointing_keeps_block_inputs_only():
    tokens = 4 * 2048
    plain = estimate_for_shape(LLAMA2_7B, TrainingInputs(micro_batch_size=4))
    checkpointed = estimate_for_shape(LLAMA2_7B, TrainingInputs(micro_batch_size=4, gradient_checkpointing=True))
    assert checkpointed.breakdown()["activations"] == 32 * 2 * 4096 * tokens + (4 * 4096 + 4) * tokens
    assert checkpointed.peak_bytes < plain.peak_bytes
    qlora = estimate_for_shape(LLAMA2_7B, TrainingInputs(micro_batch_size=4, gradient_checkpointing=True, quantization="nf4"))
    assert qlora.breakdown()["activations"] == 32 * 4 * 4096 * tokens + (4 * 4096 + 4) * tokens  # fp32 residual


def test_peak_is_the_larger_phase_and_terms_sum_to_it():
    big_vocab = estimate_for_shape(replace(LLAMA2_7B, vocab_size=LLAMA3_VOCAB), TrainingInputs(gradient_checkpointing=True))
    assert big_vocab.phase == "loss backward"
    tiny_vocab = estimate_for_shape(replace(LLAMA2_7B, vocab_size=256), TrainingInputs(gradient_checkpointing=True))
    assert tiny_vocab.phase == "layer backward"
    assert "recomputed_block" in tiny_vocab.breakdown()
    for estimate in (big_vocab, tiny_vocab):
        assert estimate.peak_bytes == sum(estimate.breakdown().values())
        assert all(term.explanation for term in estimate.terms)


def test_activations_scale_linearly_with_tokens():
    one = estimate_for_shape(LLAMA2_7B, TrainingInputs(micro_batch_size=1)).breakdown()
    four = estimate_for_shape(LLAMA2_7B, TrainingInputs(micro_batch_size=4)).breakdown()
    assert four["lora_activations"] - LLAMA2_7B.trainable_params * 2 == 4 * (one["lora_activations"] - LLAMA2_7B.trainable_params * 2)
    assert four["logits_and_loss"] == 4 * one["logits_and_loss"]


def test_static_memory_package_imports_no_heavy_library():
    code = (
        "import sys, lora_lint.memory.facts, lora_lint.memory.gpus, lora_lint.commands.memory\n"
        "heavy = [m for m in ('torch', 'numpy', 'transformers', 'peft', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
