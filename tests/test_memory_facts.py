"""Memory facts from a config file: the peak, the GPU comparison and re-estimated suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_lint.arch.facts import architecture_facts
from lora_lint.memory.facts import memory_facts
from lora_lint.memory.inputs import TrainingInputs
from lora_lint.readers import read_file

LLAMA3_QLORA = """\
base_model: meta-llama/Meta-Llama-3-8B
r: 16
lora_alpha: 32
target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]
load_in_4bit: true
bnb_4bit_use_double_quant: true
bnb_4bit_compute_dtype: bfloat16
torch_dtype: bfloat16
sequence_len: 2048
micro_batch_size: 4
gradient_checkpointing: true
optimizer: paged_adamw_8bit
"""


def facts_for(source: str, gpu: str | None = None, usable: int | None = None, margin: float = 0.1) -> dict:
    setup = read_file("lora.yaml", source.encode())[0]
    arch = architecture_facts(setup, cwd=Path.cwd(), user_models={})
    return memory_facts(setup, arch, gpu=gpu, usable_bytes=usable, safety_margin=margin)


def test_peak_without_gpu_skips_the_comparison():
    facts = facts_for(LLAMA3_QLORA)
    assert facts["peak_memory_bytes"] == sum(facts["memory_breakdown"].values())
    assert facts["gpu"] is None and facts["memory_fits"] is None and facts["memory_suggestions"] == []
    assert facts["memory_largest_terms"][0] == "logits_and_loss"
    assert facts["memory_assumed"] == []


def test_unknown_model_has_no_peak():
    facts = facts_for("base_model: acme/secret-model\nr: 8\n", gpu="T4")
    assert facts["peak_memory_bytes"] is None and facts["memory_fits"] is None


def test_over_the_gpu_gives_suggestions_that_fit():
    facts = facts_for(LLAMA3_QLORA, gpu="RTX 4090")
    limit = facts["gpu"]["memory_bytes"]
    assert facts["memory_fits"] is False and facts["memory_headroom_bytes"] < 0
    assert facts["memory_suggestions"]
    for suggestion in facts["memory_suggestions"]:
        assert suggestion["peak_memory_bytes"] <= 0.9 * limit
    peaks = [s["peak_memory_bytes"] for s in facts["memory_suggestions"]]
    assert peaks == sorted(peaks)  # largest saving first
    assert "GiB" in facts["memory_suggestions_text"]


def test_suggested_micro_batch_really_fits_when_applied():
    facts = facts_for(LLAMA3_QLORA, gpu="RTX 4090")
    batch = next(s["settings"]["micro_batch_size"] for s in facts["memory_suggestions"] if "micro_batch_size" in s["settings"])
    applied = facts_for(LLAMA3_QLORA.replace("micro_batch_size: 4", f"micro_batch_size: {batch}"), gpu="RTX 4090")
    assert applied["memory_within_margin"] is True
    one_more = facts_for(LLAMA3_QLORA.replace("micro_batch_size: 4", f"micro_batch_size: {batch + 1}"), gpu="RTX 4090")
    assert one_more["memory_within_margin"] is False


def test_rank_is_suggested_last():
    source = LLAMA3_QLORA.replace("r: 16", "r: 512").replace("lora_alpha: 32", "lora_alpha: 1024")
    facts = facts_for(source, gpu="A100-40GB")
    changes = [s["change"] for s in facts["memory_suggestions"]]
    assert changes and changes[-1].startswith("r: ")


def test_combination_when_no_single_change_fits():
    source = LLAMA3_QLORA.replace("load_in_4bit: true\n", "").replace("gradient_checkpointing: true", "gradient_checkpointing: false")
    facts = facts_for(source.replace("micro_batch_size: 4", "micro_batch_size: 8"), gpu="RTX 4090")
    assert len(facts["memory_suggestions"]) == 1
    assert " and " in facts["memory_suggestions"][0]["change"]


def test_near_the_limit_fits_but_not_within_margin():
    peak = facts_for(LLAMA3_QLORA)["peak_memory_bytes"]
    facts = facts_for(LLAMA3_QLORA, gpu="my card", usable=int(peak * 1.05))
    assert facts["memory_fits"] is True and facts["memory_within_margin"] is False
    assert facts["gpu"] == {"name": "my card", "memory_bytes": int(peak * 1.05)}


def test_unknown_gpu_is_reported_not_raised():
    facts = facts_for(LLAMA3_QLORA, gpu="quantum-card")
    assert facts["gpu"] is None and "unknown GPU" in facts["gpu_error"]
    assert facts["peak_memory_bytes"] is not None


def test_facts_are_json_serializable():
    import json

    json.dumps(facts_for(LLAMA3_QLORA, gpu="T4"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("optimizer: paged_adamw_8bit\n", "paged_adamw_8bit"), ("optimizer: sgd\n", "sgd"), ("", "adamw_torch")],
)
def test_training_inputs_from_setup(text, expected):
    setup = read_file("lora.yaml", f"base_model: gpt2\nr: 8\n{text}".encode())[0]
    training = TrainingInputs.from_setup(setup)
    assert training.optimizer.name == expected
    assert training.sequence_len == 2048 and "sequence_len" in training.assumed
