"""Framework schemas: the bundled per-version key lists, the installed framework's live schema, LL001/LL002/LL008."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lora_lint.readers import schemas
from lora_lint.readers.schema_source import SourceTree
from tests.rule_harness import lint_source

FRAMEWORKS = ("axolotl", "llamafactory", "peft", "torchtune", "trl")


@pytest.fixture
def fresh_schemas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Forget schemas read so far, with a private cache folder, and again afterwards."""
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    schemas.schema.cache_clear()
    yield
    schemas.schema.cache_clear()


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_bundled_file_states_its_origin(name: str) -> None:
    data = json.loads((Path(schemas.SCHEMA_DIR) / f"{name}.json").read_text())
    assert data["package"] and data["generated"] and data["generator"] == "scripts/regenerate_schemas.py"
    names = [version["name"] for version in data["versions"]]
    assert data["current"] in names and all(version["source"] for version in data["versions"])
    entries = data["builders"] if name == "torchtune" else data["keys"]
    assert entries and all(set(item if name != "torchtune" else item["versions"]) <= set(names) for item in entries.values())


def test_peft_keys_keep_signature_order_and_know_every_method() -> None:
    peft = schemas.bundled("peft")
    assert peft.order[:3] == ("task_type", "peft_type", "auto_mapping") and peft.order.index("r") < peft.order.index("lora_alpha")
    assert {"LORA", "LOHA", "LOKR", "ADALORA", "IA3", "PREFIX_TUNING"} <= set(peft.extras["peft_types"])


def test_other_versions_say_added_or_removed() -> None:
    llamafactory = schemas.bundled("llamafactory")
    newer = llamafactory.other_versions("use_packed_sequences")
    assert newer is not None and newer.startswith("added in LLaMA-Factory main@") and newer.endswith("after 0.9.5")
    trl = schemas.bundled("trl")
    assert trl.other_versions("max_seq_length") == f"known in TRL 0.19.1, removed by {trl.version}"
    assert trl.other_versions("no_such_key") is None and trl.other_versions("lora_r") is None


def test_key_of_another_version_is_info_not_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_schemas) -> None:
    monkeypatch.setenv(schemas.BUNDLED_ONLY_ENV, "1")
    source = "model_name_or_path: m\nfinetuning_type: lora\nlora_rank: 8\nkt_cpu_activation: retain\nmy_key: 1\n"
    (result,) = lint_source(source, "llamafactory", tmp_path)
    by_code = {f.code: f for f in result.findings if f.code in ("LL001", "LL002", "LL008")}
    assert set(by_code) == {"LL002", "LL008"}
    assert by_code["LL008"].key == "kt_cpu_activation" and "after 0.9.5" in by_code["LL008"].message
    assert "in LLaMA-Factory 0.9.5 (bundled)" in by_code["LL002"].message and by_code["LL002"].key == "my_key"


def _fake_install(site: Path) -> None:
    """A tiny LLaMA-Factory 9.9.9 and transformers, as files only: enough for the schema reader."""
    hparams = site / "llamafactory" / "hparams"
    hparams.mkdir(parents=True)
    (site / "llamafactory" / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (hparams / "__init__.py").write_text("")
    (hparams / "args.py").write_text(
        "from dataclasses import dataclass, field\n"
        "from transformers import Seq2SeqTrainingArguments\n"
        "@dataclass\nclass ModelArguments:\n    model_name_or_path: str = None\n    kt_cpu_activation: str = None\n"
        "    _handle: object = field(default=None, init=False)\n"
        "@dataclass\nclass DataArguments:\n    dataset: str = None\n"
        "@dataclass\nclass TrainingArguments(Seq2SeqTrainingArguments):\n    ray_num_workers: int = 1\n"
        "@dataclass\nclass FinetuningArguments:\n    finetuning_type: str = 'lora'\n    lora_rank: int = 8\n"
        "@dataclass\nclass GeneratingArguments:\n    top_p: float = 0.7\n"
    )
    (site / "llamafactory-9.9.9.dist-info").mkdir()
    transformers = site / "transformers"
    transformers.mkdir()
    (transformers / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (transformers / "training_args.py").write_text("class TrainingArguments:\n    output_dir: str = None\n    learning_rate: float = 5e-5\n")
    (transformers / "training_args_seq2seq.py").write_text(
        "from .training_args import TrainingArguments\nclass Seq2SeqTrainingArguments(TrainingArguments):\n"
        "    predict_with_generate: bool = False\n"
    )


def test_installed_framework_is_read_without_importing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_schemas) -> None:
    site = tmp_path / "site"
    _fake_install(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "transformers", raising=False)  # find_spec answers an imported module itself
    monkeypatch.delenv(schemas.BUNDLED_ONLY_ENV, raising=False)
    live = schemas.schema("llamafactory")
    assert "llamafactory" not in sys.modules
    assert (live.origin, live.version, live.label) == ("installed", "9.9.9", "LLaMA-Factory 9.9.9 (installed)")
    assert live.known == {"model_name_or_path", "kt_cpu_activation", "dataset", "output_dir", "learning_rate",
                          "predict_with_generate", "ray_num_workers", "finetuning_type", "lora_rank", "top_p"}  # fmt: skip
    source = "model_name_or_path: m\nfinetuning_type: lora\nlora_rank: 8\nuse_packed_sequences: true\n"
    (result,) = lint_source(source, "llamafactory", tmp_path)
    (finding,) = [f for f in result.findings if f.code in ("LL001", "LL002", "LL008")]
    assert finding.code == "LL002" and "LLaMA-Factory 9.9.9 (installed)" in finding.message
    assert "known in LLaMA-Factory main@" in finding.message  # 9.9.9 is no bundled version: no order to tell


def test_static_path_does_not_look_for_frameworks_it_does_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_schemas) -> None:
    looked: list[str] = []
    monkeypatch.setattr(schemas, "_package_dir", lambda top: looked.append(top))
    lint_source("r: 8\nlora_alpha: 16\ntarget_modules: [q_proj]\n", "lora-config", tmp_path)
    assert looked == ["peft"]  # the plain LoraConfig format reads PEFT's keys, nothing else


@pytest.mark.parametrize("name", ["peft", "trl"])
def test_live_reader_agrees_with_the_bundled_release(name: str, fresh_schemas) -> None:
    """The installed framework, read by the same code the regenerate script uses, gives the bundled keys of its version."""
    bundled = schemas.bundled(name)
    live = schemas.installed_schema(name)
    if live is None:
        pytest.skip(f"{name} is not installed")
    keys, _, version = live
    if version != bundled.version:
        pytest.skip(f"{name} {version} is installed, the bundled schema is {bundled.version}")
    if name == "trl":  # bundled TRL keys also hold the oldest supported transformers' TrainingArguments
        assert set(keys) <= bundled.known and "lora_r" in keys
    else:
        assert tuple(keys) == bundled.order


def test_source_tree_follows_aliases_conditional_imports_and_pydantic_aliases(tmp_path: Path) -> None:
    package = tmp_path / "fw"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "from pydantic import BaseModel, Field, AliasChoices\n"
        "class Base(BaseModel):\n    a: int = 1\n    b: int = Field(default=2, alias='bee')\n"
        "    c: int = Field(default=3, validation_alias=AliasChoices('c', 'sea'))\n    d: 'ClassVar[int]' = 4\n"
    )
    (package / "config.py").write_text(
        "try:\n    from other_package import Missing as Chosen\nexcept ImportError:\n    from .base import Base as Chosen\n"
        "Alias = Chosen\nclass Config(Alias):\n    e: int = 5\n    a: int = 6\n"
    )
    tree = SourceTree({"fw": str(package)})
    assert tree.class_fields("Config", "fw") == ["a", "b", "bee", "c", "sea", "e"]
    assert tree.field_defaults(*tree.find_class("Config", "fw"))["a"] == 6
