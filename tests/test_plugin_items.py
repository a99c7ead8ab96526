"""The pytest plugin, driven through pytester: items, report contract, fixtures, markers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

pytest_plugins = ["pytester"]

MODEL = Path(__file__).parent / "scenarios/models/llama-7b"
HEALTHY = """\
r: 16
lora_alpha: 32
lora_dropout: 0.05
target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]
base_model: models/llama-7b
sequence_len: 32
micro_batch_size: 8
learning_rate: 0.0002
"""
DEAD = HEALTHY.replace("lora_dropout: 0.05", "lora_dropout: 1.0")
NOTED = HEALTHY.replace("lora_alpha: 32", "lora_alpha: 8")  # alpha below r: an info finding, not an error
SYMPTOM_NAMES = {"dead-adapter", "initial-loss", "divergence", "plateau", "overfit"}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(MODEL, pytester.path / "configs/models/llama-7b")
    (pytester.path / "configs/healthy.yaml").write_text(HEALTHY)
    (pytester.path / "configs/dead.yaml").write_text(DEAD)
    return pytester


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """nodeid -> outcome from ``-rA`` lines such as ``PASSED configs/healthy.yaml::smoke``."""
    found = {}
    for line in result.outlines:
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "SKIPPED", "ERROR") and "::" in rest:
            found[rest.split(" ")[0]] = word
    return found


def test_plugin_import_is_light():
    code = "import sys, lora_lint.pytest_plugin; print(sorted(m for m in ('torch', 'transformers', 'peft', 'lora_lint.engine') if m in sys.modules))"  # fmt: skip
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_configs_are_not_collected_without_the_flag(project):
    result = project.runpytest("configs")
    result.assert_outcomes()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_lora_check_runs_static_shapes_and_smoke_items_and_writes_the_report(project):
    result = project.runpytest("--lora-check", "configs", "--lora-steps", "12", "--lora-report", "out/report.json", "-rA")  # fmt: skip
    seen = outcomes(result)
    assert seen == {
        "configs/dead.yaml::static": "FAILED",  # LL104: dropout 1.0 is an error statically too
        "configs/dead.yaml::shapes": "PASSED",
        "configs/dead.yaml::smoke": "FAILED",
        "configs/healthy.yaml::static": "PASSED",
        "configs/healthy.yaml::shapes": "PASSED",
        "configs/healthy.yaml::smoke": "PASSED",
    }
    result.stdout.fnmatch_lines(["*dead-adapter: * all-zero gradient*", "lora-check report: out/report.json"])
    report = json.loads((project.path / "out/report.json").read_text())
    assert [Path(c["path"]).name for c in report["configs"]] == ["dead.yaml", "healthy.yaml"]
    for config in report["configs"]:
        assert {"path", "device", "build", "items", "symptoms", "losses", "val_losses", "timings"} <= set(config)
        assert set(config["items"]) == {"static", "shapes", "smoke"}
        assert config["device"] == "cpu" and config["build"]["proxy"] is True
        assert len(config["losses"]) == 12 and config["val_losses"]
        assert {s["name"] for s in config["symptoms"]} <= SYMPTOM_NAMES
        assert all(set(s) == {"name", "message", "evidence"} for s in config["symptoms"])
    dead, healthy = report["configs"]
    assert dead["items"]["smoke"]["outcome"] == "failed"
    assert "dead-adapter" in {s["name"] for s in dead["symptoms"]}
    assert healthy["symptoms"] == [] and healthy["items"]["smoke"] == {"outcome": "passed", "message": ""}
    assert healthy["build"]["shapes"]["expected_from"] == "proxy config"


def test_fail_on_decides_which_findings_fail_the_static_item(project):
    (project.path / "configs/dead.yaml").unlink()
    (project.path / "configs/healthy.yaml").write_text(NOTED)
    passing = project.runpytest("--lora-check", "configs", "-k", "static")
    passing.assert_outcomes(passed=1, deselected=2)
    failing = project.runpytest("--lora-check", "configs", "-k", "static", "--lora-fail-on", "info")
    failing.assert_outcomes(failed=1, deselected=2)
    failing.stdout.fnmatch_lines(["*configs/healthy.yaml:2:1: LL* [[]info[]] lora_alpha 8 with r 16*"])


def test_unknown_base_model_skips_runtime_items_with_a_reason(pytester):
    (pytester.path / "lora.yaml").write_text(HEALTHY.replace("models/llama-7b", "nobody/private-model-xyz"))
    result = pytester.runpytest("--lora-check", "lora.yaml", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*not known offline*"])


def test_fixtures_run_over_configs_from_the_ini_option(project):
    project.makeini("[pytest]\nlora_check_paths = configs/*.yaml\n")
    project.makepyfile(
        test_policy="""
        def test_rank_is_a_power_of_two(lora_setup, lora_facts):
            assert lora_setup.get("r") & (lora_setup.get("r") - 1) == 0
            assert lora_facts["trainable_params"] > 0

        def test_model_is_untrained(lora_model):
            assert lora_model.weights == "random"
            lora_b = [p for n, p in lora_model.model.named_parameters() if "lora_B" in n]
            assert all(float(p.abs().sum()) == 0 for p in lora_b)

        def test_no_dead_adapter(lora_smoke):
            assert "dead-adapter" not in {s.name for s in lora_smoke.symptoms}
        """
    )
    result = project.runpytest("--lora-check", "test_policy.py", "--lora-steps", "8", "-rA", "-p", "no:randomly")
    seen = outcomes(result)
    assert seen["test_policy.py::test_rank_is_a_power_of_two[configs/healthy.yaml]"] == "PASSED"
    assert seen["test_policy.py::test_model_is_untrained[configs/dead.yaml]"] == "PASSED"
    assert seen["test_policy.py::test_no_dead_adapter[configs/healthy.yaml]"] == "PASSED"
    assert seen["test_policy.py::test_no_dead_adapter[configs/dead.yaml]"] == "FAILED"
    # the ini option also turned the configs into items, although only test_policy.py was named
    assert seen["configs/healthy.yaml::smoke"] == "PASSED"


def test_model_fixture_is_untrained_even_after_the_smoke_item(project):
    (project.path / "configs/dead.yaml").unlink()
    project.makeini("[pytest]\nlora_check_paths = configs\n")
    project.makepyfile(
        test_after="""
        def test_adapter_back_at_init(lora_smoke, lora_model):
            assert lora_smoke.record.losses[-1] < lora_smoke.record.losses[0]
            assert all(float(p.abs().sum()) == 0 for n, p in lora_model.model.named_parameters() if "lora_B" in n)
        """
    )
    project.runpytest("--lora-check", "test_after.py", "--lora-steps", "8").assert_outcomes(passed=4)


def test_fixtures_skip_without_the_flag(pytester):
    pytester.makepyfile("def test_policy(lora_setup):\n    assert False\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*run pytest with --lora-check*"])


def test_markers_are_registered_and_requires_cuda_skips_without_cuda(pytester):
    import torch

    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_cuda
        def test_gpu():
            assert False, "must not run without CUDA"

        @pytest.mark.lora_check
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-rs")
    if torch.cuda.is_available():
        result.assert_outcomes(failed=1, passed=1)
    else:
        result.assert_outcomes(skipped=1, passed=1)
        result.stdout.fnmatch_lines(["*requires CUDA*"])


def test_device_cuda_without_cuda_is_a_usage_error(pytester):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = pytester.runpytest("--lora-check", "--lora-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*torch sees no CUDA device*"])
