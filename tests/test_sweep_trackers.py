"""TensorBoard and W&B trackers on a hand-made sweep result: what they write can be read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_lint.rank_sweep.choice import Candidate, choose_rank
from lora_lint.rank_sweep.options import SweepOptions
from lora_lint.rank_sweep.run import SweepResult
from lora_lint.rank_sweep.trackers import log_sweep
from lora_lint.rank_sweep.trial import TrialResult

CURVES = {4: [[0, 3.0], [5, 2.5], [10, 2.2]], 8: [[0, 3.0], [5, 2.3], [10, 2.0]]}


def hand_made_result() -> SweepResult:
    trials = [
        TrialResult(r, 2 * r, "ok", quality=3.0 - curve[-1][1], val_loss=curve[-1][1], val_losses=curve,
                    train_seconds=float(r), steps=10, peak_memory_bytes=1000 * r, trainable_params=100 * r)  # fmt: skip
        for r, curve in CURVES.items()
    ]
    choice = choose_rank([Candidate(t.r, t.quality, t.train_seconds) for t in trials])
    return SweepResult("train.yaml", "tiny", "cpu", "local", [4, 8], trials, choice, 16, targets="q_proj,v_proj")


def test_tensorboard_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("torch")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = log_sweep("tensorboard", hand_made_result(), SweepOptions(), tmp_path, tmp_path)
    assert logged["kind"] == "tensorboard" and logged["uri"] == str(tmp_path / "tensorboard")
    for r, curve in CURVES.items():
        events = EventAccumulator(str(tmp_path / "tensorboard" / logged["run_id"] / f"r={r}")).Reload()
        assert [(e.step, round(e.value, 5)) for e in events.Scalars("val_loss")] == [(s, v) for s, v in curve]
        assert [e.step for e in events.Scalars("sweep/quality")] == [r]


def test_wandb_logs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged = log_sweep("wandb", hand_made_result(), SweepOptions(), tmp_path, tmp_path)
    assert logged["kind"] == "wandb" and logged["uri"] == str(tmp_path / "wandb")
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one offline run per trial, nothing sent anywhere
    assert all(list(run.glob("*.wandb")) for run in runs)
