"""Python reader: LoraConfig(...) calls found with ast, never run."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_lint.document import InputError
from lora_lint.lora_setup import UNKNOWN
from lora_lint.readers import read_file

EXAMPLES = Path(__file__).parent.parent / "examples" / "python"


def read(text: str):
    return read_file("train.py", text.encode())


def test_good_script() -> None:
    path = EXAMPLES / "train_good.py"
    (setup,) = read_file(str(path), path.read_bytes())
    assert setup.format == "python" and setup.notes == []
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout")) == (16, 32, 0.05)
    assert setup.location_of("r").line == 13 and setup.location_of("r").column == 11
    assert setup.start.line == 12 and setup.start.key == "LoraConfig"
    assert setup.get("base_model") == "HuggingFaceTB/SmolLM2-135M"  # through the MODEL_ID constant
    assert setup.get("torch_dtype") == "bfloat16" and setup.get("learning_rate") == 2e-4
    assert setup.get("micro_batch_size") == 4 and setup.get("num_epochs") == 2


def test_one_setup_per_call_and_notes() -> None:
    path = EXAMPLES / "train_bad.py"
    stale, wrong = read_file(str(path), path.read_bytes())
    assert (stale.get("r"), stale.get("lora_alpha"), stale.get("lora_dropout")) == (64, 16, 1.0)
    notes = {(n.kind, n.data["key"]): n for n in wrong.notes}
    assert notes[("unknown-key", "lora_rank")].data["suggestion"] == "r"
    assert notes[("non-literal", "target_modules")].data["source"] == "modules"
    assert wrong.settings["target_modules"].value is UNKNOWN and wrong.get("target_modules") is None
    assert wrong.get("r") == 8 and not wrong.settings["r"].explicit


def test_call_spellings_positional_and_splats() -> None:
    text = (
        "import peft, my\n"
        "a = my.pkg.LoraConfig(None, None, None, None, None, None, False, 4)\n"
        "b = peft.LoraConfig(r=8, **{'lora_alpha': 16})\n"
        "c = LoraConfig(r=8, **shared)\n"
    )
    a, b, c = read(text)
    assert a.get("r") == 4 and a.location_of("r").column == 66
    assert b.get("lora_alpha") == 16
    assert [n.data["source"] for n in c.notes if n.kind == "non-literal"] == ["**shared"]
    assert c.settings["lora_alpha"].value is UNKNOWN  # may come from the splat
    assert c.get("r") == 8


def test_wrong_types_and_literal_containers() -> None:
    (setup,) = read("LoraConfig(r='16', lora_alpha=16.5, target_modules={'v_proj', 'q_proj'}, bias=['none'])\n")
    kinds = {(n.kind, n.data["key"]) for n in setup.notes}
    assert kinds == {("wrong-type", "r"), ("wrong-type", "bias")}
    assert setup.get("target_modules") == ["q_proj", "v_proj"]


def test_no_call_and_syntax_error() -> None:
    assert read("from peft import LoraConfig\n") == []
    with pytest.raises(InputError) as caught:
        read("x = LoraConfig(r=8\n")
    assert caught.value.line == 1


def test_never_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (setup,) = read(f"open({str(marker)!r}, 'w')\nLoraConfig(r=__import__('os').getpid())\n")
    assert not marker.exists() and setup.settings["r"].value is UNKNOWN


@pytest.mark.parametrize("spelling", ["TaskType.CAUSAL_LM", "peft.TaskType.CAUSAL_LM", "TT.CAUSAL_LM"])
def test_task_type_enum_reads_as_its_name(spelling: str) -> None:
    text = f"import peft\nfrom peft import TaskType as TT\nLoraConfig(r=8, task_type={spelling})\n"
    (setup,) = read(text)
    assert setup.get("task_type") == "CAUSAL_LM" and setup.notes == []
    assert (setup.location_of("task_type").line, setup.location_of("task_type").column) == (3, 27)


def test_starred_arguments_are_splats() -> None:
    (setup,) = read("LoraConfig('CAUSAL_LM', *args, 99, lora_alpha=16)\n")
    notes = [(n.data["key"], n.data["source"], n.location.column) for n in setup.notes]
    assert notes == [("*", "*args", 25)]  # the 99 after it lands on a field known only at run time
    assert setup.get("task_type") == "CAUSAL_LM" and setup.get("lora_alpha") == 16
    assert setup.settings["r"].value is UNKNOWN
    assert setup.settings["lora_dropout"].value is UNKNOWN


def test_import_aliases_are_lora_config_calls() -> None:
    text = (
        "import peft as p\n"
        "from peft import LoraConfig as LC\n"
        "from transformers import AutoModelForCausalLM as AM\n"
        "model = AM.from_pretrained('org/model')\n"
        "a = LC(r=4)\n"
        "b = p.LoraConfig(r=8)\n"
        "class LoraConfig:\n"
        "    pass\n"
        "c = LoraConfig(r=16)\n"
        "d = Other(r=32)\n"
    )
    assert [(s.get("r"), s.get("base_model"), s.start.line) for s in read(text)] == [
        (4, "org/model", 5),
        (8, "org/model", 6),
        (16, "org/model", 9),
    ]
