"""``LoraGuardLightningCallback``: the guard as a Lightning ``Callback``.

The same decisions as the transformers callback, from what a Lightning run has: the loss
each ``training_step`` returns (read every ``log_every_n_steps`` steps, so the GPU is not
synchronized every step), the adapter's gradients before the first optimizer steps, the
adapter weights' finiteness at each read, and the validation loss from the logged
metrics (``eval_metric``, default ``val_loss``). Stopping sets ``trainer.should_stop``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package name
    try:
        from pytorch_lightning import Callback
    except ImportError as exc:
        raise ImportError("LoraGuardLightningCallback needs Lightning: pip install 'lora-lint[lightning]'") from exc

from lora_lint.guard.core import Guard, cuda_peak_bytes
from lora_lint.guard.decision import Decision
from lora_lint.guard.trackers import report_to_trackers, tracker_metrics

log = logging.getLogger("lora_lint.guard")


class LoraGuardLightningCallback(Callback):
    """Stop a LoRA run that plateaus, diverges or has a dead adapter; warn (or stop) on overfitting.

    Options as :class:`lora_lint.guard.LoraGuardCallback`; ``output_dir`` defaults to the
    trainer's ``default_root_dir``; ``eval_metric`` names the logged validation loss.
    """

    def __init__(
        self,
        config: str | Path | None = None,
        output_dir: str | Path | None = None,
        window: tuple[float, float] = (0.1, 0.2),
        on_overfit: str = "warn",
        eval_metric: str = "val_loss",
    ) -> None:
        self.guard = Guard(config, output_dir, window=window, on_overfit=on_overfit)
        self.eval_metric = eval_metric
        self._last_eval_step: int | None = None

    @property
    def decision(self) -> Decision:
        return self.guard.verdict()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        guard = self.guard
        planned = trainer.estimated_stepping_batches
        guard.planned_steps = int(planned) if isinstance(planned, (int, float)) and math.isfinite(planned) else None
        if guard.output_dir is None:
            guard.output_dir = Path(trainer.default_root_dir)
        optimizers = trainer.optimizers
        if optimizers:
            guard.learning_rate = optimizers[0].param_groups[0].get("lr")

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.guard.watch_gradients(pl_module, trainer.global_step):
            trainer.should_stop = True

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step % max(1, trainer.log_every_n_steps) != 0:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        stop = self.guard.observe(step, float(loss.detach()) if hasattr(loss, "detach") else float(loss))
        stop = self.guard.check_adapter_weights(pl_module, step) or stop
        if stop:
            trainer.should_stop = True

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.eval_metric)
        if value is None or trainer.global_step == self._last_eval_step:
            return
        self._last_eval_step = trainer.global_step
        had_warning = self.guard.warning
        if self.guard.observe_eval(trainer.global_step, float(value)):
            trainer.should_stop = True
        if self.guard.warning is not had_warning and self.guard.warning is not None:
            report_to_trackers(self.guard.warning)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        decision = self.guard.finish(measured_peak_bytes=cuda_peak_bytes())
        report_to_trackers(decision)
        numbers = {k: v for k, v in tracker_metrics(decision).items() if isinstance(v, (int, float))}
        for logger in trainer.loggers:
            try:
                logger.log_metrics(numbers, step=trainer.global_step)
            except Exception as exc:  # noqa: BLE001 - a logger hiccup must not fail the run's end
                log.warning("lora-guard: could not log to %s: %s", type(logger).__name__, exc)
