"""torchtune reader: builder arguments, builder defaults and module names."""

from __future__ import annotations

from pathlib import Path

from lora_lint.readers import read_file
from lora_lint.readers.torchtune import builders

EXAMPLES = Path(__file__).parent.parent / "examples" / "torchtune"


def read_one(path: Path, text: str):
    path.write_text(text)
    (setup,) = read_file(str(path), text.encode())
    return setup


def test_good_lora_values_and_context() -> None:
    path = EXAMPLES / "good-lora.yaml"
    (setup,) = read_file(str(path), path.read_bytes())
    assert setup.format == "torchtune" and setup.notes == []
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout")) == (32, 64, 0.0)
    assert setup.get("target_modules") == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert setup.extras["torchtune_modules"] == ["q_proj", "k_proj", "v_proj", "output_proj"]
    assert setup.extras["builder"] == "torchtune.models.qwen2_5.lora_qwen2_5_0_5b"
    assert setup.location_of("r").key == "model.lora_rank" and setup.location_of("r").line == 9
    assert setup.start.key == "model"
    assert setup.get("learning_rate") == 2e-3 and setup.location_of("learning_rate").key == "optimizer.lr"
    assert setup.get("micro_batch_size") == 4 and setup.get("sequence_len") == 512
    assert setup.get("torch_dtype") == "bfloat16" and setup.get("gradient_checkpointing") is True
    assert setup.get("dataset_examples") == 200 and setup.get("load_in_4bit") is False


def test_builder_defaults_and_qlora(tmp_path: Path) -> None:
    text = "model:\n  _component_: torchtune.models.llama3_2.qlora_llama3_2_1b\n  lora_attn_modules: [q_proj, v_proj]\n"
    setup = read_one(tmp_path / "q.yaml", text)
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout")) == (8, 16, 0.0)
    assert not setup.settings["r"].explicit and setup.get("load_in_4bit") is True
    assert setup.get("target_modules") == ["q_proj", "v_proj"]


def test_unknown_module_and_key(tmp_path: Path) -> None:
    path = EXAMPLES / "bad-o-proj.yaml"
    (setup,) = read_file(str(path), path.read_bytes())
    (note,) = setup.notes
    assert note.kind == "unknown-module" and note.data["value"] == "o_proj" and note.data["suggestion"] == "output_proj"
    assert "o_proj" not in setup.get("target_modules")  # torchtune skips names it does not know
    text = "model:\n  _component_: torchtune.models.llama3_2.lora_llama3_2_1b\n  lora_attn_modules: [q_proj]\n  lora_r: 16\n"
    setup = read_one(tmp_path / "u.yaml", text)
    (note,) = setup.notes
    assert note.data == {"key": "model.lora_r", "suggestion": "lora_rank"} and note.location.line == 4


def test_full_fine_tune_gives_no_setup(tmp_path: Path) -> None:
    text = "model:\n  _component_: torchtune.models.llama3_2.llama3_2_1b\nbatch_size: 2\n"
    assert read_file(str(tmp_path / "full.yaml"), text.encode()) == []


def test_builder_table_covers_lora_and_qlora() -> None:
    table = builders()
    assert "torchtune.models.llama3_1.lora_llama3_1_8b" in table
    assert table["torchtune.models.llama3_1.qlora_llama3_1_8b"]["defaults"]["quantize_base"] is True
    assert all("lora_attn_modules" in entry["required"] for entry in table.values())


def test_chunked_loss_from_the_loss_component(tmp_path: Path) -> None:
    model = "model:\n  _component_: torchtune.models.llama3_1.lora_llama3_1_8b\n  lora_attn_modules: [q_proj]\n"
    cases = {
        "": False,
        "loss:\n  _component_: torch.nn.CrossEntropyLoss\n": False,
        "loss:\n  _component_: torchtune.modules.loss.CEWithChunkedOutputLoss\n": True,
        "loss:\n  _component_: torchtune.modules.loss.LinearCrossEntropyLoss\n": True,
    }
    for loss, expected in cases.items():
        setup = read_one(tmp_path / "lora.yaml", model + loss)
        assert setup.get("chunked_loss") is expected, loss
    assert setup.location_of("chunked_loss").key == "loss._component_"
