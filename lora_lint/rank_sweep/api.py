"""Options from the three places they can come from, merged in one order: code defaults, settings, caller."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lora_lint.rank_sweep.options import (
    SETTING_NAMES,
    SweepInputError,
    SweepOptions,
    from_settings,
)


def project_defaults(settings: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``[tool.lora-lint.sweep]`` of the project (or of ``settings``) as option keywords."""
    from lora_lint.project import ProjectConfigError, load_project

    try:
        project = load_project(Path.cwd(), settings)
    except ProjectConfigError as exc:
        raise SweepInputError(str(exc)) from None
    return from_settings(project.sweep, str(project.source or "settings"))


def sweep_from_api(config: Any, *, output: Any, settings: Any, options: dict[str, Any]) -> Any:
    from lora_lint.rank_sweep.run import run_sweep

    allowed = set(SETTING_NAMES.values()) | {"metric"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise SweepInputError(f"unknown sweep option(s): {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    if "ranks" in options:
        options["ranks"] = tuple(options["ranks"])
    merged = SweepOptions(**{**project_defaults(settings), **options})
    return run_sweep(config, merged, output=output, settings=settings)
