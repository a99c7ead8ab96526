"""The Ray backend on a local 2-CPU Ray: the same trials and the same choice as the local backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")

TINY_MODEL = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64, "max_position_embeddings": 64}  # fmt: skip
CONFIG = """\
r: 8
lora_alpha: 16
target_modules: [q_proj, v_proj]
base_model: tiny
sequence_len: 16
micro_batch_size: 8
learning_rate: 0.01
"""


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One Ray session for the module: its start-up costs seconds."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_backend_agrees_with_local(local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lora_lint

    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny/config.json").write_text(json.dumps(TINY_MODEL))
    (tmp_path / "train.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    # The time budget is opened up: two trials racing for two cores cannot be compared on time.
    common = {"ranks": (2, 4), "steps": 8, "time_budget": 1.0}
    local = lora_lint.sweep("train.yaml", backend="local", **common)
    remote = lora_lint.sweep("train.yaml", backend="ray", output=tmp_path / "out", **common)
    assert [(t.r, t.status, t.reason) for t in remote.trials] == [(r, "ok", None) for r in common["ranks"]]
    assert remote.backend == "ray" and remote.r == local.r
    for ours, theirs in zip(local.trials, remote.trials):
        assert (theirs.r, theirs.status, theirs.steps) == (ours.r, "ok", common["steps"])
        assert theirs.quality == pytest.approx(ours.quality, rel=1e-3)
        assert theirs.val_losses[0] == pytest.approx(ours.val_losses[0], rel=1e-4)  # same base, same data
    assert json.loads((tmp_path / "out/sweep.json").read_text())["backend"] == "ray"
