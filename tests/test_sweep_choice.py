"""The choice rule on hand-made numbers: the article's worked example, and every way the rule can fail."""

from __future__ import annotations

from lora_lint.rank_sweep.choice import Candidate, choose_rank

BASE_ACCURACY = 85.0
ARTICLE = {8: 92.0, 16: 94.0, 32: 94.1}  # accuracy after training; times 1 / 2 / 4
TIMES = {8: 1.0, 16: 2.0, 32: 4.0}


def test_article_example_on_gain_over_base_picks_16() -> None:
    trials = [Candidate(r, ARTICLE[r] - BASE_ACCURACY, TIMES[r]) for r in ARTICLE]
    choice = choose_rank(trials)
    assert choice.r == 16
    assert "r 16 reaches 99% of the best gain" in choice.reason
    assert any("r 16 -> 32" in line and "not worth it" in line for line in choice.diminishing_returns)


def test_article_example_on_raw_accuracy_would_pick_8() -> None:
    """Why quality is the gain: on raw accuracy 92 is above 95 % of 94.1, and the rule stops at r 8."""
    trials = [Candidate(r, ARTICLE[r], TIMES[r]) for r in ARTICLE]
    assert choose_rank(trials).r == 8


def test_time_budget_failure_names_the_constraint_and_recommends() -> None:
    trials = [Candidate(4, 1.0, 1.0), Candidate(8, 5.0, 9.0), Candidate(16, 5.1, 10.0)]
    choice = choose_rank(trials)
    assert choice.r is None
    assert choice.recommendation == 8
    assert "more than 70% of the slowest" in choice.reason


def test_thresholds_are_options() -> None:
    trials = [Candidate(r, ARTICLE[r] - BASE_ACCURACY, TIMES[r]) for r in ARTICLE]
    assert choose_rank(trials, quality_target=0.999, time_budget=1.0).r == 32
    assert choose_rank(trials, quality_target=0.75, time_budget=0.7).r == 8


def test_no_gain_chooses_nothing() -> None:
    choice = choose_rank([Candidate(4, -0.1, 1.0), Candidate(8, 0.0, 2.0)])
    assert choice.r is None and "no rank improved" in choice.reason


def test_no_finished_trial() -> None:
    assert choose_rank([]).r is None
