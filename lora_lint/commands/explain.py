"""``lora-lint explain CODE``: what a rule checks, why it matters, how to fix it, with examples."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("explain", help="explain a rule by code or name")
    parser.add_argument("rule", help="rule code (LL103) or name (alpha-below-rank)")
    parser.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule folder (repeatable)")


def run(args: argparse.Namespace) -> int:
    from lora_lint.commands.rules import all_rules
    from lora_lint.project import ProjectConfigError
    from lora_lint.rulepack import RulePackError

    try:
        rules = all_rules(args.rules)
    except (ProjectConfigError, RulePackError) as exc:
        print(f"lora-lint: {exc}", file=sys.stderr)
        return 2
    wanted = args.rule.strip()
    for rule in rules:
        if wanted.upper() == rule.code or wanted == rule.name:
            print(explain(rule))
            return 0
    from lora_lint.near_miss import closest

    near = closest(wanted, [r.name for r in rules] + [r.code for r in rules])
    hint = f" (did you mean {near}?)" if near else ""
    print(f"lora-lint: no rule {wanted!r}{hint}; `lora-lint rules` lists them", file=sys.stderr)
    return 2


def explain(rule: object) -> str:
    lines = [f"{rule.code} {rule.name} [{rule.severity}]", "", rule.summary, "", "## Why", rule.why, "", "## Fix", rule.fix]
    if rule.options:
        lines += ["", "## Options"] + [f"- {name} = {value!r}" for name, value in rule.options.items()]
    for kind, title in (("bad", "Example that triggers it"), ("good", "Use instead")):
        for example in rule.examples.get(kind, [])[:1]:
            lines += ["", f"## {title} ({example.get('format', '')})", example["source"].rstrip()]
    return "\n".join(lines)
