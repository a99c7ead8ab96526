"""Post-mortems: the guard's detectors on a run that had no guard.

A transformers run leaves ``trainer_state.json`` (its ``log_history`` holds every logged
``loss``, ``grad_norm`` and ``eval_loss`` with its step) in the output folder and in every
``checkpoint-N`` folder; a Lightning run with the CSV logger leaves ``metrics.csv``.
Replaying those logs through a :class:`~lora_lint.guard.core.Guard` in step order says
what the guard would have done, and at which step.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lora_lint.guard.core import Guard
from lora_lint.guard.decision import GUARD_FILE

LIGHTNING_LOSS_COLUMNS = ("train_loss", "train_loss_step", "loss", "training_loss")
LIGHTNING_EVAL_COLUMNS = ("val_loss", "val_loss_epoch", "eval_loss", "validation_loss")


class PostmortemError(Exception):
    """The folder holds nothing to read, or a file is broken: one line for the command line."""


@dataclass
class History:
    """Logged losses of one run, from whichever file it left."""

    source: Path
    planned_steps: int | None
    losses: list[tuple[int, float, float | None]] = field(default_factory=list)  # (step, loss, grad norm)
    evaluations: list[tuple[int, float]] = field(default_factory=list)


def find_guard_report(folder: Path) -> Path | None:
    path = folder / GUARD_FILE if folder.is_dir() else folder
    return path if path.name == GUARD_FILE and path.is_file() else None


def read_history(path: Path) -> History:
    """The history in ``path``: a trainer_state.json, a metrics.csv, or a folder holding one."""
    if path.is_file():
        if path.suffix == ".csv":
            return _read_metrics_csv(path)
        return _read_trainer_state(path)
    if not path.is_dir():
        raise PostmortemError(f"{path}: no such file or folder")
    state = path / "trainer_state.json"
    if state.is_file():
        return _read_trainer_state(state)
    checkpoints = sorted(path.glob("checkpoint-*/trainer_state.json"), key=_checkpoint_number)
    if checkpoints:
        return _read_trainer_state(checkpoints[-1])  # the latest checkpoint holds the longest history
    metrics = sorted(path.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if metrics:
        return _read_metrics_csv(metrics[-1])
    raise PostmortemError(f"{path}: no {GUARD_FILE}, trainer_state.json (also in checkpoint-*/) or Lightning "
                          "metrics.csv to read")  # fmt: skip


def replay(history: History, guard: Guard) -> Guard:
    """Feed the history to ``guard`` in step order (evaluations after the training log of their step)."""
    events: list[tuple[int, int, float, float | None]] = [(s, 0, v, g) for s, v, g in history.losses]
    events += [(s, 1, v, None) for s, v in history.evaluations]
    guard.planned_steps = guard.planned_steps or history.planned_steps or max((e[0] for e in events), default=0)
    for step, kind, value, grad_norm in sorted(events, key=lambda e: (e[0], e[1])):
        stop = guard.observe(step, value, grad_norm) if kind == 0 else guard.observe_eval(step, value)
        if stop:
            break
    return guard


def _checkpoint_number(path: Path) -> int:
    match = re.search(r"checkpoint-(\d+)", str(path))
    return int(match.group(1)) if match else -1


def _read_trainer_state(path: Path) -> History:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PostmortemError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PostmortemError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    entries = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(entries, list):
        raise PostmortemError(f"{path}: no log_history list: not a transformers trainer_state.json")
    planned = state.get("max_steps")
    history = History(path, planned if isinstance(planned, int) and planned > 0 else None)
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            continue
        step = entry["step"]
        if _is_number(entry.get("loss")):
            grad = entry.get("grad_norm")
            history.losses.append((step, float(entry["loss"]), float(grad) if _is_number(grad) else None))
        if _is_number(entry.get("eval_loss")):
            history.evaluations.append((step, float(entry["eval_loss"])))
    if not history.losses:
        raise PostmortemError(f"{path}: log_history holds no training loss (was logging_steps larger than the run?)")
    return history


def _read_metrics_csv(path: Path) -> History:
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PostmortemError(f"{path}: cannot read: {exc}") from None
    columns = set(rows[0]) if rows else set()
    loss_column = next((c for c in LIGHTNING_LOSS_COLUMNS if c in columns), None)
    if loss_column is None or "step" not in columns:
        raise PostmortemError(f"{path}: no step column and training loss column ({', '.join(LIGHTNING_LOSS_COLUMNS)})")
    eval_column = next((c for c in LIGHTNING_EVAL_COLUMNS if c in columns), None)
    history = History(path, None)
    for number, row in enumerate(rows, start=2):
        try:
            step = int(float(row["step"]))
            if row.get(loss_column):
                history.losses.append((step, float(row[loss_column]), None))
            if eval_column and row.get(eval_column):
                history.evaluations.append((step, float(row[eval_column])))
        except ValueError:
            raise PostmortemError(f"{path}:{number}: not a number in step, {loss_column} or {eval_column}") from None
    if not history.losses:
        raise PostmortemError(f"{path}: the {loss_column} column is empty")
    return history


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
