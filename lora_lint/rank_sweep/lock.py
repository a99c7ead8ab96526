"""The locked config: the user's own file with the chosen rank written in, everything else kept.

The shared config editor does the work (the guard's rollback config is the same operation).
The copy goes to ``locked/<original file name>`` so that a PEFT folder's
``adapter_config.json`` keeps the name its loaders look for. A Python source is never
rewritten: the edits to make by hand come back as instructions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_lint.rank_sweep.options import SweepInputError

LOCKED_FOLDER = "locked"


def lock_config(plan: Any, r: int, alpha: float | None, folder: Path) -> Any:
    """Write the locked copy under ``folder``; returns the editor's :class:`ConfigEdit`."""
    from lora_lint.config_edit import EditError, edit_config

    changes: dict[str, Any] = {"r": r}
    if alpha is not None and alpha != plan.setup.get("lora_alpha"):
        changes["lora_alpha"] = alpha
    source = Path(plan.path)
    target = folder / LOCKED_FOLDER / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return edit_config(source, changes, out_path=target, setup=plan.setup)
    except EditError as exc:
        raise SweepInputError(f"cannot write the locked config: {exc}") from None
