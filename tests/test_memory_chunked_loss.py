"""A config that already uses a fused / chunked cross-entropy: no full fp32 logits, no wrong OOM, no advice to add one."""

from __future__ import annotations

from pathlib import Path

from lora_lint.arch.facts import architecture_facts
from lora_lint.memory.facts import memory_facts
from lora_lint.readers import read_file
from tests.rule_harness import codes, lint_source

LLAMA31_QLORA = """\
base_model: meta-llama/Llama-3.1-8B
adapter: qlora
load_in_4bit: true
lora_r: 16
lora_alpha: 32
lora_target_linear: true
sequence_len: 2048
micro_batch_size: 4
gradient_checkpointing: true
optimizer: paged_adamw_8bit
bf16: true
"""
CUT_CROSS_ENTROPY = "plugins:\n  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\ncut_cross_entropy: true\n"

TORCHTUNE_LORA = """\
model:
  _component_: torchtune.models.llama3_1.lora_llama3_1_8b
  lora_attn_modules: [q_proj, v_proj]
  lora_rank: 16
  lora_alpha: 32
checkpointer:
  checkpoint_dir: meta-llama/Llama-3.1-8B
tokenizer:
  max_seq_len: 2048
batch_size: 2
dtype: bf16
loss:
  _component_: torch.nn.CrossEntropyLoss
"""


def facts_for(source: str, name: str = "config.yml", gpu: str = "A10G") -> dict:
    setup = read_file(name, source.encode())[0]
    arch = architecture_facts(setup, cwd=Path.cwd(), user_models={})
    return memory_facts(setup, arch, gpu=gpu, usable_bytes=None, safety_margin=0.1)


def test_cut_cross_entropy_drops_the_logits_and_the_predicted_oom():
    unfused, fused = facts_for(LLAMA31_QLORA), facts_for(LLAMA31_QLORA + CUT_CROSS_ENTROPY)
    assert unfused["memory_breakdown"]["logits_and_loss"] > 10 * 1024**3  # 12 x 8192 tokens x 128,256 vocabulary
    assert not unfused["memory_within_margin"]
    assert "Cut Cross-Entropy" in unfused["memory_suggestions_text"]
    assert fused["memory_breakdown"].get("logits_and_loss", 0) < 1024**3
    assert fused["peak_memory_bytes"] < unfused["peak_memory_bytes"] - 10 * 10**9  # the fp32 logits' 12.6 GB, less a chunk
    assert fused["memory_within_margin"] and fused["memory_suggestions"] == []


def test_ll410_fires_only_without_the_fused_loss(tmp_path: Path):
    settings = {"gpu": "T4"}  # 15 GiB: 21.5 GiB predicted with the fp32 logits, 12.3 GiB without
    assert "LL410" in codes(lint_source(LLAMA31_QLORA, "axolotl", tmp_path, settings=settings))
    assert "LL410" not in codes(lint_source(LLAMA31_QLORA + CUT_CROSS_ENTROPY, "axolotl", tmp_path, settings=settings))


def test_chunked_loss_is_not_suggested_when_already_on():
    source = LLAMA31_QLORA.replace("micro_batch_size: 4", "micro_batch_size: 16") + CUT_CROSS_ENTROPY
    facts = facts_for(source)
    assert facts["memory_suggestions"]
    assert all("chunked_loss" not in s["settings"] for s in facts["memory_suggestions"])


def test_torchtune_suggestions_use_torchtune_names():
    facts = facts_for(TORCHTUNE_LORA, "lora.yaml", gpu="L40S")
    changes = [s["change"] for s in facts["memory_suggestions"]]
    text = facts["memory_suggestions_text"]
    assert any(change.startswith("batch_size: ") for change in changes), changes
    assert "loss._component_: torchtune.modules.loss.LinearCrossEntropyLoss" in changes
    assert "model._component_: torchtune.models.llama3_1.qlora_llama3_1_8b" in changes
    assert "enable_activation_checkpointing: true" in changes
    for axolotl_name in ("micro_batch_size", "sequence_len", "load_in_4bit", "gradient_checkpointing:"):
        assert axolotl_name not in text
    assert any(s["settings"].get("micro_batch_size") for s in facts["memory_suggestions"])  # settings stay normalized


def test_llamafactory_suggestions_use_its_names():
    source = """\
model_name_or_path: meta-llama/Llama-3.1-8B
stage: sft
finetuning_type: lora
lora_rank: 16
cutoff_len: 2048
per_device_train_batch_size: 2
bf16: true
disable_gradient_checkpointing: true
"""
    text = facts_for(source, "train.yaml", gpu="L40S")["memory_suggestions_text"]
    assert "per_device_train_batch_size: 1 " in text and "cutoff_len: " in text
    assert "disable_gradient_checkpointing: false" in text
    assert "micro_batch_size" not in text and "sequence_len" not in text


def test_chunked_output_loss_keeps_the_full_logits_in_the_activation_dtype():
    from pathlib import Path

    from lora_lint.arch import AdapterSpec, architecture_for, count_parameters
    from lora_lint.arch.resolve import resolve_base_model
    from lora_lint.memory.estimate import OUTPUT_CHUNKS, logits_bytes
    from lora_lint.memory.inputs import TrainingInputs
    from lora_lint.memory.shape import shape_from_architecture

    config = resolve_base_model("meta-llama/Llama-3.1-8B", config_dir=None, cwd=Path.cwd(), user_models=None).config
    arch = architecture_for(config)
    shape = shape_from_architecture(arch, count_parameters(arch, AdapterSpec(r=8, target_modules=["q_proj"])))
    base = TrainingInputs(sequence_len=2048, micro_batch_size=4, activation_bytes=2)
    tokens, vocab = 4 * 2048, shape.vocab_size
    assert logits_bytes(shape, base) == 12 * tokens * vocab
    keeps = base.with_changes(chunked_loss=True, loss_keeps_logits=True)
    assert logits_bytes(shape, keeps) == 2 * 2 * tokens * vocab + 12 * (tokens // OUTPUT_CHUNKS) * vocab
    fused = base.with_changes(chunked_loss=True)
    assert logits_bytes(shape, fused) < logits_bytes(shape, keeps) < logits_bytes(shape, base)
