"""PEFT adapter_config.json and the plain LoraConfig YAML/JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_lint.readers import NotALoraConfig, read_file

EXAMPLES = Path(__file__).parent.parent / "examples"


def read_one(path: Path, text: str):
    path.write_text(text)
    setups = read_file(str(path), text.encode())
    assert len(setups) == 1
    return setups[0]


def test_adapter_config_values_locations_and_defaults() -> None:
    path = EXAMPLES / "peft" / "good" / "adapter_config.json"
    (setup,) = read_file(str(path), path.read_bytes())
    assert setup.format == "peft"
    assert setup.get("r") == 16 and setup.get("lora_alpha") == 32 and setup.get("lora_dropout") == 0.05
    assert setup.get("target_modules") == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert setup.get("base_model") == "HuggingFaceTB/SmolLM2-135M"
    assert setup.location_of("r").line == 15 and setup.location_of("r").key == "r"
    assert setup.start.line == 2
    assert setup.extras["peft_type"] == "LORA" and setup.notes == []


def test_adapter_config_defaults_are_peft_defaults(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "adapter_config.json", json.dumps({"peft_type": "LORA", "target_modules": "all-linear"}))
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout"), setup.get("bias")) == (8, 8, 0.0, "none")
    assert not setup.settings["r"].explicit and setup.settings["r"].location is None
    assert setup.get("target_linear") is True


def test_adapter_config_unknown_and_wrong_type(tmp_path: Path) -> None:
    text = '{\n  "peft_type": "LORA",\n  "r": "16",\n  "lora_rank": 4,\n  "lora_alpah": 8,\n  "bias": ["none"]\n}'
    setup = read_one(tmp_path / "adapter_config.json", text)
    notes = {(n.kind, n.data["key"]): n for n in setup.notes}
    assert notes[("unknown-key", "lora_rank")].data["suggestion"] == "r"
    assert notes[("unknown-key", "lora_alpah")].data["suggestion"] == "lora_alpha"
    wrong = notes[("wrong-type", "r")]
    assert wrong.data["expected"] == "int" and wrong.data["got"] == "str" and wrong.location.line == 3
    assert setup.get("r") == 16  # kept converted so facts still work
    assert notes[("wrong-type", "bias")].data["got"] == "list" and setup.get("bias") is None


def test_duplicate_keys_pass_through(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "adapter_config.json", '{"peft_type": "LORA", "r": 8, "r": 16}')
    assert [n.kind for n in setup.notes] == ["duplicate-key"] and setup.get("r") == 16


def test_lora_config_yaml_with_training_context(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n" * 30)
    text = (
        "r: 16\nlora_alpha: 32\ntarget_modules: [q_proj, v_proj]\n"
        "base_model: gpt2\ndatasets:\n  - path: train.jsonl\n  - train.jsonl\nmax_samples: 20\n"
        "learning_rate: 2e-4\nnum_epochs: 3\nsequence_len: 128\nmicro_batch_sise: 4\n"
    )
    setup = read_one(tmp_path / "lora.yaml", text)
    assert setup.format == "lora-config"
    assert setup.get("base_model") == "gpt2" and setup.get("num_epochs") == 3
    assert setup.get("dataset_examples") == 40  # each dataset capped at max_samples
    records = setup.get("datasets")
    assert records[0]["line"] == 6 and records[1]["key"] == "datasets[1]"
    kinds = {(n.kind, n.data["key"]): n.data for n in setup.notes}
    assert ("yaml-string-number", "learning_rate") in kinds and ("wrong-type", "learning_rate") not in kinds
    assert kinds[("unknown-key", "micro_batch_sise")]["suggestion"] == "micro_batch_size"
    assert setup.get("lora_dropout") == 0.0 and not setup.settings["lora_dropout"].explicit


def test_lora_config_cross_format_names_get_suggestions(tmp_path: Path) -> None:
    text = "r: 8\nlora_alpha: 16\ntarget_modules: [q_proj]\nbase_model: gpt2\nmax_seq_length: 128\nepochs: 3\nlr: 0.001\n"
    setup = read_one(tmp_path / "lora.yaml", text)
    suggestions = {n.data["key"]: n.data["suggestion"] for n in setup.notes if n.kind == "unknown-key"}
    assert suggestions == {"max_seq_length": "sequence_len", "epochs": "num_epochs", "lr": "learning_rate"}


def test_lora_config_declares_a_chunked_loss(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "lora.yaml", "r: 8\nlora_alpha: 16\nchunked_loss: true\n")
    assert setup.format == "lora-config" and setup.notes == []
    assert setup.get("chunked_loss") is True and setup.location_of("chunked_loss").key == "chunked_loss"
    wrong = read_one(tmp_path / "lora.yaml", "r: 8\nchunked_loss: 3\n")
    assert [note.kind for note in wrong.notes] == ["wrong-type"]


def _check(paths: list[Path], capsys) -> tuple[int, str]:
    from lora_lint.cli import main

    code = main(["check", *map(str, paths)])
    return code, capsys.readouterr().out


def test_adapter_config_of_another_tool_is_skipped_with_a_reason(tmp_path: Path, capsys) -> None:
    mlx = tmp_path / "mlx" / "adapter_config.json"
    mlx.parent.mkdir()
    mlx.write_text(json.dumps({"rank": 8, "alpha": 16, "num_layers": 16, "lora_parameters": {"rank": 8}}))
    code, out = _check([mlx], capsys)
    assert code == 0 and "did you mean" not in out
    assert f"{mlx}: skipped: not a PEFT config: neither peft_type nor LoRA's own fields" in out
    code, out = _check([tmp_path], capsys)  # discovered in a folder: silent
    assert code == 0 and "skipped" not in out and "mlx" not in out


def test_lora_fields_without_peft_type_still_read(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "adapter_config.json", json.dumps({"r": 8, "target_modules": ["q_proj"]}))
    assert setup.format == "peft" and setup.get("r") == 8
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"r": 8, "dropout": 0.1}))  # r alone is not LoRA's shape
    with pytest.raises(NotALoraConfig, match="neither peft_type"):
        read_file(str(path), path.read_bytes())


@pytest.mark.parametrize("peft_type", ["LOHA", "LOKR", "ADALORA", "IA3", "PREFIX_TUNING"])
def test_other_peft_methods_are_out_of_scope(tmp_path: Path, peft_type: str) -> None:
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"peft_type": peft_type, "r": 8, "alpha": 8, "target_modules": ["q_proj"]}))
    with pytest.raises(NotALoraConfig, match=f"a PEFT {peft_type} adapter: lora-lint checks LoRA adapters only"):
        read_file(str(path), path.read_bytes())


def test_unknown_peft_type_and_single_config_commands(tmp_path: Path, capsys) -> None:
    from lora_lint.cli import main

    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({"peft_type": "NOT_A_METHOD", "r": 8}))
    with pytest.raises(NotALoraConfig, match="peft_type 'NOT_A_METHOD' is no method of PEFT"):
        read_file(str(path), path.read_bytes())
    assert main(["params", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "NOT_A_METHOD" in line
