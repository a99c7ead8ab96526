"""Logging a sweep to an experiment tracker: MLflow, TensorBoard or Weights & Biases.

Each tracker is an optional extra, imported only when chosen. What is logged is the same
everywhere: per trial its parameters (r, lora_alpha, targets, base model, data fraction)
and metrics (held-out loss per step, quality, training seconds, peak memory), and for the
sweep the choice and its artifacts (plots, JSON report, locked config).

- MLflow: a parent run with a nested run per trial, to ``MLFLOW_TRACKING_URI`` or MLflow's
  own default store; the experiment is ``MLFLOW_EXPERIMENT_NAME`` or "lora-lint sweep".
- TensorBoard: event files under ``<output>/tensorboard``, one folder per trial.
- W&B: one run per trial in a group, offline unless ``WANDB_MODE`` says otherwise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from lora_lint.rank_sweep.options import SweepInputError

PACKAGES = {"mlflow": "mlflow", "tensorboard": "tensorboard", "wandb": "wandb"}
EXPERIMENT = "lora-lint sweep"


def ensure_tracker(kind: str) -> None:
    """A usage error, before any training, when the tracker's package is not installed."""
    import importlib.util

    if importlib.util.find_spec(PACKAGES[kind]) is None:
        raise SweepInputError(f"--tracker {kind} needs {PACKAGES[kind]}: pip install 'lora-lint[{kind}]'")


def log_sweep(kind: str, result: Any, options: Any, staging: Path, output: Path) -> dict[str, Any]:
    """Log ``result`` (artifacts from ``staging``, which becomes ``output``); returns {kind, run_id, uri}."""
    logger = {"mlflow": _mlflow, "tensorboard": _tensorboard, "wandb": _wandb}[kind]
    return {"kind": kind, **logger(result, options, staging, output)}


def trial_params(result: Any, trial: Any, options: Any) -> dict[str, Any]:
    return {
        "r": trial.r,
        "lora_alpha": trial.lora_alpha,
        "base_model": result.base_model,
        "targets": result.targets or "",
        "data_fraction": options.data_fraction,
        "status": trial.status,
    }


def trial_metrics(trial: Any) -> dict[str, float]:
    values = {
        "quality": trial.quality,
        "train_seconds": trial.train_seconds,
        "peak_memory_bytes": trial.peak_memory_bytes,
        "final_val_loss": trial.val_loss,
        "trainable_params": trial.trainable_params,
    }
    return {name: float(value) for name, value in values.items() if value is not None}


def _artifacts(staging: Path) -> list[Path]:
    return sorted(p for p in staging.rglob("*") if p.is_file() and p.parts[len(staging.parts)] not in ("tensorboard", "wandb"))  # fmt: skip


def _mlflow(result: Any, options: Any, staging: Path, output: Path) -> dict[str, Any]:
    import mlflow

    if not (os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID")):
        mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"sweep {Path(result.config).name}") as parent:
        sweep_params = {
            "config": result.config,
            "base_model": result.base_model,
            "ranks": ",".join(map(str, result.ranks)),
            "data_fraction": options.data_fraction,
            "quality_target": options.quality_target,
            "time_budget": options.time_budget,
            "backend": result.backend,
            "device": result.device,
        }
        mlflow.log_params(sweep_params)
        for trial in result.trials:
            with mlflow.start_run(run_name=f"r={trial.r}", nested=True):
                mlflow.log_params(trial_params(result, trial, options))
                mlflow.log_metrics(trial_metrics(trial))
                for step, loss in trial.val_losses:
                    mlflow.log_metric("val_loss", loss, step=int(step))
        if result.choice.r is not None:
            mlflow.log_metric("chosen_r", result.choice.r)
        mlflow.set_tag("choice", result.choice.reason)
        for path in _artifacts(staging):
            relative = path.parent.relative_to(staging)
            mlflow.log_artifact(str(path), artifact_path=None if str(relative) == "." else str(relative))
        return {"run_id": parent.info.run_id, "uri": mlflow.get_tracking_uri()}


def _tensorboard(result: Any, options: Any, staging: Path, output: Path) -> dict[str, Any]:
    from torch.utils.tensorboard import SummaryWriter

    run_id = time.strftime("sweep-%Y%m%d-%H%M%S")
    for trial in result.trials:
        with SummaryWriter(str(staging / "tensorboard" / run_id / f"r={trial.r}")) as writer:
            for step, loss in trial.val_losses:
                writer.add_scalar("val_loss", loss, int(step))
            for name, value in trial_metrics(trial).items():
                writer.add_scalar(f"sweep/{name}", value, trial.r)
            writer.add_text("params", str(trial_params(result, trial, options)))
    with SummaryWriter(str(staging / "tensorboard" / run_id)) as writer:
        writer.add_text("choice", result.choice.reason)
    return {"run_id": run_id, "uri": str(output / "tensorboard")}


def _wandb(result: Any, options: Any, staging: Path, output: Path) -> dict[str, Any]:
    import wandb

    mode = os.environ.get("WANDB_MODE", "offline")
    group = time.strftime("sweep-%Y%m%d-%H%M%S")
    for trial in result.trials:
        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "lora-lint-sweep"), group=group, name=f"r={trial.r}",
                         mode=mode, dir=str(staging), config=trial_params(result, trial, options), reinit="create_new")  # fmt: skip
        for step, loss in trial.val_losses:
            run.log({"val_loss": loss}, step=int(step))
        run.summary.update({**trial_metrics(trial), "chosen": trial.r == result.choice.r})
        run.finish()
    return {"run_id": group, "uri": str(output / "wandb") if mode == "offline" else mode}
