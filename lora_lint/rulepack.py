"""Rules as data: load the rule files, check their shape, evaluate them over facts.

A rule's condition and message are simpleeval expressions, never Python run by
``eval``: a platform team's rule folder cannot run code (:mod:`lora_lint.expressions`
compiles the subset whose meaning is provably simpleeval's). Parsed rule packs and their
compiled expressions are cached (see :mod:`lora_lint.cache`) because parsing ~50 YAML
files costs more than the rest of a ``lora-lint check`` start-up.
"""

from __future__ import annotations

import os

import yaml

from lora_lint import expressions
from lora_lint.cache import cached

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
    """One rule file, validated. Options are the defaults; a project overrides them per run."""

    __slots__ = ("code", "name", "severity", "summary", "formats", "options", "for_each", "at",
                 "when", "message", "why", "fix", "examples", "path", "_when_code", "_message_parts")  # fmt: skip

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.path = path
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
        self.code: str = data["code"]
        self.name: str = data["name"]
        self.severity: str = data["severity"]
        self.summary: str = data["summary"].strip()
        self.formats: list[str] | None = data.get("formats")
        self.options: dict[str, Any] = dict(data.get("options") or {})
        self.for_each: str | None = data.get("for_each")
        self.at: str | list[str] | None = data.get("at")  # a setting or key name, candidates in order, or "item"
        self.when: str = _condition_text(data)
        self.message: str = _message_text(data)
        self.why: str = data["why"].strip()
        self.fix: str = data["fix"].strip()
        self.examples: dict[str, list[dict[str, Any]]] = data.get("examples") or {}
        self._when_code = _compiled(self.when)
        self._message_parts = _template(self.message)

    def applies_to(self, fmt: str) -> bool:
        return self.formats is None or fmt in self.formats

    def evaluate(
        self, facts: dict[str, Any], options: dict[str, Any], names: dict[str, Any] | None = None
    ) -> list[tuple[str, dict[str, Any] | None]]:
        """Messages of every hit, each with the record it is about (None for config-level rules).

        Dictionaries read with dots in expressions (``options.min_ratio``, ``item.key``):
        simpleeval falls back to item access when an attribute is missing. ``names`` is
        :func:`lora_lint.expressions.names_for` of ``facts``, made once for all rules of a config.
        """
        names = expressions.names_for(facts) if names is None else names
        names["options"] = options
        records = [None] if self.for_each is None else (facts.get(self.for_each) or [])
        hits = []
        for record in records:
            names["item"] = record
            try:
                hit = expressions.evaluate(self.when, self._when_code, names)
            except Exception as exc:  # noqa: BLE001 - any failure is the rule author's, reported as such
                raise self._cannot_evaluate(self.when, exc) from None
            if hit:
                hits.append((self._render(names), record))
        return hits

    def _cannot_evaluate(self, expression: str, exc: Exception) -> RulePackError:
        return RulePackError(f"{self.path}: rule {self.code} cannot evaluate {expression!r}: {exc}")

    def _render(self, names: dict[str, Any]) -> str:
        """Fill ``{expression}`` and ``{expression:spec}`` fields of the message template."""
        parts = self._message_parts
        if parts is None:  # a template str.format cannot parse: raise its error
            parts = _template_parts(self.message)
        out = []
        for literal, field, code, spec, conversion in parts:
            out.append(literal)
            if field is None:
                continue
            try:
                value = expressions.evaluate(field, code, names)
            except Exception as exc:  # noqa: BLE001 - as for the condition
                raise self._cannot_evaluate(field, exc) from None
            if conversion == "r":
                value = repr(value)
            try:
                out.append(format(value, spec or ""))
            except (TypeError, ValueError):
                out.append(str(value))
        return "".join(out)


_CODE: dict[str, Any] = {}
"""Expression -> its compiled code (None: simpleeval evaluates it), filled from the rule cache."""
_TEMPLATES: dict[str, Any] = {}
"""Message template -> its parts (None: str.format cannot parse it), filled from the rule cache."""


def _condition_text(data: dict[str, Any]) -> str:
    return data["when"].strip()


def _message_text(data: dict[str, Any]) -> str:
    return " ".join(data["message"].split())


def _compiled(expression: str) -> Any:
    if expression not in _CODE:
        _CODE[expression] = expressions.compile_expression(expression)
    return _CODE[expression]


def _template(message: str) -> Any:
    if message not in _TEMPLATES:
        try:
            _TEMPLATES[message] = _template_parts(message)
        except ValueError:
            _TEMPLATES[message] = None
    return _TEMPLATES[message]


def _template_parts(message: str) -> list[tuple[str, str | None, Any, str | None, str | None]]:
    """(literal, field expression, its code, format spec, conversion) for each piece of ``message``."""
    import string  # only when the rule cache is built, or for a template it could not parse

    return [
        (literal, field, None if field is None else _compiled(field), spec, conversion)
        for literal, field, spec, conversion in string.Formatter().parse(message)
    ]


def load_rules(folders: list[str | os.PathLike[str]]) -> list[Rule]:
    """Every rule of ``folders`` (built-in first), checked for duplicate codes and names."""
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for folder in folders:
        for data, path in _load_folder(folder):
            rule = Rule(data, path)
            for ident in (rule.code, rule.name):
                if ident in seen:
                    raise RulePackError(f"{path}: {ident!r} is already defined in {seen[ident]}")
                seen[ident] = path
            rules.append(rule)
    return rules


def _load_folder(folder: str | os.PathLike[str]) -> list[tuple[dict[str, Any], str]]:
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise RulePackError(f"{folder}: rule folder not found")
    names = sorted(name for name in os.listdir(folder) if os.path.splitext(name)[1] in (".yaml", ".yml"))
    files = [name if folder == "." else os.path.join(folder, name) for name in names]  # spelled as pathlib would
    loaded = cached("rules", [*files, __file__, expressions.__file__], lambda: _parse_folder(files))
    _CODE.update(loaded["code"])
    _TEMPLATES.update(loaded["templates"])
    return loaded["rules"]


def _parse_folder(files: list[str]) -> dict[str, Any]:
    """The rule files' data, with their expressions compiled and message templates parsed (all cacheable)."""
    rules = [(_parse_rule_file(path), path) for path in files]
    code: dict[str, Any] = {}
    templates: dict[str, Any] = {}
    for data, _ in rules:
        if isinstance(data.get("when"), str):
            condition = _condition_text(data)
            code[condition] = _compiled(condition)
        if isinstance(data.get("message"), str):
            message = templates[_message_text(data)] = _template(_message_text(data))
            for _, field, _, _, _ in message or ():
                if field is not None:
                    code[field] = _CODE[field]
    return {"rules": rules, "code": code, "templates": templates}


def _parse_rule_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle.read(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RulePackError(f"{path}: cannot read rule: {exc}") from None
    if not isinstance(data, dict):
        raise RulePackError(f"{path}: a rule file must be a mapping")
    return data
