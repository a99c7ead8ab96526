"""Send the guard's decision to the experiment trackers a run already uses.

The trainers' own reporting callbacks run before a user callback, so a value added to
the logs afterwards would miss them; instead the decision goes straight to the trackers
that are active in this process (MLflow, W&B). Nothing is imported that the run has not
imported itself.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from lora_lint.guard.decision import Decision

log = logging.getLogger("lora_lint.guard")


def tracker_metrics(decision: Decision) -> dict[str, Any]:
    """Flat metrics for a logger: numbers and short strings."""
    return {"lora_guard/exit_code": decision.exit_code, "lora_guard/verdict": decision.verdict,
            "lora_guard/symptom": decision.symptom or "none", "lora_guard/step": decision.step}  # fmt: skip


def report_to_trackers(decision: Decision) -> None:
    metrics = tracker_metrics(decision)
    mlflow = sys.modules.get("mlflow")
    try:
        if mlflow is not None and mlflow.active_run() is not None:
            mlflow.set_tags({k: str(v) for k, v in metrics.items()})
            mlflow.set_tag("lora_guard/message", decision.message[:5000])
    except Exception as exc:  # noqa: BLE001 - a tracker hiccup must not stop the run
        log.warning("lora-guard: could not report to MLflow: %s", exc)
    wandb = sys.modules.get("wandb")
    try:
        if wandb is not None and getattr(wandb, "run", None) is not None:
            wandb.run.summary.update({**metrics, "lora_guard/message": decision.message})
    except Exception as exc:  # noqa: BLE001
        log.warning("lora-guard: could not report to W&B: %s", exc)
