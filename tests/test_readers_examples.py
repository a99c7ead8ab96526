"""The bundled examples: every file reads in its format, and each bad one shows its mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_lint.readers import read_file

EXAMPLES = Path(__file__).parent.parent / "examples"
CONFIGS = sorted(
    p for p in EXAMPLES.rglob("*") if p.suffix in (".yml", ".yaml", ".json", ".py") and p.name != "dataset_info.json"
)
FORMAT_OF_FOLDER = {
    "peft": "peft",
    "axolotl": "axolotl",
    "llamafactory": "llamafactory",
    "torchtune": "torchtune",
    "python": "python",
    "lora-config": "lora-config",
    "trl": "trl",
}


def setups_of(relative: str):
    path = EXAMPLES / relative
    return read_file(str(path), path.read_bytes())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_reads_in_its_format(path: Path) -> None:
    setups = read_file(str(path), path.read_bytes())
    assert setups
    folder = path.relative_to(EXAMPLES).parts[0]
    assert {s.format for s in setups} == {FORMAT_OF_FOLDER[folder]}
    if "good" in path.name or "good" in path.parent.name:
        assert [s.notes for s in setups] == [[] for _ in setups]


def test_every_format_has_good_and_bad_examples() -> None:
    for folder in FORMAT_OF_FOLDER:
        names = [str(p.relative_to(EXAMPLES / folder)) for p in CONFIGS if p.relative_to(EXAMPLES).parts[0] == folder]
        assert any("good" in n for n in names) and any("bad" in n for n in names), folder


def test_readme_describes_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for path in CONFIGS:
        assert str(path.relative_to(EXAMPLES)) in readme, path


def test_bad_examples_carry_their_mistake() -> None:
    (stale,) = setups_of("axolotl/bad-alpha-from-older-rank.yml")
    assert stale.get("lora_alpha") / stale.get("r") == 0.125
    (qlora,) = setups_of("axolotl/bad-qlora-without-4bit.yml")
    assert qlora.extras["adapter"] == "qlora" and qlora.get("load_in_4bit") is False
    (typo,) = setups_of("axolotl/bad-typo-key.yml")
    assert "lora_alpha" not in typo.settings
    (dropout,) = setups_of("peft/bad-dropout-one/adapter_config.json")
    assert dropout.get("lora_dropout") == 1.0
    (alpha,) = setups_of("peft/bad-alpha-zero/adapter_config.json")
    assert alpha.get("lora_alpha") == 0
    (lr,) = setups_of("lora-config/bad-lr-string.yaml")
    assert [n.kind for n in lr.notes] == ["yaml-string-number"]
    (o_proj,) = setups_of("torchtune/bad-o-proj.yaml")
    assert [n.kind for n in o_proj.notes] == ["unknown-module"]
    (rank,) = setups_of("llamafactory/bad-rank-as-string.yaml")
    assert [n.kind for n in rank.notes] == ["wrong-type"]
    stale_py, wrong_py = setups_of("python/train_bad.py")
    assert stale_py.get("lora_dropout") == 1.0 and {n.kind for n in wrong_py.notes} == {"unknown-key", "non-literal"}


def test_examples_use_the_small_local_dataset() -> None:
    for relative in ("axolotl/good-qlora.yml", "llamafactory/good-lora-sft.yaml", "torchtune/good-lora.yaml", "lora-config/good-qlora.yaml"):
        (setup,) = setups_of(relative)
        assert setup.get("dataset_examples") == 200, relative
