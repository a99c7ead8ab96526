"""The learning-rate schedule and warmup a config asks for, so that trials train as the real run will.

These keys are not part of the normalized setup (no rule needs them yet), so they are read
here from the file itself: axolotl ``lr_scheduler`` / ``warmup_steps`` / ``warmup_ratio``,
LLaMA-Factory ``lr_scheduler_type`` and the same warmup keys, torchtune's
``lr_scheduler._component_`` with ``num_warmup_steps``. Schedules other than constant,
linear and cosine train as the nearest of the three, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

KNOWN = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class Schedule:
    name: str = "constant"
    warmup_steps: int = 0  # as written for the full run; a trial keeps its share of the run
    warmup_ratio: float = 0.0
    note: str | None = None


def read_schedule(path: str | Path) -> Schedule:
    """The schedule of a YAML/JSON config (constant without warmup for anything else)."""
    import json

    import yaml

    source = Path(path)
    if source.suffix not in (".yaml", ".yml", ".json"):
        return Schedule()
    try:
        text = source.read_text(encoding="utf-8")
        data = json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return Schedule()
    if not isinstance(data, dict):
        return Schedule()
    return _from_mapping(data)


def _from_mapping(data: dict[str, Any]) -> Schedule:
    raw = data.get("lr_scheduler", data.get("lr_scheduler_type"))
    warmup_steps = data.get("warmup_steps")
    if isinstance(raw, dict):  # torchtune: a component with its own warmup
        warmup_steps = raw.get("num_warmup_steps", warmup_steps)
        raw = str(raw.get("_component_", "")).rsplit(".", 1)[-1]
    name, note = "constant", None
    if isinstance(raw, str) and raw:
        lowered = raw.lower()
        name = next((known for known in KNOWN if known in lowered), "")
        if not name:
            name = "cosine" if "one_cycle" in lowered or "rex" in lowered else "linear" if "poly" in lowered else "constant"  # fmt: skip
            note = f"lr scheduler {raw!r} trained as {name}"
    ratio = data.get("warmup_ratio")
    return Schedule(
        name=name,
        warmup_steps=warmup_steps if isinstance(warmup_steps, int) and warmup_steps > 0 else 0,
        warmup_ratio=float(ratio) if isinstance(ratio, (int, float)) and 0 < ratio < 1 else 0.0,
        note=note,
    )
