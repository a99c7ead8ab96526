"""The Python API and the stability of the JSON contract, as a launcher uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lora_lint import check

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_check_takes_one_path_or_many():
    one = check(EXAMPLES / "axolotl" / "good-lora.yml")
    assert [r.path for r in one] == [str(EXAMPLES / "axolotl" / "good-lora.yml")]
    many = check([str(EXAMPLES / "axolotl" / "good-lora.yml"), EXAMPLES / "peft" / "good"])
    assert len(many) == 2 and all(r.format for r in many)


def test_json_report_is_the_same_under_any_hash_seed(tmp_path):
    outputs = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, LORA_LINT_CACHE_DIR=str(tmp_path / seed))
        done = subprocess.run(
            [sys.executable, "-m", "lora_lint", "check", "--format", "json", str(EXAMPLES / "lora-config")],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        json.loads(done.stdout)
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_non_literal_adapter_settings_are_not_counted(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "from peft import LoraConfig\nfrom transformers import AutoModelForCausalLM\n"
        "model = AutoModelForCausalLM.from_pretrained('Qwen/Qwen2.5-0.5B')\nmodules = find_all_linear_names(model)\n"
        "config = LoraConfig(r=8, lora_alpha=16, target_modules=modules)\n"
    )
    (result,) = check(script)
    assert result.facts["trainable_params"] is None
    assert "target_modules cannot be known" in result.facts["architecture_skipped"]
    assert "LL211" in [f.code for f in result.findings]
