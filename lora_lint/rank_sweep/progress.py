"""Progress of a sweep on the terminal: one bar per trial, updated from whichever backend runs it."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    """What a backend reports while trials run (the local loop and Ray's driver call the same three)."""

    def step(self, r: int, step: int, total: int, loss: float) -> None: ...
    def done(self, result: Any) -> None: ...
    def close(self) -> None: ...


class Silent:
    """No output (the API's default, and ``--format json``)."""

    def step(self, r: int, step: int, total: int, loss: float) -> None:
        return None

    def done(self, result: Any) -> None:
        return None

    def close(self) -> None:
        return None


class Bars:
    """A tqdm bar per trial on stderr; a finished trial leaves one line with its outcome."""

    def __init__(self) -> None:
        self.bars: dict[int, Any] = {}

    def step(self, r: int, step: int, total: int, loss: float) -> None:
        from tqdm import tqdm

        bar = self.bars.get(r)
        if bar is None:
            bar = self.bars[r] = tqdm(total=total, desc=f"r={r}", unit="step", leave=False, file=sys.stderr,
                                      position=len(self.bars))  # fmt: skip
        bar.update(step + 1 - bar.n)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def done(self, result: Any) -> None:
        bar = self.bars.pop(result.r, None)
        if bar is not None:
            bar.close()
        if result.status == "ok":
            outcome = f"quality {result.quality:.4g} in {result.train_seconds:.1f} s ({result.steps} steps)"
        else:
            outcome = f"{result.status}: {result.reason}"
        print(f"  r={result.r}: {outcome}", file=sys.stderr)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
