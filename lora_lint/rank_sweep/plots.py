"""Two plots a reviewer reads at a glance: rank against quality, rank against training time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

QUALITY_PLOT = "sweep-quality.png"
TIME_PLOT = "sweep-time.png"


def plot_sweep(result: Any, folder: Path) -> list[str]:
    """Write both plots into ``folder`` (the chosen rank marked); returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in result.trials if t.status == "ok"]
    chosen = result.choice.r
    best = max((t.quality for t in done), default=None)
    panels = (
        (QUALITY_PLOT, "quality (gain over the base model)", lambda t: t.quality),
        (TIME_PLOT, "training time (s)", lambda t: t.train_seconds),
    )
    for name, label, value in panels:
        figure, axes = plt.subplots(figsize=(5, 3.5))
        axes.plot([t.r for t in done], [value(t) for t in done], marker="o")
        if name == QUALITY_PLOT and best is not None and best > 0:
            axes.axhline(result.choice.quality_target * best, linestyle=":", color="grey",
                         label=f"{result.choice.quality_target:.0%} of the best")  # fmt: skip
        if name == TIME_PLOT and done:
            slowest = max(t.train_seconds for t in done)
            axes.axhline(result.choice.time_budget * slowest, linestyle=":", color="grey",
                         label=f"{result.choice.time_budget:.0%} of the slowest")  # fmt: skip
        for t in done:
            if t.r == chosen:
                axes.plot([t.r], [value(t)], marker="*", markersize=16, color="tab:red", linestyle="", label=f"chosen r={t.r}")  # fmt: skip
        axes.set_xscale("log", base=2)
        axes.set_xticks([t.r for t in result.trials], [str(t.r) for t in result.trials])
        axes.set_xlabel("rank r")
        axes.set_ylabel(label)
        axes.legend(loc="best", fontsize="small")
        figure.tight_layout()
        figure.savefig(folder / name, dpi=100)
        plt.close(figure)
    return [QUALITY_PLOT, TIME_PLOT]
