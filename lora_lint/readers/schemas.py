"""The keys each framework accepts, per version: bundled, or read from the framework installed here.

The bundled files (``framework_schemas/<framework>.json``) are written by ``scripts/regenerate_schemas.py``
from each framework's own source at stated versions (a release from PyPI, or a checkout of
its main branch), and say which version every key is known in. The newest release is what
a file is checked against; a key only another version has is reported with that fact
(``added in LLaMA-Factory main@ff6d4d1, after 0.9.5``) rather than as unknown.

When the framework is installed beside lora-lint, its own source is read instead (with
:mod:`ast`, never imported: importing it would pull in torch), so the keys match the version
the user runs; the result is cached like the rule packs. Finding out whether it is
installed costs one ``importlib.util.find_spec``, done only by the reader that needs it.
"""

from __future__ import annotations

import os
import sys
from functools import cache

from lora_lint.cache import cached

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from lora_lint.readers.schema_source import SourceTree

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "framework_schemas")

BUNDLED_ONLY_ENV = "LORA_LINT_BUNDLED_SCHEMAS"
"""Set to 1 to ignore installed frameworks and check against the bundled schemas (reproducible CI)."""


class Schema:
    """One framework's keys as checked: the version they come from, and every bundled version's keys."""

    __slots__ = ("extras", "framework", "history", "known", "order", "origin", "version", "versions")

    def __init__(self, framework: str, version: str, origin: str, known: list[str], history: dict[str, list[str]],
                 versions: list[str], extras: dict[str, Any]) -> None:  # fmt: skip
        self.framework = framework
        self.version = version
        self.origin = origin  # "bundled" or "installed"
        self.order = tuple(known)
        self.known = frozenset(known)
        self.history = history  # key -> bundled versions that have it
        self.versions = versions  # bundled versions, oldest first
        self.extras = extras

    @property
    def label(self) -> str:
        """``LLaMA-Factory 0.9.5 (installed)``: what a message names as the schema it checked against."""
        return f"{self.framework} {self.version} ({self.origin})"

    def other_versions(self, key: str) -> str | None:
        """Where a key this schema lacks is known: ``added in ... after 0.9.5`` / ``known in ... up to 0.9.3``."""
        having = [v for v in self.history.get(key, ()) if v != self.version]
        if not having or key in self.known:
            return None
        mine = self.versions.index(self.version) if self.version in self.versions else None
        newer = [v for v in having if mine is not None and self.versions.index(v) > mine]
        older = [v for v in having if v not in newer]
        parts = []
        if newer:
            parts.append(f"added in {self.framework} {newer[0]}, after {self.version}")
        if older:
            span = older[0] if len(older) == 1 else f"{older[0]} to {older[-1]}"
            parts.append(f"known in {self.framework} {span}" + (f", removed by {self.version}" if mine is not None else ""))
        return "; ".join(parts)


@cache
def bundled_data(name: str) -> dict[str, Any]:
    path = os.path.join(SCHEMA_DIR, f"{name}.json")

    def load() -> dict[str, Any]:
        import json  # only when the cache is cold: ~5 M instructions of every start-up otherwise

        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    return cached(f"schema-{name}", [path], load)


def bundled(name: str) -> Schema:
    data = bundled_data(name)
    current = data["current"]
    known = [key for key, versions in data["keys"].items() if current in versions]
    return Schema(data["framework"], current, "bundled", known, data["keys"], [v["name"] for v in data["versions"]], data.get("extras", {}))


@cache
def schema(name: str) -> Schema:
    """The schema a file of framework ``name`` is checked against: the installed one when readable, else bundled."""
    base = bundled(name)
    live = None if os.environ.get(BUNDLED_ONLY_ENV) == "1" else installed_schema(name)
    if live is None:
        return base
    keys, extras, version = live
    return Schema(base.framework, version, "installed", keys, base.history, base.versions, {**base.extras, **extras})


def installed_schema(name: str) -> tuple[list[str], dict[str, Any], str] | None:
    """(keys, extras, version) read from the installed framework's source, or None when it is not installed."""
    spec = EXTRACTORS[name]
    package = bundled_data(name)["package"]
    roots = {}
    for top in (package, *spec.companions):
        found = _package_dir(top)
        if found is None:
            return None  # without its companion (transformers' TrainingArguments) the schema would be partial
        roots[top] = found
    version = _version(package, roots[package])
    stamps = [os.path.join(roots[top], "__init__.py") for top in roots]
    stamps += [__file__, os.path.join(os.path.dirname(__file__), "schema_source.py")]  # the code that shapes the keys

    def build() -> Any:
        from lora_lint.readers.schema_source import SchemaSourceError, SourceTree

        try:
            return spec.extract(SourceTree(roots))
        except (SchemaSourceError, OSError, SyntaxError, ValueError):
            return None

    extracted = cached(f"live-schema-{name}-{version}", stamps, build)
    if extracted is None:
        return None
    return extracted["keys"], extracted.get("extras", {}), version


def _package_dir(top: str) -> str | None:
    """The folder of an installed top-level package, found without importing it.

    Asks the import system's finders directly, as ``importlib.util.find_spec`` does for a
    top-level name (editable installs included): importing ``importlib.util`` would cost more
    than the rest of this lookup.
    """
    module = sys.modules.get(top)
    spec = getattr(module, "__spec__", None) if module is not None else _find_spec(top)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.fspath(locations[0]) if locations else None  # an imported lazy module may list a Path


def _find_spec(top: str) -> Any:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(top, None)
        except (ImportError, ValueError):
            return None
        if spec is not None:
            return spec
    return None


def _version(package: str, folder: str) -> str:
    """The installed version, from the ``*.dist-info`` folder beside the package (no import of metadata machinery)."""
    parent = os.path.dirname(folder)
    prefix = package.replace("-", "_").lower() + "-"
    try:
        for entry in os.listdir(parent):
            if entry.lower().startswith(prefix) and entry.endswith(".dist-info"):
                return entry[len(prefix) : -len(".dist-info")]
    except OSError:
        pass
    from importlib import metadata  # editable installs keep their metadata elsewhere; slow, so only then

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown version"


class Extractor:
    """How one framework's keys are read from its source: the function and the packages it needs."""

    def __init__(self, extract: Callable[[SourceTree], dict[str, Any]], companions: tuple[str, ...] = ()) -> None:
        self.extract = extract
        self.companions = companions


def _union(tree: SourceTree, package: str, classes: tuple[str, ...], optional: tuple[str, ...] = (), hint: str = "") -> list[str]:
    from lora_lint.readers.schema_source import SchemaSourceError

    keys: list[str] = []
    for name in classes + optional:
        try:
            keys.extend(tree.class_fields(name, package, hint))
        except SchemaSourceError:
            if name in classes:
                raise
    return list(dict.fromkeys(keys))


def _llamafactory(tree: SourceTree) -> dict[str, Any]:
    """The train parser's dataclasses (``hparams/parser.py``), the Megatron-Bridge arguments where they exist,
    and ``kt_config``, which LLaMA-Factory reads from the training arguments of its KTransformers stack."""
    required = ("ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments", "GeneratingArguments")
    optional = ("MegatronBridgeArguments", "_KTransformersRuntimeArguments")
    return {"keys": _union(tree, "llamafactory", required, optional, hint="hparams")}


def _axolotl(tree: SourceTree) -> dict[str, Any]:
    """``AxolotlInputConfig`` and the input arguments of every bundled plugin (``get_input_args``)."""
    from lora_lint.readers.schema_source import SchemaSourceError

    keys = tree.class_fields("AxolotlInputConfig", "axolotl", hint="schemas")
    for module in tree.package_modules("axolotl", r"^axolotl\.integrations\."):
        for target in tree.string_returns(module, "get_input_args"):
            where, _, name = target.rpartition(".")
            found = tree.resolve(where, name) if tree.file_of(where) else None
            if found is None:
                try:
                    found = tree.find_class(name, "axolotl", hint=where)
                except SchemaSourceError:
                    continue
            keys.extend(tree.fields(*found))
    return {"keys": list(dict.fromkeys(keys))}


def _peft(tree: SourceTree) -> dict[str, Any]:
    """``LoraConfig`` fields in signature order (positional arguments map onto it) and every ``PeftType``."""
    import ast

    keys = tree.class_fields("LoraConfig", "peft", hint="tuners.lora")
    _, node = tree.find_class("PeftType", "peft")
    types = [
        s.value.value for s in node.body
        if isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)
    ]  # fmt: skip
    return {"keys": keys, "extras": {"peft_types": types}}


def _trl(tree: SourceTree) -> dict[str, Any]:
    """What ``trl <command> --config`` parses: script, model and every trainer's config; ``env`` is TrlParser's own."""
    trainers = ("DPOConfig", "GRPOConfig", "KTOConfig", "RewardConfig", "RLOOConfig", "DatasetMixtureConfig")
    keys = _union(tree, "trl", ("ScriptArguments", "ModelConfig", "SFTConfig"), trainers)
    return {"keys": [*keys, "env"]}


EXTRACTORS = {
    "llamafactory": Extractor(_llamafactory, ("transformers",)),
    "axolotl": Extractor(_axolotl),
    "peft": Extractor(_peft),
    "trl": Extractor(_trl, ("transformers",)),
}
"""Framework schema name -> how its keys are read (torchtune's builders are read by ``torchtune_builders``)."""


def torchtune_builders(tree: SourceTree) -> dict[str, Any]:
    """Every LoRA/QLoRA model builder: its public path -> literal defaults and required parameters.

    ``qlora_x = partial(lora_x, quantize_base=True)`` is ``lora_x`` with that default changed.
    """
    import ast

    from lora_lint.readers.schema_source import signature

    found: dict[str, Any] = {}
    for module in tree.package_modules("torchtune", r"^torchtune\.models\.[^.]+\._model_builders$"):
        public = module.rsplit(".", 1)[0]
        local: dict[str, Any] = {}
        for function in tree.functions(module):
            if function.name.startswith(("lora_", "qlora_")):
                defaults, required = signature(function)
                local[function.name] = {"defaults": defaults, "required": required}
        tree_ = tree.tree(module)
        for node in tree_.body if tree_ is not None else ():
            if (
                isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call) and ast.unparse(node.value.func).endswith("partial")
                and node.value.args and isinstance(node.value.args[0], ast.Name) and node.value.args[0].id in local
            ):  # fmt: skip
                base = local[node.value.args[0].id]
                defaults = dict(base["defaults"])
                for keyword in node.value.keywords:
                    if keyword.arg:
                        defaults[keyword.arg] = ast.literal_eval(keyword.value)
                local[node.targets[0].id] = {"defaults": defaults, "required": list(base["required"])}
        for name, entry in local.items():
            found[f"{public}.{name}"] = entry
    return dict(sorted(found.items()))
