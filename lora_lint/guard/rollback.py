"""The configs the guard writes: the rollback after a plateau, the suggestion after overfitting.

Both are copies of the user's config (the original is never touched), written by
:mod:`lora_lint.config_edit` so comments and key order survive:

- rollback (the article's plan for a plateau): r doubled, lora_alpha raised in proportion
  (the same alpha / r), every resume or checkpoint setting removed, since the restart must
  begin from the base model at epoch 0, never from the stalled run's adapter;
- overfit: rank down to 4-8 with alpha in proportion, lora_dropout 0.1-0.2, weight decay > 0.

Each function returns ``(rollback dict or None, problem or None)``; a problem is one line
for the report, never an exception, because the guard runs inside the user's training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lora_lint.config_edit import tidy_number

OVERFIT_MAX_RANK = 8
OVERFIT_MIN_RANK = 4
OVERFIT_DROPOUT = (0.1, 0.2)
OVERFIT_WEIGHT_DECAY = 0.01


def _setup(config: Path) -> tuple[Any, str | None]:
    from lora_lint.document import InputError
    from lora_lint.readers import read_file

    try:
        setups = read_file(str(config), config.read_bytes())
    except OSError as exc:
        return None, f"cannot read the config {config}: {exc.strerror or exc}"
    except InputError as exc:
        return None, f"{config}:{exc.line}: {exc.message}"
    if not setups:
        return None, f"{config} holds no LoRA configuration, so no config was written"
    return setups[0], None


def _number(setup: Any, name: str) -> float | None:
    value = setup.get(name)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _write(config: Path | None, out_dir: Path | None, changes: Callable[[int, float, Any], dict[str, Any]], *,
           drop_resume: bool, stem: str) -> tuple[dict[str, Any] | None, str | None]:  # fmt: skip
    if config is None:
        return None, "no config given to the guard, so no config was written"
    setup, problem = _setup(config)
    if problem:
        return None, problem
    r, alpha = _number(setup, "r"), _number(setup, "lora_alpha")
    if r is None or r <= 0:
        return None, f"{config} sets no rank r, so no config was written"
    alpha = alpha if alpha is not None else 8  # PEFT's default lora_alpha
    values = changes(int(r), alpha, setup)
    if out_dir is None:
        return None, "no output directory, so no config was written"
    from lora_lint.config_edit import EditError, edit_config

    target = out_dir / f"{stem}-{config.name}"
    try:
        edit = edit_config(config, values, drop_resume=drop_resume, out_path=target, setup=setup)
    except EditError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot write {target}: {exc.strerror or exc}"
    rollback = {"config_path": str(edit.path) if edit.path else None, "r": values["r"],
                "lora_alpha": values["lora_alpha"], "changes": edit.changes + edit.instructions}  # fmt: skip
    return rollback, None


def write_rollback(config: Path | None, out_dir: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """Double r, raise alpha with it, drop resume settings."""

    def changes(r: int, alpha: float, _setup: Any) -> dict[str, Any]:
        return {"r": 2 * r, "lora_alpha": tidy_number(alpha * 2)}

    return _write(config, out_dir, changes, drop_resume=True, stem="rollback")


def write_overfit_suggestion(config: Path | None, out_dir: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """Rank 4-8 (alpha in proportion), more dropout, some weight decay."""

    def changes(r: int, alpha: float, setup: Any) -> dict[str, Any]:
        new_r = OVERFIT_MAX_RANK if r > OVERFIT_MAX_RANK else max(OVERFIT_MIN_RANK, r // 2)
        dropout = _number(setup, "lora_dropout") or 0.0
        decay = _number(setup, "weight_decay") or 0.0
        low, high = OVERFIT_DROPOUT
        return {"r": new_r, "lora_alpha": tidy_number(alpha * new_r / r),
                "lora_dropout": low if dropout < low else high,
                "weight_decay": decay if decay > 0 else OVERFIT_WEIGHT_DECAY}  # fmt: skip

    return _write(config, out_dir, changes, drop_resume=True, stem="overfit-suggestion")
