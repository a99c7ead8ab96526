"""The unquantized weights of a 4/8-bit model: fp32 or the training dtype, as each framework really leaves them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lora_lint.arch.facts import architecture_facts
from lora_lint.memory.facts import memory_facts
from lora_lint.readers import read_file

GIB = 1024**3
LLAMA31_8B_UNQUANTIZED = 2 * 128_256 * 4096 + 65 * 4096
"""Llama-3.1-8B outside its block linears: untied input and output embeddings and 65 RMSNorms (2 per block + final)."""


def facts_for(source: str, name: str) -> dict:
    setup = read_file(name, source.encode())[0]
    arch = architecture_facts(setup, cwd=Path.cwd(), user_models={})
    return memory_facts(setup, arch, gpu=None, usable_bytes=None, safety_margin=0.1)


TORCHTUNE_QLORA = """\
model:
  _component_: torchtune.models.llama3_1.qlora_llama3_1_8b
  lora_attn_modules: [q_proj, v_proj, output_proj]
  apply_lora_to_mlp: true
  lora_rank: 8
  lora_alpha: 16
checkpointer:
  checkpoint_dir: /tmp/Meta-Llama-3.1-8B-Instruct/
tokenizer:
  max_seq_len: 2048
batch_size: 2
dtype: bf16
"""


def test_torchtune_qlora_keeps_embeddings_and_output_in_bf16():
    """torchtune never calls prepare_model_for_kbit_training: about 2 GiB held, not the 3.9 GiB of an fp32 upcast."""
    facts = facts_for(TORCHTUNE_QLORA, "qlora.yaml")
    held = facts["memory_breakdown"]["unquantized_weights"]
    assert held == 2 * LLAMA31_8B_UNQUANTIZED
    assert 1.9 < held / GIB < 2.0
    assert "head_compute_copy" not in facts["memory_breakdown"]  # a bf16 head needs no autocast copy
    blocks = facts["memory_breakdown"]["quantized_weights"] * 2 // 64  # torchao NF4: int8 scaler per 64, scale per 256
    assert facts["memory_breakdown"]["quantization_constants"] == blocks + 4 * -(-blocks // 256)
    assert "torchtune" in facts["memory_convention"]


AXOLOTL_QLORA = """\
base_model: meta-llama/Llama-3.1-8B
adapter: qlora
load_in_4bit: true
lora_r: 16
lora_alpha: 32
lora_target_linear: true
bf16: true
sequence_len: 2048
micro_batch_size: 1
"""

LLAMAFACTORY_QLORA = """\
model_name_or_path: meta-llama/Llama-3.1-8B
stage: sft
finetuning_type: lora
lora_rank: 16
lora_target: all
quantization_bit: 4
bf16: true
"""

PYTHON_QLORA = """\
import torch
from peft import LoraConfig, get_peft_model{imports}
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.1-8B", quantization_config=bnb, torch_dtype=torch.bfloat16)
{prepare}model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]))
"""

PEFT_PLAIN = """\
base_model: meta-llama/Llama-3.1-8B
r: 16
lora_alpha: 32
target_modules: [q_proj, v_proj]
load_in_4bit: true
torch_dtype: bfloat16
"""


@pytest.mark.parametrize(
    ("source", "name", "bytes_per_weight", "named"),
    [
        (AXOLOTL_QLORA, "axolotl.yaml", 2, "axolotl"),
        (LLAMAFACTORY_QLORA, "llamafactory.yaml", 2, "LLaMA-Factory"),
        (PYTHON_QLORA.format(imports="", prepare=""), "train.py", 2, "does not call"),
        (PYTHON_QLORA.format(imports=", prepare_model_for_kbit_training", prepare="model = prepare_model_for_kbit_training(model)\n"),
         "train.py", 4, "calls prepare_model_for_kbit_training"),
        (PEFT_PLAIN, "lora.yaml", 4, "assumed"),
    ],
)  # fmt: skip
def test_each_framework_convention(source, name, bytes_per_weight, named):
    facts = facts_for(source, name)
    assert facts["memory_breakdown"]["unquantized_weights"] == bytes_per_weight * LLAMA31_8B_UNQUANTIZED
    assert named in facts["memory_convention"]


def test_llamafactory_upcast_layernorm_keeps_only_the_norms_in_fp32():
    facts = facts_for(LLAMAFACTORY_QLORA + "upcast_layernorm: true\n", "llamafactory.yaml")
    assert facts["memory_breakdown"]["unquantized_weights"] == 2 * LLAMA31_8B_UNQUANTIZED + 2 * 65 * 4096
    assert "upcast_layernorm" in facts["memory_convention"]


def test_unquantized_runs_name_no_convention():
    facts = facts_for(PEFT_PLAIN.replace("load_in_4bit: true\n", ""), "lora.yaml")
    assert facts["memory_convention"] is None and "base_weights" in facts["memory_breakdown"]


QWEN3_30B_A3B_EXPERTS = 48 * 128 * 3 * 2048 * 768
"""Fused expert weights of Qwen3-30B-A3B: 48 blocks of 128 experts, gate_up (2 x 768 x 2048) and down (2048 x 768)."""
QWEN3_30B_A3B_OTHERS = 2 * 151_936 * 2048 + 48 * (2 * 2048 + 2 * 128) + 2048 + 48 * 128 * 2048
"""Outside the block linears and experts: untied embeddings and head, RMSNorms (q/k norms too), and the routers."""
QWEN3_30B_A3B_LINEARS = 48 * (2 * 2048 * 4096 + 2 * 2048 * 512)

AXOLOTL_MOE_QLORA = """\
base_model: Qwen/Qwen3-30B-A3B
adapter: qlora
load_in_4bit: true
lora_r: 16
lora_alpha: 32
lora_target_modules: [q_proj, v_proj]
bf16: true
sequence_len: 2048
"""


def test_axolotl_moe_qlora_leaves_the_fused_experts_in_fp32():
    """bitsandbytes quantizes nn.Linear only; prepare_model_for_kbit_training then upcasts the 3-D expert weights
    to fp32, and axolotl casts back norms, routers and embeddings by name, not the experts."""
    facts = facts_for(AXOLOTL_MOE_QLORA, "moe.yml")
    breakdown = facts["memory_breakdown"]
    assert breakdown["quantized_weights"] == QWEN3_30B_A3B_LINEARS // 2
    assert breakdown["unquantized_weights"] == 2 * QWEN3_30B_A3B_OTHERS + 4 * QWEN3_30B_A3B_EXPERTS
    assert facts["peak_memory_gib"] > 80  # no single GPU holds it: what axolotl's quantize_moe_experts is for


def test_axolotl_quantize_moe_experts_quantizes_them_and_skips_the_upcast():
    facts = facts_for(AXOLOTL_MOE_QLORA + "quantize_moe_experts: true\n", "moe.yml")
    breakdown = facts["memory_breakdown"]
    assert breakdown["quantized_weights"] == (QWEN3_30B_A3B_LINEARS + QWEN3_30B_A3B_EXPERTS) // 2
    assert breakdown["unquantized_weights"] == 2 * QWEN3_30B_A3B_OTHERS
    assert "quantize_moe_experts" in facts["memory_convention"]
    assert facts["peak_memory_gib"] < 30  # 15 GiB of NF4 weights instead of 116 GB of fp32 experts


def test_llamafactory_moe_qlora_keeps_the_experts_in_the_checkpoint_dtype():
    """LLaMA-Factory never calls prepare_model_for_kbit_training: unquantized experts stay bf16."""
    source = """\
model_name_or_path: Qwen/Qwen3-30B-A3B
stage: sft
finetuning_type: lora
quantization_bit: 4
lora_rank: 16
lora_target: q_proj,v_proj
bf16: true
cutoff_len: 2048
"""
    facts = facts_for(source, "moe.yaml")
    assert facts["memory_breakdown"]["unquantized_weights"] == 2 * (QWEN3_30B_A3B_OTHERS + QWEN3_30B_A3B_EXPERTS)


@pytest.mark.parametrize(
    "extra",
    ["fsdp_config:\n  fsdp_version: 2\n", "deepspeed: deepspeed_configs/zero3_bf16.json\n", "deepspeed: ds.json\n"],
)
def test_axolotl_fsdp_qlora_and_zero3_skip_the_upcast(extra: str, tmp_path: Path):
    """axolotl keeps one dtype for FSDP-QLoRA and ZeRO-3: unquantized experts stay bf16."""
    (tmp_path / "ds.json").write_text('{"zero_optimization": {"stage": 3}}')
    facts = facts_for(AXOLOTL_MOE_QLORA + extra, str(tmp_path / "moe.yml"))
    assert facts["memory_breakdown"]["unquantized_weights"] == 2 * (QWEN3_30B_A3B_OTHERS + QWEN3_30B_A3B_EXPERTS)
    assert "FSDP-QLoRA" in facts["memory_convention"]


def test_axolotl_zero2_keeps_the_upcast(tmp_path: Path):
    (tmp_path / "ds.json").write_text('{"zero_optimization": {"stage": 2}}')
    facts = facts_for(AXOLOTL_MOE_QLORA + "deepspeed: ds.json\n", str(tmp_path / "moe.yml"))
    assert facts["memory_breakdown"]["unquantized_weights"] == 2 * QWEN3_30B_A3B_OTHERS + 4 * QWEN3_30B_A3B_EXPERTS


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (AXOLOTL_MOE_QLORA + "fsdp: [full_shard, auto_wrap]\n", "FSDP shards the weights"),
        (AXOLOTL_MOE_QLORA + "deepspeed: deepspeed_configs/zero3_bf16.json\n", "DeepSpeed ZeRO-3 shards"),
        (AXOLOTL_MOE_QLORA.replace("Qwen/Qwen3-30B-A3B", "nvidia/Qwen3-30B-A3B-NVFP4"), "stores its weights as NVFP4"),
    ],
)
def test_no_single_gpu_verdict_where_the_config_cannot_tell(source: str, reason: str):
    setup = read_file("moe.yml", source.encode())[0]
    arch = architecture_facts(setup, cwd=Path.cwd(), user_models={})
    facts = memory_facts(setup, arch, gpu="A100-80GB", usable_bytes=None, safety_margin=0.1)
    assert reason in facts["memory_unchecked"]
    assert facts["memory_fits"] is None and facts["memory_within_margin"] is None
    assert facts["peak_memory_bytes"] > 0  # the estimate itself is still reported


def test_a_plain_single_gpu_run_is_compared():
    setup = read_file("moe.yml", AXOLOTL_MOE_QLORA.encode())[0]
    arch = architecture_facts(setup, cwd=Path.cwd(), user_models={})
    facts = memory_facts(setup, arch, gpu="A100-80GB", usable_bytes=None, safety_margin=0.1)
    assert facts["memory_unchecked"] is None and facts["memory_fits"] is False


def test_a_deepspeed_path_that_is_not_a_file_is_never_opened(tmp_path: Path):
    """A FIFO or a device named as the DeepSpeed config would block or never end: only regular files are read."""
    os.mkfifo(tmp_path / "zero.json")
    facts = facts_for(AXOLOTL_MOE_QLORA + "deepspeed: zero.json\n", str(tmp_path / "moe.yml"))
    assert facts["memory_unchecked"] is None  # no stage known: the single-GPU comparison stands
    facts = facts_for(AXOLOTL_MOE_QLORA + "deepspeed: /dev/zero\n", str(tmp_path / "moe.yml"))
    assert facts["memory_unchecked"] is None
