"""Detectors on hand-made runs: each fires on its symptom and stays quiet on healthy curves."""

from __future__ import annotations

import math
import random

import pytest

from lora_lint.runtime.detectors import (
    DETECTORS,
    SYMPTOM_NAMES,
    dead_adapter,
    diagnose,
    divergence,
    initial_loss,
    overfit,
    plateau,
)
from lora_lint.runtime.record import RunRecord
from lora_lint.runtime.stats import mann_kendall


def run(losses: list[float], val: list[tuple[int, float]] | None = None, **fields) -> RunRecord:
    record = RunRecord(learning_rate=2e-4, vocab_size=512, random_weights=True, watch_steps=3, **fields)
    record.losses = losses
    record.grad_norms = [1.0] * len(losses)
    record.val_losses = val or []
    record.update_ratios = [0.1] * len(losses)
    record.base_loss = record.initial_loss = losses[0] if losses else None
    return record


def noisy(values: list[float], scale: float, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [v + rng.gauss(0, scale) for v in values]


def exponential(start: float, floor: float, rate: float, steps: int) -> list[float]:
    return [floor + (start - floor) * math.exp(-rate * i) for i in range(steps)]


# -- statistics -------------------------------------------------------------------------


def test_mann_kendall_on_a_strictly_falling_series():
    trend = mann_kendall([5.0, 4.0, 3.0, 2.0, 1.0])
    assert trend.s == -10
    assert trend.sen_slope == -1.0
    assert trend.decreasing(0.05)


def test_mann_kendall_on_a_flat_series_finds_no_trend():
    trend = mann_kendall([1.0] * 10)
    assert trend.z == 0 and trend.p_value == 1.0 and trend.sen_slope == 0.0


def test_mann_kendall_matches_the_textbook_variance():
    # n = 10 without ties: var(S) = n(n-1)(2n+5)/18 = 125; S = 45 -> Z = 44 / sqrt(125)
    trend = mann_kendall([float(i) for i in range(10)])
    assert trend.z == pytest.approx(44 / math.sqrt(125))
    assert trend.p_value == pytest.approx(math.erfc(trend.z / math.sqrt(2)))


def test_mann_kendall_needs_three_values():
    with pytest.raises(ValueError):
        mann_kendall([1.0, 2.0])


# -- plateau ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_noisy_flat_loss_is_a_plateau(seed):
    symptom = plateau(run(noisy([7.0] * 30, 0.1, seed)))
    assert symptom is not None and symptom.name == "plateau"
    assert {"sen_slope", "improvement", "p_value"} <= set(symptom.evidence)
    assert "lora_alpha" in symptom.message and "learning rate" in symptom.message


@pytest.mark.parametrize("seed", range(5))
def test_fast_learning_then_saturation_is_convergence_not_plateau(seed):
    losses = noisy(exponential(7.0, 1.0, 0.4, 40), 0.05, seed)
    assert plateau(run(losses)) is None


def test_saturated_tail_alone_would_be_a_plateau_but_the_whole_run_is_not():
    losses = [max(1.0, 7.0 - 0.6 * i) for i in range(40)]  # learns, then sits exactly at its floor
    assert plateau(run(losses[20:])) is not None
    assert plateau(run(losses)) is None


def test_slow_steady_decline_is_not_a_plateau():
    assert plateau(run(noisy([7.0 - 0.01 * i for i in range(30)], 0.02))) is None


def test_held_out_improvement_counts_as_learning():
    flat_train = noisy([7.0] * 30, 0.1)
    val = [(s, 7.0 - 0.01 * s) for s in range(0, 31, 5)]
    assert plateau(run(flat_train, val)) is None


def test_short_runs_are_not_judged():
    assert plateau(run([7.0] * 5)) is None


# -- divergence -------------------------------------------------------------------------


def test_nan_loss_is_divergence():
    symptom = divergence(run([7.0, 6.5, float("nan")]))
    assert symptom is not None and symptom.evidence["step"] == 2


def test_infinite_grad_norm_is_divergence():
    record = run([7.0, 6.5, 6.4])
    record.grad_norms[1] = float("inf")
    assert divergence(record).evidence["step"] == 1


def test_loss_climbing_back_above_its_best_is_divergence():
    losses = exponential(7.0, 3.0, 0.3, 15) + [3.0 + 0.5 * i for i in range(15)]
    symptom = divergence(run(losses))
    assert symptom is not None and symptom.evidence["rise"] > symptom.evidence["allowed_rise"]


def test_training_loss_climbing_while_held_out_loss_is_at_its_best_is_not_divergence():
    # Harder batches late in a run lift the training loss; held-out loss still at a new best is not divergence.
    losses = exponential(7.0, 3.0, 0.3, 15) + [3.0 + 0.5 * i for i in range(15)]
    falling = [(step, 8.0 - 0.2 * i) for i, step in enumerate(range(0, 30, 5))]
    assert divergence(run(losses, falling)) is None
    rising = falling[:-1] + [(29, falling[-2][1] + 0.5)]  # the same run once held-out loss turns up
    assert divergence(run(losses, rising)) is not None


def test_runaway_adapter_weights_are_divergence():
    record = run(noisy([7.0] * 20, 0.1))
    record.update_ratios[3] = 1e5
    symptom = divergence(record)
    assert symptom is not None and symptom.evidence["step"] == 3


def test_noisy_healthy_descent_is_not_divergence():
    for seed in range(5):
        assert divergence(run(noisy(exponential(7.0, 2.0, 0.1, 30), 0.15, seed))) is None


def test_a_single_spike_is_not_divergence():
    losses = exponential(7.0, 2.0, 0.2, 30)
    losses[20] = 12.0
    assert divergence(run(losses)) is None


# -- overfit ----------------------------------------------------------------------------


def test_rising_held_out_loss_while_training_falls_is_overfit():
    losses = exponential(7.0, 0.1, 0.1, 100)
    val = [(s, 6.0 + (s - 20) * 0.02 if s > 20 else 7.0 - s * 0.05) for s in range(0, 101, 10)]
    symptom = overfit(run(losses, val))
    assert symptom is not None
    assert symptom.evidence["gap_at_last"] > symptom.evidence["gap_at_best"]


def test_held_out_loss_that_saturates_is_not_overfit():
    losses = noisy(exponential(7.0, 1.0, 0.2, 60), 0.05)
    val = [(s, v) for s, v in zip(range(0, 61, 6), noisy(exponential(7.0, 1.1, 0.25, 11), 0.03, seed=3), strict=True)]
    assert overfit(run(losses, val)) is None


def test_one_bad_evaluation_is_not_overfit():
    losses = exponential(7.0, 1.0, 0.2, 60)
    val = [(s, 7.0 - 0.1 * i) for i, s in enumerate(range(0, 61, 6))]
    val[-1] = (60, 9.0)
    assert overfit(run(losses, val)) is None


def test_overfit_needs_enough_evaluations():
    assert overfit(run([7.0, 6.0, 5.0], [(0, 7.0), (1, 8.0)])) is None


# -- dead adapter and initial loss ------------------------------------------------------


def test_missing_gradients_are_a_dead_adapter():
    symptom = dead_adapter(run([7.0] * 5, grads_missing=["layers.0.q_proj.lora_A.default.weight"]))
    assert symptom is not None and "4-bit" in symptom.message


def test_zero_gradients_are_a_dead_adapter():
    symptom = dead_adapter(run([7.0] * 5, grads_zero=["layers.0.q_proj.lora_B.default.weight"]))
    assert symptom is not None and "lora_dropout" in symptom.message


def test_lora_b_that_never_moves_is_a_dead_adapter():
    assert dead_adapter(run([7.0] * 5, frozen_lora_b=["layers.0.q_proj.lora_B.default.weight"])) is not None


def test_a_live_adapter_is_not_dead():
    assert dead_adapter(run([7.0] * 5)) is None


def test_adapter_that_changes_the_initial_loss():
    record = run([7.2] * 5)
    record.base_loss = 7.0
    symptom = initial_loss(record)
    assert symptom is not None and symptom.evidence["difference"] == pytest.approx(0.2)


def test_random_weights_far_from_ln_vocab():
    record = run([25.0] * 5)
    assert initial_loss(record) is not None
    assert initial_loss(run([math.log(512) + 0.8] * 5)) is None


def test_pretrained_model_worse_than_uniform():
    record = run([9.0] * 5)
    record.random_weights = False
    assert "tokenizer" in initial_loss(record).message
    record.losses = [2.0] * 5
    record.base_loss = record.initial_loss = 2.0
    assert initial_loss(record) is None


def test_diagnose_runs_every_detector_in_order():
    assert SYMPTOM_NAMES == ("dead-adapter", "initial-loss", "divergence", "plateau", "overfit")
    assert tuple(DETECTORS) == SYMPTOM_NAMES
    names = [s.name for s in diagnose(run(noisy([7.0] * 30, 0.1), grads_zero=["x.lora_B"]))]
    assert names == ["dead-adapter", "plateau"]


# -- recorded runs: the three cases the detectors once got wrong -------------------------


def recorded(name: str) -> tuple[RunRecord, RunRecord | None]:
    """A real smoke run of a planted scenario (tests/scenarios/recorded/, from benchmarks/detection_table.py)."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).parent / "scenarios" / "recorded" / f"{name}.json").read_text())

    def record(fields):
        if fields is None:
            return None
        return RunRecord(**{**fields, "val_losses": [tuple(pair) for pair in fields["val_losses"]]})

    return record(data["record"]), record(data["reference"])


def test_a_large_update_ratio_while_both_losses_fall_is_not_divergence():
    record, _ = recorded("healthy-tiny-lr-high")
    assert max(record.update_ratios) > 100  # the old verdict's trigger
    assert record.losses[-1] < record.losses[0] - 0.5 and record.val_losses[-1][1] < record.val_losses[0][1] - 0.5
    assert diagnose(record) == []


def test_a_modest_but_significant_held_out_rise_is_overfit_whatever_the_loss_scale():
    record, _ = recorded("overfit-memorize")
    symptom = overfit(record)
    assert symptom is not None
    assert symptom.evidence["val_rise"] < 0.1 * symptom.evidence["best_val_loss"]  # the old 10 % rule missed it
    for factor in (0.1, 10.0):
        scaled = run([v * factor for v in record.losses], [(s, v * factor) for s, v in record.val_losses])
        assert overfit(scaled) is not None


def test_slow_learning_is_a_plateau_only_against_the_reference():
    record, reference = recorded("alpha-slow")
    assert record.losses[-1] < record.losses[0]  # it does learn, slowly: the absolute bars pass it
    assert plateau(record) is None
    symptom = plateau(record, reference)
    assert symptom is not None and symptom.evidence["reference_ratio"] < 0.3
    assert "lora_alpha" in symptom.message and [s.name for s in diagnose(record, reference)] == ["plateau"]


def test_half_the_reference_gain_is_healthy():
    val = [(s, 7.0 - 0.05 * s) for s in range(0, 31, 3)]
    reference_val = [(s, 7.0 - 0.1 * s) for s in range(0, 31, 3)]
    record = run(noisy(exponential(7.0, 5.0, 0.05, 30), 0.05), val)
    reference = run(noisy(exponential(7.0, 4.0, 0.05, 30), 0.05), reference_val)
    assert plateau(record, reference) is None


def test_a_reference_that_did_not_learn_is_no_yardstick():
    slow = run(noisy([7.0 - 0.01 * i for i in range(30)], 0.02), [(0, 7.0), (15, 6.9), (30, 6.8)])
    stuck = run(noisy([7.0] * 30, 0.02), [(0, 7.0), (15, 7.0), (30, 7.0)])
    assert plateau(slow, stuck) is None


def test_runaway_update_with_a_falling_loss_is_not_divergence():
    record = run(noisy(exponential(7.0, 2.0, 0.1, 30), 0.05))
    record.update_ratios[5] = 1e5
    assert divergence(record) is None


def test_held_out_loss_rising_from_the_start_while_training_falls_is_overfit():
    losses = exponential(4.2, 3.5, 0.05, 60)
    val = [(s, 4.15 + 0.001 * s) for s in range(0, 61, 6)]
    assert overfit(run(losses, val)) is not None


def test_changed_logits_reveal_an_adapter_that_is_not_a_no_op_even_at_equal_loss():
    record = run([7.0] * 5)
    record.initial_output_change = 0.05  # the adapter moved the logits; the mean loss happened to stay
    symptom = initial_loss(record)
    assert symptom is not None and symptom.evidence["output_change"] == 0.05 and "logits" in symptom.message
    record.initial_output_change = 0.0  # B = 0: bit-identical logits
    assert initial_loss(record) is None
