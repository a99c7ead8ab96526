"""Bad input stops a sweep before any training: one line, exit 2, nothing written in --output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lora_lint.cli import main
from lora_lint.rank_sweep.options import SweepInputError, SweepOptions, parse_ranks
from lora_lint.rank_sweep.plan import alpha_for_rank, plan_sweep
from lora_lint.rank_sweep.schedule import read_schedule

TORCHTUNE_SCHEDULE = """\
lr_scheduler:
  _component_: torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup
  num_warmup_steps: 10
"""
MODEL_CONFIG = '{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64}'  # fmt: skip
CONFIG = """\
# a commented config
r: 8
lora_alpha: 16
target_modules: [q_proj, v_proj]
base_model: tiny
learning_rate: 0.01
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny/config.json").write_text(MODEL_CONFIG)
    (tmp_path / "train.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["sweep", *args, "--output", "out"])
    return code, capsys.readouterr().err


def assert_usage_error(code: int, err: str, expected: str, workdir: Path) -> None:
    assert code == 2
    assert err.count("\n") == 1 and expected in err, err
    assert not (workdir / "out").exists()


def test_bad_rank_list(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["train.yaml", "--ranks", "0,-4,abc"], capsys)
    assert_usage_error(code, err, "--ranks wants positive integers separated by commas, got '0,-4,abc'", workdir)


@pytest.mark.parametrize("text", ["", "4,,x", "0", "-4", "4.5"])
def test_parse_ranks_rejects(text: str) -> None:
    with pytest.raises(SweepInputError):
        parse_ranks(text)


def test_not_a_lora_config(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    code, err = run_cli(["compose.yaml"], capsys)
    assert_usage_error(code, err, "compose.yaml: no LoRA configuration found", workdir)


def test_missing_data_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "train.yaml").write_text(CONFIG + "datasets:\n  - path: data/missing.jsonl\n")
    code, err = run_cli(["train.yaml"], capsys)
    assert_usage_error(code, err, "train.yaml:7: dataset 'data/missing.jsonl' does not exist", workdir)


def test_tracker_not_installed(workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "wandb", None)  # import machinery: "not installed"
    code, err = run_cli(["train.yaml", "--tracker", "wandb"], capsys)
    assert_usage_error(code, err, "--tracker wandb needs wandb: pip install 'lora-lint[wandb]'", workdir)


def test_ray_not_installed(workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", None)
    code, err = run_cli(["train.yaml", "--backend", "ray"], capsys)
    assert_usage_error(code, err, "--backend ray needs Ray: pip install 'lora-lint[ray]'", workdir)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--quality-target", "1.5"], "quality-target must be a number in (0, 1], got 1.5"),
        (["--time-budget", "0"], "time-budget must be a number in (0, 1], got 0.0"),
        (["--data-fraction", "-1"], "data-fraction must be a number in (0, 1]"),
        (["--steps", "0"], "steps must be a positive integer"),
        (["--gpu", "Z9000"], "--gpu: unknown GPU 'Z9000'"),
        (["--metric", "no_such_module:score"], "--metric no_such_module:score: No module named 'no_such_module'"),
    ],
)
def test_bad_options(workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str) -> None:
    code, err = run_cli(["train.yaml", *args], capsys)
    assert_usage_error(code, err, expected, workdir)


def test_settings_table_is_read_and_checked(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "pyproject.toml").write_text('[tool.lora-lint.sweep]\nranks = [2, 4]\nquality-targt = 0.9\n')
    code, err = run_cli(["train.yaml"], capsys)
    assert_usage_error(code, err, "unknown setting 'quality-targt' (did you mean 'quality-target'?)", workdir)


def test_settings_table_values(workdir: Path) -> None:
    from lora_lint.rank_sweep.api import project_defaults

    (workdir / "pyproject.toml").write_text('[tool.lora-lint.sweep]\nranks = [16, 2]\ntime-budget = 0.5\n')
    assert project_defaults(None) == {"ranks": (16, 2), "time_budget": 0.5}
    assert SweepOptions(**project_defaults(None)).checked().ranks == (2, 16)


def test_alpha_follows_the_written_ratio(workdir: Path) -> None:
    setup = plan_sweep("train.yaml", SweepOptions(ranks=(4,))).setup
    assert [alpha_for_rank(setup, r, "follow") for r in (2, 4, 32)] == [4, 8, 64]
    assert alpha_for_rank(setup, 32, "fixed") == 16


def test_alpha_without_a_written_alpha_is_2r_and_rslora_keeps_alpha_over_sqrt_r(workdir: Path) -> None:
    (workdir / "train.yaml").write_text(CONFIG.replace("lora_alpha: 16\n", ""))
    assert alpha_for_rank(plan_sweep("train.yaml", SweepOptions()).setup, 4, "follow") == 8
    (workdir / "train.yaml").write_text(CONFIG + "use_rslora: true\n")
    assert alpha_for_rank(plan_sweep("train.yaml", SweepOptions()).setup, 32, "follow") == 32  # 16 * sqrt(32 / 8)


def test_rank_wider_than_a_layer_is_skipped_before_training(workdir: Path) -> None:
    plan = plan_sweep("train.yaml", SweepOptions(ranks=(8, 64)))
    reasons = {trial.r: trial.skip_reason for trial in plan.trials}
    assert reasons[8] is None
    assert "r 64 exceeds the smaller dimension" in reasons[64]


def test_rank_that_does_not_fit_the_gpu_is_skipped(workdir: Path) -> None:
    (workdir / "big.yaml").write_text(CONFIG.replace("base_model: tiny", "base_model: meta-llama/Llama-2-70b-hf") + "sequence_len: 4096\nmicro_batch_size: 8\n")  # fmt: skip
    plan = plan_sweep("big.yaml", SweepOptions(ranks=(8,), gpu="T4"))
    assert "does not fit" in plan.trials[0].skip_reason


@pytest.mark.parametrize(
    ("text", "name", "warmup_steps", "warmup_ratio"),
    [
        ("lr_scheduler: cosine\nwarmup_steps: 100\n", "cosine", 100, 0.0),  # axolotl
        ("lr_scheduler_type: linear\nwarmup_ratio: 0.1\n", "linear", 0, 0.1),  # LLaMA-Factory
        (TORCHTUNE_SCHEDULE, "cosine", 10, 0.0),
        ("learning_rate: 0.1\n", "constant", 0, 0.0),
    ],
)
def test_schedule_is_read_from_the_file(tmp_path: Path, text: str, name: str, warmup_steps: int, warmup_ratio: float) -> None:  # fmt: skip
    (tmp_path / "c.yaml").write_text(text)
    schedule = read_schedule(tmp_path / "c.yaml")
    assert (schedule.name, schedule.warmup_steps, schedule.warmup_ratio) == (name, warmup_steps, warmup_ratio)
