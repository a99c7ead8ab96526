"""A whole sweep: plan, run the trials on a backend, choose, and write the outputs.

Outputs go to a fresh temporary folder beside ``output`` and are moved into place only
when everything succeeded, so a sweep that stops early leaves nothing half-written.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_lint.rank_sweep.choice import Candidate, Choice, choose_rank
from lora_lint.rank_sweep.options import SweepInputError, SweepOptions
from lora_lint.rank_sweep.plan import SweepPlan, plan_sweep
from lora_lint.rank_sweep.progress import Progress, Silent
from lora_lint.rank_sweep.trial import TrialResult

REPORT_NAME = "sweep.json"


@dataclass
class SweepResult:
    """What :func:`lora_lint.sweep` returns: the trials, the choice, and where the outputs went."""

    config: str
    base_model: str | None
    device: str
    backend: str
    ranks: list[int]
    trials: list[TrialResult]
    choice: Choice
    chosen_alpha: float | int | None
    plots: list[str] = field(default_factory=list)
    locked_config: str | None = None
    lock_changes: list[str] = field(default_factory=list)
    lock_instructions: list[str] = field(default_factory=list)
    tracker: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    targets: str | None = None

    @property
    def r(self) -> int | None:
        """The chosen rank (None when no rank met the rule)."""
        return self.choice.r

    def as_dict(self) -> dict[str, Any]:
        """The JSON report (the contract of ``lora-lint sweep --format json``)."""
        return {
            "config": self.config,
            "base_model": self.base_model,
            "device": self.device,
            "backend": self.backend,
            "ranks": self.ranks,
            "trials": [trial.as_dict() for trial in self.trials],
            "choice": {"lora_alpha": self.chosen_alpha, **self.choice.as_dict()},
            "plots": self.plots,
            "locked_config": self.locked_config,
            "lock_changes": self.lock_changes,
            "lock_instructions": self.lock_instructions,
            "tracker": self.tracker,
            "notes": self.notes,
        }


def run_sweep(
    config: str | Path,
    options: SweepOptions,
    *,
    output: str | Path | None = None,
    settings: str | Path | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Run a sweep; raises :class:`SweepInputError` for anything that stops it before training."""
    options = options.checked()
    plan = plan_sweep(config, options, settings=settings)
    _check_extras(options)
    device = _device(options.device)
    trial_settings = _trial_settings(plan, options, device)
    progress = progress or Silent()
    try:
        trials = _backend(options.backend)(_anchored(plan.setup), plan.trials, trial_settings, options.metric, progress)
    finally:
        progress.close()
    choice = choose_rank(
        [Candidate(t.r, t.quality, t.train_seconds) for t in trials if t.status == "ok"],
        options.quality_target,
        options.time_budget,
    )
    chosen = choice.r if choice.r is not None else choice.recommendation
    alpha = next((t.lora_alpha for t in trials if t.r == chosen), None)
    notes = plan.notes + ([trial_settings.schedule.note] if trial_settings.schedule.note else [])
    notes += _convergence_notes(trials)
    result = SweepResult(str(config), plan.base_model, device, options.backend, list(options.ranks), trials, choice,
                         alpha if choice.r is not None else None, notes=notes, targets=_targets(plan.setup))  # fmt: skip
    if output is not None:
        _write_outputs(result, plan, options, Path(output))
    return result


def _anchored(setup: Any) -> Any:
    """The setup with an absolute path: a Ray worker's working directory is not ours."""
    anchored = copy.copy(setup)
    anchored.path = str(Path(setup.path).resolve())
    return anchored


def _targets(setup: Any) -> str | None:
    targets = setup.get("target_modules")
    written = ",".join(targets) if isinstance(targets, list) else targets
    return "all-linear" if setup.get("target_linear") is True and not written else written


def _check_extras(options: SweepOptions) -> None:
    """Missing optional packages are usage errors, found before any training."""
    if options.backend == "ray":
        from lora_lint.rank_sweep.ray_backend import ensure_ray

        ensure_ray()
    if options.tracker != "none":
        from lora_lint.rank_sweep.trackers import ensure_tracker

        ensure_tracker(options.tracker)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SweepInputError("lora-lint sweep needs torch: pip install 'lora-lint[torch]'") from None


def _device(requested: str) -> str:
    from lora_lint.runtime.check import resolve_device

    device = resolve_device(requested)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SweepInputError("--device cuda: torch sees no CUDA device")
    return device


def _trial_settings(plan: SweepPlan, options: SweepOptions, device: str) -> Any:
    from lora_lint.rank_sweep.schedule import read_schedule
    from lora_lint.rank_sweep.trial import TrialSettings

    return TrialSettings(
        data_fraction=options.data_fraction,
        epochs=options.epochs,
        steps=options.steps,
        device=device,
        seed=options.seed,
        trust_remote_code=options.trust_remote_code,
        user_models=dict(plan.project.models),
        schedule=read_schedule(plan.path),
    )


def _backend(name: str) -> Any:
    if name == "ray":
        from lora_lint.rank_sweep.ray_backend import run_ray

        return run_ray
    from lora_lint.rank_sweep.local import run_local

    return run_local


def _convergence_notes(trials: list[TrialResult]) -> list[str]:
    still_learning = [t.r for t in trials if t.status == "ok" and t.converged is False]
    if not still_learning:
        return []
    ranks = ", ".join(map(str, still_learning))
    note = (
        f"r {ranks} still improved in their last evaluations: short trials favour ranks that learn fast over "
        "ranks that end better; more --steps or --epochs make the comparison fairer"
    )
    return [note]


def _write_outputs(result: SweepResult, plan: SweepPlan, options: SweepOptions, output: Path) -> None:
    """Report, plots, locked config and tracker, written to a staging folder and then moved into ``output``."""
    from lora_lint.rank_sweep.lock import lock_config
    from lora_lint.rank_sweep.plots import plot_sweep
    from lora_lint.rank_sweep.report import write_report

    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".lora-lint-sweep-", dir=output))
    try:
        names = plot_sweep(result, staging)
        chosen_r = result.choice.r
        if chosen_r is not None:
            locked = lock_config(plan, chosen_r, result.chosen_alpha, staging)
            result.lock_changes, result.lock_instructions = locked.changes, locked.instructions
            result.locked_config = str(output / locked.path.relative_to(staging)) if locked.path else None
        result.plots = [str(output / name) for name in names]
        write_report(result, staging / REPORT_NAME)
        if options.tracker != "none":
            from lora_lint.rank_sweep.trackers import log_sweep

            try:
                result.tracker = log_sweep(options.tracker, result, options, staging, output)
            except Exception as exc:  # noqa: BLE001 - a tracker's own error must not cost the sweep's results
                result.notes.append(f"the {options.tracker} tracker failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")  # fmt: skip
            write_report(result, staging / REPORT_NAME)  # the logged copy cannot name its own run
        for item in staging.iterdir():
            target = output / item.name
            if target.is_dir():
                shutil.rmtree(target)
            item.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

