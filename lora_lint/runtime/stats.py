"""Mann-Kendall trend test and Sen's slope: a noise-robust reading of a loss curve.

Both are rank statistics, so a few loss spikes cannot fake or hide a trend, and both
are a few lines of pure Python, which keeps scipy off the runtime path.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Trend:
    """Result of the Mann-Kendall test on a series, with Sen's slope (change per step)."""

    s: int
    z: float
    p_value: float  # two-sided
    sen_slope: float

    def decreasing(self, alpha: float) -> bool:
        """True when the series falls with one-sided significance ``alpha``."""
        return self.z < 0 and self.p_value / 2 < alpha


def mann_kendall(values: list[float]) -> Trend:
    """Mann-Kendall S, its normal approximation Z (tie-corrected), p-value and Sen's slope."""
    n = len(values)
    if n < 3:
        raise ValueError("a trend needs at least 3 values")
    s = 0
    slopes = []
    for i in range(n - 1):
        for j in range(i + 1, n):
            difference = values[j] - values[i]
            s += (difference > 0) - (difference < 0)
            slopes.append(difference / (j - i))
    ties = sum(t * (t - 1) * (2 * t + 5) for t in Counter(values).values() if t > 1)
    variance = (n * (n - 1) * (2 * n + 5) - ties) / 18
    if variance <= 0 or s == 0:
        z = 0.0
    else:
        z = (s - 1 if s > 0 else s + 1) / math.sqrt(variance)
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return Trend(s, z, p_value, statistics.median(slopes))
