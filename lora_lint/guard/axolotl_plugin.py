"""``LoraGuardPlugin``: the guard in an axolotl run, with one line of its YAML.

```yaml
plugins:
  - lora_lint.guard.LoraGuardPlugin
lora_guard_window: [0.1, 0.2]   # optional
lora_guard_on_overfit: warn     # optional: warn | stop
```

axolotl instantiates the plugin from its dotted path and asks every plugin for trainer
callbacks (``add_callbacks_pre_trainer``); the plugin answers with a
:class:`~lora_lint.guard.hf_trainer.LoraGuardCallback` that knows the YAML's own path
(``axolotl_config_path``), so the rollback is a copy of the file the user launched.
"""

from __future__ import annotations

from typing import Any

try:
    from axolotl.integrations.base import BasePlugin
except ImportError:  # axolotl absent: the plugin's hooks still work when called directly
    BasePlugin = object

try:
    from pydantic import BaseModel

    class LoraGuardArgs(BaseModel):
        """The YAML keys the plugin adds to axolotl's config schema."""

        lora_guard_window: tuple[float, float] | None = None
        lora_guard_on_overfit: str | None = None

except ImportError:  # pragma: no cover - axolotl always brings pydantic
    LoraGuardArgs = None


class LoraGuardPlugin(BasePlugin):  # type: ignore[misc,valid-type]
    """axolotl plugin: adds the guard's callback to the trainer."""

    def get_input_args(self) -> str | None:
        return f"{__name__}.LoraGuardArgs" if LoraGuardArgs is not None else None

    def add_callbacks_pre_trainer(self, cfg: Any, model: Any) -> list[Any]:
        from lora_lint.guard.hf_trainer import LoraGuardCallback

        window = _setting(cfg, "lora_guard_window") or (0.1, 0.2)
        return [
            LoraGuardCallback(
                config=_setting(cfg, "axolotl_config_path"),
                output_dir=_setting(cfg, "output_dir"),
                window=(float(window[0]), float(window[1])),
                on_overfit=_setting(cfg, "lora_guard_on_overfit") or "warn",
            )
        ]

    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list[Any]:
        return []


def _setting(cfg: Any, key: str) -> Any:
    """axolotl's DictDefault answers None for a missing key; a plain dict in tests does too with get."""
    return cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)
