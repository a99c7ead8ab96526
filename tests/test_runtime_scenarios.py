"""Planted scenarios: every detector fires where its fault is planted and nowhere else.

Each scenario in ``tests/scenarios/`` is a plain LoraConfig file on a Llama-2-7B-shaped
config, which the runtime builds as a 2-layer CPU proxy. Healthy configs run under
several seeds and must show no symptom at all.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

SCENARIOS = Path(__file__).parent / "scenarios"
HEALTHY_SEEDS = (0, 1, 2)
FAULTY_SEEDS = (0, 1)
# scenario -> (expected symptoms, smoke steps), from the file the calibration benchmark reads too
EXPECTED: dict[str, tuple[set[str], int]] = {
    name: (set(entry["symptoms"]), entry["steps"])
    for name, entry in json.loads((SCENARIOS / "expected.json").read_text()).items()
}
# The 150-step scenarios on the narrow model run in benchmarks/detection_table.py; recorded runs of
# them are tested in test_detectors.py. Two newer healthy kinds run here with one seed.
IN_BENCHMARK_ONLY = {"healthy-tiny-lr-high", "alpha-slow", "overfit-memorize"}
ONE_SEED = {"healthy-alpha-r", "healthy-narrow"}
CASES = [
    (name, seed)
    for name, (expected, _) in EXPECTED.items()
    if name not in IN_BENCHMARK_ONLY
    for seed in ((0,) if name in ONE_SEED else HEALTHY_SEEDS if not expected else FAULTY_SEEDS)
]


@functools.cache
def smoke_run(name: str, seed: int):
    """The smoke run of one scenario (cached: several tests read the same run)."""
    from lora_lint.engine import Linter
    from lora_lint.project import Project
    from lora_lint.runtime.check import ConfigCheck, RuntimeOptions

    path = SCENARIOS / f"{name}.yaml"
    [result] = Linter(Project(SCENARIOS)).lint_bytes(str(path), path.read_bytes())
    check = ConfigCheck(result, RuntimeOptions(device="cpu", steps=EXPECTED[name][1], seed=seed))
    return check, check.smoke()


@pytest.mark.parametrize(("name", "seed"), CASES, ids=[f"{n}-seed{s}" for n, s in CASES])
def test_scenario_shows_exactly_its_planted_symptoms(name, seed):
    check, result = smoke_run(name, seed)
    found = {symptom.name for symptom in result.symptoms}
    assert found == EXPECTED[name][0], [s.message for s in result.symptoms]
    assert check.report_entry()["build"]["proxy"] is (name != "healthy-narrow")  # a 7B config became a CPU proxy
    check.release()


def test_dead_adapter_names_the_tensors_and_the_cause():
    _, result = smoke_run("dropout-one", 0)
    [dead] = [s for s in result.symptoms if s.name == "dead-adapter"]
    assert all("lora_B" in name for name in dead.evidence["zero_grad"])
    assert "lora_dropout" in dead.message


def test_divergence_reports_the_runaway_update():
    _, result = smoke_run("huge-lr", 0)
    [divergence] = result.symptoms
    assert divergence.evidence["max_update_ratio"] > 100


def test_overfit_reports_the_growing_gap():
    _, result = smoke_run("overfit", 0)
    [overfit] = result.symptoms
    assert overfit.evidence["gap_at_last"] > overfit.evidence["gap_at_best"] > 0
    assert result.data["source"] == "local" and result.data["val_sequences"] == 4


def test_healthy_run_starts_at_the_base_models_loss_near_ln_vocab():
    import math

    _, result = smoke_run("healthy", 0)
    record = result.record
    assert record.initial_loss == pytest.approx(record.base_loss, abs=1e-6)
    assert abs(record.initial_loss - math.log(record.vocab_size)) < 1.5
    assert record.losses[-1] < record.losses[0] - 1.0
    assert result.settings["lora_a_lr_multiplier"] == 64.0  # 4096 wide -> 64 wide


def test_alpha_equal_to_r_is_judged_against_the_reference_adapter():
    _, result = smoke_run("healthy-alpha-r", 0)
    assert result.reference is not None and len(result.reference.losses) == len(result.record.losses)
    assert result.symptoms == []


def test_the_full_size_adapter_is_checked_on_the_meta_device_beside_the_proxy():
    check, _ = smoke_run("healthy", 0)
    report = check.shapes()
    full = report.full_size
    assert report.expected_from == "proxy config" and full is not None
    assert full["expected_from"] == "config" and full["problems"] == []
    assert full["trainable_params"] == full["expected_trainable_params"] == check.facts["trainable_params"]
    assert full["adapted_layers"] == 32 * 7  # every linear layer of all 32 Llama-2-7B blocks
