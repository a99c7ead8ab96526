"""Settings and flags that must fail loudly or be forgiving in the right places."""

from __future__ import annotations

import pytest

from lora_lint.cli import main

ALPHA_FROM_OLDER_RANK = "base_model: gpt2\nadapter: lora\nlora_r: 128\nlora_alpha: 16\nlora_target_modules: [c_attn]\n"


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / ".cache"))
    (tmp_path / "train.yml").write_text(ALPHA_FROM_OLDER_RANK)
    return tmp_path


def test_rule_codes_are_matched_in_any_case(config, capsys):
    assert main(["check", "train.yml", "--select", "ll106", "--fail-on", "warning"]) == 1
    assert "LL106" in capsys.readouterr().out
    (config / "pyproject.toml").write_text('[tool.lora-lint]\nignore = ["ll106"]\n')
    assert main(["check", "train.yml", "--select", "LL106", "--fail-on", "warning"]) == 0


def test_option_of_the_wrong_kind_names_the_settings_file(config, capsys):
    (config / "pyproject.toml").write_text('[tool.lora-lint.options.LL106]\nmin_alpha_over_r = "0.5"\n')
    assert main(["check", "train.yml"]) == 2
    err = capsys.readouterr().err
    assert "pyproject.toml: option 'min_alpha_over_r' of rule alpha-far-below-rank wants a value like 0.25" in err


def test_option_changes_the_threshold(config, capsys):
    (config / "pyproject.toml").write_text("[tool.lora-lint.options.alpha-far-below-rank]\nmin_alpha_over_r = 0.1\n")
    main(["check", "train.yml", "--format", "text"])
    assert "LL106" not in capsys.readouterr().out


def test_negative_dataset_size_is_refused(config, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "train.yml", "--dataset-examples", "-5"])
    assert exc.value.code == 2
    (config / "pyproject.toml").write_text("[tool.lora-lint]\ndataset-examples = -5\n")
    assert main(["check", "train.yml"]) == 2
    assert "must not be negative" in capsys.readouterr().err


def test_unwritable_output_is_a_usage_error(config, capsys):
    assert main(["check", "train.yml", "-o", str(config / "missing" / "report.txt")]) == 2
    assert "cannot write" in capsys.readouterr().err
