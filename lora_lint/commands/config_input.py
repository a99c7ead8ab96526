"""Reading the one config a single-config command (``params``, ``memory``) works on."""

from __future__ import annotations

from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lora_lint.lora_setup import LoraSetup
    from lora_lint.project import Project


class ConfigInputError(Exception):
    """Why the config or the project settings cannot be used: one line, exit code 2."""


def load_config(path: Path, settings: Path | None = None) -> tuple[Project, list[LoraSetup]]:
    """The project settings and every LoRA setup in ``path``; raises :class:`ConfigInputError`."""
    from lora_lint.document import InputError
    from lora_lint.project import ProjectConfigError, load_project
    from lora_lint.readers import NotALoraConfig, read_file

    try:
        project = load_project(Path.cwd(), settings)
        setups = read_file(str(path), path.read_bytes())
    except OSError as exc:
        raise ConfigInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except InputError as exc:
        raise ConfigInputError(f"{path}:{exc.line}:{exc.column}: {exc.message}") from None
    except NotALoraConfig as exc:
        raise ConfigInputError(f"{path}: {exc}") from None
    except ProjectConfigError as exc:
        raise ConfigInputError(str(exc)) from None
    if not setups:
        raise ConfigInputError(f"{path}: no LoRA configuration found")
    return project, setups
