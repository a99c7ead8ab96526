"""lora-lint: a linter and pytest plugin for LoRA/QLoRA fine-tuning configs.

The Python API a launcher can call::

    from lora_lint import check
    results = check(["configs/"])          # list of FileResult
    if any(f.severity == "error" for r in results for f in r.findings): ...
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from lora_lint.engine import FileResult


def check(paths: list[str], *, settings: Path | None = None, cwd: Path | None = None) -> list[FileResult]:
    """Lint files and folders with the project's settings, as ``lora-lint check`` does."""
    import os

    from lora_lint.engine import Linter
    from lora_lint.project import load_project

    project = load_project(cwd or os.getcwd(), settings)
    return Linter(project).lint_paths([str(p) for p in paths])
