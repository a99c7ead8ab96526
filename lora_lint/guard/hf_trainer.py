"""``LoraGuardCallback``: the guard as a transformers ``TrainerCallback``.

Works with ``Trainer`` and everything built on it (TRL's ``SFTTrainer``, LLaMA-Factory's
trainers, axolotl). It reads only what the trainer already logs, plus the adapter's own
tensors, so it adds no forward pass:

- ``loss`` and ``grad_norm`` from every log; ``Trainer`` replaces a NaN or inf step loss by
  the running average (``logging_nan_inf_filter``), so a diverged run can log plausible
  losses. The raw ``grad_norm`` and a finiteness check of the adapter weights at each log
  see through that;
- the adapter's gradients before the first optimizer steps (dead adapter);
- ``eval_loss`` from every evaluation (overfit).

Stopping sets ``control.should_training_stop``; the trainer ends the run after the step.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("LoraGuardCallback needs transformers: pip install 'lora-lint[torch]'") from exc

from lora_lint.guard.core import Guard, cuda_peak_bytes
from lora_lint.guard.decision import Decision
from lora_lint.guard.trackers import report_to_trackers, tracker_metrics

log = logging.getLogger("lora_lint.guard")


class LoraGuardCallback(TrainerCallback):
    """Stop a LoRA run that plateaus, diverges or has a dead adapter; warn (or stop) on overfitting.

    ``config``: the path of the LoRA config the run uses (the rollback is a copy of it);
    ``output_dir``: where ``lora-guard.json`` goes (default: the trainer's ``args.output_dir``);
    ``window``: the plateau check window as fractions of the planned steps;
    ``on_overfit``: "warn" or "stop".
    """

    def __init__(
        self,
        config: str | Path | None = None,
        output_dir: str | Path | None = None,
        window: tuple[float, float] = (0.1, 0.2),
        on_overfit: str = "warn",
    ) -> None:
        self.guard = Guard(config, output_dir, window=window, on_overfit=on_overfit)
        self._reported: Decision | None = None

    @property
    def decision(self) -> Decision:
        return self.guard.verdict()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        guard = self.guard
        guard.planned_steps = state.max_steps or None
        guard.learning_rate = args.learning_rate
        if guard.output_dir is None and args.output_dir:
            guard.output_dir = Path(args.output_dir)
        if _on_cuda():
            import torch

            torch.cuda.reset_peak_memory_stats()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if model is not None and self.guard.watch_gradients(model, state.global_step):
            self._stop(control)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               model: Any = None, **kwargs: Any) -> None:  # fmt: skip
        logs = logs or {}
        guard, step = self.guard, state.global_step
        if "loss" in logs:
            guard.observe(step, logs["loss"], logs.get("grad_norm"))
            if model is not None:
                guard.check_adapter_weights(model, step)
        if "eval_loss" in logs:
            guard.observe_eval(step, logs["eval_loss"])
        decision = guard.decision or guard.warning
        if decision is not None and decision is not self._reported:
            self._reported = decision
            metrics = tracker_metrics(decision)
            logs.update(metrics)  # for the callbacks after this one (the console printer)
            if state.log_history and state.log_history[-1].get("step") == step:
                state.log_history[-1].update(metrics)  # lands in trainer_state.json
            report_to_trackers(decision)
        if guard.should_stop:
            self._stop(control)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        decision = self.guard.finish(measured_peak_bytes=cuda_peak_bytes())
        if decision is not self._reported:
            report_to_trackers(decision)

    def _stop(self, control: Any) -> None:
        control.should_training_stop = True


def _on_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False
