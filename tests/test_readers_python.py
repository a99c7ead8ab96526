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


# -- values resolved through the script -------------------------------------------------


def only(text: str):
    (setup,) = read(text)
    return setup


def test_module_constant_is_located_where_it_is_written() -> None:
    setup = only("from peft import LoraConfig\n\nlora_r = 64\nconfig = LoraConfig(r=lora_r)\n")
    assert setup.get("r") == 64
    assert (setup.location_of("r").line, setup.location_of("r").column) == (3, 1)
    assert setup.extras["provenance"]["r"] == "r = 64 from `lora_r = 64`, line 3"
    assert not [n for n in setup.notes if n.kind == "non-literal"]


def test_function_assignment_shadows_the_module_one() -> None:
    text = "R = 4\ndef build():\n    R = 32\n    return LoraConfig(r=R, lora_alpha=R)\n"
    setup = only(text)
    assert setup.get("r") == 32 and setup.location_of("r").line == 3


def test_names_bound_twice_resolve_only_when_they_agree() -> None:
    differ = only("r = 8\nif big:\n    r = 64\nLoraConfig(r=r)\n")
    assert differ.settings["r"].value is UNKNOWN
    assert [n.data["source"] for n in differ.notes if n.kind == "non-literal"] == ["r"]
    agree = only("if a:\n    r = 8\nelse:\n    r = 8\nLoraConfig(r=r)\n")
    assert agree.get("r") == 8


@pytest.mark.parametrize(
    "binding",
    [
        "for r in (8, 16):\n    pass\n",  # a loop variable
        "r = 8\nr += 8\n",  # changed in place
        "r = 8\ndef grow():\n    global r\n    r = 64\n",  # rebound from a function
        "from settings import r\n",  # another module
        "r = load()['r']\n",  # read at run time
        "r = r\n",  # no value at all
    ],
)
def test_names_without_one_plain_value_stay_unknown(binding: str) -> None:
    setup = only(binding + "LoraConfig(r=r)\n")
    assert setup.settings["r"].value is UNKNOWN


def test_argparse_defaults_through_the_parsed_namespace() -> None:
    text = (
        "import argparse\n"
        "def get_args():\n"
        "    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('--lora-r', type=int, default='16')\n"  # dest from dashes; type applies to a str default
        "    parser.add_argument('-a', '--alpha', dest='lora_alpha', type=int, default=32)\n"
        "    parser.add_argument('--targets', default='q_proj,v_proj')\n"
        "    parser.add_argument('--dora', action='store_true')\n"
        "    parser.add_argument('--dropout', type=float, required=True)\n"
        "    return parser.parse_args()\n"
        "args = get_args()\n"
        "LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, target_modules=args.targets.split(','),\n"
        "           use_dora=args.dora, lora_dropout=args.dropout)\n"
    )
    setup = only(text)
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("target_modules")) == (16, 32, ["q_proj", "v_proj"])
    assert setup.get("use_dora") is False
    assert setup.settings["lora_dropout"].value is UNKNOWN  # no default: given on the command line
    assert setup.location_of("r").line == 4
    assert setup.extras["provenance"]["r"] == "r = 16 from `parser.add_argument('--lora-r', type=int, default='16')`, line 4"


@pytest.mark.parametrize(
    "parse",
    [
        "args = parser.parse_args()\nLoraConfig(r=args.lora_r)\n",
        "args, _ = parser.parse_known_args()\nLoraConfig(r=args.lora_r)\n",
        "args = parser.parse_known_args()[0]\nLoraConfig(r=args.lora_r)\n",
        "def main(args):\n    LoraConfig(r=args.lora_r)\nmain(parser.parse_args())\n",
    ],
)
def test_argparse_namespace_spellings(parse: str) -> None:
    setup = only("parser = argparse.ArgumentParser()\nparser.add_argument('--lora_r', type=int, default=8)\n" + parse)
    assert setup.get("r") == 8 and setup.location_of("r").line == 2


def test_argparse_set_defaults_and_unknown_callers() -> None:
    head = "parser.add_argument('--lora_r', type=int, default=8)\n"
    assert only(head + "parser.set_defaults(lora_r=4)\nargs = parser.parse_args()\nLoraConfig(r=args.lora_r)\n").get("r") == 4
    called_elsewhere = head + "def main(args):\n    LoraConfig(r=args.lora_r)\nmain(load_namespace())\n"
    assert only(called_elsewhere).settings["r"].value is UNKNOWN


def test_dataclass_defaults_through_instances() -> None:
    text = (
        "from dataclasses import dataclass, field\n"
        "from transformers import HfArgumentParser, TrainingArguments\n"
        "@dataclass\n"
        "class Base:\n"
        "    lora_dropout: float = 0.05\n"
        "@dataclass\n"
        "class ModelArguments(Base):\n"
        "    model_name: str = 'org/model'\n"
        "    lora_r: int = field(default=8, metadata={'help': 'rank'})\n"
        "    targets: list = field(default_factory=lambda: ['q_proj', 'v_proj'])\n"
        "parser = HfArgumentParser((TrainingArguments, ModelArguments))\n"
        "training_args, model_args = parser.parse_args_into_dataclasses()\n"
        "LoraConfig(r=model_args.lora_r, target_modules=model_args.targets, lora_dropout=model_args.lora_dropout)\n"
    )
    setup = only(text)
    assert (setup.get("r"), setup.get("target_modules"), setup.get("lora_dropout")) == (8, ["q_proj", "v_proj"], 0.05)
    assert setup.location_of("r").line == 9 and setup.location_of("lora_dropout").line == 5
    assert setup.extras["provenance"]["r"].endswith("line 9")


def test_class_instances_annotations_and_constructor_keywords() -> None:
    classes = "class Cfg:\n    r: int = 8\n    alpha = 16\n"
    assert only(classes + "cfg = Cfg(r=32)\nLoraConfig(r=cfg.r, lora_alpha=cfg.alpha)\n").get("r") == 32
    assert only(classes + "LoraConfig(r=Cfg.r)\n").get("r") == 8
    assert only(classes + "def build(cfg: Cfg):\n    return LoraConfig(r=cfg.r)\n").get("r") == 8
    assert only(classes + "def build(cfg):\n    return LoraConfig(r=cfg.r)\n").settings["r"].value is UNKNOWN
    assert only(classes + "LoraConfig(r=self.config.r)\n").settings["r"].value is UNKNOWN


def test_fire_entry_point_defaults() -> None:
    text = "import fire\ndef train(model='m', lora_r: int = 32, *, lora_alpha=64):\n    LoraConfig(r=lora_r, lora_alpha=lora_alpha)\nfire.Fire(train)\n"
    setup = only(text)
    assert (setup.get("r"), setup.get("lora_alpha")) == (32, 64)
    assert setup.location_of("r").line == 2
    no_fire = "def train(lora_r=32):\n    LoraConfig(r=lora_r)\ntrain(lora_r=8)\n"
    assert only(no_fire).settings["r"].value is UNKNOWN


@pytest.mark.parametrize("kwargs", ["dict(r=8, lora_alpha=16, target_modules=TARGETS)", "{'r': 8, 'lora_alpha': 16, 'target_modules': TARGETS}"])
def test_literal_dicts_splatted(kwargs: str) -> None:
    text = f"TARGETS = ['q_proj', 'v_proj']\nlora_kwargs = {kwargs}\nLoraConfig(task_type='CAUSAL_LM', **lora_kwargs)\n"
    setup = only(text)
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("target_modules")) == (8, 16, ["q_proj", "v_proj"])
    assert setup.location_of("r").line == 2 and not setup.notes


def test_constant_expressions() -> None:
    text = (
        "lora_r = 16\n"
        "q, v = 'q_proj', 'v_proj'\n"
        "cfg = {'rank': 4}\n"
        "LoraConfig(r=lora_r * 2, lora_alpha=2 * lora_r, target_modules=[q, v], lora_dropout=-(-0.1), layers_to_transform=list(range(2)))\n"
        "LoraConfig(r=cfg['rank'], lora_alpha=2 ** 999999, target_modules=[q] + [v])\n"
    )
    first, second = read(text)
    assert (first.get("r"), first.get("lora_alpha"), first.get("target_modules")) == (32, 32, ["q_proj", "v_proj"])
    assert first.get("lora_dropout") == 0.1
    assert first.settings["layers_to_transform"].value is UNKNOWN  # range() is not evaluated
    assert first.location_of("r").line == 4  # an expression is located where it is written
    assert second.get("r") == 4 and second.location_of("r").line == 3
    assert second.settings["lora_alpha"].value is UNKNOWN  # no huge numbers
    assert second.get("target_modules") == ["q_proj", "v_proj"]


def test_long_and_cyclic_chains_are_bounded() -> None:
    chain = "".join(f"a{i} = a{i + 1}\n" for i in range(200)) + "a200 = 8\n"
    assert only(chain + "LoraConfig(r=a0)\n").settings["r"].value is UNKNOWN
    assert only("a = b\nb = a\nLoraConfig(r=a)\n").settings["r"].value is UNKNOWN


def test_training_context_resolves_too() -> None:
    text = (
        "MODEL = 'Qwen/Qwen2.5-0.5B'\n"
        "parser.add_argument('--lr', type=float, default=1e-4)\n"
        "args = parser.parse_args()\n"
        "dtype = torch.bfloat16\n"
        "model = AutoModelForCausalLM.from_pretrained(MODEL, torch_dtype=dtype)\n"
        "LoraConfig(r=8)\n"
        "TrainingArguments(output_dir='out', learning_rate=args.lr)\n"
    )
    setup = only(text)
    assert setup.get("base_model") == "Qwen/Qwen2.5-0.5B" and setup.location_of("base_model").line == 1
    assert setup.get("learning_rate") == 1e-4 and setup.location_of("learning_rate").line == 2
    assert setup.get("torch_dtype") == "bfloat16"


def test_findings_point_at_the_defining_line(tmp_path: Path) -> None:
    from tests.rule_harness import lint_source

    source = "from peft import LoraConfig\n\nLORA_R = 64\nLORA_ALPHA = 16\n\nconfig = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA)\n"
    (result,) = lint_source(source, "python", tmp_path)
    (finding,) = [f for f in result.findings if f.code == "LL105"]
    assert finding.line == 4


# -- Unsloth -------------------------------------------------------------------------


UNSLOTH = (
    "from unsloth import FastLanguageModel\n"
    "model, tokenizer = FastLanguageModel.from_pretrained(model_name='unsloth/Qwen2.5-7B', max_seq_length=4096)\n"
    "model = FastLanguageModel.get_peft_model(model, lora_alpha=32)\n"
)


def test_unsloth_get_peft_model_uses_unsloth_defaults() -> None:
    setup = only(UNSLOTH)
    assert setup.extras["unsloth"] == "FastLanguageModel" and setup.start.key == "get_peft_model"
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout")) == (16, 32, 0.0)
    assert setup.get("target_modules") == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert not setup.settings["r"].explicit and setup.get("gradient_checkpointing") == "unsloth"
    assert setup.get("base_model") == "unsloth/Qwen2.5-7B" and setup.get("sequence_len") == 4096
    assert setup.get("load_in_4bit") is True and setup.get("bnb_4bit_quant_type") == "nf4"  # Unsloth's own loading
    assert setup.get("bnb_4bit_compute_dtype") == "bfloat16"
    assert setup.get("chunked_loss") is True  # FastLanguageModel computes the loss in chunks


def test_unsloth_explicit_arguments_and_vision_models() -> None:
    text = (
        "from unsloth import FastVisionModel\n"
        "model, tok = FastVisionModel.from_pretrained('unsloth/Qwen2-VL-7B-Instruct', load_in_4bit=False)\n"
        "model = FastVisionModel.get_peft_model(model, r=8, use_gradient_checkpointing=True, random_state=3407)\n"
    )
    setup = only(text)
    assert setup.get("r") == 8 and setup.get("gradient_checkpointing") is True
    assert setup.settings["target_modules"].value is UNKNOWN  # chosen from the model's layers at run time
    assert setup.get("load_in_4bit") is False and not setup.notes


def test_unsloth_rules_see_no_default_4bit_mistakes(tmp_path: Path) -> None:
    from tests.rule_harness import lint_source

    (result,) = lint_source(UNSLOTH, "python", tmp_path)
    assert not {"LL401", "LL402", "LL007"} & {f.code for f in result.findings}


def test_peft_get_peft_model_is_no_second_setup() -> None:
    assert len(read("model = get_peft_model(model, LoraConfig(r=8))\n")) == 1
