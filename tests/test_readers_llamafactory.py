"""LLaMA-Factory reader: the flat form, the v1 peft_config form, dataset_info.json."""

from __future__ import annotations

import json
from pathlib import Path

from lora_lint.readers import read_file

EXAMPLES = Path(__file__).parent.parent / "examples" / "llamafactory"


def read_one(path: Path, text: str):
    path.write_text(text)
    (setup,) = read_file(str(path), text.encode())
    return setup


def test_flat_values_locations_and_datasets() -> None:
    path = EXAMPLES / "good-lora-sft.yaml"
    (setup,) = read_file(str(path), path.read_bytes())
    assert setup.format == "llamafactory" and setup.notes == []
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout")) == (16, 32, 0.05)
    assert setup.get("target_linear") is True and setup.location_of("target_linear").line == 11
    assert setup.get("learning_rate") == 1e-4 and setup.get("micro_batch_size") == 4
    assert setup.get("sequence_len") == 512 and setup.location_of("sequence_len").key == "cutoff_len"
    assert setup.get("torch_dtype") == "bfloat16" and setup.get("gradient_checkpointing") is True
    (record,) = setup.get("datasets")
    assert record["path"] == "tiny_instructions" and record["file_name"] == "tiny_instructions.jsonl"
    assert setup.get("dataset_examples") == 200
    assert setup.extras["stage"] == "sft" and setup.extras["finetuning_type"] == "lora"


def test_flat_defaults(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "a.yaml", "model_name_or_path: gpt2\nfinetuning_type: lora\nlora_rank: 32\nstage: pt\n")
    assert setup.get("lora_alpha") == 64 and not setup.settings["lora_alpha"].explicit  # lora_rank * 2
    assert setup.get("target_linear") is True and setup.get("lora_dropout") == 0.0
    assert setup.get("micro_batch_size") == 8 and setup.get("num_epochs") == 3.0
    assert setup.get("sample_packing") is True  # pre-training packs by default
    setup = read_one(tmp_path / "b.yaml", "model_name_or_path: gpt2\nlora_target: q_proj, v_proj\ndisable_gradient_checkpointing: true\n")
    assert setup.get("r") == 8 and setup.get("lora_alpha") == 16
    assert setup.get("target_modules") == ["q_proj", "v_proj"] and setup.get("target_linear") is False
    assert setup.get("gradient_checkpointing") is False


def test_quantization_and_adapters(tmp_path: Path) -> None:
    text = (
        "model_name_or_path: gpt2\nfinetuning_type: lora\nquantization_bit: 4\nfp16: true\n"
        "adapter_name_or_path: a1,a2\nadditional_target: embed_tokens,lm_head\nmax_steps: -1\n"
    )
    setup = read_one(tmp_path / "q.yaml", text)
    assert setup.get("load_in_4bit") is True and setup.get("bnb_4bit_compute_dtype") == "float16"
    assert setup.get("resume_adapter") == "a2" and setup.get("modules_to_save") == ["embed_tokens", "lm_head"]
    assert "max_steps" not in setup.settings


def test_omegaconf_numbers_are_numbers(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "n.yaml", "model_name_or_path: gpt2\nfinetuning_type: lora\nlearning_rate: 2e-4\n")
    assert setup.get("learning_rate") == 2e-4 and setup.notes == []


def test_other_fine_tuning_types_give_no_setup(tmp_path: Path) -> None:
    text = "model_name_or_path: gpt2\nfinetuning_type: full\nstage: sft\n"
    assert read_file(str(tmp_path / "full.yaml"), text.encode()) == []


def test_wrong_type_and_unknown_keys() -> None:
    path = EXAMPLES / "bad-rank-as-string.yaml"
    (setup,) = read_file(str(path), path.read_bytes())
    (note,) = setup.notes
    assert note.kind == "wrong-type" and note.data["key"] == "lora_rank" and note.location.line == 7
    assert setup.get("r") == 16


def test_cross_format_suggestions(tmp_path: Path) -> None:
    text = (
        "model_name_or_path: gpt2\nstage: sft\nfinetuning_type: lora\ntemplate: default\ncutoff_len: 512\n"
        "lora_r: 8\nlora_target_modules: q_proj\nlora_rnak: 4\n"
    )
    setup = read_one(tmp_path / "s.yaml", text)
    suggestions = {n.data["key"]: n.data["suggestion"] for n in setup.notes if n.kind == "unknown-key"}
    assert suggestions == {"lora_r": "lora_rank", "lora_target_modules": "lora_target", "lora_rnak": "lora_rank"}


def test_dataset_info_resolution(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "mine.json").write_text(json.dumps([{"instruction": "x"}] * 12))
    (data / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}, "hub": {"hf_hub_url": "a/b"}}))
    text = "model_name_or_path: gpt2\nfinetuning_type: lora\ndataset: mine,hub,missing\nmax_samples: 10\n"
    setup = read_one(tmp_path / "d.yaml", text)
    records = setup.get("datasets")
    assert [r["examples"] for r in records] == [12, None, None]
    assert records[1]["hf_hub_url"] == "a/b" and "dataset_examples" not in setup.settings
    (note,) = [n for n in setup.notes if n.kind == "unknown-dataset"]
    assert note.data["name"] == "missing"
    setup = read_one(tmp_path / "e.yaml", "model_name_or_path: gpt2\nfinetuning_type: lora\ndataset: mine\nmax_samples: 10\n")
    assert setup.get("dataset_examples") == 10


def test_v1_peft_config() -> None:
    path = EXAMPLES / "good-v1-lora.yaml"
    (setup,) = read_file(str(path), path.read_bytes())
    assert setup.format == "llamafactory" and setup.extras["config_version"] == "v1" and setup.notes == []
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout")) == (16, 32, 0.05)
    assert setup.location_of("r").key == "peft_config.r" and setup.location_of("r").line == 7
    assert setup.get("target_linear") is True and setup.get("base_model") == "HuggingFaceTB/SmolLM2-135M"
    assert setup.get("dataset_examples") == 200


def test_v1_defaults_and_ignored_keys() -> None:
    path = EXAMPLES / "bad-v1-ignored-peft-key.yaml"
    (setup,) = read_file(str(path), path.read_bytes())
    assert setup.get("r") == 8 and not setup.settings["r"].explicit
    (note,) = [n for n in setup.notes if n.kind == "unknown-key"]
    assert note.data == {"key": "peft_config.lora_r", "suggestion": "r"} and note.location.line == 8


def test_v1_non_lora_plugin_gives_no_setup(tmp_path: Path) -> None:
    text = "model: gpt2\npeft_config:\n  name: freeze\n"
    assert read_file(str(tmp_path / "f.yaml"), text.encode()) == []


def test_lora_keys_in_a_full_fine_tune_are_kept_as_notes(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "c.yaml", "model_name_or_path: gpt2\nfinetuning_type: full\nlora_rank: 16\nlora_target: all\n")
    assert [(n.kind, n.data["key"], n.location.line) for n in setup.notes] == [
        ("lora-key-ignored", "lora_rank", 3),
        ("lora-key-ignored", "lora_target", 4),
    ]
    assert setup.get("r") is None and setup.extras["finetuning_type"] == "full"
    assert read_file(str(tmp_path / "d.yaml"), b"model_name_or_path: gpt2\nfinetuning_type: full\n") == []


def test_alpha_zero_means_twice_the_rank(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "e.yaml", "model_name_or_path: gpt2\nlora_rank: 8\nlora_alpha: 0\n")
    assert setup.get("lora_alpha") == 16 and not setup.settings["lora_alpha"].explicit
    assert setup.location_of("lora_alpha").line == 3


def test_liger_kernel_fuses_the_loss_only_in_pt_and_sft(tmp_path: Path) -> None:
    base = "model_name_or_path: m\nfinetuning_type: lora\n"
    cases = {
        base: False,
        base + "enable_liger_kernel: true\n": True,
        base + "stage: pt\nenable_liger_kernel: true\n": True,
        base + "stage: dpo\nenable_liger_kernel: true\n": False,  # keeps logits: Liger's plain cross-entropy
    }
    for text, expected in cases.items():
        setup = read_one(tmp_path / "train.yaml", text)
        assert setup.get("chunked_loss") is expected, text
