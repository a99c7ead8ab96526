"""Find a base model's ``config.json`` without touching the network.

A linter must give the same answer offline, in CI and on a laptop, so a base model
name is resolved only from things already on disk, in this order:

1. the user's own entries (``[tool.lora-lint.models]``), so a project can override
   anything below and describe private models;
2. a local directory holding ``config.json`` (or a path straight to that file);
3. the local Hugging Face cache, if the model was downloaded before;
4. the built-in catalog (``catalog.json``) of popular models, with explicit aliases
   for mirrors, instruct variants, quantized re-uploads and legacy names;
5. a local path that is not on this machine (a notebook's ``/content/Llama-2-7b-hf``, an
   HF cache ``.../models--org--name/snapshots/<hash>``) by the model name it ends with, as
   the catalog knows it. Such a resolution says so (``source == "local-name"``), because
   the folder could hold anything.

The catalog is read lazily, on the first catalog lookup, so ``lora-lint check`` pays
nothing for it when every config names a local model; its parsed form is cached between
runs (:mod:`lora_lint.cache`). Most names are hub ids with nothing on disk: those are
ruled out with plain ``os.path`` checks, and :mod:`pathlib` (~3 ms of start-up) is
imported only when a local folder or cached download is really there.
"""

from __future__ import annotations

import marshal
import os
import re
from collections.abc import Mapping
from functools import cache

from lora_lint.cache import cached
from lora_lint.record import Record

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

CATALOG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.json")

_QUANTIZED_SUFFIX = (
    r"-(?:unsloth-bnb-4bit|bnb-(?:4bit|8bit|nf4|fp4)|nvfp4|mxfp4|fp8(?:-dynamic)?|fp16|bf16|fp32"
    r"|gptq(?:-int[48])?|awq|int[48]|[48]bit|(?:quantized\.)?w[48]a(?:8|16)|exl2|hqq"
    r"|aqlm(?:-\d+bit(?:-\d+x\d+)?)?|(?:colab-)?sharded)$"
)
"""Suffixes that re-uploads add to a model's name when they change only how weights are stored (case-insensitive)."""


class ModelConfigError(ValueError):
    """A model entry or a ``config.json`` that exists but cannot be used."""


class Resolution(Record):
    """A resolved base model: its ``config.json`` contents and where they came from."""

    __slots__ = ("config", "model_id", "path", "source")

    model_id: str
    config: dict
    source: str  # "local-dir" | "hf-cache" | "catalog" | "user" | "local-name"
    path: str | None

    def __init__(self, model_id: str, config: dict, source: str, path: str | None) -> None:
        """A plain ``__init__``: one resolution per config of a folder (see :mod:`lora_lint.record`)."""
        self.model_id = model_id
        self.config = config
        self.source = source
        self.path = path


def resolve_base_model(
    name: str,
    *,
    config_dir: str | os.PathLike[str] | None,
    cwd: str | os.PathLike[str],
    user_models: Mapping[str, dict] | None,
) -> Resolution | None:
    """Resolve ``name`` (a hub id or a path) to its config, or None when nothing on disk knows it.

    ``config_dir`` is the folder of the file that named the model; relative paths are
    tried against it first, then against ``cwd``. Raises :class:`ModelConfigError` when a
    user entry is malformed or a ``config.json`` found on the way is not valid JSON.
    """
    name = name.strip()
    if not name:
        return None
    search_dirs = [d for d in (config_dir, cwd) if d is not None]
    return (
        _from_user_entries(name, user_models or {}, search_dirs)
        or _from_local_path(name, search_dirs)
        or _from_hf_cache(name)
        or (_from_name_in_path(name) if is_local_path(name) else _from_catalog(name))
    )


def known_model_ids() -> list[str]:
    """Every model id the built-in catalog holds (aliases excluded), sorted."""
    return sorted(_catalog().models)


def torchtune_model_id(builder: str) -> str | None:
    """The catalog id of the checkpoint a torchtune model builder expects, or None.

    Accepts a dotted path (``torchtune.models.llama3.lora_llama3_8b``) or a bare
    builder name; ``lora_`` and ``qlora_`` builders share their base builder's model.
    """
    short = builder.strip().rsplit(".", 1)[-1]
    short = re.sub(r"^q?lora_", "", short)
    return _catalog().torchtune_builders.get(short)


def hf_cache_dir() -> Path:
    """The hub cache folder, found the way ``huggingface_hub`` finds it."""
    from pathlib import Path

    return Path(hub_cache_location())


def hub_cache_location() -> str:
    """The hub cache folder as a string (no pathlib): ``HF_HUB_CACHE``, ``HF_HOME/hub`` or ``~/.cache/huggingface/hub``."""
    environ = os.environ
    explicit = environ.get("HF_HUB_CACHE") or environ.get("HUGGINGFACE_HUB_CACHE")
    return _hub_cache_location(explicit, environ.get("HF_HOME"), environ.get("XDG_CACHE_HOME"), environ.get("HOME"))


@cache
def _hub_cache_location(explicit: str | None, hf_home: str | None, cache_home: str | None, home: str | None) -> str:
    """Memoized on the variables it reads (``HOME`` for ``~``): asked for every base model and hub dataset."""
    if explicit:
        return os.path.expanduser(explicit)
    if hf_home:
        return os.path.join(os.path.expanduser(hf_home), "hub")
    cache_home = cache_home or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.expanduser(cache_home), "huggingface", "hub")


def _from_user_entries(
    name: str, entries: Mapping[str, Any], search_dirs: list[str | os.PathLike[str]]
) -> Resolution | None:
    key = _find_key(name, entries)
    if key is None:
        return None
    entry = entries[key]
    if not isinstance(entry, Mapping):
        raise ModelConfigError(f"model entry {key!r} must be a table, got {type(entry).__name__}")
    if "path" in entry:
        config_file = _config_file_at(str(entry["path"]), search_dirs)
        if config_file is None:
            raise ModelConfigError(f"model entry {key!r}: no config.json at {entry['path']!r}")
        return Resolution(key, _load_json(config_file), "user", str(config_file))
    if "same-as" in entry:
        target = str(entry["same-as"])
        found = _from_catalog(target)
        if found is None:
            raise ModelConfigError(f"model entry {key!r}: {target!r} is not in the built-in catalog")
        return Resolution(key, found.config, "user", None)
    return Resolution(key, dict(entry), "user", None)


def _find_key(name: str, entries: Mapping[str, Any]) -> str | None:
    if name in entries:
        return name
    lowered = name.lower()
    return next((key for key in entries if key.lower() == lowered), None)


def _from_local_path(name: str, search_dirs: list[str | os.PathLike[str]]) -> Resolution | None:
    config_file = _config_file_at(name, search_dirs)
    if config_file is None:
        return None
    return Resolution(name, _load_json(config_file), "local-dir", str(config_file))


def _config_file_at(name: str, search_dirs: list[str | os.PathLike[str]]) -> Path | None:
    """``name`` as a model folder or a config file, absolute or under one of ``search_dirs``."""
    expanded = os.path.expanduser(name.rstrip("/"))  # what Path(name).expanduser() names, unnormalized
    if not any(os.path.exists(os.path.join(base, expanded)) for base in search_dirs or [""]):
        return None  # the usual hub id: nothing on disk to look at
    from pathlib import Path

    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [Path(base) / path for base in search_dirs]
    for candidate in candidates:
        if candidate.is_dir() and (candidate / "config.json").is_file():
            return candidate / "config.json"
        if candidate.suffix == ".json" and candidate.is_file():
            return candidate
    return None


def _from_hf_cache(name: str) -> Resolution | None:
    if name.count("/") > 1 or name.startswith(("/", ".", "~")):
        return None
    folder = "models--" + name.replace("/", "--")
    location = hub_cache_location()
    if not os.path.isdir(os.path.join(location, folder)):  # as _cached_repo_dir looks, without pathlib
        try:
            listed = os.listdir(location)
        except OSError:
            return None  # no cache at all
        if not any(entry.lower() == folder.lower() for entry in listed):
            return None  # never downloaded
    repo_dir = _cached_repo_dir(hf_cache_dir(), folder)
    if repo_dir is None:
        return None
    config_file = _cached_config(repo_dir)
    if config_file is None:
        return None
    return Resolution(name, _load_json(config_file), "hf-cache", str(config_file))


def _cached_repo_dir(cache_dir: Path, folder: str) -> Path | None:
    exact = cache_dir / folder
    if exact.is_dir():
        return exact
    if not cache_dir.is_dir():
        return None
    lowered = folder.lower()  # hub ids are case-insensitive; the cache keeps the spelling used
    return next((entry for entry in cache_dir.iterdir() if entry.name.lower() == lowered and entry.is_dir()), None)


def _cached_config(repo_dir: Path) -> Path | None:
    """The snapshot ``refs/main`` points to, else the most recently written one."""
    snapshots = repo_dir / "snapshots"
    main_ref = repo_dir / "refs" / "main"
    if main_ref.is_file():
        preferred = snapshots / main_ref.read_text(encoding="utf-8").strip() / "config.json"
        if preferred.is_file():
            return preferred
    if not snapshots.is_dir():
        return None
    configs = [snapshot / "config.json" for snapshot in snapshots.iterdir() if (snapshot / "config.json").is_file()]
    return max(configs, key=lambda path: path.stat().st_mtime, default=None)


def _load_json(path: Path) -> dict:
    import json  # imported here: ~1 ms of start-up, only local and cached models need it

    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise ModelConfigError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path} does not hold a JSON object")
    return data


def _from_catalog(name: str) -> Resolution | None:
    catalog = _catalog()
    model_id = catalog.lookup(name)
    if model_id is None:
        return None
    config = marshal.loads(catalog.models[model_id])  # a fresh copy per lookup: callers may edit it
    return Resolution(model_id, config, "catalog", None)


_SNAPSHOT_OR_CHECKPOINT = r"^(?:[0-9a-f]{40}|checkpoint-\d+|snapshots|main)$"  # compiled by `re` on first use
"""Path components that name a version of a model, not the model: skipped when reading a name off a path."""


def is_local_path(name: str) -> bool:
    """A name written as a file-system path rather than a hub id (``org/name`` has one slash and no prefix)."""
    return name.startswith(("/", "~", "./", "../", "\\")) or "\\" in name or name.count("/") > 1 or (
        len(name) > 2 and name[1] == ":" and name[2] in "/\\"
    )


def _from_name_in_path(name: str) -> Resolution | None:
    """A path that is not here, resolved by the model name it ends with (see the module docstring)."""
    catalog = _catalog()
    model_id = next(filter(None, (catalog.lookup(candidate) for candidate in path_model_names(name))), None)
    if model_id is None:
        return None
    return Resolution(model_id, marshal.loads(catalog.models[model_id]), "local-name", name)


def path_model_names(path: str) -> list[str]:
    """Names a path gives its model, most specific first.

    ``.../models--org--name/snapshots/<hash>`` is the hub id ``org/name`` (the HF cache's own
    layout, so it is matched as that hub id would be); otherwise each folder from the last one
    up (skipping ``checkpoint-N`` and snapshot hashes), with its parent as an organisation, then
    alone, under any organisation: a download is normally named after its model, and a run's
    output (``saves/qwen3-4b/lora/sft``) after the model it trains.
    """
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".", "..", "~")]
    for part in reversed(parts):
        if part.startswith("models--") and "--" in part[len("models--"):]:
            org, _, model = part[len("models--"):].partition("--")
            return [f"{org}/{model}"]
    names = []
    for index in range(len(parts) - 1, -1, -1):
        if re.match(_SNAPSHOT_OR_CHECKPOINT, parts[index]):
            continue
        if index:
            names.append(f"{parts[index - 1]}/{parts[index]}")
        names.append(f"{MIRROR_ANY_ORG}/{parts[index]}")
    return names


MIRROR_ANY_ORG = "*"
"""The organisation of a bare local folder name: :meth:`_Catalog.lookup` matches it by bare name, as a mirror's."""


class _Catalog(Record):
    models: dict[str, bytes]  # id -> its config.json, marshalled: a run unpacks only the models it looks up
    by_lower_id: dict[str, str]  # lower-cased id or alias -> catalog id
    by_bare_name: dict[str, str]  # normalised name without organisation -> catalog id (unique ones only)
    mirror_orgs: frozenset[str]
    torchtune_builders: dict[str, str]

    def lookup(self, name: str) -> str | None:
        """Exact id or alias first; then the documented normalisation of re-uploads.

        A name without its quantization suffixes (``-bnb-4bit``, ``-GPTQ``, ``-NVFP4``, ...)
        is looked up by its bare name under any organisation, because such a re-upload
        states that it is the same model. Without a suffix, the bare name is trusted only
        for organisations that publish mirrors (``mirror_orgs``), so a fine-tune that
        reuses a base model's name is never mistaken for it.
        """
        found = self.by_lower_id.get(name.lower())
        if found:
            return found
        org, _, model_name = name.rpartition("/")
        stripped = _strip_quantized_suffixes(model_name)
        if stripped != model_name:
            found = self.by_lower_id.get(f"{org}/{stripped}".lower())
            if found:
                return found
        if stripped != model_name or org.lower() in self.mirror_orgs or org == MIRROR_ANY_ORG:
            return self.by_bare_name.get(_bare_name(stripped))
        return None


def _strip_quantized_suffixes(model_name: str) -> str:
    while True:
        shorter = re.sub(_QUANTIZED_SUFFIX, "", model_name, flags=re.IGNORECASE)
        if shorter == model_name:
            return model_name
        model_name = shorter


def _bare_name(model_name: str) -> str:
    """A model name without the spellings mirrors and local folders vary: case, a ``Meta-`` prefix, a ``-hf``
    suffix, and the ``-``/``_`` separators (``Llama2-7b-chat`` is ``Llama-2-7b-chat``)."""
    bare = model_name.lower()
    bare = bare.removeprefix("meta-")
    return bare.removesuffix("-hf").replace("-", "").replace("_", "")


@cache
def _catalog() -> _Catalog:
    return _Catalog(**cached("catalog", [CATALOG_PATH, __file__], _catalog_index))  # this file defines the index


def _catalog_index() -> dict[str, Any]:
    """``catalog.json`` with its lookup tables: the fields of :class:`_Catalog`, as plain data."""
    import json  # imported here: ~1 ms of start-up, and only when the cached index is stale

    with open(CATALOG_PATH, encoding="utf-8") as handle:
        data = json.load(handle)
    models: dict[str, dict] = data["models"]
    aliases: dict[str, str] = data["aliases"]
    by_lower_id = {model_id.lower(): model_id for model_id in models}
    by_lower_id.update({alias.lower(): target for alias, target in aliases.items()})
    bare_targets: dict[str, set[str]] = {}
    for name, target in by_lower_id.items():
        bare_targets.setdefault(_bare_name(name.rpartition("/")[2]), set()).add(target)
    by_bare_name = {bare: next(iter(targets)) for bare, targets in bare_targets.items() if len(targets) == 1}
    return {
        "models": {model_id: marshal.dumps(config) for model_id, config in models.items()},
        "by_lower_id": by_lower_id,
        "by_bare_name": by_bare_name,
        "mirror_orgs": frozenset(org.lower() for org in data["mirror_orgs"]),
        "torchtune_builders": data["torchtune_builders"],
    }
