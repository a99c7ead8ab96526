"""Load a YAML or JSON file into plain values plus the position of every key.

YAML is composed once with libyaml (safe: tags are never constructed into objects),
then turned into Python values from the same nodes. That is about as fast as a plain
``yaml.safe_load``, and it sees what a plain load hides: duplicate keys, ``2e-4`` read
as a string, ``yes``/``on`` read as booleans, unsafe tags, alias bombs. Keys are kept as
written (``1:`` is the key ``"1"``), and ``<<`` merge keys follow YAML's rule: keys written in a
mapping override merged ones, so only a key written twice in one mapping is a duplicate.

JSON is parsed by the C ``json`` module; positions come from a small scan of the text.
"""

from __future__ import annotations

import operator
import re
from functools import cache, partial

TYPE_CHECKING = False  # `typing` and `dataclasses` cost ~10 ms of start-up
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

import yaml

from lora_lint.lora_setup import KeyUse, Location, ReaderNote

try:  # libyaml is in every PyYAML wheel; the pure-Python loader is the fallback.
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]
_RESOLVER = yaml.resolver.Resolver()  # the safe loader's resolver: its resolve() reads only class-level tables

_TAG_MEMO_MAX_TEXT = 2 * 1024 * 1024
"""Text held by the tag memo beyond which it is emptied (between files): a folder of prompts cannot grow it unbounded."""
_TAG_MEMO_MAX_ENTRIES = 8192
_memo_text = 0  # characters of text the tag memo holds
_memo_entries = 0


@cache
def _memo_tag(kind: Any, value: Any, implicit: Any) -> str:
    """The tag the safe loader resolves for a node; called only on a miss of the (C-level) memo."""
    global _memo_text, _memo_entries
    _memo_entries += 1
    if value is not None:
        _memo_text += len(value)
    return _RESOLVER.resolve(kind, value, implicit)


class _ComposeLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """The safe loader, with PyYAML's per-node Python hooks made C-level; the nodes composed are the same.

    libyaml parses, but PyYAML resolves every node's tag in Python: a scalar's tag is a pure
    function of (node kind, text, implicit flags) under the safe loader's fixed resolvers, so it
    is looked up once per process (the same ``true``, ``lora_r`` or ``0.0002`` recurs in every
    config) in a ``functools.cache``, whose hits run no Python code. The safe loader has no path
    resolvers, so the per-node path hooks do nothing, as builtins that accept the same arguments.
    Each node composed then calls no Python function but the node class's own ``__init__``.
    """

    resolve = staticmethod(_memo_tag)
    descend_resolver = staticmethod(operator.is_)  # (parent, index) -> ignored
    ascend_resolver = staticmethod(tuple)  # () -> ignored


def _bound_tag_memo() -> None:
    """Empty the tag memo once it holds too much text or too many tags (between files, never during one)."""
    global _memo_text, _memo_entries
    if _memo_text > _TAG_MEMO_MAX_TEXT or _memo_entries > _TAG_MEMO_MAX_ENTRIES:
        _memo_tag.cache_clear()
        _memo_text = _memo_entries = 0


MAX_BYTES = 5 * 1024 * 1024
"""Larger files are not LoRA configs; refusing them bounds time and memory."""
MAX_NODES = 200_000
"""Bound on values built, counting every alias expansion: defeats alias bombs."""
MAX_DEPTH = 100
"""LoRA configs nest a few levels; deeper input is hostile or not a config."""

KeyPath = tuple  # of str keys and int list indexes, e.g. ("datasets", 0, "path")

_TAG_STR = "tag:yaml.org,2002:str"
_TAG_BOOL = "tag:yaml.org,2002:bool"
_TAG_NULL = "tag:yaml.org,2002:null"
_TAG_MERGE = "tag:yaml.org,2002:merge"
_TAG_MAP = "tag:yaml.org,2002:map"
_SAFE_SCALAR_TAGS = {
    _TAG_STR,
    _TAG_BOOL,
    _TAG_NULL,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:binary",
}
_KEY_TAGS = _SAFE_SCALAR_TAGS  # merge keys (<<) and other tags take the slow path of _mapping
_NUMBER_LIKE = re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*[eE][-+]?\d+$")
_YAML_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}


class InputError(Exception):
    """A file that cannot be read as a config. Reported as one line with its position."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class Document:
    """Plain values of a file, where each key sits, and what loading noticed."""

    __slots__ = ("data", "notes", "path", "positions", "text", "uses")

    def __init__(self, path: str, data: Any, text: str) -> None:
        self.path = path
        self.data = data
        self.text = text
        self.positions: dict[KeyPath, Location] = {}
        self.notes: list[ReaderNote] = []
        self.uses: list[KeyUse] | None = None
        """Every key written, with its position and value, parents first; recorded while building the data
        (None where a loader does not, or once the data is changed: readers then walk the data)."""

    def location(self, *path: str | int) -> Location | None:
        return self.positions.get(tuple(path))


def key_string(path: KeyPath) -> str:
    """``("datasets", 0, "path")`` -> ``"datasets[0].path"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def decode(raw: bytes) -> str:
    """Bytes to text, refusing binary and undecodable input with a position."""
    if len(raw) > MAX_BYTES:
        raise InputError(f"file too large ({len(raw) / 1e6:.1f} MB; limit {MAX_BYTES / 1e6:.0f} MB)")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-16: {exc.reason}") from None
    if b"\x00" in raw[:8192]:
        raise InputError("binary file (contains NUL bytes), not a config")
    try:
        # What "utf-8-sig" decodes (a leading BOM dropped), without loading that codec (~0.2 ms of start-up)
        return (raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise InputError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", line, column) from None


def load_yaml(path: str, text: str) -> Document:
    doc = Document(path, None, text)
    _bound_tag_memo()
    try:
        node = yaml.compose(text, Loader=_ComposeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InputError(f"invalid YAML: {problem}", line, column) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise InputError(f"nesting deeper than {MAX_DEPTH} levels") from None
    if node is not None:
        doc.uses = []
        doc.data = _YamlBuilder(doc).build(node, (), "", 0)
    return doc


def _loc(node: yaml.Node, key: str) -> Location:
    """Where ``node`` starts, for the key path spelled ``key`` (see :func:`key_string`)."""
    return Location(node.start_mark.line + 1, node.start_mark.column + 1, key)


_new_location = partial(tuple.__new__, Location)
"""``_new_location((line, column, key))`` is ``Location(line, column, key)`` without the Python-level ``__new__``
a namedtuple has: the builder makes one per key written."""
_new_key_use = partial(tuple.__new__, KeyUse)
_ScalarNode, _SequenceNode, _MappingNode = yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode

_SCALARS: dict[tuple[str, str], Any] = {}
"""(tag, text) -> value of the numbers, booleans, nulls and dates already constructed in this process: PyYAML's
constructor is a pure function of the two, and the same ``true`` or ``0.0002`` recurs in every config."""
_SCALARS_LIMIT = 4096


class _YamlBuilder:
    """Turns composed nodes into plain values, recording positions and traps.

    Each value is built with its key path and that path's :func:`key_string`, extended
    one key at a time rather than joined again for every key. A mapping's scalar values,
    most of a config, are built in its own loop rather than by a call of :meth:`build` each.
    """

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.positions = doc.positions
        self.uses = doc.uses
        self.count = 0
        self.entries: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}
        self.constructor: Any = None  # a loader that constructs scalar values from nodes, made on first need

    def build(self, node: yaml.Node, path: KeyPath, name: str, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise InputError(f"too many values (over {MAX_NODES:,}, aliases expanded): not a config", *_pos(node))
        if depth > MAX_DEPTH:
            raise InputError(f"nesting deeper than {MAX_DEPTH} levels", *_pos(node))
        if isinstance(node, _MappingNode):
            return self._mapping(node, path, name, depth)
        if isinstance(node, _SequenceNode):
            self._check_tag(node, "tag:yaml.org,2002:seq")
            return [self.build(item, path + (i,), f"{name}[{i}]", depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, name)

    def _check_tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            raise InputError(f"unsupported YAML tag {node.tag!r} (only plain data is read)", *_pos(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, name: str, depth: int) -> dict[str, Any]:
        pairs = node.value
        keys = [key_node.value for key_node, _ in pairs if key_node.tag in _KEY_TAGS and isinstance(key_node, _ScalarNode)]
        if node.tag == _TAG_MAP and len(keys) == len(pairs) and len(set(keys)) == len(keys):
            items: Any = zip(keys, pairs)  # the common case: plain keys, each written once, no merge
        else:
            items = self._entries(node, depth).items()
            self._note_duplicates(node, name)
        result: dict[str, Any] = {}
        positions = self.positions
        uses = self.uses
        prefix = f"{name}." if name else ""
        depth += 1
        for key, (key_node, value_node) in items:
            child = path + (key,)
            child_name = prefix + key
            mark = key_node.start_mark
            location = positions[child] = _new_location((mark.line + 1, mark.column + 1, child_name))
            if isinstance(value_node, _ScalarNode):  # what build() does for a scalar, without the call
                self.count += 1
                if self.count > MAX_NODES:
                    raise InputError(f"too many values (over {MAX_NODES:,}, aliases expanded): not a config", *_pos(value_node))
                if depth > MAX_DEPTH:
                    raise InputError(f"nesting deeper than {MAX_DEPTH} levels", *_pos(value_node))
                value = result[key] = self._scalar(value_node, child_name)
                uses.append(_new_key_use((child_name, location, value)))
                continue
            slot = len(uses)
            uses.append(None)  # the parent's place, before its children's
            value = result[key] = self.build(value_node, child, child_name, depth)
            uses[slot] = _new_key_use((child_name, location, value))
        return result

    def _entries(self, node: yaml.MappingNode, depth: int) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key -> (key node, value node) of a mapping with its ``<<`` merges applied, in written order.

        As in YAML's merge rule, keys written in the mapping override merged ones wherever the
        ``<<`` stands, and of several merged mappings the first listed wins. A merged key keeps the
        nodes, hence the position, written in its anchor. Memoized per node: an anchor merged many
        times is flattened once, and a mapping merging itself sees itself as empty.
        """
        known = self.entries.get(id(node))
        if known is not None:
            return known
        if depth > MAX_DEPTH:
            raise InputError(f"nesting deeper than {MAX_DEPTH} levels", *_pos(node))
        self._check_tag(node, _TAG_MAP)
        self.entries[id(node)] = {}
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:  # without a merge key, one pass
            if key_node.tag == _TAG_MERGE:
                entries = self._merged_entries(node, depth)
                break
            entries[self._key(key_node)] = (key_node, value_node)
        self.entries[id(node)] = entries
        return entries

    def _merged_entries(self, node: yaml.MappingNode, depth: int) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        written = {self._key(key_node) for key_node, _ in node.value if key_node.tag != _TAG_MERGE}
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag != _TAG_MERGE:
                entries[self._key(key_node)] = (key_node, value_node)
                continue
            for source in self._merge_sources(value_node):
                merged = self._entries(source, depth + 1)
                self.count += len(merged)
                if self.count > MAX_NODES:
                    raise InputError(f"too many values (over {MAX_NODES:,}, aliases expanded): not a config", *_pos(value_node))
                for key, pair in merged.items():
                    if key not in written:
                        entries.setdefault(key, pair)
        return entries

    def _merge_sources(self, node: yaml.Node) -> list[yaml.MappingNode]:
        """The mappings a ``<<`` value names: one mapping or a list of them, as YAML allows."""
        if isinstance(node, yaml.MappingNode):
            return [node]
        if isinstance(node, yaml.SequenceNode) and all(isinstance(item, yaml.MappingNode) for item in node.value):
            self._check_tag(node, "tag:yaml.org,2002:seq")
            return node.value
        raise InputError("a merge key (<<) needs a mapping or a list of mappings", *_pos(node))

    def _note_duplicates(self, node: yaml.MappingNode, name: str) -> None:
        """A key written twice in one mapping; keys overriding merged ones are not duplicates."""
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _TAG_MERGE:
                continue
            key = self._key(key_node)
            if key in seen:
                child = f"{name}.{key}" if name else key
                data = {"key": child, "first_line": seen[key].start_mark.line + 1}
                self.doc.notes.append(ReaderNote("duplicate-key", _loc(key_node, child), data))
            seen[key] = key_node

    def _key(self, node: yaml.Node) -> str:
        """A key as written: ``1``, ``true`` and ``null`` stay text, so they neither collide nor read as values."""
        if not isinstance(node, yaml.ScalarNode):
            raise InputError("a mapping key must be a plain value", *_pos(node))
        if node.tag not in _SAFE_SCALAR_TAGS:
            raise InputError(f"unsupported YAML tag {node.tag!r} (only plain data is read)", *_pos(node))
        return node.value

    def _scalar(self, node: yaml.Node, name: str) -> Any:
        tag = node.tag
        if tag not in _SAFE_SCALAR_TAGS:
            raise InputError(f"unsupported YAML tag {tag!r} (only plain data is read)", *_pos(node))
        if not node.style:  # a plain scalar: libyaml marks it with "", the Python composer with None
            if tag == _TAG_STR and _NUMBER_LIKE.match(node.value):
                self.doc.notes.append(ReaderNote("yaml-string-number", _loc(node, name), {"key": name, "text": node.value}))
            elif tag == _TAG_BOOL and node.value.lower() in _YAML_BOOL_WORDS:
                self.doc.notes.append(ReaderNote("yaml-bool-word", _loc(node, name), {"key": name, "text": node.value}))
        if tag == _TAG_STR:
            return node.value
        key = (tag, node.value)
        if key in _SCALARS:
            return _SCALARS[key]
        if self.constructor is None:
            self.constructor = _SafeLoader("")
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise InputError(f"invalid value: {exc}", *_pos(node)) from None
        if len(_SCALARS) >= _SCALARS_LIMIT:
            _SCALARS.clear()
        _SCALARS[key] = value
        return value


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_JSON_TOKEN = r'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^\s{}\[\],:"]+'


def load_json(path: str, text: str) -> Document:
    doc = Document(path, parse_json(text), text)
    _index_json(doc)
    return doc


def parse_json(text: str, context: str = "") -> Any:
    """The value of a JSON text; invalid JSON is an :class:`InputError` at its position, after ``context``."""
    import json  # imported here: ~1 ms of start-up, only JSON files need it

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{context}invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise InputError(f"{context}nesting too deep") from None


def _index_json(doc: Document) -> None:
    """Record the position of every object key."""
    import bisect  # JSON files only, as in load_json

    text = doc.text
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for is_key, path, match in json_tokens(text):
        if not is_key:
            continue
        line = bisect.bisect_right(line_starts, match.start())
        location = Location(line, match.start() - line_starts[line - 1] + 1, key_string(path))
        if path in doc.positions:
            first = doc.positions[path]
            doc.notes.append(ReaderNote("duplicate-key", location, {"key": key_string(path), "first_line": first.line}))
        doc.positions[path] = location


def json_tokens(text: str) -> Iterator[tuple[bool, KeyPath, re.Match[str]]]:
    """Every object key (``True``) and scalar value (``False``) of a parsed-valid JSON text, with its key path.

    The C ``json`` module gives values but no positions; this walk of the token stream gives
    the positions, without building values again.
    """
    import json

    stack: list[list[Any]] = []  # containers: [path, kind "{" or "[", next index]
    pending_key: str | None = None
    expect_key = False
    for match in re.finditer(_JSON_TOKEN, text, re.S):
        token = match.group()
        if token in "{[":
            path = _json_value_path(stack, pending_key)
            stack.append([path, token, 0])
            pending_key, expect_key = None, token == "{"
        elif token in "}]":
            stack.pop()
            expect_key = False
            if stack and stack[-1][1] == "[":
                stack[-1][2] += 1
        elif token == ",":
            expect_key = bool(stack) and stack[-1][1] == "{"
        elif token == ":":
            expect_key = False
        elif expect_key and token.startswith('"') and stack:
            pending_key = json.loads(token)
            yield True, stack[-1][0] + (pending_key,), match
        else:
            yield False, _json_value_path(stack, pending_key), match
            if stack and stack[-1][1] == "[":
                stack[-1][2] += 1


def _json_value_path(stack: list[list[Any]], pending_key: str | None) -> KeyPath:
    if not stack:
        return ()
    parent_path, kind, index = stack[-1]
    return parent_path + ((pending_key,) if kind == "{" else (index,))


def load_document(path: str, raw: bytes) -> Document:
    """Decode and parse ``raw``; JSON by extension or leading brace, YAML otherwise."""
    text = decode(raw)
    if path.endswith(".json"):
        return load_json(path, text)
    return load_yaml(path, text)
