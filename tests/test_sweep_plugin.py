"""The lora_sweep fixture: CI asserts that the locked rank is still the one the sweep picks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tests.guard_models import single_thread

pytest_plugins = ["pytester"]

TINY_MODEL = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64, "max_position_embeddings": 64}  # fmt: skip
CONFIG = """\
r: 4
lora_alpha: 8
target_modules: [q_proj, v_proj]
base_model: tiny
sequence_len: 16
micro_batch_size: 8
learning_rate: 0.01
"""
POLICY = """\
def test_locked_rank_is_the_sweeps_choice(lora_setup, lora_sweep):
    assert [t.r for t in lora_sweep.trials] == [2, 4]
    assert lora_sweep.choice.quality_target == 0.9
    assert lora_sweep.r == lora_setup.get("r"), lora_sweep.choice.reason
"""


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Trials of a 32-wide model gain nothing from a second thread, and lose much when the cores are shared."""
    with single_thread():
        yield


def test_lora_sweep_fixture(pytester: pytest.Pytester) -> None:
    (pytester.path / "configs/tiny").mkdir(parents=True)
    (pytester.path / "configs/tiny/config.json").write_text(json.dumps(TINY_MODEL))
    (pytester.path / "configs/train.yaml").write_text(CONFIG)
    (pytester.path / "pyproject.toml").write_text("[tool.lora-lint.sweep]\nsteps = 8\nquality-target = 0.9\ntime-budget = 1.0\n")  # fmt: skip
    pytester.makepyfile(test_policy=POLICY)
    result = pytester.runpytest("--lora-check", "--lora-sweep", "2,4", "configs", "test_policy.py", "-k", "locked")
    result.assert_outcomes(passed=1)  # r 2 gains well under 90 % of what r 4 gains on this task


def test_lora_sweep_fixture_reports_a_bad_rank_list(pytester: pytest.Pytester) -> None:
    (pytester.path / "configs/tiny").mkdir(parents=True)
    (pytester.path / "configs/tiny/config.json").write_text(json.dumps(TINY_MODEL))
    (pytester.path / "configs/train.yaml").write_text(CONFIG)
    pytester.makepyfile(test_policy=POLICY)
    result = pytester.runpytest("--lora-check", "--lora-sweep", "0,x", "configs", "test_policy.py", "-k", "locked")
    result.assert_outcomes(errors=1)  # the fixture fails, so the test errors in setup
    result.stdout.fnmatch_lines(["*lora_sweep: --ranks wants positive integers separated by commas, got '0,x'*"])
