"""The Ray backend: each trial is a Ray task (one GPU each on a cluster), progress streamed back.

``ray.init(address="auto")`` joins the cluster this machine belongs to (``RAY_ADDRESS`` set,
or ``ray start`` run here); otherwise a local Ray starts with this machine's CPUs. A Ray
session that the caller already started is used as it is. Workers must be able to import
lora-lint with its ``[torch]`` extra (install it in the cluster's image, or pass a
``runtime_env``) and read the config's base model and data at the same paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lora_lint.rank_sweep.options import SweepInputError
from lora_lint.rank_sweep.plan import TrialPlan
from lora_lint.rank_sweep.progress import Progress
from lora_lint.rank_sweep.trial import TrialResult, TrialSettings, skipped

PROGRESS_UPDATES = 20  # per trial: a queue message per step would cost more than the step on a tiny model
POLL_SECONDS = 0.2


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SweepInputError("--backend ray needs Ray: pip install 'lora-lint[ray]'") from None
    return ray


def ensure_ray() -> None:
    """Fail early, before any output is written, when Ray is not installed."""
    _ray()


def run_ray(setup: Any, plans: list[TrialPlan], settings: TrialSettings, metric: Any, progress: Progress) -> list[TrialResult]:  # fmt: skip
    ray = _ray()
    from ray.util.queue import Empty, Queue

    if not ray.is_initialized():
        cluster = os.environ.get("RAY_ADDRESS") or Path("/tmp/ray/ray_current_cluster").exists()
        ray.init(address="auto" if cluster else None, log_to_driver=False, include_dashboard=False)
    resources = {"num_gpus": 1} if settings.device == "cuda" else {"num_cpus": 1}
    remote_trial = ray.remote(max_retries=0, **resources)(_trial_task)
    updates = Queue()
    results: dict[int, TrialResult] = {}
    pending: dict[Any, int] = {}
    for plan in plans:
        if plan.skip_reason:
            results[plan.r] = skipped(plan)
            progress.done(results[plan.r])
        else:
            pending[remote_trial.remote(setup, plan, settings, metric, updates)] = plan.r
    try:
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            _drain(updates, progress, Empty)
            for ref in finished:
                r = pending.pop(ref)
                results[r] = _result(ray, ref, r, plans)
                progress.done(results[r])
    finally:
        ray.kill(updates.actor)
    return [results[plan.r] for plan in plans]


def _trial_task(setup: Any, plan: TrialPlan, settings: TrialSettings, metric: Any, updates: Any) -> TrialResult:
    """Runs on a Ray worker: one trial, reporting about every twentieth step."""
    from lora_lint.rank_sweep.trial import run_trial

    def on_step(step: int, total: int, loss: float) -> None:
        if step % max(1, total // PROGRESS_UPDATES) == 0 or step + 1 == total:
            updates.put_nowait((plan.r, step, total, loss))

    return run_trial(setup, plan, settings, metric=metric, on_step=on_step)


def _drain(updates: Any, progress: Progress, empty: type[Exception]) -> None:
    while True:
        try:
            r, step, total, loss = updates.get_nowait()
        except empty:
            return
        progress.step(r, step, total, loss)


def _result(ray: Any, ref: Any, r: int, plans: list[TrialPlan]) -> TrialResult:
    """The task's result, or a failed trial when the worker itself died."""
    plan = next(p for p in plans if p.r == r)
    try:
        return ray.get(ref)
    except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError) as exc:
        return TrialResult(r, plan.lora_alpha, "failed", f"the Ray task died: {str(exc).splitlines()[0]}")
