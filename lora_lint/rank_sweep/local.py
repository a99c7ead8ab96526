"""The local backend: trials one after another in this process (each on fresh base weights)."""

from __future__ import annotations

from typing import Any

from lora_lint.rank_sweep.plan import TrialPlan
from lora_lint.rank_sweep.progress import Progress
from lora_lint.rank_sweep.trial import TrialResult, TrialSettings, run_trial, skipped


def run_local(setup: Any, plans: list[TrialPlan], settings: TrialSettings, metric: Any, progress: Progress) -> list[TrialResult]:  # fmt: skip
    results = []
    for plan in plans:
        if plan.skip_reason:
            result = skipped(plan)
        else:
            result = run_trial(setup, plan, settings, metric=metric,
                               on_step=lambda step, total, loss, r=plan.r: progress.step(r, step, total, loss))  # fmt: skip
        progress.done(result)
        results.append(result)
    return results
