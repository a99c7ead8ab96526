"""Planning a sweep before any training: the config, one adapter per rank, and the ranks to skip.

Everything here is the static linter's own machinery (readers, facts, memory model), so a
rank that cannot work (wider than an adapted layer, or predicted not to fit the GPU) is
skipped with its reason in milliseconds, and bad input fails before torch is imported.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_lint.config_edit import tidy_number
from lora_lint.rank_sweep.options import SweepInputError, SweepOptions

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt", ".arrow")


@dataclass(frozen=True)
class TrialPlan:
    """One rank to try, the alpha it trains with, and why it is skipped (None: it runs)."""

    r: int
    lora_alpha: float | int | None
    skip_reason: str | None
    trainable_params: int | None
    estimated_peak_bytes: int | None


@dataclass
class SweepPlan:
    """The config as read, the project it lives in, and one :class:`TrialPlan` per rank."""

    path: str
    setup: Any  # LoraSetup
    project: Any  # Project
    base_model: str | None
    trials: list[TrialPlan]
    notes: list[str] = field(default_factory=list)


def plan_sweep(config: str | Path, options: SweepOptions, *, settings: str | Path | None = None) -> SweepPlan:
    """Read ``config`` and plan one trial per rank; raises :class:`SweepInputError` on bad input."""
    from lora_lint.commands.config_input import ConfigInputError, load_config

    path = Path(config)
    try:
        project, setups = load_config(path, Path(settings) if settings else None)
    except ConfigInputError as exc:
        raise SweepInputError(str(exc)) from None
    setup = setups[0]
    notes = [f"{path} holds {len(setups)} LoRA configs; the sweep uses the first (line {setup.start.line})"] if len(setups) > 1 and setup.start else []  # fmt: skip
    if not isinstance(setup.get("r"), int):
        raise SweepInputError(f"{path}: the rank is not a literal integer, so the sweep cannot rewrite it")
    check_local_data(setup, path.parent)
    if options.gpu:
        _check_gpu(options.gpu)
        project.gpu = options.gpu
    if setup.get("rank_pattern"):
        notes.append("rank_pattern is kept as written: the sweep changes the default rank r only")
    trials = [_plan_trial(setup, project, r, options) for r in options.ranks]
    from lora_lint.arch.facts import base_model_name

    return SweepPlan(str(path), setup, project, base_model_name(setup), trials, notes)


def check_local_data(setup: Any, config_dir: Path) -> None:
    """A dataset entry that names a local file which is not there is an error, not a silent fallback."""
    for entry in setup.get("datasets") or []:
        raw = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(raw, str) or not _looks_local(raw):
            continue
        if not any((base / raw).expanduser().exists() for base in (config_dir, Path.cwd())):
            where = setup.location_of("datasets")
            line = f":{where.line}" if where else ""
            raise SweepInputError(f"{setup.path}{line}: dataset {raw!r} does not exist (looked beside the config and in {Path.cwd()})")  # fmt: skip


def _looks_local(raw: str) -> bool:
    """A path, not a hub id: it has a data-file suffix or starts like a path."""
    return raw.lower().endswith(DATA_SUFFIXES) or raw.startswith((".", "/", "~"))


def _check_gpu(name: str) -> None:
    from lora_lint.memory.gpus import UnknownGpuError, find_gpu

    try:
        find_gpu(name)
    except UnknownGpuError as exc:
        raise SweepInputError(f"--gpu: {exc}") from None


def alpha_for_rank(setup: Any, r: int, mode: str) -> float | int | None:
    """The alpha a trial at rank ``r`` trains with.

    ``follow`` keeps the update scale the user tuned: alpha/r (alpha/sqrt(r) under rsLoRA)
    stays as written; without a written alpha, alpha = 2r. ``fixed`` keeps alpha itself.
    """
    setting = setup.settings.get("lora_alpha")
    alpha, written_r = setup.get("lora_alpha"), setup.get("r")
    if mode == "fixed":
        return alpha
    if setting is None or not setting.explicit or not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
        return 2 * r
    ratio = math.sqrt(r / written_r) if setup.get("use_rslora") is True else r / written_r
    return tidy_number(alpha * ratio)


def with_rank(setup: Any, r: int, alpha: float | None) -> Any:
    """A copy of ``setup`` with r (and alpha) replaced, each keeping where it was written."""
    changed = copy.deepcopy(setup)
    changed.set("r", r, setup.location_of("r"))
    if alpha is not None:
        changed.set("lora_alpha", alpha, setup.location_of("lora_alpha"), explicit=setup.settings.get("lora_alpha") is not None and setup.settings["lora_alpha"].explicit)  # fmt: skip
    return changed


def _plan_trial(setup: Any, project: Any, r: int, options: SweepOptions) -> TrialPlan:
    from lora_lint.facts import compute_facts

    alpha = alpha_for_rank(setup, r, options.alpha)
    from lora_lint.document import InputError

    try:
        facts = compute_facts(with_rank(setup, r, alpha), project)
    except InputError as exc:
        raise SweepInputError(f"{setup.path}: {exc.message}") from None
    reason = None
    oversized = facts.get("oversized_rank_layers") or []
    if oversized:
        layer = oversized[0]
        reason = (f"r {r} exceeds the smaller dimension of {len(oversized)} adapted layer(s), e.g. {layer['name']} "
                  f"({layer['in_features']} -> {layer['out_features']})")  # fmt: skip
    elif facts.get("memory_fits") is False:
        gib = facts["peak_memory_bytes"] / 1024**3
        reason = f"predicted peak memory {gib:.1f} GiB does not fit {facts['gpu']['name']}"
    return TrialPlan(r, alpha, reason, facts.get("trainable_params"), facts.get("peak_memory_bytes"))
