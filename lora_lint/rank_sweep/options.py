"""What a sweep is asked to do: ranks, trial length, the rule's thresholds, where it runs and logs.

Defaults come from the code, then ``[tool.lora-lint.sweep]``, then the command line or the
API's keywords. Every value is checked here, before anything heavy is imported, so a bad
option is one line and exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from lora_lint.rank_sweep.choice import QUALITY_TARGET, TIME_BUDGET

BACKENDS = ("local", "ray")
TRACKERS = ("none", "mlflow", "tensorboard", "wandb")
DEVICES = ("auto", "cpu", "cuda")
ALPHA_MODES = ("follow", "fixed")


class SweepInputError(Exception):
    """A sweep that cannot start (bad option, config, data or missing extra): one line, exit code 2."""


@dataclass(frozen=True)
class SweepOptions:
    """Every knob of a sweep. ``steps`` wins over ``epochs`` when both are set."""

    ranks: tuple[int, ...] = (4, 8, 16)
    data_fraction: float = 0.1
    epochs: float = 1.0
    steps: int | None = None
    alpha: str = "follow"
    quality_target: float = QUALITY_TARGET
    time_budget: float = TIME_BUDGET
    device: str = "auto"
    seed: int = 0
    gpu: str | None = None
    backend: str = "local"
    tracker: str = "none"
    metric: Callable[..., float] | None = field(default=None, compare=False)
    trust_remote_code: bool = False

    def checked(self) -> SweepOptions:
        """Self, or :class:`SweepInputError` naming the first bad value."""
        if not self.ranks or any(not isinstance(r, int) or isinstance(r, bool) or r <= 0 for r in self.ranks):
            raise SweepInputError(f"ranks must be positive integers, got {list(self.ranks)}")
        _in_range("data-fraction", self.data_fraction, 0.0, 1.0, low_open=True)
        _in_range("quality-target", self.quality_target, 0.0, 1.0, low_open=True)
        _in_range("time-budget", self.time_budget, 0.0, 1.0, low_open=True)
        _in_range("epochs", self.epochs, 0.0, math.inf, low_open=True)
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps <= 0):
            raise SweepInputError(f"steps must be a positive integer, got {self.steps!r}")
        for name, value, allowed in (("alpha", self.alpha, ALPHA_MODES), ("backend", self.backend, BACKENDS),
                                     ("tracker", self.tracker, TRACKERS), ("device", self.device, DEVICES)):  # fmt: skip
            if value not in allowed:
                raise SweepInputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.metric is not None and not callable(self.metric):
            raise SweepInputError(f"metric must be a callable metric(model, tokenizer, eval_data) -> float, got {self.metric!r}")  # fmt: skip
        return replace(self, ranks=tuple(sorted(set(self.ranks))))


def _in_range(name: str, value: Any, low: float, high: float, *, low_open: bool) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value > high or value < low or (low_open and value == low):
        raise SweepInputError(f"{name} must be a number in {'(' if low_open else '['}{low:g}, {high:g}], got {value!r}")


def parse_ranks(text: str) -> tuple[int, ...]:
    """``"4,8,16"`` -> (4, 8, 16); anything else is a :class:`SweepInputError` quoting the input."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    try:
        ranks = tuple(int(part) for part in parts)
    except ValueError:
        ranks = ()
    if not ranks or min(ranks) <= 0:
        raise SweepInputError(f"--ranks wants positive integers separated by commas, got {text!r}")
    return ranks


SETTING_NAMES = {f.name.replace("_", "-"): f.name for f in fields(SweepOptions) if f.name not in ("metric",)}


def from_settings(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Keyword values from a ``[tool.lora-lint.sweep]`` table (kebab-case names, as everywhere in the settings)."""
    from lora_lint.near_miss import closest

    values: dict[str, Any] = {}
    for key, value in table.items():
        name = SETTING_NAMES.get(key)
        if name is None:
            near = closest(key, SETTING_NAMES)
            raise SweepInputError(f"{where}: [tool.lora-lint.sweep]: unknown setting {key!r}"
                                  f"{f' (did you mean {near!r}?)' if near else ''}")  # fmt: skip
        if name == "ranks":
            value = parse_ranks(",".join(str(v) for v in value) if isinstance(value, list) else str(value))
        values[name] = value
    return values


def load_metric(reference: str) -> Callable[..., float]:
    """``"package.module:function"`` -> the function (the module is imported from the working directory too)."""
    import importlib
    import os
    import sys

    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise SweepInputError(f"--metric wants module:function, got {reference!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise SweepInputError(f"--metric {reference}: {exc}") from None
    if not callable(function):
        raise SweepInputError(f"--metric {reference}: not a function")
    return function
