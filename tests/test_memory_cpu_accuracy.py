"""The estimate against the bytes a real PEFT training step keeps alive, measured on CPU.

Tiny Llama models (transformers + PEFT, bf16 weights, bf16 autocast, AdamW) run two
training steps under :class:`LiveTensorBytes`, which follows every tensor storage; the
estimate minus what only a GPU has (CUDA context, allocator fragmentation) must match the
measured peak within TOLERANCE. The cases cover both peak phases (loss backward and
layer backward), checkpointing, SDPA and eager attention.

What CPU cannot show: the dropout mask (CPU keeps it in the input's dtype, CUDA in one
byte), FlashAttention kernels and the allocator; hence lora_dropout 0 here and the CUDA
benchmark in benchmarks/memory_calibration.py.
"""

from __future__ import annotations

import os

import pytest

from lora_lint.arch.counting import AdapterSpec, count_parameters
from lora_lint.arch.families import architecture_for
from lora_lint.memory.estimate import estimate_for_shape
from lora_lint.memory.inputs import TrainingInputs
from lora_lint.memory.shape import shape_from_architecture

TOLERANCE = 0.05
"""Measured 0.1-1.7 % on these cases; 5 % leaves room for library versions."""
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize(
    ("vocab", "checkpointing", "batch", "seq", "attn", "phase"),
    [
        (2048, False, 2, 128, "sdpa", "loss backward"),
        (2048, True, 2, 128, "sdpa", "loss backward"),
        (256, True, 4, 128, "sdpa", "layer backward"),
        (1024, False, 2, 128, "eager", "loss backward"),
    ],
)
def test_predicted_peak_matches_live_tensor_bytes(vocab, checkpointing, batch, seq, attn, phase):
    torch = pytest.importorskip("torch")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from lora_lint.memory.measure import measure_training_peak

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=128, intermediate_size=344, num_hidden_layers=2, num_attention_heads=8,
                         num_key_value_heads=4, vocab_size=vocab, attn_implementation=attn,
                         max_position_embeddings=1024, tie_word_embeddings=False)  # fmt: skip
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, lora_dropout=0.0))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
    ids = torch.randint(0, vocab, (batch, seq))
    measured = measure_training_peak(model, {"input_ids": ids, "labels": ids}, steps=2)["peak_total_bytes"]

    arch = architecture_for(config.to_dict())
    shape = shape_from_architecture(arch, count_parameters(arch, AdapterSpec(r=8, target_modules=TARGETS)))
    estimate = estimate_for_shape(shape, TrainingInputs(sequence_len=seq, micro_batch_size=batch,
                                                        gradient_checkpointing=checkpointing, attn_implementation=attn))  # fmt: skip
    terms = estimate.breakdown()
    predicted = estimate.peak_bytes - terms["cuda_context"] - terms["allocator_overhead"]
    assert estimate.phase == phase
    assert predicted == pytest.approx(measured, rel=TOLERANCE)


def test_live_tensor_bytes_sees_three_fp32_logit_copies_in_the_loss_backward():
    torch = pytest.importorskip("torch")
    from lora_lint.memory.measure import LiveTensorBytes

    tokens, vocab, hidden = 256, 5000, 32
    head = torch.randn(vocab, hidden)
    hidden_states = torch.randn(tokens, hidden, requires_grad=True)
    labels = torch.randint(0, vocab, (tokens,))
    tracker = LiveTensorBytes()
    with tracker:
        logits = torch.nn.functional.linear(hidden_states * 1, head)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        del logits
        loss.backward()
    assert tracker.peak == pytest.approx(12 * tokens * vocab, rel=0.05)  # plus the hidden states and their gradient
