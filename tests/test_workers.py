"""Linting on several cores gives the results of one process, in the same order."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lora_lint import workers
from lora_lint.engine import Linter
from lora_lint.project import load_project
from lora_lint.report import render

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")


@pytest.fixture
def folder(tmp_path):
    """40 configs (the YAML and Python examples, copied into subfolders) and one unreadable file."""
    sources = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yml", ".yaml", ".py"))
    for copy in range(4):
        for source in sources:
            target = tmp_path / f"set{copy}" / source.parent.name / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    (tmp_path / "set2" / "broken-lora.yaml").write_text("lora_r: [unclosed\n")
    assert workers.worker_count(_file_count(tmp_path), 2) == 2  # enough files that the runs below really fork
    return tmp_path


def _file_count(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())


def _reports(folder: Path, jobs: int, fmt: str) -> str:
    linter = Linter(load_project(folder, None), report_facts=fmt == "json")
    return render(fmt, linter.lint_paths([str(folder)], jobs=jobs), linter)


@pytest.mark.parametrize("fmt", ["json", "text", "sarif"])
def test_reports_on_several_cores_equal_one_process(folder, fmt):
    one = _reports(folder, 1, fmt)
    assert "broken-lora.yaml" in one
    assert _reports(folder, 3, fmt) == one


def test_a_failing_worker_is_replaced_by_the_parent(folder, monkeypatch):
    parent = os.getpid()
    real = Linter.lint_bytes

    def failing_in_workers(self, *args, **kwargs):
        if os.getpid() != parent:
            raise RuntimeError("worker failure")
        return real(self, *args, **kwargs)

    expected = _reports(folder, 1, "json")
    monkeypatch.setattr(Linter, "lint_bytes", failing_in_workers)
    assert _reports(folder, 2, "json") == expected
    assert json.loads(expected)["summary"]["files"] > 40


def test_worker_count_follows_the_files():
    assert workers.worker_count(10, 8) == 1
    assert workers.worker_count(40, 8) == 2
    assert workers.worker_count(1000, 3) == 3
    assert workers.worker_count(1000) >= 1


def test_chunks_are_consecutive_complete_and_in_order():
    files = [(f"{index:02}.yaml", False) for index in range(50)]
    chunks = workers.split_into_chunks(files, 16)
    assert [candidate for chunk in chunks for candidate in chunk] == files
    assert len(chunks) <= 16 and all(chunks)
    assert {len(chunk) for chunk in chunks[:-1]} == {4}
    assert workers.split_into_chunks(files[:3], 16) == [[f] for f in files[:3]]


def test_a_worker_done_early_takes_the_remaining_chunks(folder, monkeypatch):
    """One slow chunk in the parent does not hold back the rest: the worker takes every other chunk."""
    parent = os.getpid()
    real = Linter._lint_candidates
    taken = []

    def slow_first_chunk_in_parent(self, chunk):
        if os.getpid() == parent:
            taken.append(len(chunk))
            if len(taken) == 1:
                import time

                time.sleep(1)
        return real(self, chunk)

    expected = _reports(folder, 1, "json")
    monkeypatch.setattr(Linter, "_lint_candidates", slow_first_chunk_in_parent)
    assert _reports(folder, 2, "json") == expected
    assert len(taken) < workers.CHUNKS_PER_WORKER  # the worker took the chunks the parent did not get to
    assert 0 < sum(taken) < _file_count(folder)  # the parent linted some files, not all of them
    # stalled on its first chunk, the parent got to few others: fixed halves would have left it half the files
    assert sum(taken) <= _file_count(folder) // 4
