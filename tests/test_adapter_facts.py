"""The adapter facts: where r and alpha came from, the init method, the saved adapter a run resumes."""

from __future__ import annotations

import json

import pytest
import yaml

from lora_lint.adapter_facts import adapter_mismatch, saved_adapter, string_numbers
from tests.rule_harness import lint_source

LLAMAFACTORY = "model_name_or_path: m\nstage: sft\nfinetuning_type: lora\n"


def facts_of(source: str, fmt: str, folder) -> dict:
    (result,) = lint_source(source, fmt, folder)
    assert result.error is None
    return result.facts


def write_adapter(folder, **fields) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"], **fields}
    (folder / "adapter_config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("source", "fmt", "r_source", "alpha_source"),
    [
        ("r: 16\nlora_alpha: 32\ntarget_modules: [q_proj]\n", "lora-config", "written", "written"),
        ("r: 64\ntarget_modules: [q_proj]\n", "lora-config", "written", "default"),
        ("base_model: m\nadapter: lora\nlora_r: 16\nlora_target_linear: true\n", "axolotl", "written", "missing"),
        ("from peft import LoraConfig\nLoraConfig(r=rank, lora_alpha=16)\n", "python", "unknown", "written"),
        (LLAMAFACTORY + "lora_target: all\n", "llamafactory", "default", "default"),
    ],
)
def test_value_sources(tmp_path, source, fmt, r_source, alpha_source):
    facts = facts_of(source, fmt, tmp_path)
    assert (facts["r_source"], facts["alpha_source"]) == (r_source, alpha_source)


@pytest.mark.parametrize(
    ("written", "method"),
    [("", "default"), ("init_lora_weights: true\n", "default"), ("init_lora_weights: false\n", "random"),
     ("init_lora_weights: pissa_niter_16\n", "pissa"), ("init_lora_weights: OLoRA\n", "olora")],
)  # fmt: skip
def test_init_method_is_normalized(tmp_path, written, method):
    facts = facts_of(f"r: 16\nlora_alpha: 16\ntarget_modules: [q_proj]\n{written}", "lora-config", tmp_path)
    assert facts["init_method"] == method
    assert (facts["init_effect"] is not None) == (method in ("pissa", "olora"))


@pytest.mark.parametrize(
    ("written", "dtype"), [("torch.bfloat16", "bfloat16"), ("fp32", "float32"), ("float16", "float16")]
)
def test_compute_dtype_is_normalized(tmp_path, written, dtype):
    source = f"r: 16\nlora_alpha: 16\ntarget_modules: [q_proj]\nload_in_4bit: true\nbnb_4bit_compute_dtype: {written}\n"
    assert facts_of(source, "lora-config", tmp_path)["compute_dtype"] == dtype


@pytest.mark.parametrize("text", ["2e-4", "1e5", "5E-2", "1.0e5", "3e-6", "+1e-3"])
def test_string_number_spellings_read_back_as_the_float(text):
    note = {"kind": "yaml-string-number", "key": "learning_rate", "text": text, "line": 1, "column": 1}
    (record,) = string_numbers([note])
    for spelling in (record["yaml_float"], record["decimal"]):
        assert yaml.safe_load(f"x: {spelling}")["x"] == pytest.approx(float(text))


def test_unknown_key_effect_follows_the_framework(tmp_path):
    axolotl_source = "base_model: m\nadapter: lora\nlora_r: 8\nlora_alpha: 8\nlora_target_linear: true\n"
    axolotl = facts_of(axolotl_source, "axolotl", tmp_path)
    flat = facts_of(LLAMAFACTORY + "lora_rank: 8\n", "llamafactory", tmp_path)
    v1 = facts_of("model: m\npeft_config:\n  name: lora\n  r: 8\n", "llamafactory", tmp_path)
    assert "drops keys" in axolotl["unknown_key_effect"]
    assert "stops at start-up" in flat["unknown_key_effect"]
    assert "v1 does not read it" in v1["unknown_key_effect"]


def test_saved_adapter_in_a_folder_relative_to_the_config(tmp_path):
    write_adapter(tmp_path / "runs" / "first")
    saved = saved_adapter("runs/first", tmp_path)
    assert saved is not None
    assert (saved["r"], saved["lora_alpha"], saved["target_modules"]) == (16, 32, ["q_proj", "v_proj"])


def test_saved_adapter_takes_the_newest_checkpoint(tmp_path):
    write_adapter(tmp_path / "out" / "checkpoint-5", r=4)
    write_adapter(tmp_path / "out" / "checkpoint-12", r=12)
    (tmp_path / "out" / "checkpoint-20").mkdir()  # a checkpoint still being written: no config yet
    assert saved_adapter("out", tmp_path)["r"] == 12


def test_saved_adapter_json_file_and_working_directory(tmp_path, monkeypatch):
    write_adapter(tmp_path / "saved")
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "configs"
    elsewhere.mkdir()
    assert saved_adapter("saved", elsewhere)["r"] == 16
    assert saved_adapter(str(tmp_path / "saved" / "adapter_config.json"), elsewhere)["r"] == 16


@pytest.mark.parametrize("resume", ["meta-llama/some-adapter", "s3://bucket/adapter", "", None, "missing-folder"])
def test_no_saved_adapter_without_a_local_config(tmp_path, resume):
    assert saved_adapter(resume, tmp_path) is None


def test_saved_adapter_ignores_broken_json(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{not json")
    assert saved_adapter(".", tmp_path) is None


@pytest.mark.parametrize(
    ("saved", "here", "expected"),
    [
        ({"r": 16, "target_modules": ["v_proj", "q_proj"]}, {"r": 16, "target_modules": ["q_proj", "v_proj"]}, None),
        ({"r": 16, "target_modules": ["q_proj"]}, {"r": 32, "target_modules": ["q_proj"]}, "r 16 there, 32 here"),
        (
            {"r": 8, "target_modules": ["q_proj", "v_proj"]},
            {"r": 8, "target_modules": ["q_proj", "k_proj", "v_proj"]},
            "target_modules [q_proj, v_proj] there, [k_proj, q_proj, v_proj] here",
        ),
        ({"r": 8, "target_modules": "all-linear"}, {"r": 8, "target_modules": ["q_proj"]}, None),
        (
            {"r": 8, "target_modules": ["q_proj"]},
            {"r": 8, "target_modules": ["q_proj", "v_proj"], "target_linear": True},
            None,
        ),
    ],
)
def test_adapter_mismatch(saved, here, expected):
    facts = {"target_linear": False, **here}
    assert adapter_mismatch(saved, facts) == expected


def test_resume_facts_from_a_config(tmp_path):
    write_adapter(tmp_path / "previous", r=8)
    source = "base_model: m\nadapter: lora\nlora_model_dir: previous\nlora_r: 16\nlora_alpha: 16\n"
    source += "lora_target_modules: [q_proj, v_proj]\n"
    facts = facts_of(source, "axolotl", tmp_path)
    assert facts["saved_adapter"]["path"] == str(tmp_path / "previous" / "adapter_config.json")
    assert facts["saved_adapter_mismatch"] == "r 8 there, 16 here"


def test_adapter_facts_are_json_serializable(tmp_path):
    write_adapter(tmp_path / "previous")
    source = "r: 16\nlora_alpha: 16\ntarget_modules: [q_proj]\nresume_adapter: previous\nlearning_rate: 2e-4\n"
    facts = facts_of(source, "lora-config", tmp_path)
    names = ("framework", "unknown_key_effect", "r_source", "alpha_source", "compute_dtype", "init_method",
             "init_effect", "string_numbers", "saved_adapter", "saved_adapter_mismatch")  # fmt: skip
    json.dumps({name: facts[name] for name in names})
    assert facts["string_numbers"][0]["decimal"] == "0.0002"
