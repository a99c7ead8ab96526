"""The sweep's reports: the JSON contract and the terminal table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(result: Any, path: Path) -> None:
    path.write_text(json.dumps(result.as_dict(), indent=2, default=_plain) + "\n", encoding="utf-8")


def _plain(value: Any) -> Any:
    return str(value)


def text_report(result: Any) -> str:
    """A table of the trials, then the choice and how the gain grows with the rank."""
    lines = [f"{result.config}: {result.base_model} on {result.device} ({result.backend} backend)"]
    header = f"  {'r':>4} {'alpha':>7} {'status':<8} {'quality':>9} {'val loss':>9} {'train s':>8} {'steps':>6} {'trainable':>12} {'peak memory':>14}"  # fmt: skip
    lines.append(header)
    for t in result.trials:
        memory = f"{t.peak_memory_bytes / 1024**3:.2f} GiB{'*' if t.peak_memory_source == 'estimated' else ''}" if t.peak_memory_bytes else "-"  # fmt: skip
        mark = "<" if t.r == result.choice.r else " "
        lines.append(
            f"{mark} {t.r:>4} {_num(t.lora_alpha):>7} {t.status:<8} {_num(t.quality):>9} {_num(t.val_loss):>9} "
            f"{_num(t.train_seconds, '.1f'):>8} {t.steps:>6} {_count(t.trainable_params):>12} {memory:>14}"
        )
    lines.append("  quality: gain over the base model (" + _quality_name(result) + "); * estimated by the memory model")
    for t in result.trials:
        if t.status != "ok" and t.reason:
            lines.append(f"  r={t.r} {t.status}: {t.reason}")
        for symptom in t.symptoms:
            lines.append(f"  r={t.r} {symptom['name']}: {symptom['message']}")
    for line in result.choice.diminishing_returns:
        lines.append(f"  {line}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    if result.choice.r is not None:
        lines.append(f"chosen: r={result.choice.r} (lora_alpha {_num(result.chosen_alpha)}): {result.choice.reason}")
    else:
        lines.append(f"no rank chosen: {result.choice.reason}")
    if result.locked_config:
        lines.append(f"locked config: {result.locked_config}")
        lines += [f"  {change}" for change in result.lock_changes]
    if result.lock_instructions:
        lines.append("edit the config by hand:")
        lines += [f"  {step}" for step in result.lock_instructions]
    for plot in result.plots:
        lines.append(f"plot: {plot}")
    if result.tracker:
        lines.append(f"tracker: {result.tracker['kind']} run {result.tracker['run_id']} at {result.tracker['uri']}")
    return "\n".join(lines)


def _quality_name(result: Any) -> str:
    names = {t.metric_name for t in result.trials if t.status == "ok"}
    name = names.pop() if len(names) == 1 else "val_loss"
    return "held-out loss before minus after" if name == "val_loss" else f"{name} after minus before"


def _num(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
