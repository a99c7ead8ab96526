"""lora-lint: a linter and pytest plugin for LoRA/QLoRA fine-tuning configs.

The Python API a launcher can call::

    from lora_lint import check
    results = check(["configs/"])          # list of FileResult
    if any(f.severity == "error" for r in results for f in r.findings): ...

    from lora_lint import sweep
    result = sweep("configs/train.yml", ranks=(4, 8, 16), output="out/sweep")   # SweepResult
    result.r, result.locked_config
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from collections.abc import Iterable
    from typing import Any

    from lora_lint.engine import FileResult
    from lora_lint.rank_sweep.run import SweepResult

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


def sweep(config: PathLike, *, output: PathLike | None = None, settings: PathLike | None = None, **options: Any) -> SweepResult:  # fmt: skip
    """Sweep the ranks of ``config`` and choose one, as ``lora-lint sweep`` does (needs the ``[torch]`` extra).

    Keywords are the command's options in Python spelling: ``ranks=(4, 8, 16)``,
    ``data_fraction``, ``epochs``, ``steps``, ``alpha`` ("follow" | "fixed"),
    ``quality_target``, ``time_budget``, ``device``, ``seed``, ``gpu``, ``backend``
    ("local" | "ray"), ``tracker`` ("none" | "mlflow" | "tensorboard" | "wandb"),
    ``metric`` (a callable ``metric(model, tokenizer, eval_data) -> float``, higher is
    better) and ``trust_remote_code``; unset ones come from ``[tool.lora-lint.sweep]``.
    With ``output`` the report, plots and locked config are written there. Raises
    :class:`lora_lint.rank_sweep.options.SweepInputError` for bad input.
    """
    from lora_lint.rank_sweep.api import sweep_from_api

    return sweep_from_api(config, output=output, settings=settings, options=options)
