"""One trial: train the config at one rank, from fresh base weights, and measure what the adapter added.

Every trial builds the same base model from the same seed, reads the same data subset,
draws the same batches and trains as the config says (rate, schedule, warmup, gradient
accumulation, dropout, quantization), only for fewer steps; the runtime's caps on the
micro batch and the sequence length apply, as in the smoke run. Quality is the gain over the
base model: the held-out loss (or the user's metric) with the adapter off before
training, against the same measure after. A trial that diverges or dies is a failed
trial; the sweep goes on.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from typing import Any

from lora_lint.rank_sweep.plan import TrialPlan, with_rank
from lora_lint.rank_sweep.schedule import Schedule

CONVERGED_TAIL = 0.1
"""A trial counts as converged when its last evaluation interval added under 10 % of its total gain."""


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a sweep shares (plain values: Ray ships them to its workers)."""

    data_fraction: float
    epochs: float
    steps: int | None
    device: str
    seed: int
    trust_remote_code: bool
    user_models: dict[str, Any]
    schedule: Schedule = field(default_factory=Schedule)


@dataclass
class TrialResult:
    """A trial's entry of the report."""

    r: int
    lora_alpha: float | int | None
    status: str  # ok | failed | skipped
    reason: str | None = None
    quality: float | None = None
    base_metric: float | None = None
    metric: float | None = None
    metric_name: str = "val_loss"
    val_loss: float | None = None
    val_losses: list[list[float]] = field(default_factory=list)
    train_seconds: float | None = None  # steps x the median step time: what the time budget compares
    wall_seconds: float | None = None  # the training loop's wall time, held-out evaluations included
    steps: int = 0
    steps_per_second: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None  # measured | estimated
    trainable_params: int | None = None
    symptoms: list[dict[str, Any]] = field(default_factory=list)
    converged: bool | None = None
    timings: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def skipped(plan: TrialPlan) -> TrialResult:
    return TrialResult(plan.r, plan.lora_alpha, "skipped", plan.skip_reason, trainable_params=plan.trainable_params,
                       peak_memory_bytes=plan.estimated_peak_bytes, peak_memory_source="estimated")  # fmt: skip


def run_trial(
    setup: Any,
    plan: TrialPlan,
    settings: TrialSettings,
    *,
    metric: Callable[..., float] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrialResult:
    """Train ``setup`` at ``plan.r``; ``on_step(step, total_steps, loss)`` reports progress."""
    from lora_lint.runtime.build import BuildError, Unsupported

    result = TrialResult(plan.r, plan.lora_alpha, "ok", trainable_params=plan.trainable_params)
    try:
        _train(setup, plan, settings, metric, on_step, result)
    except (BuildError, Unsupported) as exc:
        result.status, result.reason = "failed", str(exc)
    except (RuntimeError, ValueError, FloatingPointError) as exc:  # out of memory, a kernel error: the trial died
        result.status, result.reason = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return result


def _train(setup: Any, plan: TrialPlan, settings: TrialSettings, metric: Callable[..., float] | None,
           on_step: Callable[[int, int, float], None] | None, result: TrialResult) -> None:  # fmt: skip
    import torch

    from lora_lint.engine import FileResult
    from lora_lint.runtime.check import ConfigCheck, RuntimeOptions, vocab_size
    from lora_lint.runtime.detectors import diagnose
    from lora_lint.runtime.train import smoke_train

    trial_setup = with_rank(setup, plan.r, plan.lora_alpha)
    options = RuntimeOptions(settings.device, seed=settings.seed, trust_remote_code=settings.trust_remote_code)
    check = ConfigCheck(FileResult(setup.path, setup.format, {}, setup=trial_setup), options, dict(settings.user_models))  # fmt: skip
    cuda = check.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    built = check.model()
    result.timings["build"] = time.perf_counter() - started
    started = time.perf_counter()
    data = check.task_data()
    train = data.train[: max(2, math.ceil(len(data.train) * settings.data_fraction))]
    run = _run_settings(check.run_settings(), setup, settings, len(train))
    result.timings["data"] = time.perf_counter() - started
    result.data = {"source": data.source, "description": data.description, "train_sequences": len(train),
                   "val_sequences": len(data.val), "run": run.as_dict()}  # fmt: skip
    if result.trainable_params is None:
        result.trainable_params = sum(p.numel() for p in built.model.parameters() if p.requires_grad)
    started = time.perf_counter()
    measure = _measure(metric, check, built, data.val, run.batch_size)
    result.metric_name = getattr(metric, "__name__", "metric") if metric else "val_loss"
    with built.model.disable_adapter():
        result.base_metric = measure()
    result.timings["evaluate"] = time.perf_counter() - started

    stamps: list[float] = []

    def step_done(step: int, loss: float) -> None:
        stamps.append(time.perf_counter())
        if on_step is not None:
            on_step(step, run.steps, loss)

    started = time.perf_counter()
    record = smoke_train(built, train, data.val, run, vocab_size=vocab_size(built), on_step=step_done)
    result.wall_seconds = time.perf_counter() - started
    result.train_seconds = _robust_seconds(stamps, result.wall_seconds)
    started = time.perf_counter()
    result.metric = measure() if metric is not None else (record.val_losses[-1][1] if record.val_losses else None)
    result.timings["evaluate"] += time.perf_counter() - started
    result.steps = len(record.losses)
    result.steps_per_second = result.steps / result.wall_seconds if result.wall_seconds else None
    result.val_losses = [[step, loss] for step, loss in record.val_losses]
    result.val_loss = record.val_losses[-1][1] if record.val_losses else None
    result.symptoms = [s.as_dict() for s in diagnose(record)]
    if cuda:
        result.peak_memory_bytes, result.peak_memory_source = int(torch.cuda.max_memory_allocated()), "measured"
    else:
        result.peak_memory_bytes, result.peak_memory_source = plan.estimated_peak_bytes, "estimated"
    check.release()
    _judge(result, metric is not None)


def _robust_seconds(stamps: list[float], wall: float) -> float:
    """Training time as steps x the median step: a first-step warm-up or a neighbour's burst
    on a shared machine must not decide which rank is "fast enough"."""
    durations = [later - earlier for earlier, later in pairwise(stamps)]
    if len(durations) < 3:
        return wall
    return statistics.median(durations) * len(stamps)


def _run_settings(base: Any, setup: Any, settings: TrialSettings, train_sequences: int) -> Any:
    """The smoke settings made into a trial: the sweep's length, the config's accumulation and schedule.

    Warmup written in steps is kept as the same share of the run: the full run's length is
    estimated from the config's epochs over the whole training set (the subset / fraction).
    """
    from lora_lint.runtime.check import EVALUATIONS

    accumulation = setup.get("gradient_accumulation_steps")
    accumulation = accumulation if isinstance(accumulation, int) and not isinstance(accumulation, bool) and accumulation > 0 else 1  # fmt: skip
    per_step = base.batch_size * accumulation
    steps = settings.steps or max(1, math.ceil(settings.epochs * train_sequences / per_step))
    share = settings.schedule.warmup_ratio
    if settings.schedule.warmup_steps:
        epochs = setup.get("num_epochs")
        epochs = epochs if isinstance(epochs, (int, float)) and not isinstance(epochs, bool) and epochs > 0 else 1
        full_steps = max(1.0, epochs * train_sequences / settings.data_fraction / per_step)
        share = min(0.5, settings.schedule.warmup_steps / full_steps)
    return replace(base, steps=steps, eval_every=max(1, steps // EVALUATIONS), seed=settings.seed,
                   gradient_accumulation=accumulation, warmup_steps=min(math.floor(share * steps), steps - 1),
                   schedule=settings.schedule.name)  # fmt: skip


def _measure(metric: Callable[..., float] | None, check: Any, built: Any, val: list[list[int]], batch_size: int) -> Callable[[], float]:  # fmt: skip
    """The quality measure: the user's metric, or the mean held-out loss over the trial's own batches."""
    import torch

    from lora_lint.runtime.build import keep_training_mode
    from lora_lint.runtime.train import collate

    model = built.model
    if metric is not None:
        tokenizer = _tokenizer(check, built)

        def user_metric() -> float:
            model.eval()
            try:
                with torch.no_grad():
                    return float(metric(model, tokenizer, val))
            finally:
                keep_training_mode(model)

        return user_metric
    batches = [[t.to(built.device) for t in collate(val[i : i + batch_size])] for i in range(0, len(val), batch_size)]

    def val_loss() -> float:
        model.eval()
        try:
            with torch.no_grad():
                losses = [model(input_ids=ids, attention_mask=mask, labels=labels).loss.item() for ids, mask, labels in batches]  # fmt: skip
        finally:
            keep_training_mode(model)
        return sum(losses) / len(losses)

    return val_loss


def _tokenizer(check: Any, built: Any) -> Any:
    from lora_lint.runtime import data as task

    if built.weights == "local" or built.proxy is None:
        found = task.model_tokenizer(check.resolution().path, check.options.trust_remote_code)
        if found is not None:
            return found
    return task.ByteTokenizer()


def _judge(result: TrialResult, higher_is_better: bool) -> None:
    """Quality as the gain over the base model, convergence, and failure on divergence."""
    before, after = result.base_metric, result.metric
    if before is None or after is None or not (math.isfinite(before) and math.isfinite(after)):
        result.status, result.reason = "failed", "the trial produced no finite quality (diverged)"
        return
    if any(s["name"] == "divergence" for s in result.symptoms):
        result.status = "failed"
        result.reason = next(s["message"] for s in result.symptoms if s["name"] == "divergence")
    result.quality = after - before if higher_is_better else before - after
    curve = [loss for _, loss in result.val_losses]
    if len(curve) >= 3 and curve[0] > curve[-1]:
        result.converged = (curve[-2] - curve[-1]) < CONVERGED_TAIL * (curve[0] - curve[-1])
