"""TRL / alignment-handbook recipe YAML: detection, TRL's defaults, datasets, use_peft and unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_lint.readers import detect_format, read_file
from lora_lint.readers import trl as trl_reader
from lora_lint.readers.schemas import _package_dir
from tests.rule_harness import codes, lint_source

EXAMPLES = Path(__file__).parent.parent / "examples" / "trl"


def read_one(path: Path, text: str):
    path.write_text(text)
    (setup,) = read_file(str(path), text.encode())
    return setup


def test_use_peft_decides_the_format_and_trl_defaults_apply(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "sft.yaml", "model_name_or_path: Qwen/Qwen2.5-0.5B\nuse_peft: true\n")
    assert setup.format == "trl"
    values = {name: setup.get(name) for name in ("r", "lora_alpha", "lora_dropout", "target_modules", "bias")}
    assert values == {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": None, "bias": "none"}
    assert setup.get("learning_rate") == 2e-5 and setup.get("sequence_len") == 1024
    assert setup.get("gradient_checkpointing") is True and setup.get("torch_dtype") == "float32"
    assert not setup.settings["r"].explicit


def test_recipe_without_use_peft_is_detected_by_its_keys() -> None:
    data = {"model_name_or_path": "m", "lora_r": 8, "lora_alpha": 16, "dataset_name": "trl-lib/Capybara"}
    assert detect_format("recipe.yaml", data) == "trl"
    assert detect_format("recipe.yaml", {"base_model": "m", "adapter": "lora", "lora_r": 8, "lora_alpha": 16}) == "axolotl"


def test_values_locations_and_old_names(tmp_path: Path) -> None:
    text = (
        "model_name_or_path: meta-llama/Llama-3.2-1B\nuse_peft: true\nlora_r: 64\nlora_alpha: 16\n"
        "lora_target_modules: [all-linear]\nload_in_4bit: true\nuse_bnb_nested_quant: true\ntorch_dtype: bfloat16\n"
        "max_seq_length: 2048\nlearning_rate: 2e-4\nper_device_train_batch_size: 2\nmax_steps: -1\n"
    )
    setup = read_one(tmp_path / "sft.yaml", text)
    assert setup.get("r") == 64 and setup.location_of("r").line == 3
    assert setup.get("target_modules") == "all-linear" and setup.get("target_linear") is True  # one-item list unwrapped
    assert setup.get("load_in_4bit") is True and setup.get("bnb_4bit_use_double_quant") is True
    assert setup.get("bnb_4bit_quant_type") == "nf4" and setup.get("bnb_4bit_compute_dtype") == "bfloat16"
    assert setup.get("sequence_len") == 2048 and setup.get("learning_rate") == 2e-4  # argparse converts the string
    assert "max_steps" not in setup.settings  # -1: train by epochs
    assert not [n for n in setup.notes if n.kind == "yaml-string-number"]


def test_datasets_from_every_spelling(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n" * 12)
    setup = read_one(tmp_path / "a.yaml", "use_peft: true\ndatasets:\n  - path: json\n    data_files: train.jsonl\n")
    assert setup.get("dataset_examples") == 12
    setup = read_one(tmp_path / "b.yaml", "use_peft: true\ndataset_name: trl-lib/Capybara\ndataset_train_split: train\n")
    assert setup.get("datasets")[0]["path"] == "trl-lib/Capybara" and setup.get("datasets")[0]["split"] == "train"
    text = "use_peft: true\ndataset_mixture:\n  datasets:\n    - id: HuggingFaceH4/ultrachat_200k\n      split: train_sft\n"
    setup = read_one(tmp_path / "c.yaml", text)
    assert setup.get("datasets")[0]["path"] == "HuggingFaceH4/ultrachat_200k" and setup.get("datasets")[0]["line"] == 4


def test_lora_keys_without_use_peft_are_reported(tmp_path: Path) -> None:
    source = "model_name_or_path: m\nuse_peft: false\nlora_r: 16\nlora_target_modules: [q_proj]\n"
    results = lint_source(source, "trl", tmp_path)
    assert codes(results) == ["LL508", "LL508"]
    assert "use_peft is false" in next(f.message for f in results[0].findings if f.code == "LL508")
    assert read_file(str(tmp_path / "full.yaml"), b"model_name_or_path: m\nuse_peft: false\nlearning_rate: 1.0e-5\n") == []


def test_unknown_and_misspelled_keys_and_handbook_keys(tmp_path: Path) -> None:
    source = (
        "model_name_or_path: m\nuse_peft: true\nlora_r: 8\nlora_alpah: 16\nmy_notes: x\n"
        "chat_template: '{{ x }}'\ndataset_mixture:\n  datasets: []\n"
    )
    results = lint_source(source, "trl", tmp_path)
    found = {(f.code, f.key) for f in results[0].findings if f.code in ("LL001", "LL002")}
    assert found == {("LL001", "lora_alpah"), ("LL002", "my_notes")}
    message = next(f.message for f in results[0].findings if f.code == "LL002")
    assert "TRL stops at start-up" in message and "TRL " in message


def test_bundled_examples_read_cleanly() -> None:
    for name in ("good-sft-lora.yaml", "good-qlora-handbook.yaml"):
        path = EXAMPLES / name
        (setup,) = read_file(str(path), path.read_bytes())
        assert setup.format == "trl" and setup.notes == [], name


def test_defaults_are_trls_own() -> None:
    """The reader's defaults equal the field defaults of the installed TRL's ModelConfig and SFTConfig."""
    trl_dir, transformers_dir = _package_dir("trl"), _package_dir("transformers")
    if trl_dir is None or transformers_dir is None:
        pytest.skip("TRL is not installed: its defaults cannot be compared")
    from lora_lint.readers.schema_source import SourceTree

    tree = SourceTree({"trl": trl_dir, "transformers": transformers_dir})
    model = tree.field_defaults(*tree.find_class("ModelConfig", "trl"))
    sft = tree.field_defaults(*tree.find_class("SFTConfig", "trl"))
    ours = trl_reader.DEFAULTS
    pairs = {
        "r": model["lora_r"], "lora_alpha": model["lora_alpha"], "lora_dropout": model["lora_dropout"],
        "target_modules": model["lora_target_modules"], "task_type": model["lora_task_type"],
        "use_rslora": model["use_rslora"], "use_dora": model["use_dora"], "load_in_4bit": model["load_in_4bit"],
        "torch_dtype": model["dtype"], "learning_rate": sft["learning_rate"], "sequence_len": sft["max_length"],
        "gradient_checkpointing": sft["gradient_checkpointing"], "sample_packing": sft["packing"],
        "micro_batch_size": sft["per_device_train_batch_size"], "num_epochs": sft["num_train_epochs"],
    }  # fmt: skip
    assert {name: ours[name] for name in pairs} == pairs
