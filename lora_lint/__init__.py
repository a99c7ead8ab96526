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
    import os
    from collections.abc import Iterable

    from lora_lint.engine import FileResult

    PathLike = str | os.PathLike[str]


def check(paths: PathLike | Iterable[PathLike], *, settings: PathLike | None = None) -> list[FileResult]:
    """Lint files and folders with the project's settings, as ``lora-lint check`` does.

    ``paths`` is one path or several. Relative paths, and the search for the
    ``pyproject.toml`` / ``.lora-lint.toml`` settings, start from the working directory;
    ``settings`` names a settings file instead.
    """
    import os

    from lora_lint.engine import Linter
    from lora_lint.project import load_project

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    project = load_project(os.getcwd(), settings)
    return Linter(project).lint_paths([os.fspath(p) for p in paths])
