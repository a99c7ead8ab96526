"""``pytest --lora-check -n 2`` (pytest-xdist) writes the same ``--lora-report`` as a serial run.

The items run in worker processes; the workers hand their configs' entries to the
controller, which merges them (one config's items may run on different workers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    f"config-{n}.yaml": f"r: {r}\nlora_alpha: {2 * r}\ntarget_modules: [q_proj, v_proj]\ntask_type: CAUSAL_LM\n"
    f"base_model: example-org/not-known-offline-{n}\n"
    for n, r in enumerate((8, 16, 32, 64))
}


def run_pytest(folder: Path, report: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lora-check", str(folder),
               "--lora-device", "cpu", "--lora-report", str(report), *extra]  # fmt: skip
    return subprocess.run(command, check=False, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def comparable(report: Path) -> list[dict]:
    entries = json.loads(report.read_text())["configs"]
    return [{k: v for k, v in entry.items() if k != "timings"} for entry in entries]


def test_parallel_run_writes_the_serial_report(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for name, text in CONFIGS.items():
        (configs / name).write_text(text)
    serial = run_pytest(configs, tmp_path / "serial.json", "-p", "no:xdist")
    parallel = run_pytest(configs, tmp_path / "parallel.json", "-n", "2")
    assert serial.returncode == parallel.returncode == 0, serial.stdout + parallel.stdout
    expected = comparable(tmp_path / "serial.json")
    assert len(expected) == len(CONFIGS)
    assert all(set(entry["items"]) == {"static", "shapes", "smoke"} for entry in expected)
    assert comparable(tmp_path / "parallel.json") == expected
