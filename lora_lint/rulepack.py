"""Rules as data: load the rule files, check their shape, evaluate them over facts.

A rule's condition and message are expressions evaluated by simpleeval, never by
``eval``: a platform team's rule folder cannot run code. Parsed rule packs are cached
as JSON (keyed by each file's size and mtime) because parsing ~40 YAML files costs
more than the rest of a ``lora-lint check`` start-up.
"""

from __future__ import annotations

import json
import math
import os
import string
import zlib
from pathlib import Path

import yaml

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SEVERITIES = ("info", "warning", "error")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
REQUIRED_FIELDS = ("code", "name", "severity", "summary", "when", "message", "why", "fix")
OPTIONAL_FIELDS = ("formats", "options", "for_each", "at", "examples")
BUILTIN_RULES = Path(__file__).parent / "_rules"  # inside an installed wheel
if not BUILTIN_RULES.is_dir():
    BUILTIN_RULES = Path(__file__).parent.parent / "rules"  # a source checkout

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
        if data["severity"] not in SEVERITY_RANK:
            raise RulePackError(f"{path}: severity must be one of {', '.join(SEVERITIES)}")
        self.code: str = data["code"]
        self.name: str = data["name"]
        self.severity: str = data["severity"]
        self.summary: str = data["summary"].strip()
        self.formats: list[str] | None = data.get("formats")
        self.options: dict[str, Any] = dict(data.get("options") or {})
        self.for_each: str | None = data.get("for_each")
        self.at: str | None = data.get("at")
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


def _evaluate(expression: str, names: dict[str, Any], rule: Rule) -> Any:
    global _EVALUATOR
    if _EVALUATOR is None:
        from simpleeval import EvalWithCompoundTypes  # imported on first use: ~5 ms

        _EVALUATOR = EvalWithCompoundTypes(functions=_FUNCTIONS)
    _EVALUATOR.names = names
    try:
        return _EVALUATOR.eval(expression)
    except Exception as exc:  # noqa: BLE001 - any failure is the rule author's, reported as such
        raise RulePackError(f"{rule.path}: rule {rule.code} cannot evaluate {expression!r}: {exc}") from None


def _render(template: str, names: dict[str, Any], rule: Rule) -> str:
    """Fill ``{expression}`` and ``{expression:spec}`` fields of a message template."""
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


def load_rules(folders: list[Path]) -> list[Rule]:
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


def _load_folder(folder: Path) -> list[tuple[dict[str, Any], str]]:
    if not folder.is_dir():
        raise RulePackError(f"{folder}: rule folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    stamp = zlib.crc32(repr([(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files]).encode())
    cache = _cache_dir() / f"rules-{stamp:08x}.json"  # crc32: hashlib would load OpenSSL (~2.5 ms)
    try:
        return [(data, path) for data, path in json.loads(cache.read_text())]
    except (OSError, ValueError):
        pass
    loaded = [(_parse_rule_file(p), str(p)) for p in files]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(loaded))
        temporary.replace(cache)
    except (OSError, TypeError, ValueError):
        pass  # a read-only or odd cache location only costs speed
    return loaded


def _parse_rule_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RulePackError(f"{path}: cannot read rule: {exc}") from None
    if not isinstance(data, dict):
        raise RulePackError(f"{path}: a rule file must be a mapping")
    return data


def _cache_dir() -> Path:
    if "LORA_LINT_CACHE_DIR" in os.environ:
        return Path(os.environ["LORA_LINT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lora-lint"
