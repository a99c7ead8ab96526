"""The lora-check JSON report and its loss plot.

The report is a contract other tools read: ``{"configs": [{"path", "device", "build",
"items", "symptoms", "losses", "val_losses", "timings", ...}]}``. JSON has no NaN, so
a diverged loss is written as null.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def write_report(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe({"configs": entries}), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def merge_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per config, sorted by path: pytest-xdist spreads a config's items over workers,
    and each worker reports the items it ran. The first non-empty value of a field wins."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        into = merged.setdefault(entry["path"], {})
        for key, value in entry.items():
            if key in ("items", "timings"):
                into[key] = {**into.get(key, {}), **value}
            elif value not in (None, [], {}, "") and into.get(key) in (None, [], {}, ""):
                into[key] = value
            else:
                into.setdefault(key, value)
    return [merged[path] for path in sorted(merged)]


def json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def plot_losses(entry: dict[str, Any], path: Path) -> None:
    """Training and held-out loss of one config, symptoms in the title, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=100)
    losses = entry.get("losses") or []
    axes.plot(range(len(losses)), losses, label="train", linewidth=1.2)
    val = entry.get("val_losses") or []
    if val:
        axes.plot([s for s, _ in val], [v for _, v in val], "o-", label="held-out", linewidth=1.2)
    names = ", ".join(s["name"] for s in entry.get("symptoms", [])) or "no symptoms"
    axes.set_title(f"{Path(entry['path']).name}: {names}", fontsize=10)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
