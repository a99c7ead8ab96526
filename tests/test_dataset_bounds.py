"""Dataset size as a bound: max_samples, max_steps x batch, sliced splits, the local datasets cache, num_samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_lint.readers.dataset_size import (
    cached_dataset_rows,
    dataset_record,
    examples_bound,
    hub_cached_parquet_rows,
)
from tests.rule_harness import lint_source

LLAMAFACTORY = """\
model_name_or_path: meta-llama/Llama-3.1-8B
stage: sft
finetuning_type: lora
lora_rank: 128
lora_alpha: 256
dataset: {dataset}
"""

AXOLOTL = """\
base_model: meta-llama/Llama-3.1-8B
adapter: lora
lora_r: 64
lora_alpha: 128
lora_target_modules: [q_proj, v_proj]
datasets:
  - path: some-org/hub-dataset
    type: alpaca
{extra}"""


def only(results):
    (result,) = results
    return result


def ll301(result) -> str | None:
    return next((f.message for f in result.findings if f.code == "LL301"), None)


@pytest.fixture(autouse=True)
def empty_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "datasets-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    (tmp_path / "hub-cache").mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    return cache


def test_max_samples_bounds_a_hub_dataset(tmp_path: Path):
    result = only(lint_source(LLAMAFACTORY.format(dataset="some-org/hub-dataset") + "max_samples: 200\n", "llamafactory", tmp_path))
    assert result.facts["dataset_examples"] is None
    assert result.facts["dataset_examples_max"] == 200
    assert ll301(result) == (
        "r 128 for at most 200 training examples (max_samples 200): under 1000 examples a rank of 64 or more "
        "mostly adds capacity to memorize them; try r 8 to 16"
    )


def test_max_samples_caps_each_dataset(tmp_path: Path):
    source = LLAMAFACTORY.format(dataset="org/a, org/b, org/c") + "max_samples: 300\n"
    result = only(lint_source(source, "llamafactory", tmp_path))
    assert result.facts["dataset_examples_max"] == 900
    assert result.facts["dataset_examples_max_source"] == "max_samples 300"
    assert ll301(result) is not None
    assert "at most 900 training examples (max_samples 300)" in ll301(result)


def test_max_steps_times_batch_is_a_bound_on_one_device(tmp_path: Path):
    extra = "max_steps: 50\nmicro_batch_size: 2\ngradient_accumulation_steps: 4\n"
    result = only(lint_source(AXOLOTL.format(extra=extra), "axolotl", tmp_path))
    assert result.facts["dataset_examples_max"] == 400
    assert result.facts["dataset_examples_max_source"] == (
        "max_steps 50 x micro batch 2 x gradient accumulation 4 on one device"
    )
    assert "at most 400 training examples" in ll301(result)


def test_sample_packing_voids_the_step_bound(tmp_path: Path):
    extra = "max_steps: 50\nmicro_batch_size: 2\nsample_packing: true\n"
    result = only(lint_source(AXOLOTL.format(extra=extra), "axolotl", tmp_path))
    assert result.facts["dataset_examples_max"] is None and ll301(result) is None


def test_large_step_bound_stays_quiet(tmp_path: Path):
    extra = "max_steps: 1000\nmicro_batch_size: 4\n"
    result = only(lint_source(AXOLOTL.format(extra=extra), "axolotl", tmp_path))
    assert result.facts["dataset_examples_max"] == 4000 and ll301(result) is None


def test_sliced_split_is_a_bound(tmp_path: Path):
    source = AXOLOTL.format(extra="").replace("    type: alpaca\n", "    type: alpaca\n    split: train[:300]\n")
    result = only(lint_source(source, "axolotl", tmp_path))
    assert result.facts["dataset_examples_max"] == 300
    assert "(split train[:300])" in ll301(result)


def write_cached_info(cache: Path, folder: str, config: str, rows: dict[str, int], digest: str = "abc123") -> None:
    place = cache / folder / config / "0.0.0" / digest
    place.mkdir(parents=True)
    splits = {name: {"name": name, "num_bytes": 10 * count, "num_examples": count} for name, count in rows.items()}
    (place / "dataset_info.json").write_text(json.dumps({"splits": splits}), encoding="utf-8")


def test_hub_dataset_in_the_local_cache_is_counted(tmp_path: Path, empty_datasets_cache: Path):
    write_cached_info(empty_datasets_cache, "some-org___hub-dataset", "default", {"train": 321, "test": 40})
    result = only(lint_source(AXOLOTL.format(extra=""), "axolotl", tmp_path))
    assert result.facts["dataset_examples"] == 321 == result.facts["dataset_examples_max"]
    (record,) = result.facts["datasets"]
    assert record["examples_from"].startswith("the local datasets cache")
    assert ll301(result).startswith("r 64 for 321 training examples:")


def test_cache_lookup_picks_the_named_config_and_refuses_disagreeing_copies(empty_datasets_cache: Path):
    write_cached_info(empty_datasets_cache, "org___data", "en", {"train": 10})
    write_cached_info(empty_datasets_cache, "org___data", "fr", {"train": 20})
    assert cached_dataset_rows("org/data", "train", "fr")[0] == 20
    assert cached_dataset_rows("org/data", "train") is None  # two configs, none named
    assert cached_dataset_rows("ORG/Data", "train", "en")[0] == 10  # hub ids ignore case
    write_cached_info(empty_datasets_cache, "org___data", "en", {"train": 11}, digest="other")
    assert cached_dataset_rows("org/data", "train", "en") is None  # two cached versions disagree
    assert cached_dataset_rows("org/missing", "train") is None


def test_broken_cache_metadata_is_unknown(empty_datasets_cache: Path):
    place = empty_datasets_cache / "org___data" / "default" / "0.0.0" / "h"
    place.mkdir(parents=True)
    (place / "dataset_info.json").write_text("{not json", encoding="utf-8")
    assert cached_dataset_rows("org/data", "train") is None


def test_llamafactory_num_samples_fixes_the_count(tmp_path: Path):
    info = {"mine": {"hf_hub_url": "org/large-dataset", "num_samples": 150}}
    files = {"data/dataset_info.json": json.dumps(info)}
    result = only(lint_source(LLAMAFACTORY.format(dataset="mine"), "llamafactory", tmp_path, files=files))
    assert result.facts["dataset_examples"] == 150
    assert ll301(result).startswith("r 128 for 150 training examples:")


def test_exact_size_under_every_bound_is_reported_as_the_size(tmp_path: Path):
    record = dataset_record("train.jsonl", None, tmp_path)
    assert record["examples"] is None and record["examples_max"] is None
    (tmp_path / "train.jsonl").write_text('{"a": 1}\n' * 120, encoding="utf-8")
    record = dataset_record("train.jsonl", None, tmp_path)
    assert record["examples"] == record["examples_max"] == 120
    assert examples_bound([record], max_samples=500, max_steps=100, micro_batch=8) == (120, "local files")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_samples": 0}, None),  # not a cap: LLaMA-Factory reads 0 as unset
        ({"max_steps": -1, "micro_batch": 4}, None),  # transformers' -1: train by epochs
        ({"max_steps": 10, "micro_batch": 4}, (40, "max_steps 10 x micro batch 4 x gradient accumulation 1 on one device")),
        ({"max_steps": 10, "micro_batch": 4, "packed": True}, None),
    ],
)  # fmt: skip
def test_bound_edge_cases(kwargs, expected):
    records = [{"path": "org/x", "examples": None, "examples_max": None}]
    assert examples_bound(records, **kwargs) == expected


PARQUET_7_ROWS = Path(__file__).parent / "data" / "rows_7.parquet"


def write_hub_snapshot(tmp_path: Path, files: list[str]) -> None:
    repo = tmp_path / "hub-cache" / "datasets--org--data"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("rev1", encoding="utf-8")
    for name in files:
        target = repo / "snapshots" / "rev1" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(PARQUET_7_ROWS.read_bytes())


def test_hub_cache_parquet_footers_count_a_split(tmp_path: Path):
    write_hub_snapshot(tmp_path, ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet",
                                  "data/test-00000-of-00001.parquet"])  # fmt: skip
    rows, origin = hub_cached_parquet_rows("org/data", "train")
    assert rows == 14 and origin.startswith("Parquet files in the local hub cache")
    assert hub_cached_parquet_rows("org/data", "test")[0] == 7
    record = dataset_record("org/data", None, tmp_path, split="train")
    assert record["examples"] == 14


def test_hub_cache_with_a_missing_shard_or_subset_folders(tmp_path: Path):
    write_hub_snapshot(tmp_path, ["data/train-00000-of-00003.parquet", "en/train/0000.parquet", "fr/train/0000.parquet"])
    assert hub_cached_parquet_rows("org/data", "train") is None  # one of three shards, plus subset folders
    assert hub_cached_parquet_rows("org/data", "train", "fr")[0] == 7
    assert hub_cached_parquet_rows("org/other", "train") is None
