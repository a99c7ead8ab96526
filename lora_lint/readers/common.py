"""What every reader does the same way: take a value with its position, check its type, flag unknown keys.

Readers differ only in which key of their format feeds which normalized setting and in
their framework's defaults; the mechanics live here so each reader stays a readable table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache

from lora_lint import near_miss
from lora_lint.document import Document, KeyPath, key_string
from lora_lint.lora_setup import UNKNOWN, KeyUse, Location, LoraSetup, ReaderNote
from lora_lint.readers.dataset_size import total_examples

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.readers.schemas import Schema

DATA_DIR = os.path.dirname(os.path.abspath(__file__))
"""Where the ``<name>.txt`` key lists live (the frameworks' versioned keys are in ``framework_schemas/``)."""

SETTING_TYPES: dict[str, str] = {
    "r": "int",
    "lora_alpha": "number",
    "lora_dropout": "number",
    "target_modules": "str|list[str]",
    "exclude_modules": "str|list[str]",
    "target_linear": "bool",
    "rank_pattern": "dict",
    "alpha_pattern": "dict",
    "use_rslora": "bool",
    "use_dora": "bool",
    "init_lora_weights": "bool|str",
    "bias": "str",
    "modules_to_save": "list[str]",
    "layers_to_transform": "int|list[int]",
    "layers_pattern": "str|list[str]",
    "fan_in_fan_out": "bool",
    "task_type": "str",
    "num_labels": "int",
    "base_model": "str",
    "trust_remote_code": "bool",
    "load_in_4bit": "bool",
    "load_in_8bit": "bool",
    "bnb_4bit_quant_type": "str",
    "bnb_4bit_compute_dtype": "str",
    "bnb_4bit_use_double_quant": "bool",
    "torch_dtype": "str",
    "sequence_len": "int",
    "micro_batch_size": "int",
    "gradient_accumulation_steps": "int",
    "num_epochs": "number",
    "max_steps": "int",
    "learning_rate": "number",
    "optimizer": "str",
    "gradient_checkpointing": "bool|str",
    "sample_packing": "bool",
    "attn_implementation": "str",
    "chunked_loss": "bool",
    "val_size": "number",
    "max_samples": "int",
    "dataset_examples": "int",
    "resume_adapter": "str",
    "output_dir": "str",
}
"""The type each normalized setting must have; a value of another type gets a ``wrong-type`` note."""

_NUMBER_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"  # compiled by `re` on first use
_BOOL_TEXT = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


@cache
def key_list(name: str) -> tuple[str, ...]:
    """Names in the data file ``<name>.txt`` beside this module, in file order ('#' lines are comments)."""
    with open(os.path.join(DATA_DIR, f"{name}.txt"), encoding="utf-8") as handle:
        text = handle.read()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@cache
def key_set(name: str) -> frozenset[str]:
    return frozenset(key_list(name))


def type_name(value: Any) -> str:
    """The name a message shows for the type of a loaded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number" if isinstance(value, float) else "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, (list, tuple, set)):
        return "list"
    return type(value).__name__


def _matches(value: Any, expected: str) -> bool:
    if expected == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "bool":
        return isinstance(value, bool)
    if expected == "str":
        return isinstance(value, str)
    if expected == "dict":
        return isinstance(value, dict)
    if expected.startswith("list"):
        if not isinstance(value, (list, tuple, set)):
            return False
        item = expected[5:-1] if expected.endswith("]") else ""
        return not item or all(_matches(v, item) for v in value)
    raise ValueError(f"unknown type name {expected!r}")


def _convert(value: Any, expected: str) -> Any:
    """The value a trainer would end up with after a lenient conversion, or UNKNOWN."""
    for alternative in expected.split("|"):
        if alternative in ("int", "number") and isinstance(value, str) and re.match(_NUMBER_TEXT, value):
            number = float(value)
            if alternative == "number":
                return number
            if number.is_integer():
                return int(number)
        if alternative == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        if alternative == "bool" and isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
            return _BOOL_TEXT[value.strip().lower()]
        if alternative.startswith("list") and isinstance(value, (tuple, set)):
            return sorted(value, key=str) if isinstance(value, set) else list(value)
    return UNKNOWN


_SCALAR_MATCHES: dict[tuple[type, str], bool] = {}
"""(type of a scalar value, expected type name) -> whether it matches: for anything but a container the
answer depends on the value's type alone, and a folder of configs asks the same few questions thousands of times."""


def checked(value: Any, expected: str) -> tuple[bool, Any]:
    """(whether ``value`` has the ``expected`` type, the value to keep).

    A value of the wrong type is kept converted when the conversion is unambiguous
    (``"16"`` for an int), so later facts still work while the note reports the mistake;
    otherwise it is kept as :data:`UNKNOWN`.
    """
    kind = type(value)
    if kind is not list and kind is not tuple and kind is not set and kind is not dict:
        matches = _SCALAR_MATCHES.get((kind, expected))
        if matches is None:
            matches = _SCALAR_MATCHES[kind, expected] = any(_matches(value, alternative) for alternative in expected.split("|"))
        return (True, value) if matches else (False, _convert(value, expected))
    if any(_matches(value, alternative) for alternative in expected.split("|")):
        if isinstance(value, (tuple, set)):
            return True, _convert(value, expected)
        return True, value
    return False, _convert(value, expected)


class SetupBuilder:
    """Fills one :class:`LoraSetup` from a loaded document, keeping positions and notes.

    ``lenient`` mirrors frameworks that validate with pydantic's lax mode (axolotl): a
    numeric string for a number, or ``16.0`` for an int, is accepted without a note.
    """

    def __init__(self, doc: Document, fmt: str, *, lenient: bool = False) -> None:
        self.doc = doc
        self.config_dir = os.path.dirname(doc.path)  # "" for a bare file name: the working directory
        self.lenient = lenient
        self.setup = LoraSetup(path=doc.path, format=fmt)
        self.setup.notes.extend(doc.notes)
        self.setup.keys = key_uses(doc)
        self.setup.start = first_location(doc)

    def value(self, *path: str | int) -> Any:
        """The loaded value at ``path``, or None when absent."""
        node: Any = self.doc.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return None
        return node

    def location(self, *path: str | int) -> Location | None:
        return self.doc.location(*path) or _nearest_location(self.doc, path)

    def take(self, name: str, *path: str | int, transform: Callable[[Any], Any] | None = None) -> bool:
        """Set the normalized ``name`` from the file's ``path``; True when the file has a value there.

        A null value counts as absent, as in every supported framework (their fields are optional).
        ``transform`` turns the format's spelling into the normalized shape before the type check
        (e.g. LLaMA-Factory's ``"q_proj,v_proj"`` into a list); it must accept any value.
        """
        raw = self.value(*path)
        if raw is None:
            return False
        if transform is not None:
            raw = transform(raw)
        location = self.location(*path)
        self.setup.set(name, self.typed(name, raw, location, key_string(path)), location)
        return True

    def take_all(self, settings: Mapping[str, str]) -> None:
        """:meth:`take` each top-level key of ``settings`` (file key -> setting name) that the file sets.

        A config sets a handful of the dozens of keys a format maps; the absent ones are skipped here
        with one dictionary look-up each.
        """
        data = self.doc.data
        if isinstance(data, dict):
            positions = self.doc.positions
            for key, setting in settings.items():
                raw = data.get(key)
                if raw is not None:  # what take(setting, key) does, for a top-level key
                    location = positions.get((key,))
                    self.setup.set(setting, self.typed(setting, raw, location, key), location)

    def typed(self, name: str, raw: Any, location: Location | None, key: str) -> Any:
        """``raw`` checked against the type of setting ``name``, noting a wrong type."""
        ok, value = checked(raw, SETTING_TYPES[name])
        if ok:
            return value
        if self.lenient and value is not UNKNOWN and not isinstance(raw, (list, dict)):
            return value
        if any(note.kind == "yaml-string-number" and note.data.get("key") == key for note in self.setup.notes):
            return value  # already reported, more precisely, by the loader
        self.note("wrong-type", location, key=key, expected=SETTING_TYPES[name], got=type_name(raw), value=_short(raw))
        return value

    def note(self, kind: str, location: Location | None, **data: Any) -> None:
        where = location or self.setup.start or Location(1, 1, "")
        self.setup.notes.append(ReaderNote(kind, where, data))

    def unknown_keys(
        self,
        keys: Iterable[str],
        known: frozenset[str] | Schema,
        aliases: Mapping[str, str],
        prefix: tuple[str | int, ...] = (),
        also_known: frozenset[str] = frozenset(),
    ) -> None:
        """Note every key of ``keys`` that the format does not know, with the nearest known key.

        Given a framework :class:`~lora_lint.readers.schemas.Schema`, the note also names the
        version checked against and the other versions that know the key: a key only another
        bundled version has is ``version_dependent`` when the user's version is not known.
        ``also_known`` adds keys read by a tool around the framework (alignment-handbook's scripts).
        """
        schema = None if isinstance(known, frozenset) else known
        names = known if schema is None else schema.known
        if also_known:
            names = names | also_known
        for key in keys:
            if not isinstance(key, str) or key in names:
                continue
            path = prefix + (key,)
            data: dict[str, Any] = {"key": key_string(path), "suggestion": aliases.get(key) or closest(key, names)}
            if schema is not None:
                elsewhere = schema.other_versions(key)
                data.update(schema=schema.label, other_versions=elsewhere,
                            version_dependent=elsewhere is not None and schema.origin == "bundled")  # fmt: skip
            self.note("unknown-key", self.location(*path), **data)

    def datasets(self, name: str, records: list[dict[str, Any]], *path: str | int, max_samples: Any = None) -> None:
        """Set ``datasets`` or ``val_datasets``; training sets also give ``dataset_examples`` when countable."""
        location = self.location(*path)
        self.setup.set(name, records, location)
        if name == "datasets":
            examples = total_examples(records, max_samples)
            if examples is not None:
                self.setup.set("dataset_examples", examples, location)

    def extra(self, name: str, *path: str | int) -> None:
        """Keep a format-specific value for rules, when the file has it."""
        raw = self.value(*path)
        if raw is not None:
            self.setup.extras[name] = raw


def closest(key: str, known: Iterable[str]) -> str | None:
    """The known key a misspelled ``key`` most likely meant (difflib ratio of at least 0.8)."""
    return near_miss.closest(key, known, cutoff=0.8)


def split_names(value: Any) -> Any:
    """LLaMA-Factory style ``"q_proj, v_proj"`` -> ``["q_proj", "v_proj"]``; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def walk(data: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """Every (key path, value) of nested mappings and lists, parents before children.

    Loaded documents hold plain dicts: ``isinstance(data, dict)`` is several times cheaper than
    an ABC check, and a corpus run makes tens of thousands of them.
    """
    if isinstance(data, dict):
        for key, value in data.items():
            yield path + (key,), value
            yield from walk(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from walk(value, path + (index,))


def key_uses(doc: Document) -> list[KeyUse]:
    """Every key the file writes, with its value; a position's ``key`` is already the spelled path."""
    if doc.uses is not None:
        return list(doc.uses)
    positions = doc.positions
    return [KeyUse(positions[path].key, positions[path], value) for path, value in walk(doc.data) if path in positions]


def first_location(doc: Document) -> Location | None:
    """The first top-level key written; two keys never share a line and column, so locations compare as tuples.

    Only a mapping has top-level keys, and its keys are those of the data: looking each up is cheaper
    than scanning the positions of every nested key.
    """
    if not isinstance(doc.data, dict):
        return min((loc for path, loc in doc.positions.items() if len(path) == 1), default=None)
    positions = doc.positions
    return min([positions[(key,)] for key in doc.data if (key,) in positions], default=None)


def _nearest_location(doc: Document, path: tuple[str | int, ...]) -> Location | None:
    """A list item has no key of its own: point at the closest enclosing key."""
    for end in range(len(path) - 1, 0, -1):
        location = doc.positions.get(tuple(path[:end]))
        if location is not None:
            return Location(location.line, location.column, key_string(path))
    return None


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


def coerce_omegaconf_numbers(doc: Document) -> None:
    """Read ``2e-4`` the way OmegaConf does (a float), dropping the notes that were only about it.

    LLaMA-Factory and torchtune load YAML with OmegaConf, whose resolver reads exponent
    numbers without a dot as floats; for them a plain ``2e-4`` is no mistake.
    """
    noted = {note.data.get("key") for note in doc.notes if note.kind == "yaml-string-number"}
    if not noted:
        return
    doc.data = _coerce(doc.data, (), noted)
    doc.uses = None  # recorded with the values before coercion
    doc.notes = [note for note in doc.notes if note.kind != "yaml-string-number"]


def _coerce(data: Any, path: KeyPath, noted: set[Any]) -> Any:
    if isinstance(data, dict):
        return {key: _coerce(value, path + (key,), noted) for key, value in data.items()}
    if isinstance(data, list):
        return [_coerce(value, path + (i,), noted) for i, value in enumerate(data)]
    if isinstance(data, str) and key_string(path) in noted:
        try:
            return float(data)
        except ValueError:
            return data
    return data
