"""The guard's decisions, shared by every trainer integration and the plain-loop API.

A :class:`Guard` is fed what a training run already produces (logged training loss and
gradient norm, evaluation loss, and in the first steps the adapter's gradients) and
applies the runtime detectors to it as the run goes:

- from the first steps: a dead adapter or a non-finite loss, gradient or adapter weight
  stops the run at once;
- inside the check window (by default 10-20 % of the planned steps): a flat loss stops
  the run and writes the rollback config (the article's rollback plan: double r, raise
  alpha with it, restart from the base model, never resume);
- at every evaluation: overfitting warns and writes a suggested config, or stops.

Every decision goes to ``lora-guard.json`` in the output directory. The guard must never
break the run it watches: its own errors are logged and training goes on.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from lora_lint.guard.decision import GUARD_FILE, Decision, write_decision
from lora_lint.runtime.record import RunRecord

log = logging.getLogger("lora_lint.guard")

WATCH_STEPS = 3
"""Optimizer steps whose gradients are inspected: lora_A's first non-zero gradient arrives at step 1."""
MIN_LOGGED_LOSSES = 6
"""The plateau test needs a trend over at least this many logged losses inside the window."""
OVERFIT_ACTIONS = ("warn", "stop")


class Guard:
    """Watches one training run; ``observe``/``observe_eval`` return True when the run should stop.

    ``config``: the user's LoRA config (any format the linter reads), the source of the
    rollback; ``window``: the check window as fractions of ``planned_steps``;
    ``on_overfit``: "warn" (write the suggested config, keep training) or "stop".
    """

    def __init__(
        self,
        config: str | Path | None = None,
        output_dir: str | Path | None = None,
        *,
        planned_steps: int | None = None,
        window: tuple[float, float] = (0.1, 0.2),
        on_overfit: str = "warn",
        learning_rate: float | None = None,
    ) -> None:
        if on_overfit not in OVERFIT_ACTIONS:
            raise ValueError(f"on_overfit must be one of {', '.join(OVERFIT_ACTIONS)}, not {on_overfit!r}")
        start, end = window
        if not 0 <= start < end <= 1:
            raise ValueError(f"window must be two fractions 0 <= start < end <= 1 of the planned steps, not {window!r}")
        self.config = Path(config) if config is not None else None
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.planned_steps = planned_steps
        self.window = (float(start), float(end))
        self.on_overfit = on_overfit
        self.learning_rate = learning_rate
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self.evaluations: list[tuple[int, float]] = []
        self.decision: Decision | None = None
        self.warning: Decision | None = None  # an overfit warning (the run goes on)
        self.notes: list[str] = []
        self.memory: dict[str, Any] | None = None
        self.plot: str | None = None
        self._watch: Any = None
        self._window_checked = False
        self._last_step = 0

    # -- what the run feeds in ------------------------------------------------------------

    @property
    def should_stop(self) -> bool:
        return self.decision is not None

    def observe(self, step: int, loss: float, grad_norm: float | None = None, *, model: Any = None) -> bool:
        """One logged training loss (and gradient norm) at optimizer step ``step``.

        In a plain loop, call it after ``loss.backward()`` and before ``optimizer.step()``
        with ``model=`` for the first steps: then the adapter's gradients are checked too.
        """
        try:
            if model is not None:
                self.watch_gradients(model, step)
            self._observe(step, float(loss), None if grad_norm is None else float(grad_norm))
        except Exception as exc:  # noqa: BLE001 - the guard must never break the run it watches
            log.error("lora-guard: internal error, the run goes on unwatched by this check: %s: %s", type(exc).__name__, exc)  # fmt: skip
        return self.should_stop

    def observe_eval(self, step: int, eval_loss: float) -> bool:
        """One evaluation loss at optimizer step ``step``."""
        try:
            self._observe_eval(step, float(eval_loss))
        except Exception as exc:  # noqa: BLE001
            log.error("lora-guard: internal error in the overfit check: %s: %s", type(exc).__name__, exc)
        return self.should_stop

    def watch_gradients(self, model: Any, step: int) -> bool:
        """Inspect the adapter's gradients (after backward, before the optimizer step) in the first steps."""
        try:
            self._watch_gradients(model, step)
        except Exception as exc:  # noqa: BLE001
            log.error("lora-guard: internal error in the gradient check: %s: %s", type(exc).__name__, exc)
        return self.should_stop

    def check_adapter_weights(self, model: Any, step: int) -> bool:
        """Non-finite adapter weights: what a NaN loss leaves behind even when the logged loss looks finite."""
        try:
            bad = _non_finite_adapter_tensors(model)
            if bad and self.decision is None:
                self._stop(Decision.stop(
                    "divergence", step,
                    f"{len(bad)} adapter tensor(s) hold NaN or inf at step {step} ({', '.join(bad[:3])}): the run "
                    "diverged even if the logged loss looks finite (the trainer filters NaN losses out of its "
                    "average); lower the learning rate, check fp16 overflow, add gradient clipping",
                    {"non_finite_tensors": bad},
                ))  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            log.error("lora-guard: internal error in the adapter check: %s: %s", type(exc).__name__, exc)
        return self.should_stop

    def finish(self, *, measured_peak_bytes: int | None = None) -> Decision:
        """The run ended (or was stopped): write the final ``lora-guard.json`` and plot."""
        try:
            if measured_peak_bytes is not None:
                self.memory = {"measured_peak_bytes": measured_peak_bytes,
                               "predicted_peak_bytes": _predicted_peak(self.config)}  # fmt: skip
            self._write(plot=True)
        except Exception as exc:  # noqa: BLE001
            log.error("lora-guard: could not finish its report: %s: %s", type(exc).__name__, exc)
        return self.verdict()

    def verdict(self) -> Decision:
        if self.decision is not None:
            return self.decision
        if self.warning is not None:
            return self.warning
        no_eval = "" if self.evaluations else " (no evaluation data: judged on the training loss only)"
        return Decision.clean(self._last_step, f"the run showed no symptom{no_eval}")

    # -- decisions --------------------------------------------------------------------------

    def _observe(self, step: int, loss: float, grad_norm: float | None) -> None:
        if self.decision is not None:
            return
        self._last_step = max(self._last_step, step)
        self.steps.append(step)
        self.losses.append(loss)
        self.grad_norms.append(grad_norm if grad_norm is not None else 0.0)
        from lora_lint.runtime.detectors import divergence

        symptom = divergence(self._record())
        if symptom is not None:
            self._stop(Decision.stop("divergence", step, symptom.message, symptom.evidence))
            return
        self._check_window(step)

    def _check_window(self, step: int) -> None:
        if self._window_checked or not self.planned_steps:
            return
        start, end = (fraction * self.planned_steps for fraction in self.window)
        if step < start:
            return
        last_chance = step >= end
        inside = [loss for s, loss in zip(self.steps, self.losses, strict=True) if s <= end]
        if len(inside) < MIN_LOGGED_LOSSES:
            if last_chance:
                self._window_checked = True
                self._note(f"the plateau test needs {MIN_LOGGED_LOSSES} logged losses by step {int(end)} and got "
                           f"{len(inside)}: log more often (logging_steps) for it to run")  # fmt: skip
            return
        from lora_lint.runtime.detectors import plateau

        symptom = plateau(self._record(), min_steps=MIN_LOGGED_LOSSES, edge=max(1, min(5, len(inside) // 4)))
        if last_chance:
            self._window_checked = True
        if symptom is None:
            return
        if not self.evaluations:
            symptom.evidence["basis"] = "training loss only (no evaluation data)"
        from lora_lint.guard.rollback import write_rollback

        rollback, problem = write_rollback(self.config, self._rollback_dir())
        message = (f"{symptom.message}. Stopped inside the check window ({self.window[0]:.0%}-{self.window[1]:.0%} "
                   "of the planned steps): restart from the base model with the rollback config, from epoch 0, "
                   "never from this run's checkpoint")  # fmt: skip
        if problem:
            message += f" ({problem})"
        self._stop(Decision.stop("plateau", step, message, symptom.evidence, rollback))

    def _observe_eval(self, step: int, eval_loss: float) -> None:
        if self.decision is not None:
            return
        self.evaluations.append((step, eval_loss))
        if not math.isfinite(eval_loss):
            self._stop(Decision.stop("divergence", step, f"evaluation loss is {eval_loss} at step {step}: the run "
                                     "diverged; lower the learning rate", {"eval_loss": eval_loss}))  # fmt: skip
            return
        if self.warning is not None:
            return
        from lora_lint.runtime.detectors import overfit

        symptom = overfit(self._record())
        if symptom is None:
            return
        from lora_lint.guard.rollback import write_overfit_suggestion

        suggestion, problem = write_overfit_suggestion(self.config, self._rollback_dir())
        message = symptom.message + (f" ({problem})" if problem else "")
        if self.on_overfit == "stop":
            self._stop(Decision.stop("overfit", step, message, symptom.evidence, suggestion))
        else:
            self.warning = Decision.warn("overfit", step, message, symptom.evidence, suggestion)
            log.warning("lora-guard: %s", message)
            self._write(plot=False)

    def _watch_gradients(self, model: Any, step: int) -> None:
        if self.decision is not None or step >= WATCH_STEPS:
            return
        from lora_lint.runtime.train import GradientWatch

        if self._watch is None:
            named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
            if not named:
                self._note("no trainable LoRA tensors found in the model: the dead-adapter check is off")
                self._watch = False
                return
            self._watch = GradientWatch(named)
        if self._watch is False:
            return
        self._watch.observe(step)
        if step + 1 < WATCH_STEPS:
            return
        from lora_lint.runtime.detectors import dead_adapter

        record = RunRecord(self.learning_rate or 0.0, 2, False, watch_steps=WATCH_STEPS)
        record.grads_missing, record.grads_zero = self._watch.missing, self._watch.zero()
        symptom = dead_adapter(record)
        if symptom is not None:
            self._stop(Decision.stop("dead-adapter", step, symptom.message, symptom.evidence))

    def _record(self) -> RunRecord:
        """The logged history as a RunRecord; evaluation steps become positions in the logged losses."""
        record = RunRecord(self.learning_rate or 0.0, 2, False)
        record.losses = list(self.losses)
        record.grad_norms = list(self.grad_norms)
        record.val_losses = [(sum(1 for s in self.steps if s <= step), value) for step, value in self.evaluations]
        return record

    def _stop(self, decision: Decision) -> None:
        self.decision = decision
        log.error("lora-guard: stopping the run at step %s: %s", decision.step, decision.message)
        self._write(plot=True)

    def _note(self, note: str) -> None:
        self.notes.append(note)
        log.warning("lora-guard: %s", note)

    def _rollback_dir(self) -> Path | None:
        return self.output_dir / "lora-guard" if self.output_dir is not None else None

    def _write(self, *, plot: bool) -> None:
        if self.output_dir is None:
            return
        if plot and self.losses:
            self.plot = _plot(self, self.output_dir / "lora-guard-loss.png")
        problem = write_decision(self.output_dir / GUARD_FILE, self.verdict(), self._report_fields())
        if problem:
            self._note(problem)

    def _report_fields(self) -> dict[str, Any]:
        return {"planned_steps": self.planned_steps, "memory": self.memory, "plot": self.plot, "notes": self.notes,
                "losses": [[s, v] for s, v in zip(self.steps, self.losses, strict=True)],
                "eval_losses": [list(pair) for pair in self.evaluations]}  # fmt: skip


def cuda_peak_bytes() -> int | None:
    """The most GPU memory torch has allocated in this process; None without CUDA."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def _non_finite_adapter_tensors(model: Any) -> list[str]:
    import torch

    bad = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name and param.requires_grad and not bool(torch.isfinite(param).all()):
                bad.append(name.removeprefix("base_model.model."))
    return bad


def _predicted_peak(config: Path | None) -> int | None:
    """The memory model's prediction for the config (the linter's ``peak_memory_bytes`` fact)."""
    if config is None:
        return None
    from lora_lint.engine import Linter
    from lora_lint.project import Project

    results = Linter(Project(config.parent)).lint_bytes(str(config), config.read_bytes())
    for result in results:
        value = result.facts.get("peak_memory_bytes") if result.facts else None
        if value:
            return int(value)
    return None


def _plot(guard: Guard, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return None
    try:
        figure, axes = pyplot.subplots(figsize=(7, 4), dpi=100)
        axes.plot(guard.steps, guard.losses, label="train", linewidth=1.2)
        if guard.evaluations:
            axes.plot(*zip(*guard.evaluations, strict=True), "o-", label="eval", linewidth=1.2)
        if guard.planned_steps:
            start, end = (f * guard.planned_steps for f in guard.window)
            axes.axvspan(start, end, alpha=0.1, label="check window")
        verdict = guard.verdict()
        axes.set_title(f"lora-guard: {verdict.verdict}" + (f" ({verdict.symptom})" if verdict.symptom else ""))
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
        pyplot.close(figure)
    except OSError as exc:
        log.warning("lora-guard: cannot write the loss plot %s: %s", path, exc)
        return None
    return str(path)
