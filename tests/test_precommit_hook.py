"""The hook definition in .pre-commit-hooks.yaml, run the way pre-commit runs it.

pre-commit picks files by `identify` tags against ``types_or``, then runs
``entry + args + filenames``; this test does exactly that, on passing and failing files.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

identify = pytest.importorskip("identify.identify")
ROOT = Path(__file__).resolve().parent.parent
HOOKS = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}

PASSING = {
    "train.yml": "base_model: TinyLlama/TinyLlama_v1.1\nadapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_target_linear: true\n",
    "adapter_config.json": '{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}',
    ".github/workflows/ci.yml": "on: push\njobs: {}\n",
    "tool.py": "print('not a LoRA script')\n",
    "notes.txt": "lora_dropout: 1.0 (not a config: never passed to the hook)\n",
}
FAILING = {"bad.yml": "adapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_dropout: 1.0\nlora_target_linear: true\n"}


def run_hook(hook_id: str, folder: Path) -> subprocess.CompletedProcess[str]:
    hook = HOOKS[hook_id]
    wanted = set(hook["types_or"])
    files = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and wanted & identify.tags_from_path(str(p))
    )
    command = shlex.split(hook["entry"]) + hook.get("args", []) + files
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env, check=False)


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


@pytest.mark.parametrize("hook_id", sorted(HOOKS))
def test_hook_passes_on_good_files(hook_id, tmp_path):
    write(tmp_path, PASSING)
    done = run_hook(hook_id, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""  # quiet when clean: pre-commit output stays readable


@pytest.mark.parametrize("hook_id", sorted(HOOKS))
def test_hook_fails_on_bad_file(hook_id, tmp_path):
    write(tmp_path, {**PASSING, **FAILING})
    done = run_hook(hook_id, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "LL104" in done.stdout and "bad.yml" in done.stdout
