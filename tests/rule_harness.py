"""Lint a snippet of config text as a given format, the way rule examples and tests need."""

from __future__ import annotations

from pathlib import Path

from lora_lint.engine import FileResult, Linter
from lora_lint.project import Project

FILE_NAMES = {
    "peft": "adapter_config.json",
    "lora-config": "lora.yaml",
    "axolotl": "config.yml",
    "llamafactory": "train_lora.yaml",
    "torchtune": "recipe.yaml",
    "python": "train.py",
    "trl": "sft.yaml",
}


def lint_source(
    source: str,
    fmt: str,
    folder: Path,
    options: dict | None = None,
    project: Project | None = None,
    *,
    files: dict[str, str] | None = None,
    settings: dict | None = None,
) -> list[FileResult]:
    """Write ``source`` as a file of format ``fmt`` in ``folder`` (with ``files`` beside it) and lint it.

    ``options`` maps rule codes or names to option overrides; ``settings`` is a ``[tool.lora-lint]`` table.
    """
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    path = folder / FILE_NAMES[fmt]
    path.write_text(source, encoding="utf-8")
    project = project or Project(folder)
    if settings:
        project.apply(settings, "example settings")
    for ident, values in (options or {}).items():
        project.options.setdefault(ident, {}).update(values)
    return Linter(project).lint_paths([str(path)])


def codes(results: list[FileResult], *, min_severity: str = "warning") -> list[str]:
    order = ["info", "warning", "error"]
    return sorted(f.code for r in results for f in r.findings if order.index(f.severity) >= order.index(min_severity))
