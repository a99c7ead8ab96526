"""Rules as data: load the rule files, check their shape, evaluate them over facts.

A rule's condition and message are expressions evaluated by simpleeval, never by
``eval``: a platform team's rule folder cannot run code. Parsed rule packs are cached
(see :mod:`lora_lint.cache`) because parsing ~50 YAML files costs more than the rest of
a ``lora-lint check`` start-up.
"""

from __future__ import annotations

import math
import os

import yaml

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

_FUNCTIONS = {
    "len": len, "abs": abs, "min": min, "max": max, "round": round, "sqrt": math.sqrt, "any": any,
    "all": all, "sorted": sorted, "int": int, "float": float, "str": str, "log2": math.log2,
}  # fmt: skip


class RulePackError(Exception):
    """A rule file that cannot be used; reported with its path, exit code 2."""


class Rule:
    """One rule file, validated. Options are the defaults; a project overrides them per run."""

    __slots__ = ("code", "name", "severity", "summary", "formats", "options", "for_each", "at",
                 "when", "message", "why", "fix", "examples", "path")  # fmt: skip

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
        self.when: str = data["when"].strip()
        self.message: str = " ".join(data["message"].split())
        self.why: str = data["why"].strip()
        self.fix: str = data["fix"].strip()
        self.examples: dict[str, list[dict[str, Any]]] = data.get("examples") or {}

    def applies_to(self, fmt: str) -> bool:
        return self.formats is None or fmt in self.formats

    def evaluate(self, facts: dict[str, Any], options: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
        """Messages of every hit, each with the record it is about (None for config-level rules).

        Dictionaries read with dots in expressions (``options.min_ratio``, ``item.key``):
        simpleeval falls back to item access when an attribute is missing.
        """
        names = dict(facts, options=options)
        records = [None] if self.for_each is None else (facts.get(self.for_each) or [])
        hits = []
        for record in records:
            names["item"] = record
            if _evaluate(self.when, names, self):
                hits.append((_render(self.message, names, self), record))
        return hits


_EVALUATOR: Any = None
_PARSED: dict[str, Any] = {}
"""Expression -> simpleeval's parsed tree: each expression is parsed once per run, however many files it sees."""


def _evaluate(expression: str, names: dict[str, Any], rule: Rule) -> Any:
    global _EVALUATOR
    if _EVALUATOR is None:
        from simpleeval import EvalWithCompoundTypes  # imported on first use: ~4 ms

        _EVALUATOR = EvalWithCompoundTypes(functions=_FUNCTIONS)
    _EVALUATOR.names = names
    try:
        parsed = _PARSED.get(expression)
        if parsed is None:
            parsed = _PARSED[expression] = _EVALUATOR.parse(expression)
        return _EVALUATOR.eval(expression, previously_parsed=parsed)
    except Exception as exc:  # noqa: BLE001 - any failure is the rule author's, reported as such
        raise RulePackError(f"{rule.path}: rule {rule.code} cannot evaluate {expression!r}: {exc}") from None


def _render(template: str, names: dict[str, Any], rule: Rule) -> str:
    """Fill ``{expression}`` and ``{expression:spec}`` fields of a message template."""
    import string  # imported here: only a rule that fires renders a message (~0.4 ms of start-up)

    out = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        value = _evaluate(field, names, rule)
        if conversion == "r":
            value = repr(value)
        try:
            out.append(format(value, spec or ""))
        except (TypeError, ValueError):
            out.append(str(value))
    return "".join(out)


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
    return cached("rules", [*files, __file__], lambda: [(_parse_rule_file(path), path) for path in files])


def _parse_rule_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle.read(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RulePackError(f"{path}: cannot read rule: {exc}") from None
    if not isinstance(data, dict):
        raise RulePackError(f"{path}: a rule file must be a mapping")
    return data
