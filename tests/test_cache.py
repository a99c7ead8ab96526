"""The cache of derived data: reused while its sources are unchanged, rebuilt when they change, pruned of old entries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lora_lint import cache


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_built_once_while_the_source_is_unchanged(tmp_path: Path, folder: Path) -> None:
    source = tmp_path / "rules.yaml"
    source.write_text("a: 1\n")
    builds = []
    for _ in range(3):
        assert cache.cached("kind", [str(source)], lambda: builds.append(1) or {"a": (1, 2)}) == {"a": (1, 2)}
    assert len(builds) == 1


def test_rebuilt_when_the_source_changes(tmp_path: Path, folder: Path) -> None:
    source = tmp_path / "rules.yaml"
    source.write_text("a: 1\n")
    assert cache.cached("kind", [str(source)], lambda: 1) == 1
    source.write_text("a: 22\n")  # another size: another stamp, whatever the clock's resolution
    assert cache.cached("kind", [str(source)], lambda: 2) == 2


def test_a_new_entry_removes_week_old_entries_of_its_kind_only(tmp_path: Path, folder: Path) -> None:
    source = tmp_path / "rules.yaml"
    source.write_text("a: 1\n")
    cache.cached("kind", [str(source)], lambda: 1)
    cache.cached("other", [str(source)], lambda: 1)
    (old,) = folder.glob("kind-*")
    (other,) = folder.glob("other-*")
    week_ago = time.time() - cache.STALE_AFTER_SECONDS - 60
    os.utime(old, (week_ago, week_ago))
    os.utime(other, (week_ago, week_ago))
    recent = folder / old.name.replace(old.name[5:13], "0badcafe")
    recent.write_bytes(old.read_bytes())  # another installation's entry, in use today
    source.write_text("a: 22\n")
    assert cache.cached("kind", [str(source)], lambda: 2) == 2
    assert not old.exists()
    assert recent.exists() and other.exists()
    assert len(list(folder.glob("kind-*"))) == 2


def test_an_unwritable_folder_costs_only_speed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(blocker / "cache"))  # a folder inside a file cannot exist
    source = tmp_path / "rules.yaml"
    source.write_text("a: 1\n")
    assert cache.cached("kind", [str(source)], lambda: [1]) == [1]
