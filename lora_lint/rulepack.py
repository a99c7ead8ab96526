"""Rules as data: load the rule files, check their shape, evaluate them over facts.

A rule's condition and the fields of its message are expressions (:mod:`lora_lint.expressions`),
parsed and checked when the pack is loaded, never passed to ``eval``: a platform team's rule folder
cannot run code. Parsed rule packs, expressions included, are cached (see :mod:`lora_lint.cache`)
because parsing ~50 YAML files costs more than the rest of a ``lora-lint check`` start-up.
"""

from __future__ import annotations

import os

import yaml

from lora_lint import expressions
from lora_lint.cache import cached

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.expressions import Closure, Tree

    MessagePart = tuple[str, str | None, Tree | None, str, str | None]
    """Literal text, then the field's source, parsed tree, format spec and conversion (None after the last field)."""

SEVERITIES = ("info", "warning", "error")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
REQUIRED_FIELDS = ("code", "name", "severity", "summary", "when", "message", "why", "fix")
OPTIONAL_FIELDS = ("formats", "options", "for_each", "at", "examples")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
BUILTIN_RULES = os.path.join(_PACKAGE_DIR, "_rules")  # inside an installed wheel
if not os.path.isdir(BUILTIN_RULES):
    BUILTIN_RULES = os.path.join(os.path.dirname(_PACKAGE_DIR), "rules")  # a source checkout


class RulePackError(Exception):
    """A rule file that cannot be used; reported with its path, exit code 2."""


class Rule:
    """One rule file, checked, its expressions parsed. Options are the defaults; a project overrides them per run."""

    __slots__ = ("code", "name", "severity", "summary", "formats", "options", "for_each", "at", "when", "message",
                 "why", "fix", "examples", "path", "_when_tree", "_message_parts", "_condition", "_fields")  # fmt: skip

    def __init__(self, data: dict[str, Any], path: str, when_tree: Tree, message_parts: list[MessagePart]) -> None:
        """``data`` as :func:`_read_rule_file` checked it; the trees as it parsed them."""
        self.path = path
        self.code: str = data["code"]
        self.name: str = data["name"]
        self.severity: str = data["severity"]
        self.summary: str = data["summary"].strip()
        self.formats: list[str] | None = data.get("formats")
        self.options: dict[str, Any] = dict(data.get("options") or {})
        self.for_each: str | None = data.get("for_each")
        self.at: str | list[str] | None = data.get("at")  # a setting or key name, candidates in order, or "item"
        self.when: str = data["when"].strip()
        self.message: str = _message_template(data["message"])
        self.why: str = data["why"].strip()
        self.fix: str = data["fix"].strip()
        self.examples: dict[str, list[dict[str, Any]]] = data.get("examples") or {}
        self._when_tree = when_tree
        self._message_parts = message_parts
        self._condition: Closure | None = None  # compiled on first use
        self._fields: list[tuple[str, str | None, Closure | None, str, str | None]] | None = None  # on first hit

    def applies_to(self, fmt: str) -> bool:
        return self.formats is None or fmt in self.formats

    def evaluate(
        self, facts: dict[str, Any], options: dict[str, Any], *, scope: dict[str, Any] | None = None, render: bool = True
    ) -> list[tuple[str | None, dict[str, Any] | None]]:
        """Messages of every hit, each with the record it is about (None for config-level rules).

        Expressions read dictionaries with dots (``options.min_ratio``, ``item.key``). ``scope`` is a
        copy of ``facts`` that a caller running many rules over one config reuses (copying ~150 facts
        for each of ~50 rules is a measurable part of a folder's run); ``options`` and ``item`` are set in it.
        ``render=False`` gives None for each message, for a caller that renders only the messages it shows
        (:meth:`message_for`).
        """
        condition = self._condition
        if condition is None:
            condition = self._condition = _compiled(self.when, self._when_tree)
        names = dict(facts) if scope is None else scope
        names["options"] = options
        records = [None] if self.for_each is None else (facts.get(self.for_each) or [])
        hits = []
        for record in records:
            names["item"] = record
            try:
                hit = condition(names)
            except Exception as exc:  # noqa: BLE001 - any failure is the rule author's, reported as such
                raise self._error(self.when, exc) from None
            if hit:
                hits.append((self._render(names) if render else None, record))
        return hits

    def message_for(self, facts: dict[str, Any], options: dict[str, Any], record: dict[str, Any] | None) -> str:
        """The message :meth:`evaluate` renders for a hit on ``record``."""
        return self._render({**facts, "options": options, "item": record})

    def _render(self, names: dict[str, Any]) -> str:
        """The message, each ``{expression}`` or ``{expression!conversion:format_spec}`` field filled in."""
        if self._fields is None:
            self._fields = [
                (literal, source, None if tree is None else _compiled(source, tree), spec, conversion)
                for literal, source, tree, spec, conversion in self._message_parts
            ]  # fmt: skip
        out = []
        for literal, source, field, spec, conversion in self._fields:
            out.append(literal)
            if field is None:
                continue
            try:
                value = field(names)
            except Exception as exc:  # noqa: BLE001 - as in evaluate
                raise self._error(source, exc) from None
            if conversion is not None:
                value = _CONVERSIONS[conversion](value)
            try:
                out.append(format(value, spec))
            except (TypeError, ValueError):
                out.append(str(value))
        return "".join(out)

    def _error(self, source: str | None, exc: Exception) -> RulePackError:
        return RulePackError(f"{self.path}: rule {self.code}: cannot evaluate {source!r}: {exc}")


_CONVERSIONS = {"r": repr, "s": str, "a": ascii}
_COMPILED: dict[str, Closure] = {}
"""Expression source -> its closures: each expression is compiled once per process, however many rules use it."""


def _compiled(source: str, tree: Tree) -> Closure:
    function = _COMPILED.get(source)
    if function is None:
        function = _COMPILED[source] = expressions.compile_tree(tree)
    return function


def _message_template(message: str) -> str:
    return " ".join(message.split())


def load_rules(folders: list[str | os.PathLike[str]]) -> list[Rule]:
    """Every rule of ``folders`` (built-in first), checked for duplicate codes and names."""
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for folder in folders:
        for data, when_tree, message_parts, path in _load_folder(folder):
            rule = Rule(data, path, when_tree, message_parts)
            for ident in (rule.code, rule.name):
                if ident in seen:
                    raise RulePackError(f"{path}: {ident!r} is already defined in {seen[ident]}")
                seen[ident] = path
            rules.append(rule)
    return rules


def _load_folder(folder: str | os.PathLike[str]) -> list[tuple[dict[str, Any], Tree, list[MessagePart], str]]:
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise RulePackError(f"{folder}: rule folder not found")
    names = sorted(name for name in os.listdir(folder) if os.path.splitext(name)[1] in (".yaml", ".yml"))
    files = [name if folder == "." else os.path.join(folder, name) for name in names]  # spelled as pathlib would
    sources = [*files, __file__, expressions.__file__]  # these modules shape the cached data
    return cached("rules", sources, lambda: [_read_rule_file(path) for path in files])


def _read_rule_file(path: str) -> tuple[dict[str, Any], Tree, list[MessagePart], str]:
    """The rule's data, checked, with its condition and message parsed: plain data, for the cache."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle.read(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RulePackError(f"{path}: cannot read rule: {exc}") from None
    if not isinstance(data, dict):
        raise RulePackError(f"{path}: a rule file must be a mapping")
    _check_fields(data, path)
    when = data["when"].strip()
    return data, _parse(when, path, data["code"], "when"), _parse_message(data, path), path


def _check_fields(data: dict[str, Any], path: str) -> None:
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    unknown = [name for name in data if name not in REQUIRED_FIELDS + OPTIONAL_FIELDS]
    if missing or unknown:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown field {', '.join(unknown)}"] if unknown else []
        raise RulePackError(f"{path}: {'; '.join(problems)}")
    for name in REQUIRED_FIELDS:
        if not isinstance(data[name], str) or not data[name].strip():
            raise RulePackError(f"{path}: field {name!r} must be a non-empty string")
    at = data.get("at")
    if at is not None and not (isinstance(at, str) or (isinstance(at, list) and all(isinstance(a, str) for a in at))):
        raise RulePackError(f"{path}: field 'at' must be a setting name or a list of them")
    if data["severity"] not in SEVERITY_RANK:
        raise RulePackError(f"{path}: severity must be one of {', '.join(SEVERITIES)}")


def _parse_message(data: dict[str, Any], path: str) -> list[MessagePart]:
    import string  # only when the pack is parsed

    template = _message_template(data["message"])
    parts: list[MessagePart] = []
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RulePackError(f"{path}: rule {data['code']}: message {template!r}: {exc}") from None
    for literal, source, spec, conversion in fields:
        if source is None:
            parts.append((literal, None, None, "", None))
            continue
        if conversion is not None and conversion not in _CONVERSIONS:
            field = f"{{{source}!{conversion}}}"
            raise RulePackError(f"{path}: rule {data['code']}: message field {field}: use !r, !s or !a")
        parts.append((literal, source, _parse(source, path, data["code"], "message"), spec or "", conversion))
    return parts


def _parse(source: str, path: str, code: str, field: str) -> Tree:
    try:
        return expressions.parse(source)
    except expressions.ExpressionError as exc:
        raise RulePackError(f"{path}: rule {code}: cannot use {source!r} in {field}: {exc}") from None
