"""``lora-lint memory``: breakdown table, JSON, sweep grid and plot."""

from __future__ import annotations

import json

import pytest

from lora_lint.cli import main

CONFIG = """\
base_model: meta-llama/Llama-2-7b-hf
r: 16
lora_alpha: 32
target_modules: [q_proj, v_proj]
torch_dtype: bfloat16
sequence_len: 2048
micro_batch_size: 2
gradient_checkpointing: true
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lora.yaml"
    path.write_text(CONFIG)
    return path


def test_text_breakdown_and_sweep(config, capsys):
    assert main(["memory", str(config), "--gpu", "RTX 4090", "--sweep", "seq=512,4096", "batch=1,8"]) == 0
    out = capsys.readouterr().out
    assert "predicted peak" in out and "base_weights" in out and "RTX 4090" in out
    assert "seq 4096" in out and "batch 8" in out and "!" in out  # 4096 x 8 does not fit a 4090


def test_json_output(config, capsys):
    assert main(["memory", str(config), "--format", "json", "--sweep", "seq=1024,2048"]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert report["peak_memory_bytes"] == sum(report["memory_breakdown"].values())
    assert [cell["sequence_len"] for cell in report["sweep"]] == [1024, 2048]
    assert report["sweep"][1]["peak_memory_bytes"] == report["peak_memory_bytes"]


def test_plot_writes_a_png(config, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "sweep.png"
    assert main(["memory", str(config), "--gpu", "A100-40GB", "--sweep", "seq=512,1024", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_sweep_is_a_usage_error(config, capsys):
    assert main(["memory", str(config), "--sweep", "rank=8,16"]) == 2
    assert "--sweep takes" in capsys.readouterr().err


def test_unknown_model_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "lora.yaml"
    path.write_text("base_model: acme/private\nr: 8\n")
    assert main(["memory", str(path)]) == 2
    assert "cannot estimate" in capsys.readouterr().out
