"""The locked config: the user's commented file with only r (and alpha) changed, in every format."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from lora_lint.rank_sweep.lock import lock_config
from lora_lint.rank_sweep.options import SweepOptions
from lora_lint.rank_sweep.plan import alpha_for_rank, plan_sweep

EXAMPLES = Path(__file__).parent.parent / "examples"
CASES = {
    # file: (rank key, alpha key, written r, written alpha)
    "axolotl/good-lora.yml": ("lora_r", "lora_alpha", 8, 16),
    "llamafactory/good-lora-sft.yaml": ("lora_rank", "lora_alpha", 16, 32),
    "torchtune/good-lora.yaml": ("lora_rank", "lora_alpha", 32, 64),
    "peft/good/adapter_config.json": ('"r"', '"lora_alpha"', 16, 32),
}


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize("name", sorted(CASES))
def test_locked_copy_differs_only_in_rank_and_alpha(name: str, tmp_path: Path) -> None:
    rank_key, alpha_key, written_r, written_alpha = CASES[name]
    source = EXAMPLES / name
    plan = plan_sweep(source, SweepOptions(ranks=(4,)))
    alpha = alpha_for_rank(plan.setup, 4, "follow")
    assert alpha == written_alpha * 4 / written_r  # alpha/r kept as written
    edit = lock_config(plan, 4, alpha, tmp_path)
    assert edit.path == tmp_path / "locked" / source.name
    before, after = source.read_text(), edit.path.read_text()
    changed = changed_lines(before, after)
    assert len(changed) == 4, changed  # two lines out, two lines in
    removed = [line for line in changed if line.startswith("-")]
    added = [line for line in changed if line.startswith("+")]
    assert {line[1:].split(":")[0].strip() for line in removed} == {rank_key, alpha_key}
    assert any(f"{rank_key}: 4" in line for line in added)
    assert any(f"{alpha_key}: {alpha:g}" in line for line in added)
    if source.suffix == ".json":
        assert list(json.loads(after)) == list(json.loads(before))  # key order kept


def test_fixed_alpha_changes_only_the_rank(tmp_path: Path) -> None:
    source = EXAMPLES / "axolotl/good-lora.yml"
    plan = plan_sweep(source, SweepOptions(ranks=(4,), alpha="fixed"))
    edit = lock_config(plan, 4, alpha_for_rank(plan.setup, 4, "fixed"), tmp_path)
    assert changed_lines(source.read_text(), edit.path.read_text()) == ["-lora_r: 8", "+lora_r: 4"]


def test_python_source_is_not_rewritten_but_gets_instructions(tmp_path: Path) -> None:
    source = EXAMPLES / "python/train_good.py"
    plan = plan_sweep(source, SweepOptions(ranks=(4,)))
    edit = lock_config(plan, 4, 8, tmp_path)
    assert edit.path is None
    assert edit.instructions and any("4" in step for step in edit.instructions)
