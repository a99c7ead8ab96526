"""``lora-lint rules``: the rule pack as a table, or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="list rules")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--rules", action="append", type=Path, default=[], metavar="DIR", help="extra rule folder")


def all_rules(extra: list[Path] | None = None) -> list:
    from lora_lint.project import load_project
    from lora_lint.rulepack import BUILTIN_RULES, load_rules

    project = load_project(Path.cwd())
    return load_rules([BUILTIN_RULES, *project.extra_rules, *(extra or [])])


def run(args: argparse.Namespace) -> int:
    from lora_lint.project import ProjectConfigError
    from lora_lint.rulepack import RulePackError

    try:
        rules = all_rules(args.rules)
    except (ProjectConfigError, RulePackError) as exc:
        print(f"lora-lint: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        fields = ("code", "name", "severity", "summary", "formats", "options", "why", "fix")
        print(json.dumps([{f: getattr(rule, f) for f in fields} for rule in rules], indent=2))
        return 0
    width = max((len(rule.name) for rule in rules), default=4)
    print(f"{'code':<6} {'name':<{width}} {'severity':<8} summary")
    for rule in rules:
        print(f"{rule.code:<6} {rule.name:<{width}} {rule.severity:<8} {rule.summary}")
    return 0
