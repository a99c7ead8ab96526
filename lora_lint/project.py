"""Project settings: ``[tool.lora-lint]`` in pyproject.toml, or a ``.lora-lint.toml``.

The nearest file upward from the working directory wins, as with ruff. Unknown keys
are errors (exit 2) with the near miss named: a silently ignored policy is worse
than none.
"""

from __future__ import annotations

import os

from lora_lint.near_miss import closest
from lora_lint.rulepack import SEVERITY_RANK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

KEYS = {
    "select": list,  # codes, names or code prefixes to run (default: all)
    "ignore": list,  # codes, names or code prefixes to skip
    "per-file-ignores": dict,  # glob -> list of codes/names
    "severity": dict,  # code/name -> info|warning|error
    "fail-on": str,  # lowest severity that makes the exit code 1
    "options": dict,  # rule code/name -> {option: value}
    "extra-rules": list,  # folders of user rules, relative to the settings file
    "exclude": list,  # globs skipped by folder discovery
    "models": dict,  # user model entries: id -> config dict | {"path": ...} | {"same-as": id}
    "dataset-examples": int,  # training-set size when the config cannot tell
    "gpu": str,  # target GPU for memory rules, e.g. "A100-80GB"
    "usable-memory-gb": (int, float),  # usable GPU memory when the GPU is not in the catalog
    "sweep": dict,  # defaults of `lora-lint sweep` (ranks, quality-target, time-budget, ...)
}
DEFAULT_EXCLUDE = [".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache", "build", "dist"]


def rule_ref(ref: str) -> str:
    """Rule codes in any case (``ll105``, ``LL1``, ``all``) as the pack spells them; names unchanged."""
    if ref.lower() == "all" or (ref[:1].isalpha() and ref[-1:].isdigit() and "-" not in ref):
        return ref.upper()
    return ref


class ProjectConfigError(Exception):
    """A settings file that cannot be used; reported with its path, exit code 2."""


class Project:
    """Settings of one run: from a settings file, then command-line overrides."""

    __slots__ = ("root", "source", "select", "ignore", "per_file_ignores", "severity", "fail_on", "options",
                 "extra_rules", "exclude", "models", "dataset_examples", "gpu", "usable_memory_gb",
                 "sweep")  # fmt: skip

    def __init__(self, root: str | os.PathLike[str], source: str | os.PathLike[str] | None = None) -> None:
        self.root = root
        self.source = source
        self.select: list[str] = []
        self.ignore: list[str] = []
        self.per_file_ignores: dict[str, list[str]] = {}
        self.severity: dict[str, str] = {}
        self.fail_on = "error"
        self.options: dict[str, dict[str, Any]] = {}
        self.extra_rules: list[Path] = []  # folders the settings file names, under root
        self.exclude: list[str] = list(DEFAULT_EXCLUDE)
        self.models: dict[str, Any] = {}
        self.dataset_examples: int | None = None
        self.gpu: str | None = None
        self.usable_memory_gb: float | None = None
        self.sweep: dict[str, Any] = {}

    def apply(self, table: dict[str, Any], where: str) -> None:
        """Take the values of a ``[tool.lora-lint]`` table, checking names and types."""
        for key, value in table.items():
            if key not in KEYS:
                near = closest(key, KEYS)
                hint = f" (did you mean {near!r}?)" if near else ""
                raise ProjectConfigError(f"{where}: unknown setting {key!r}{hint}")
            expected = KEYS[key]
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ProjectConfigError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
            attribute = key.replace("-", "_")
            if key == "extra-rules":
                # imported here: only settings that name extra rule folders need it
                from pathlib import Path

                value = [(Path(self.root) / folder) for folder in value]
            if key == "exclude":
                value = self.exclude + value
            if key in ("select", "ignore"):
                value = [rule_ref(ref) for ref in value]
            if key in ("severity", "options"):
                value = {rule_ref(ref): item for ref, item in value.items()}
            if key == "per-file-ignores":
                value = {pattern: [rule_ref(ref) for ref in refs] for pattern, refs in value.items()}
            if key == "dataset-examples" and value < 0:
                raise ProjectConfigError(f"{where}: 'dataset-examples' must not be negative ({value})")
            setattr(self, attribute, value)
        for name, severity in list(self.severity.items()) + [("fail-on", self.fail_on)]:
            if severity not in SEVERITY_RANK:
                raise ProjectConfigError(f"{where}: {name}: severity must be one of info, warning, error, not {severity!r}")

    def check_rule_references(self, codes_and_names: set[str]) -> None:
        """Every code named in the settings must exist: a typo would silently disable a policy."""
        referenced = self.select + self.ignore + list(self.severity) + list(self.options)
        referenced += [code for codes in self.per_file_ignores.values() for code in codes]
        for ref in referenced:
            if ref in codes_and_names or ref == "ALL" or any(code.startswith(ref) for code in codes_and_names if ref[:2] == code[:2]):
                continue
            near = closest(ref, codes_and_names)
            hint = f" (did you mean {near!r}?)" if near else ""
            raise ProjectConfigError(f"{self.source or 'settings'}: unknown rule {ref!r}{hint}")




def find_settings(start: str | os.PathLike[str]) -> str | None:
    """The nearest .lora-lint.toml, or pyproject.toml with a [tool.lora-lint] table, upward from start."""
    folder = os.fspath(start)
    while True:
        candidate = os.path.join(folder, ".lora-lint.toml")
        if os.path.isfile(candidate):
            return candidate
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8") as handle:
                    if "[tool.lora-lint" in handle.read():
                        return candidate
            except (OSError, UnicodeDecodeError):
                pass
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def load_project(start: str | os.PathLike[str], settings: str | os.PathLike[str] | None = None) -> Project:
    """Settings found from ``start`` (or read from ``settings``); defaults when there are none.

    ``Project.root`` is ``start`` resolved (symlinks followed), or the folder of the settings file.
    """
    path = settings or find_settings(os.path.realpath(start))
    if path is None:
        return Project(os.path.realpath(start))
    import tomllib  # only when a settings file exists: ~6 ms

    try:
        with open(path, encoding="utf-8") as handle:
            data = tomllib.loads(handle.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectConfigError(f"{path}: invalid TOML: {exc}") from None
    table = data if os.path.basename(path) == ".lora-lint.toml" else data.get("tool", {}).get("lora-lint", {})
    project = Project(os.path.dirname(path) or ".", path)
    project.apply(table, str(path))
    return project
