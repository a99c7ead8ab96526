"""The sweep finds a planted intrinsic rank (the short form of benchmarks/sweep_planted_rank.py).

The teacher differs from the base by a rank-2 change on q_proj and v_proj: rank 1 cannot
represent it, rank 2 can, rank 4 adds nothing. Trials run close to convergence; shorter
ones measure how fast a rank learns rather than what it can reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tests.guard_models import single_thread
from tests.planted_rank import plant

STEPS = 300  # at lr 1e-2 and batch 32 every rank has converged by then (the report's `converged`)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """A 64-wide model gains nothing from a second thread, and loses much when the cores are shared."""
    with single_thread():
        yield


@pytest.mark.slow
def test_knee_at_the_planted_rank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lora_lint

    monkeypatch.chdir(tmp_path)
    config = plant(tmp_path, k=2, seed=0)
    result = lora_lint.sweep(config, ranks=(1, 2, 4), data_fraction=1.0, steps=STEPS, time_budget=1.0)
    gains = {t.r: t.quality for t in result.trials}
    assert result.r == 2, gains
    assert gains[1] < 0.8 * gains[2]  # clearly worse below the planted rank, not a near miss
    assert all(t.converged for t in result.trials)

