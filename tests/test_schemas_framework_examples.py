"""Each framework's own examples raise no unknown-key finding (LL001/LL002).

A few official examples are kept in ``tests/data/framework_examples``. The full sets are read
where they are available: torchtune's wheel ships its recipe configs (the ``recipes`` package),
and ``LORA_LINT_EXAMPLES_<FRAMEWORK>`` may name a folder of examples (a checkout's ``examples/``).
On a full set, every LL001/LL002 must be a key that no bundled version of the framework knows:
such a key is dropped or rejected by the framework itself, so the finding is no false alarm.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lora_lint.engine import Linter
from lora_lint.project import Project
from lora_lint.readers import read_file
from lora_lint.readers.schemas import _package_dir, bundled

DATA = Path(__file__).parent / "data" / "framework_examples"
SCHEMA_OF = {"llamafactory": "llamafactory", "axolotl": "axolotl", "torchtune": "torchtune"}


def unknown_key_findings(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.setenv("LORA_LINT_BUNDLED_SCHEMAS", "1")
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    project = Project(tmp_path)
    project.select = ["LL001", "LL002"]
    results = Linter(project, report_facts=False).lint_paths([str(folder)])
    assert not [r.error for r in results if r.error]
    return [f for r in results for f in r.findings]


@pytest.mark.parametrize("framework", sorted(SCHEMA_OF))
def test_bundled_official_examples_have_no_unknown_keys(framework: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    findings = unknown_key_findings(DATA / framework, tmp_path, monkeypatch)
    assert findings == []
    examples = sorted((DATA / framework).glob("*.y*ml"))
    assert len(examples) >= 3  # each read as a config of its framework, so its keys were checked
    assert all([setup.format for setup in read_file(str(path), path.read_bytes())] == [framework] for path in examples)


def _full_set(framework: str) -> Path | None:
    named = os.environ.get(f"LORA_LINT_EXAMPLES_{framework.upper()}")
    if named:
        return Path(named)
    if framework == "torchtune":
        recipes = _package_dir("recipes")  # torchtune's wheel installs its recipes as a top-level package
        if recipes and (Path(recipes) / "configs").is_dir():
            return Path(recipes) / "configs"
    return None


@pytest.mark.parametrize("framework", sorted(SCHEMA_OF))
def test_full_example_set_flags_only_keys_no_version_knows(framework: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _full_set(framework)
    if folder is None:
        where = "torchtune's installed recipes/configs" if framework == "torchtune" else "its examples"
        pytest.skip(f"{where} not found; set LORA_LINT_EXAMPLES_{framework.upper()} to a folder of them")
    findings = unknown_key_findings(folder, tmp_path, monkeypatch)
    if framework == "torchtune":
        assert findings == []
        return
    history = bundled(SCHEMA_OF[framework]).history
    known_somewhere = [f"{f.path}:{f.line}: {f.key}" for f in findings if f.key in history]
    assert known_somewhere == []
