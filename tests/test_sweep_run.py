"""A whole sweep on a tiny model: the JSON contract, plots, locked config, MLflow read back, the API."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from lora_lint.cli import main
from tests.guard_models import single_thread

TINY_MODEL = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64, "max_position_embeddings": 64}  # fmt: skip
CONFIG = """\
# tiny sweep config: every comment must survive the lock
r: 8
lora_alpha: 16   # alpha = 2r
target_modules: [q_proj, v_proj]
base_model: tiny
sequence_len: 16
micro_batch_size: 8
learning_rate: 0.01
"""
TRIAL_KEYS = {"r", "lora_alpha", "status", "reason", "quality", "val_loss", "val_losses", "train_seconds", "steps",
              "peak_memory_bytes", "peak_memory_source", "trainable_params", "symptoms"}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Trials of a 32-wide model gain nothing from a second thread, and lose much when the cores are shared."""
    with single_thread():
        yield


def write_project(folder: Path) -> Path:
    (folder / "tiny").mkdir(parents=True)
    (folder / "tiny/config.json").write_text(json.dumps(TINY_MODEL))
    (folder / "train.yaml").write_text(CONFIG)
    return folder / "train.yaml"


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    """One CLI sweep (ranks 2 and 4, 12 steps) logged to a local MLflow store."""
    mlflow = pytest.importorskip("mlflow")
    folder = tmp_path_factory.mktemp("sweep")
    config = write_project(folder)
    mlflow.set_tracking_uri((folder / "mlruns").as_uri())
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 asks file stores to opt in
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["sweep", str(config), "--ranks", "2,4", "--steps", "12", "--time-budget", "1", "--tracker", "mlflow",
                     "--format", "json", "--output", str(folder / "out")])  # fmt: skip
    mlflow.set_tracking_uri(None)
    del os.environ["MLFLOW_ALLOW_FILE_STORE"]
    return code, json.loads(stdout.getvalue()), folder


def test_report_contract(swept: tuple[int, dict, Path]) -> None:
    code, report, folder = swept
    assert code == 0
    assert {"config", "base_model", "device", "backend", "ranks", "trials", "choice", "plots", "locked_config", "tracker"} <= set(report)  # fmt: skip
    assert (report["backend"], report["device"], report["ranks"]) == ("local", "cpu", [2, 4])
    for trial in report["trials"]:
        assert TRIAL_KEYS <= set(trial)
        assert trial["status"] == "ok" and trial["steps"] == 12
        assert trial["lora_alpha"] == 2 * trial["r"]  # alpha/r = 2 as written
        assert trial["val_losses"][0][0] == 0 and trial["val_losses"][-1][0] == 12
        assert math.isclose(trial["quality"], trial["base_metric"] - trial["val_loss"])
        assert trial["peak_memory_source"] == "estimated" and trial["peak_memory_bytes"] > 0
    assert [t["trainable_params"] for t in report["trials"]] == [2 * 112, 4 * 112]  # r x (32 + 32) for q, r x (32 + 16) for v
    choice = report["choice"]
    assert choice["r"] in (2, 4) and choice["rule"] == {"quality_target": 0.95, "time_budget": 1.0}
    assert json.loads((folder / "out/sweep.json").read_text())["choice"]["r"] == choice["r"]


def test_plots_and_locked_config(swept: tuple[int, dict, Path]) -> None:
    _, report, folder = swept
    assert len(report["plots"]) == 2
    for plot in report["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    locked = Path(report["locked_config"]).read_text()
    r = report["choice"]["r"]
    assert locked == CONFIG.replace("r: 8", f"r: {r}").replace("lora_alpha: 16", f"lora_alpha: {2 * r}")
    assert not [p for p in (folder / "out").iterdir() if p.name.startswith(".")]  # no staging left behind


def test_mlflow_holds_every_trial(swept: tuple[int, dict, Path]) -> None:
    from mlflow.tracking import MlflowClient

    _, report, folder = swept
    client = MlflowClient(tracking_uri=(folder / "mlruns").as_uri())
    parent = client.get_run(report["tracker"]["run_id"])
    assert parent.data.metrics["chosen_r"] == report["choice"]["r"]
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_rank = {int(run.data.params["r"]): run for run in children}
    assert sorted(by_rank) == [2, 4]
    for trial in report["trials"]:
        run = by_rank[trial["r"]]
        assert run.data.params["lora_alpha"] == str(trial["lora_alpha"])
        assert run.data.params["base_model"] == "tiny" and run.data.params["targets"] == "q_proj,v_proj"
        assert run.data.params["data_fraction"] == "0.1"
        assert math.isclose(run.data.metrics["quality"], trial["quality"], rel_tol=1e-6)
        assert math.isclose(run.data.metrics["train_seconds"], trial["train_seconds"], rel_tol=1e-6)
        assert run.data.metrics["peak_memory_bytes"] == trial["peak_memory_bytes"]
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [(m.step, round(m.value, 5)) for m in history] == [(s, round(v, 5)) for s, v in trial["val_losses"]]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.json", "sweep-quality.png", "sweep-time.png", "locked"} <= artifacts


def nan_at_rank_4(model, tokenizer, eval_data) -> float:
    """A user metric (higher is better) that breaks for one rank: that trial fails, the sweep goes on."""
    import torch

    if model.peft_config["default"].r == 4:
        return float("nan")
    ids = torch.tensor([seq[:16] for seq in eval_data if len(seq) >= 16])
    return -float(model(input_ids=ids, labels=ids).loss)


def test_api_with_a_user_metric_and_a_failed_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lora_lint

    monkeypatch.chdir(tmp_path)
    config = write_project(tmp_path)
    result = lora_lint.sweep(config, ranks=(2, 4), steps=8, time_budget=1.0, metric=nan_at_rank_4)
    by_rank = {t.r: t for t in result.trials}
    assert by_rank[4].status == "failed" and "no finite quality" in by_rank[4].reason
    assert by_rank[2].status == "ok" and by_rank[2].metric_name == "nan_at_rank_4"
    assert by_rank[2].quality == pytest.approx(by_rank[2].metric - by_rank[2].base_metric)
    assert result.r == 2 and result.locked_config is None  # no output folder: nothing written
