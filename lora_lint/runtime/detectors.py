"""Symptom detectors: small pure functions over a :class:`RunRecord`.

Each returns a :class:`Symptom` or None. Thresholds are keyword options; the defaults
are chosen for smoke runs of a few dozen steps and explained where they are set.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lora_lint.runtime.record import RunRecord
from lora_lint.runtime.stats import mann_kendall


@dataclass(frozen=True)
class Symptom:
    name: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message, "evidence": self.evidence}


def _finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _listing(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def dead_adapter(record: RunRecord) -> Symptom | None:
    """Adapter tensors that no gradient reaches, or that the optimizer never moves.

    PEFT starts lora_B at zero, so lora_A's gradient is zero until B moves: the training
    loop already excuses A while its B is zero. Anything left here cannot learn.
    """
    evidence = {
        "missing_grad": record.grads_missing,
        "zero_grad": record.grads_zero,
        "lora_B_still_zero": record.frozen_lora_b,
        "steps_watched": record.watch_steps,
    }
    if record.grads_missing:
        return Symptom(
            "dead-adapter",
            f"{len(record.grads_missing)} trainable tensor(s) got no gradient in the first backward pass "
            f"({_listing(record.grads_missing)}): the graph does not reach the adapter (a 4-bit model run "
            "in eval mode, a detached input, or a frozen path)",
            evidence,
        )
    if record.grads_zero:
        return Symptom(
            "dead-adapter",
            f"{len(record.grads_zero)} trainable tensor(s) had an all-zero gradient for {record.watch_steps} steps "
            f"({_listing(record.grads_zero)}): check lora_dropout (1.0 drops every input), lora_alpha (0 "
            "scales the update away) and what the adapted layers feed into",
            evidence,
        )
    if record.frozen_lora_b:
        return Symptom(
            "dead-adapter",
            f"{len(record.frozen_lora_b)} lora_B tensor(s) were still all zero after {record.watch_steps} steps "
            f"although gradients arrived ({_listing(record.frozen_lora_b)}): the optimizer does not move the "
            f"adapter (learning rate {record.learning_rate:g})",
            evidence,
        )
    return None


def initial_loss(
    record: RunRecord,
    *,
    no_op_tolerance: float = 0.01,
    output_tolerance: float = 1e-3,
    random_tolerance: float = 1.5,
    pretrained_margin: float = 0.5,
) -> Symptom | None:
    """The step-0 loss must be the base model's, and plausible for the weights.

    ``no_op_tolerance`` (nats): with PEFT's default init (B = 0) the adapter adds exactly
    zero, so adapter on and off agree up to rounding (bf16/NF4 compute stays well under
    0.01); a real init change usually moves the loss by far more, but a random adapter on a
    random model can leave the mean loss almost where it was.
    ``output_tolerance``: so the logits are compared too. B = 0 adds an exact zero, so the
    logits with the adapter on and off are bit-identical in any precision; a change above
    0.1 % of the largest logit is an adapter that is not a no-op, whatever the loss did.
    ``random_tolerance`` (nats): random logits with standard deviation s give an expected
    loss of ln(V) + s^2/2; Hugging Face inits give s around 1-1.3, so up to ~0.9 nats above
    ln(V) is normal and 1.5 leaves room without missing broken labels (which give tens).
    ``pretrained_margin`` (nats): trained weights must predict better than uniform; a loss
    above ln(V) + margin means the tokenizer or the weights do not match the model.
    """
    uniform = math.log(record.vocab_size)
    base, start = record.base_loss, record.initial_loss
    evidence = {"initial_loss": start, "base_loss": base, "ln_vocab": uniform, "random_weights": record.random_weights}
    if start is None or not math.isfinite(start):
        return None  # a non-finite start is divergence's to report
    change = record.initial_output_change
    evidence["output_change"] = change
    changed_logits = change is not None and (not math.isfinite(change) or change > output_tolerance)
    if base is not None and math.isfinite(base) and (abs(start - base) > no_op_tolerance or changed_logits):
        evidence["difference"] = start - base
        return Symptom(
            "initial-loss",
            f"the step-0 loss with the adapter ({start:.4f}) differs from the base model's ({base:.4f})"
            + (f", its logits by {change:.2%} of the largest" if change is not None else "")
            + ": the adapter is not a no-op at initialization (init_lora_weights other than the default, or a "
            "resumed adapter), so training starts from a changed model",
            evidence,
        )
    if record.random_weights and abs(start - uniform) > random_tolerance:
        return Symptom(
            "initial-loss",
            f"the step-0 loss {start:.3f} is far from ln(vocab) = {uniform:.3f} expected from random weights: "
            "labels may be misaligned, padding counted in the loss, or the vocabulary size wrong",
            evidence,
        )
    if not record.random_weights and start > uniform + pretrained_margin:
        return Symptom(
            "initial-loss",
            f"the pretrained model's step-0 loss {start:.3f} is worse than guessing uniformly "
            f"(ln(vocab) = {uniform:.3f}): the tokenizer does not match the model or the weights did not load",
            evidence,
        )
    return None


def _smoothed(values: list[float], weight: float) -> list[float]:
    out, level = [], values[0]
    for value in values:
        level = weight * value + (1 - weight) * level
        out.append(level)
    return out


def divergence(
    record: RunRecord,
    *,
    smoothing: float = 0.3,
    rise_fraction: float = 0.05,
    min_rise: float = 0.3,
    patience: int = 5,
    max_update_ratio: float = 100.0,
    significance: float = 0.05,
) -> Symptom | None:
    """Non-finite values, or a loss that climbs back above its best and stays there while held-out loss is past its best.

    ``smoothing``: exponential smoothing weight (about a 6-step memory), so single noisy
    batches do not count. The smoothed loss must stay above its best by ``rise_fraction``
    of that best (at least ``min_rise`` nats) for the last ``patience`` steps: healthy
    runs on a few dozen batches wobble by a few hundredths of a nat.
    ``max_update_ratio``: the recorded bound scale * ||B|| * ||A|| / ||W|| (fine-tuning
    updates sit near 0.1 in the LoRA paper; it reads a few times high) is evidence, not a
    verdict: against the tiny norms of random weights a healthy adapter passes 100x while
    both losses fall. It decides only together with a loss that does not fall (no
    significant downward trend, Mann-Kendall at ``significance``, and no held-out gain),
    where normalization keeps a thrown-around adapter's loss bounded but useless.
    """
    for step, loss in enumerate(record.losses):
        norm = record.grad_norms[step] if step < len(record.grad_norms) else 0.0
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return Symptom(
                "divergence",
                f"loss or gradient became non-finite at step {step} (loss {loss}, grad norm {norm}): lower the "
                "learning rate, check fp16 overflow, add gradient clipping",
                {"step": step, "loss": loss, "grad_norm": norm},
            )
    worst_ratio = max(record.update_ratios, default=0.0)
    ratio_evidence = {"max_update_ratio": worst_ratio, "update_ratio_threshold": max_update_ratio}
    if len(record.losses) < patience + 2:
        return None
    smooth = _smoothed(record.losses, smoothing)
    best_so_far, rises = math.inf, []
    for value in smooth:
        best_so_far = min(best_so_far, value)
        rises.append(value - best_so_far)
    best = min(smooth)
    allowed = max(min_rise, rise_fraction * abs(best))
    if all(rise > allowed for rise in rises[-patience:]) and not _held_out_at_best(record):
        return Symptom(
            "divergence",
            f"the smoothed loss rose to {smooth[-1]:.3f}, {rises[-1]:.3f} above its best {best:.3f}, and stayed "
            f"there for {patience}+ steps: lower the learning rate ({record.learning_rate:g}) or add warmup",
            {"best_smoothed": best, "last_smoothed": smooth[-1], "rise": rises[-1], "allowed_rise": allowed,
             **ratio_evidence},
        )  # fmt: skip
    runaway = not math.isfinite(worst_ratio) or worst_ratio > max_update_ratio
    if runaway and not _loss_falls(record, significance):
        step = next(i for i, v in enumerate(record.update_ratios) if not (v <= max_update_ratio))
        return Symptom(
            "divergence",
            f"the adapter's update grew to {worst_ratio:.3g}x the norm of the layer it adapts (step {step} "
            f"passed {max_update_ratio:g}x) while the loss stopped falling: the learning rate "
            f"{record.learning_rate:g} throws the adapter around",
            {**ratio_evidence, "step": step},
        )
    return None


def _loss_falls(record: RunRecord, significance: float) -> bool:
    """A significant downward trend over the second half of training, or held-out loss at a new best."""
    half = record.losses[len(record.losses) // 2 :]
    if len(half) >= 3 and mann_kendall(half).decreasing(significance):
        return True
    return _held_out_at_best(record)


def _held_out_at_best(record: RunRecord) -> bool:
    """The last held-out loss is the run's best: whatever the training loss does, the adapter still generalizes
    better than ever, which a diverging run never does (a climbing training loss then comes from the batches)."""
    values = [v for _, v in record.val_losses]
    return len(values) >= 2 and values[-1] < values[0] and values[-1] <= min(values)


def plateau(
    record: RunRecord,
    reference: RunRecord | None = None,
    *,
    min_steps: int = 10,
    window_fraction: float = 0.5,
    significance: float = 0.05,
    min_improvement: float = 0.05,
    min_val_improvement: float = 0.01,
    edge: int = 5,
    min_reference_fraction: float = 0.3,
) -> Symptom | None:
    """A loss that is flat, or that falls far slower than a reference adapter's.

    Flat: the loss neither falls now (Mann-Kendall) nor fell overall (total improvement).
    Both must hold: a run that learned fast and then saturated has a flat recent window
    but a large total improvement, and that is convergence, not a plateau.
    ``window_fraction``: the recent window is the last half of the run.
    ``significance``: one-sided 5 % level for a falling trend.
    ``min_improvement``: 5 % of the starting training loss, between the medians of the
    first and last ``edge`` steps. Different batches alone move a flat run's medians by
    1-2 %; a learning adapter gains far more within a few dozen steps.
    ``min_val_improvement``: 1 % of the first held-out loss. Held-out batches are the
    same at every evaluation, so this figure has no batch noise: an adapter that does not
    learn moves it by 0.1 % or less.

    Slow ("decreases very slowly"): an absolute bar cannot tell a slow adapter from a
    slow model, so ``reference`` is the same model, data, batches and seed trained with
    the reference adapter (alpha = 2r at the config's learning rate). The config's gain
    (held-out when both runs evaluated, else training) below ``min_reference_fraction``
    of the reference's is a plateau. At a third: alpha = r, half the reference's scale,
    gains 74-85 % of the reference on the planted scenarios (Adam makes up much of the
    scale) and passes; alpha 0.001 at r 8, six times slower, gains 13-21 % and does not.
    """
    losses = record.losses
    if len(losses) < min_steps or not _finite(losses):
        return None
    window = losses[-max(min_steps, int(len(losses) * window_fraction)) :]
    trend = mann_kendall(window)
    start = statistics.median(losses[:edge])
    end = statistics.median(losses[-edge:])
    improvement = (start - end) / abs(start) if start else 0.0
    values = [v for _, v in record.val_losses]
    val_improvement = (values[0] - min(values)) / abs(values[0]) if len(values) >= 2 and values[0] else None
    evidence: dict[str, Any] = {
        "window_steps": len(window),
        "sen_slope": trend.sen_slope,
        "mann_kendall_z": trend.z,
        "p_value": trend.p_value,
        "start_loss": start,
        "end_loss": end,
        "improvement": improvement,
        "val_improvement": val_improvement,
    }
    learning = improvement >= min_improvement or (val_improvement or 0.0) >= min_val_improvement
    if not (trend.decreasing(significance) or learning):
        held_out = f", held-out {val_improvement:+.1%}" if val_improvement is not None else ""
        return Symptom(
            "plateau",
            f"the loss is flat: {start:.3f} -> {end:.3f} ({improvement:+.1%}{held_out}) with no falling trend over "
            f"the last {len(window)} steps (Sen's slope {trend.sen_slope:.2g}/step, p = {trend.p_value:.2f}): "
            f"suspect the update scale (lora_alpha / r), the rank, or the learning rate ({record.learning_rate:g})",
            evidence,
        )
    if reference is None or len(reference.losses) < min_steps or not _finite(reference.losses):
        return None
    basis, gain, reference_gain = _paired_gains(record, reference, edge)
    reference_learned = reference_gain > 0 and plateau(reference, min_steps=min_steps, edge=edge) is None
    if not reference_learned:
        return None  # the yardstick itself did not learn: nothing to compare against
    ratio = gain / reference_gain
    evidence.update({"reference_basis": basis, "gain": gain, "reference_gain": reference_gain,
                     "reference_ratio": ratio, "min_reference_fraction": min_reference_fraction})  # fmt: skip
    if ratio >= min_reference_fraction:
        return None
    return Symptom(
        "plateau",
        f"the loss decreases very slowly: the adapter gained {gain:.3f} nats of {basis} loss where the reference "
        f"adapter (alpha = 2r, same model, data, batches and learning rate) gained {reference_gain:.3f} "
        f"({ratio:.0%} of it): the update scale lora_alpha / r is the likely cause; raise lora_alpha (or the rank "
        f"with it), then check the learning rate ({record.learning_rate:g})",
        evidence,
    )


def _paired_gains(record: RunRecord, reference: RunRecord, edge: int) -> tuple[str, float, float]:
    """How much each run improved: held-out (fixed batches, no noise) when both evaluated, else training."""
    values = [v for _, v in record.val_losses]
    reference_values = [v for _, v in reference.val_losses]
    if len(values) >= 2 and len(reference_values) >= 2 and _finite(values + reference_values):
        return "held-out", values[0] - min(values), reference_values[0] - min(reference_values)

    def training_gain(losses: list[float]) -> float:
        return statistics.median(losses[:edge]) - statistics.median(losses[-edge:])

    return "training", training_gain(record.losses), training_gain(reference.losses)


def overfit(
    record: RunRecord,
    *,
    min_evaluations: int = 5,
    recent: int = 3,
    significance: float = 0.05,
    min_rise_of_gain: float = 0.05,
    min_rise_fraction: float = 0.005,
    persistent_rise_of_gain: float = 0.25,
    edge: int = 3,
) -> Symptom | None:
    """Held-out loss rising from its minimum with a significant trend while training loss falls.

    From the best evaluation on, at least ``recent`` more evaluations must rise with a
    one-sided Mann-Kendall trend at ``significance`` (best plus three strictly rising
    evaluations is the smallest significant case), so one unlucky evaluation decides
    nothing. A rise that comes fast and then levels off can fall short of that test
    while being plain: when each of the last ``recent`` evaluations sits above the best by
    more than ``persistent_rise_of_gain`` (a quarter) of what held-out loss had gained, that
    counts as the trend. The rise (median of the last ``recent`` evaluations above the best) must
    also give back ``min_rise_of_gain`` (5 %) of what held-out loss had gained before its best,
    and at least ``min_rise_fraction`` (0.5 %) of its value: held-out batches are fixed, so this is not
    noise, and a saturated run that wobbles around its best by thousandths stays quiet.
    Both are ratios, so the verdict does not depend on the loss scale. The training loss
    must have fallen over the same span, which makes the generalization gap widen.
    """
    evaluations = record.val_losses
    if len(evaluations) < min_evaluations or not _finite([v for _, v in evaluations]):
        return None
    values = [v for _, v in evaluations]
    best_index = values.index(min(values))
    best_step, best_val = evaluations[best_index]
    since_best = values[best_index:]
    if len(since_best) < recent + 1:
        return None
    trend = mann_kendall(since_best)
    last_step = evaluations[-1][0]
    late_val = statistics.median(values[-recent:])
    rise = late_val - best_val
    gain = values[0] - best_val
    train_at_best = _train_loss_near(record.losses, best_step, edge)
    train_at_last = _train_loss_near(record.losses, last_step, edge)
    gap_at_best, gap_at_last = best_val - train_at_best, late_val - train_at_last
    threshold = max(min_rise_of_gain * gain, min_rise_fraction * abs(best_val))
    evidence = {
        "best_val_step": best_step,
        "best_val_loss": best_val,
        "recent_val_loss": late_val,
        "val_rise": rise,
        "rise_threshold": threshold,
        "mann_kendall_z": trend.z,
        "p_value": trend.p_value,
        "gave_back_fraction": (late_val - best_val) / gain if gain > 0 else None,
        "train_at_best": train_at_best,
        "train_at_last": train_at_last,
        "gap_at_best": gap_at_best,
        "gap_at_last": gap_at_last,
    }
    gave_back = min(values[-recent:]) - best_val > persistent_rise_of_gain * gain if gain > 0 else False
    rising = (trend.z > 0 and trend.p_value / 2 < significance) or gave_back
    if not rising or rise <= threshold or train_at_last >= train_at_best or gap_at_last <= gap_at_best:
        return None
    return Symptom(
        "overfit",
        f"held-out loss rose from {best_val:.3f} (step {best_step}) to {late_val:.3f} (median of the last {recent} "
        f"evaluations, rising trend p = {trend.p_value / 2:.3f}) while the training loss fell from "
        f"{train_at_best:.3f} to {train_at_last:.3f}; the gap grew from {gap_at_best:.3f} to {gap_at_last:.3f}: "
        "more data, fewer steps or epochs, a smaller rank (4-8), lora_dropout 0.1-0.2, weight decay",
        evidence,
    )


def _train_loss_near(losses: list[float], step: int, edge: int) -> float:
    """Median training loss of the steps just before ``step``: one batch is too noisy."""
    upto = max(1, min(step, len(losses)))
    return statistics.median(losses[max(0, upto - edge) : upto])


DETECTORS: dict[str, Callable[[RunRecord], Symptom | None]] = {
    "dead-adapter": dead_adapter,
    "initial-loss": initial_loss,
    "divergence": divergence,
    "plateau": plateau,
    "overfit": overfit,
}


SYMPTOM_NAMES = tuple(DETECTORS)


def diagnose(record: RunRecord, reference: RunRecord | None = None) -> list[Symptom]:
    """Every symptom the record shows, in the order of :data:`SYMPTOM_NAMES`.

    ``reference`` is the reference adapter's run on the same batches (see :func:`plateau`);
    without it, slow learning is judged on the absolute bars alone.
    """
    found = []
    for detect in DETECTORS.values():
        symptom = plateau(record, reference) if detect is plateau else detect(record)
        if symptom is not None:
            found.append(symptom)
    return found
