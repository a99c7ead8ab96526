"""``lora-lint smoke``: exit codes, the JSON report and the loss plot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
def scenarios(tmp_path, monkeypatch) -> Path:
    shutil.copytree(SCENARIOS / "models", tmp_path / "models")
    for name in ("healthy.yaml", "alpha-tiny.yaml"):
        shutil.copy(SCENARIOS / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_symptoms_exit_1_and_write_report_and_plot(scenarios, capsys):
    from lora_lint.cli import main

    assert main(["smoke", "alpha-tiny.yaml", "--steps", "20", "--report", "out/report.json"]) == 1
    output = capsys.readouterr().out
    assert "plateau: the loss is flat" in output and "CPU proxy" in output
    report = json.loads((scenarios / "out/report.json").read_text())
    [entry] = report["configs"]
    assert [s["name"] for s in entry["symptoms"]] == ["plateau"]
    assert entry["build"]["reference"]["lora_alpha_per_r"] == 2  # alpha 0.001 is judged against alpha = 2r
    assert len(entry["losses"]) == 20
    assert (scenarios / "out/report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_healthy_config_exits_0(scenarios, capsys):
    from lora_lint.cli import main

    assert main(["smoke", "healthy.yaml", "--steps", "20", "--device", "cpu"]) == 0
    assert "no symptoms" in capsys.readouterr().out


def test_unreadable_config_exits_2(scenarios, capsys):
    from lora_lint.cli import main

    (scenarios / "broken.yaml").write_text("r: [16\n")
    assert main(["smoke", "broken.yaml"]) == 2
    assert "broken.yaml" in capsys.readouterr().err


def test_command_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, lora_lint.commands.smoke; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_no_reference_skips_the_reference_run(scenarios, capsys):
    from lora_lint.cli import main

    main(["smoke", "alpha-tiny.yaml", "--steps", "20", "--no-reference", "--report", "out/plain.json"])
    [entry] = json.loads((scenarios / "out/plain.json").read_text())["configs"]
    assert "reference" not in entry["build"]
    assert "reference" not in entry["timings"]
