"""The choice rule: the smallest rank that reaches most of the best quality in a fraction of the slowest time.

From the production path of LoRA practice: sweep a few ranks briefly, then pick the rank
that reaches ``quality_target`` (95 %) of the best trial's quality in at most
``time_budget`` (70 %) of the slowest trial's training time. Quality is the *gain* over
the base model: on raw accuracy a base that already scores 85 % makes every rank look
alike (92 % is above 95 % of 94.1 %), while the gains 7 / 9 / 9.1 show that r 8 captures
only 77 % of what the adapter can add. Pure Python, so the rule is tested on hand-made
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

QUALITY_TARGET = 0.95
TIME_BUDGET = 0.70


@dataclass(frozen=True)
class Candidate:
    """What the rule needs from a finished trial."""

    r: int
    quality: float  # gain over the base model, higher is better
    train_seconds: float


@dataclass(frozen=True)
class Choice:
    """The chosen rank (None when no rank met the rule) and why, in words."""

    r: int | None
    reason: str
    recommendation: int | None  # the best trade-off when the rule picked nothing
    diminishing_returns: list[str]
    quality_target: float
    time_budget: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "rule": {"quality_target": self.quality_target, "time_budget": self.time_budget},
            "reason": self.reason,
            "recommendation": self.recommendation,
            "diminishing_returns": self.diminishing_returns,
        }


def choose_rank(
    candidates: list[Candidate], quality_target: float = QUALITY_TARGET, time_budget: float = TIME_BUDGET
) -> Choice:
    """Apply the rule to the finished trials (failed and skipped ones are left out by the caller)."""
    ranked = sorted(candidates, key=lambda c: c.r)
    returns = diminishing_returns(ranked, quality_target)
    if not ranked:
        return Choice(None, "no trial finished", None, returns, quality_target, time_budget)
    best = max(ranked, key=lambda c: c.quality)
    slowest = max(c.train_seconds for c in ranked)
    if best.quality <= 0:
        reason = (f"no rank improved on the base model (best gain {best.quality:.4g} at r {best.r}): "
                  "train longer, or check the learning rate and data")  # fmt: skip
        return Choice(None, reason, None, returns, quality_target, time_budget)
    quality_floor = quality_target * best.quality
    time_ceiling = time_budget * slowest
    good_enough = [c for c in ranked if c.quality >= quality_floor]
    fast_enough = [c for c in ranked if c.train_seconds <= time_ceiling]
    chosen = next((c for c in good_enough if c in fast_enough), None)
    if chosen is not None:
        reason = (f"r {chosen.r} reaches {chosen.quality / best.quality:.0%} of the best gain (r {best.r}: "
                  f"{best.quality:.4g}) in {chosen.train_seconds / slowest:.0%} of the slowest trial's time; "
                  f"the rule asks for at least {quality_target:.0%} in at most {time_budget:.0%}")  # fmt: skip
        return Choice(chosen.r, reason, None, returns, quality_target, time_budget)
    fastest_good = min(good_enough, key=lambda c: c.train_seconds)
    failed = (f"the ranks that reach {quality_target:.0%} of the best gain ({', '.join(str(c.r) for c in good_enough)}) "
              f"all take more than {time_budget:.0%} of the slowest trial's time")  # fmt: skip
    reason = f"no rank met the rule: {failed}; best trade-off: r {fastest_good.r}"
    return Choice(None, reason, fastest_good.r, returns, quality_target, time_budget)


def diminishing_returns(ranked: list[Candidate], quality_target: float = QUALITY_TARGET) -> list[str]:
    """One sentence per step up in rank: the share of the best gain it bought, and for how much time.

    A step that buys less than the rule's slack (1 - ``quality_target``) is called not worth it.
    """
    lines = []
    best = max((c.quality for c in ranked), default=0.0)
    for low, high in pairwise(ranked):
        if best <= 0 or low.train_seconds <= 0:
            continue
        gained = (high.quality - low.quality) / best
        cost = high.train_seconds / low.train_seconds
        lines.append(f"r {low.r} -> {high.r}: {gained:+.1%} of the best gain for {cost:.1f}x the training time"
                     f"{' (not worth it)' if gained < 1 - quality_target else ''}")  # fmt: skip
    return lines
