"""The pipeline: files -> readers -> setups -> facts -> rules -> findings.

The engine applies the project's policy (select/ignore, per-file ignores, severity
overrides, rule options) and inline suppressions, and reports suppressions that
silence nothing. It knows no file format and holds no opinion of its own.
"""

from __future__ import annotations

import os
import re
from functools import cache, partial

from lora_lint.document import InputError
from lora_lint.facts import compute_facts
from lora_lint.project import Project, ProjectConfigError
from lora_lint.rulepack import BUILTIN_RULES, SEVERITY_RANK, Rule, load_rules
from lora_lint.suppressions import find_suppressions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Iterator

    from lora_lint.lora_setup import LoraSetup

CANDIDATE_SUFFIXES = (".yaml", ".yml", ".json", ".py", ".ipynb")
UNUSED_SUPPRESSIONS = "unused_suppressions"  # the fact the unused-suppression rule iterates
_LORA_MARKERS = (b"lora", b"LoRA", b"LORA", b"Lora", b"peft", b"adapter")


class Finding:
    """One rule hit, at the position of the value it is about.

    ``message`` may be given as a function that renders it, called on first read: a quiet run
    that passes shows no message, and rendering them all is a measurable part of its time.
    """

    __slots__ = ("code", "name", "severity", "_message", "path", "line", "column", "key")
    FIELDS = ("code", "name", "severity", "message", "path", "line", "column", "key")

    def __init__(self, code: str, name: str, severity: str, message: str | Callable[[], str], path: str, line: int, column: int, key: str | None) -> None:  # fmt: skip
        self.code = code
        self.name = name
        self.severity = severity
        self._message = message
        self.path = path
        self.line = line
        self.column = column
        self.key = key

    @property
    def message(self) -> str:
        if not isinstance(self._message, str):
            self._message = self._message()
        return self._message

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.code} [{self.severity}] {self.message}"


class FileResult:
    """What one config (a file, or one LoraConfig call of a Python file) produced."""

    __slots__ = ("path", "format", "facts", "findings", "error", "skipped", "setup")

    def __init__(self, path: str, format: str | None, facts: dict[str, Any] | None = None,
                 findings: list[Finding] | None = None, error: InputError | None = None,
                 skipped: str | None = None, setup: LoraSetup | None = None) -> None:  # fmt: skip
        self.path = path
        self.format = format
        self.facts = facts or {}
        self.findings = findings or []
        self.error = error  # the file could not be read: exit code 2
        self.skipped = skipped  # a named file that is not a LoRA config: reported, not an error
        self.setup = setup


class Linter:
    """Rules and policy loaded once, applied to any number of files.

    ``report_facts=False`` says nobody will read the facts (a text or SARIF report): facts
    no rule can use then are not computed. ``render_messages=False`` renders a finding's message
    when it is first read rather than when the rule hits (a ``--quiet`` run prints findings only
    when it fails); a message field that cannot be evaluated then raises :class:`RulePackError` there.
    """

    def __init__(
        self, project: Project, extra_rules: list[str | os.PathLike[str]] | None = None, *, report_facts: bool = True,
        render_messages: bool = True,
    ) -> None:  # fmt: skip
        self.project = project
        self.report_facts = report_facts
        self.render_messages = render_messages
        self.rules = load_rules([BUILTIN_RULES, *project.extra_rules, *(extra_rules or [])])
        project.check_rule_references({ident for rule in self.rules for ident in (rule.code, rule.name)})
        self.options = {rule.code: self._rule_options(rule) for rule in self.rules}
        self._selected: tuple[Any, list[Rule]] = (None, [])  # (select, ignore) -> enabled rules, without per-file ignores
        if project.gpu and project.usable_memory_gb is None:
            from lora_lint.memory.gpus import UnknownGpuError, find_gpu

            try:
                find_gpu(project.gpu)
            except UnknownGpuError as exc:
                raise ProjectConfigError(str(exc)) from None

    def _rule_options(self, rule: Rule) -> dict[str, Any]:
        options = dict(rule.options)
        for ident in (rule.code, rule.name):
            for key, value in self.project.options.get(ident, {}).items():
                if key not in rule.options:
                    known = ", ".join(rule.options) or "none"
                    raise ProjectConfigError(f"{self.project.source}: rule {rule.name} has no option {key!r} (options: {known})")
                if not _same_kind(value, rule.options[key]):
                    raise ProjectConfigError(
                        f"{self.project.source}: option {key!r} of rule {rule.name} wants a value like "
                        f"{rule.options[key]!r}, not {value!r}"
                    )
                options[key] = value
        return options

    def enabled_rules(self, path: str) -> list[Rule]:
        """Rules that apply to ``path`` after select, ignore and per-file ignores."""
        policy = (tuple(self.project.select), tuple(self.project.ignore))
        if not self.project.per_file_ignores and self._selected[0] == policy:
            return self._selected[1]
        ignored = list(self.project.ignore)
        if self.project.per_file_ignores:
            import fnmatch  # only projects with per-file ignores match file names here

            relative = _relative(path, self.project.root)
            for pattern, codes in self.project.per_file_ignores.items():
                if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
                    ignored += codes
        select = self.project.select
        rules = [
            rule for rule in self.rules
            if (not select or _matches(rule, select)) and not _matches(rule, ignored)
        ]  # fmt: skip
        if not self.project.per_file_ignores:
            self._selected = (policy, rules)
        return rules

    def lint_bytes(self, path: str, raw: bytes, *, named: bool = True) -> list[FileResult]:
        """Findings for every config in one file; [] when it is not a LoRA config."""
        from lora_lint.readers import NotALoraConfig, read_file

        try:
            setups = read_file(path, raw)
        except InputError as error:
            return [FileResult(path, None, error=error)]
        except NotALoraConfig as reason:
            return [FileResult(path, None, skipped=str(reason))] if named else []
        if not setups:
            return [FileResult(path, None, skipped="not a LoRA config (no adapter settings found)")] if named else []
        text = raw.decode("utf-8", "replace") if b"lora-lint:" in raw else ""
        if text and path.endswith(".ipynb"):
            from lora_lint.readers.notebook import suppression_text

            text = suppression_text(text)  # comments in the cells' code, at their lines of the file
        suppressions = find_suppressions(text)
        try:
            results = [self.lint_setup(setup, suppressions) for setup in setups]
        except InputError as error:  # a file the config points at cannot be read (a damaged adapter_model.safetensors)
            return [FileResult(path, None, error=error)]
        unused = [s for s in suppressions if not s.used]
        if unused:
            self._report_unused(results[-1], unused)
        return results

    def lint_setup(self, setup: LoraSetup, suppressions: list[Any] = ()) -> FileResult:  # type: ignore[assignment]
        facts = compute_facts(setup, self.project, predict_memory=self.report_facts)
        findings = []
        scope = dict(facts)  # what rule expressions read: the facts, plus the rule's options and item
        for rule in self.enabled_rules(setup.path):
            if not rule.applies_to(setup.format):
                continue
            if rule.for_each is not None and (rule.for_each == UNUSED_SUPPRESSIONS or not facts.get(rule.for_each)):
                continue  # nothing to iterate: no hit, and no call to find that out
            options = self.options[rule.code]
            for message, record in rule.evaluate(facts, options, scope=scope, render=self.render_messages):
                if message is None:
                    message = partial(rule.message_for, facts, options, record)
                finding = self._finding(rule, message, setup, record)
                if not _suppressed(finding, suppressions):
                    findings.append(finding)
        findings.sort(key=lambda f: (f.line, f.column, f.code))
        return FileResult(setup.path, setup.format, facts, findings, setup=setup)

    def _report_unused(self, result: FileResult, unused: list[Any]) -> None:
        records = [{"line": s.line, "column": s.column, "key": None, "codes": ", ".join(s.codes)} for s in unused]
        facts = dict(result.facts, **{UNUSED_SUPPRESSIONS: records})
        for rule in self.enabled_rules(result.path):
            if rule.for_each == UNUSED_SUPPRESSIONS:
                for message, record in rule.evaluate(facts, self.options[rule.code]):
                    result.findings.append(self._finding(rule, message, result.setup, record))

    def _finding(self, rule: Rule, message: str | Callable[[], str], setup: LoraSetup | None, record: dict[str, Any] | None) -> Finding:
        line, column, key = 1, 1, None
        if record is not None and record.get("line"):
            line, column, key = record["line"], record.get("column") or 1, record.get("key")
        elif setup is not None:
            candidates = [] if rule.at in (None, "item") else [rule.at] if isinstance(rule.at, str) else rule.at
            location = next(filter(None, (_written_at(setup, name) for name in candidates)), None) or setup.start
            if location is not None:
                line, column, key = location.line, location.column, location.key
            if candidates and key is None:
                key = candidates[0]
        severity = self.project.severity.get(rule.code) or self.project.severity.get(rule.name) or rule.severity
        return Finding(rule.code, rule.name, severity, message, setup.path if setup else "", line, column, key)

    def lint_paths(self, paths: list[str], *, jobs: int | None = 1) -> list[FileResult]:
        """Findings for every candidate file under ``paths``, in discovery order.

        ``jobs`` processes share the files (None: as many as the usable cores, when there are
        enough files to repay a fork; see :mod:`lora_lint.workers`). Results from other processes
        carry what reports read: findings, errors and, with ``report_facts``, the public facts.
        """
        candidates = list(discover(paths, self.project))
        if jobs != 1 and len(candidates) > 1 and not any(path == "-" for path, _ in candidates):
            from lora_lint.workers import lint_in_workers, worker_count

            workers = worker_count(len(candidates), jobs)
            if workers > 1:
                return lint_in_workers(candidates, workers, self._lint_candidates, keep_facts=self.report_facts)
        return self._lint_candidates(candidates)

    def _lint_candidates(self, candidates: list[tuple[str, bool]]) -> list[FileResult]:
        results: list[FileResult] = []
        for path, named in candidates:
            try:
                raw = _read(path)
            except OSError as exc:
                results.append(FileResult(path, None, error=InputError(f"cannot read: {exc.strerror or exc}")))
                continue
            if not named and not any(marker in raw for marker in _LORA_MARKERS):
                continue  # cheap pre-filter: discovery skips files that never mention LoRA
            results.extend(self.lint_bytes(path, raw, named=named))
        return results


def _read(path: str) -> bytes:
    if path == "-":
        import sys

        return sys.stdin.buffer.read()
    with open(path, "rb") as handle:
        return handle.read()


def _written_at(setup: LoraSetup, name: str) -> Any:
    """Where the file wrote a normalized setting, or a key under its own name (``adapter``, ``peft_type``)."""
    return setup.location_of(name) or next((use.location for use in setup.keys if use.key == name), None)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a project's option value can stand for the rule's default (any number for a number)."""
    if default is None:
        return True
    number = (int, float)
    if isinstance(default, number) and not isinstance(default, bool):
        return isinstance(value, number) and not isinstance(value, bool)
    return isinstance(value, type(default))


def _matches(rule: Rule, selectors: list[str]) -> bool:
    return any(s == "ALL" or s == rule.name or rule.code.startswith(s) for s in selectors)


def _suppressed(finding: Finding, suppressions: list[Any]) -> bool:
    for suppression in suppressions:
        listed = suppression.silences(finding.line, finding.code, finding.name)
        if listed:
            suppression.used.add(listed)
            return True
    return False


def _relative(path: str, root: str | os.PathLike[str]) -> str:
    from pathlib import Path  # only projects with per-file ignores need it

    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def discover(paths: list[str], project: Project) -> Iterator[tuple[str, bool]]:
    """(path, named) for every candidate file: named files as given, folders walked."""
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            yield path, True
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(d for d in subfolders if not _excluded(d, project) and not d.startswith("."))
            for name in sorted(files):
                if name.endswith(CANDIDATE_SUFFIXES) and not _excluded(name, project):
                    yield os.path.join(folder, name), False


def _excluded(name: str, project: Project) -> bool:
    """``fnmatch.fnmatch(name, pattern)`` for any of the project's patterns, as one regular expression."""
    exclusion = _exclusion(tuple(project.exclude))
    return exclusion is not None and exclusion.match(os.path.normcase(name)) is not None


@cache
def _exclusion(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    import fnmatch  # only folder walks need it

    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(os.path.normcase(pattern)) for pattern in patterns))


def worst_severity(results: list[FileResult]) -> int:
    """The highest severity rank among all findings, -1 when there are none."""
    return max((SEVERITY_RANK[f.severity] for r in results for f in r.findings), default=-1)
