"""The config editor: a copy that differs from the user's file only in what was asked."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
import yaml

from lora_lint.config_edit import EditError, edit_config
from lora_lint.readers import read_file

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"

AXOLOTL = """\
# QLoRA on Llama: keep this comment
base_model: NousResearch/Llama-2-7b-hf  # the base
adapter: qlora
load_in_4bit: true
lora_model_dir: ./outputs/previous   # resumes the old adapter
lora_r: 8
lora_alpha: 16   # alpha = 2r
lora_dropout: 0.05
lora_target_modules: [q_proj,v_proj]
resume_from_checkpoint: ./outputs/previous/checkpoint-200
gradient_checkpointing: True
datasets:
  - path: data.jsonl
    type: alpaca
"""

LLAMAFACTORY = """\
### model
model_name_or_path: Qwen/Qwen2.5-7B-Instruct
adapter_name_or_path: saves/old-adapter
### method
stage: sft
finetuning_type: lora
lora_rank: 8      # no alpha: LLaMA-Factory uses 2 x rank
lora_target: all
### train
learning_rate: 1.0e-4
"""

TORCHTUNE = """\
model:
  _component_: torchtune.models.llama3_1.lora_llama3_1_8b
  lora_attn_modules: ['q_proj', 'v_proj']
  lora_rank: 8  # rank
  lora_alpha: 16
checkpointer:
  _component_: torchtune.training.FullModelHFCheckpointer
  checkpoint_dir: /tmp/Meta-Llama-3.1-8B-Instruct/
  adapter_checkpoint: adapter_0.pt
  recipe_checkpoint: recipe_state.pt
resume_from_checkpoint: True
optimizer:
  _component_: torch.optim.AdamW
  lr: 3e-4
"""

PEFT = {
    "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
    "bias": "none",
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "peft_type": "LORA",
    "r": 8,
    "target_modules": ["q_proj", "v_proj"],
    "task_type": "CAUSAL_LM",
}


def _changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm="")
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _setup(path: Path):
    return read_file(str(path), path.read_bytes())[0]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("axolotl.yml", AXOLOTL, {"-lora_r: 8", "+lora_r: 16", "-lora_alpha: 16   # alpha = 2r", "+lora_alpha: 32   # alpha = 2r"}),
        ("llamafactory.yaml", LLAMAFACTORY, {"-lora_rank: 8      # no alpha: LLaMA-Factory uses 2 x rank", "+lora_rank: 16      # no alpha: LLaMA-Factory uses 2 x rank", "+lora_alpha: 32"}),
        ("torchtune.yaml", TORCHTUNE, {"-  lora_rank: 8  # rank", "+  lora_rank: 16  # rank", "-  lora_alpha: 16", "+  lora_alpha: 32"}),
    ],
)
def test_yaml_copy_differs_only_in_rank_and_alpha(tmp_path: Path, name: str, text: str, expected: set[str]) -> None:
    source = tmp_path / name
    source.write_text(text)
    edit = edit_config(source, {"r": 16, "lora_alpha": 32}, out_path=tmp_path / "out" / name)

    assert source.read_text() == text
    assert set(_changed_lines(text, edit.path.read_text())) == expected
    copy = _setup(edit.path)
    assert (copy.get("r"), copy.get("lora_alpha")) == (16, 32)


def test_peft_json_keeps_key_order_and_layout(tmp_path: Path) -> None:
    text = json.dumps(PEFT, indent=2) + "\n"
    source = tmp_path / "adapter_config.json"
    source.write_text(text)
    edit = edit_config(source, {"r": 16, "lora_alpha": 32}, out_path=tmp_path / "locked" / "adapter_config.json")

    changed = _changed_lines(text, edit.path.read_text())
    assert sorted(changed) == sorted(['-  "lora_alpha": 16,', '+  "lora_alpha": 32,', '-  "r": 8,', '+  "r": 16,'])
    assert list(json.loads(edit.path.read_text())) == list(PEFT)


def test_rollback_removes_what_resumes_the_old_adapter(tmp_path: Path) -> None:
    source = tmp_path / "axolotl.yml"
    source.write_text(AXOLOTL)
    edit = edit_config(source, {"r": 16, "lora_alpha": 32}, drop_resume=True, out_path=tmp_path / "rollback.yml")

    data = yaml.safe_load(edit.path.read_text())
    assert "lora_model_dir" not in data and "resume_from_checkpoint" not in data
    assert "# QLoRA on Llama: keep this comment" in edit.path.read_text()
    assert any(change.startswith("removed lora_model_dir") for change in edit.changes)
    assert _setup(edit.path).get("resume_adapter") is None


def test_rollback_of_llamafactory_and_torchtune(tmp_path: Path) -> None:
    for name, text in (("lf.yaml", LLAMAFACTORY), ("tt.yaml", TORCHTUNE)):
        source = tmp_path / name
        source.write_text(text)
        edit_config(source, {"r": 16}, drop_resume=True, out_path=tmp_path / f"rollback-{name}")
    lf = yaml.safe_load((tmp_path / "rollback-lf.yaml").read_text())
    tt = yaml.safe_load((tmp_path / "rollback-tt.yaml").read_text())
    assert "adapter_name_or_path" not in lf
    assert tt["resume_from_checkpoint"] is False
    assert "adapter_checkpoint" not in tt["checkpointer"] and "recipe_checkpoint" not in tt["checkpointer"]
    assert tt["checkpointer"]["checkpoint_dir"] == "/tmp/Meta-Llama-3.1-8B-Instruct/"


def test_new_settings_are_added_where_the_format_keeps_them(tmp_path: Path) -> None:
    source = tmp_path / "tt.yaml"
    source.write_text(TORCHTUNE)
    edit = edit_config(source, {"lora_dropout": 0.1, "weight_decay": 1e-5}, out_path=tmp_path / "out.yaml")

    data = yaml.safe_load(edit.path.read_text())
    assert data["model"]["lora_dropout"] == 0.1
    assert data["optimizer"]["weight_decay"] == 1e-5  # a number, not the string YAML 1.1 makes of "1e-05"


def test_settings_a_format_lacks_become_instructions(tmp_path: Path) -> None:
    source = tmp_path / "adapter_config.json"
    source.write_text(json.dumps(PEFT, indent=2))
    edit = edit_config(source, {"lora_dropout": 0.1, "weight_decay": 0.01}, out_path=tmp_path / "o" / "adapter_config.json")

    assert json.loads(edit.path.read_text())["lora_dropout"] == 0.1
    assert edit.instructions and "weight_decay" in edit.instructions[0]


def test_python_sources_get_instructions_not_a_rewrite(tmp_path: Path) -> None:
    source = tmp_path / "train.py"
    text = "from peft import LoraConfig\nconfig = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'])\n"
    source.write_text(text)
    edit = edit_config(source, {"r": 16, "lora_alpha": 32}, out_path=tmp_path / "out.py")

    assert edit.path is None and not (tmp_path / "out.py").exists()
    assert edit.instructions == [f"{source}:2:23: change r from 8 to 16", f"{source}:2:37: change lora_alpha from 16 to 32"]
    assert source.read_text() == text


def test_refuses_to_overwrite_the_original_and_unknown_settings(tmp_path: Path) -> None:
    source = tmp_path / "axolotl.yml"
    source.write_text(AXOLOTL)
    with pytest.raises(EditError, match="refusing to overwrite"):
        edit_config(source, {"r": 16}, out_path=source)
    with pytest.raises(EditError, match="only r, lora_alpha"):
        edit_config(source, {"learning_rate": 1}, out_path=tmp_path / "o.yml")
    assert source.read_text() == AXOLOTL


def test_unwritable_output_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "axolotl.yml"
    source.write_text(AXOLOTL)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EditError, match="cannot write"):
        edit_config(source, {"r": 16}, out_path=blocker / "sub" / "out.yml")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the reference corpus is not beside this checkout")
def test_every_corpus_config_edits_to_exactly_its_rank_lines(tmp_path: Path) -> None:
    edited = 0
    for path in sorted(CORPUS.rglob("*.y*ml")):
        setups = read_file(str(path), path.read_bytes())
        if not setups or setups[0].get("r") is None or setups[0].location_of("r") is None:
            continue
        setup = setups[0]
        new_r = setup.get("r") * 2
        edit = edit_config(path, {"r": new_r}, out_path=tmp_path / f"{edited}.yaml", setup=setup)
        changed = _changed_lines(path.read_text(), edit.path.read_text())
        assert len(changed) == 2, (path, changed)
        assert _setup(edit.path).get("r") == new_r
        edited += 1
    assert edited > 100
