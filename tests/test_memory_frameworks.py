"""The unquantized weights of a 4/8-bit model: fp32 or the training dtype, as each framework really leaves them."""

from __future__ import annotations

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
