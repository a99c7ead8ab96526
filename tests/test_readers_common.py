"""Shared reader mechanics: type checks, near misses, dataset sizes and format detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_lint.document import InputError, load_document
from lora_lint.lora_setup import UNKNOWN, KNOWN_SETTINGS
from lora_lint.readers import detect_format, read_file
from lora_lint.readers.common import SETTING_TYPES, checked, closest
from lora_lint.readers.schemas import bundled
from lora_lint.readers.dataset_size import count_examples, dataset_record, parquet_row_count, total_examples

DATA = Path(__file__).parent / "data"


def test_every_normalized_setting_has_a_type() -> None:
    assert set(SETTING_TYPES) == set(KNOWN_SETTINGS) - {"datasets", "val_datasets"}


@pytest.mark.parametrize(
    ("value", "expected", "ok", "kept"),
    [
        (16, "int", True, 16),
        ("16", "int", False, 16),
        (16.0, "int", False, 16),
        (16.5, "int", False, UNKNOWN),
        (True, "int", False, UNKNOWN),
        ("0.05", "number", False, 0.05),
        ("2e-4", "number", False, 2e-4),
        ("abc", "number", False, UNKNOWN),
        (["none"], "str", False, UNKNOWN),
        ("q_proj", "str|list[str]", True, "q_proj"),
        (("q_proj", "v_proj"), "str|list[str]", True, ["q_proj", "v_proj"]),
        (["q_proj", 3], "str|list[str]", False, UNKNOWN),
        ("yes", "bool", False, True),
        ({"a": 1}, "dict", True, {"a": 1}),
    ],
)
def test_checked(value: object, expected: str, ok: bool, kept: object) -> None:
    assert checked(value, expected) == (ok, kept)


def test_closest_finds_near_misses_only() -> None:
    known = bundled("axolotl").known
    assert closest("lora_alpah", known) == "lora_alpha"
    assert closest("context_parapllel_size", known) == "context_parallel_size"
    assert closest("zzzz", known) is None


def test_key_files_hold_the_framework_option_names() -> None:
    assert {"lora_r", "lora_alpha", "lora_target_linear", "adapter", "sequence_len"} <= bundled("axolotl").known
    assert {"lora_rank", "lora_target", "cutoff_len", "per_device_train_batch_size", "overwrite_output_dir"} <= bundled(
        "llamafactory"
    ).known
    assert {"r", "lora_alpha", "target_modules", "peft_type", "base_model_name_or_path"} <= bundled("peft").known
    assert "lora_r" not in bundled("llamafactory").known and "lora_rank" not in bundled("axolotl").known


def test_count_examples_by_file_type(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n\n{"x": 2}\n{"x": 3}')
    (tmp_path / "b.json").write_text(json.dumps([{"x": i} for i in range(5)]))
    (tmp_path / "c.json").write_text('{"x": 1}\n{"x": 2}\n')  # JSON Lines under a .json name
    (tmp_path / "d.json").write_text('{"data": [1, 2]}')
    (tmp_path / "e.csv").write_text('text,label\n"two\nlines",1\nplain,0\n')
    (tmp_path / "f.txt").write_text("one\ntwo\n\nthree\n")
    (tmp_path / "g.arrow").write_bytes(b"\x00" * 10)
    counts = {name: count_examples(tmp_path / name) for name in ("a.jsonl", "b.json", "c.json", "d.json", "e.csv", "f.txt", "g.arrow")}
    assert counts == {"a.jsonl": 3, "b.json": 5, "c.json": 2, "d.json": None, "e.csv": 2, "f.txt": 3, "g.arrow": None}


def test_parquet_row_count_from_footer(tmp_path: Path) -> None:
    assert parquet_row_count(DATA / "rows_7.parquet") == 7
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 20 + b"PAR1")
    assert count_examples(broken) is None
    truncated = tmp_path / "truncated.parquet"
    raw = (DATA / "rows_7.parquet").read_bytes()
    truncated.write_bytes(raw[:40] + raw[-8:])
    assert count_examples(truncated) is None


def test_parquet_row_count_matches_pyarrow(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    for rows in (0, 1, 1000):
        path = tmp_path / f"{rows}.parquet"
        pq.write_table(pa.table({"text": [str(i) for i in range(rows)], "n": list(range(rows))}), path)
        assert parquet_row_count(path) == rows


def test_dataset_record_resolves_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n{}\n")
    record = dataset_record("train.jsonl", None, tmp_path, type="alpaca")
    assert record["examples"] == 2 and record["files"] == [str(tmp_path / "train.jsonl")] and record["type"] == "alpaca"
    hub = dataset_record("tatsu-lab/alpaca", None, tmp_path)
    assert hub["examples"] is None and hub["files"] == []
    assert total_examples([record, record], max_samples=1) == 2
    assert total_examples([record, hub]) is None


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("ci.yml", "name: CI\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n", None),
        ("docker-compose.yml", "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n", None),
        ("k8s.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", None),
        ("train.yaml", "output_dir: out\nlearning_rate: 0.001\noptimizer: adam\n", None),
        ("list.yaml", "- a\n- b\n", None),
        ("config.json", '{"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "torch_dtype": "bfloat16"}', None),
        ("dataset_info.json", '{"alpaca": {"file_name": "alpaca.json"}}', None),
        ("ax.yml", "adapter: lora\nlora_r: 8\n", "axolotl"),
        ("lf.yaml", "model_name_or_path: x\nfinetuning_type: lora\n", "llamafactory"),
        ("lf1.yaml", "model: x\npeft_config: {name: lora}\n", "llamafactory"),
        ("lc.yaml", "r: 8\nlora_alpha: 16\n", "lora-config"),
        ("tt.yaml", "model:\n  _component_: torchtune.models.llama3_2.lora_llama3_2_1b\n", "torchtune"),
        ("adapter_config.json", '{"peft_type": "LORA", "r": 8}', "peft"),
        ("adapter_config.json", '{"peft_type": "IA3"}', None),
    ],
)
def test_detect_format(name: str, text: str, expected: str | None) -> None:
    assert detect_format(name, load_document(name, text.encode()).data) == expected


def test_non_lora_files_give_no_setups() -> None:
    assert read_file("ci.yml", b"on: push\njobs: {}\n") == []
    assert read_file("script.py", b"print('hello')\n") == []


def test_unreadable_input_raises_input_error() -> None:
    with pytest.raises(InputError):
        read_file("x.yml", b"a: [1, 2\n")
    with pytest.raises(InputError):
        read_file("x.json", b"\x00\x01binary")
