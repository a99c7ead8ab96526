"""``lora-lint params CONFIG``: trainable parameters of a config, as written and over a rank sweep.

The numbers are the ones ``PeftModel.print_trainable_parameters()`` would print on the
real model, computed from the base model's ``config.json`` without loading it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

DEFAULT_RANKS = "4,8,16,32,64"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "params",
        help="trainable parameters of a LoRA config, as written and for a sweep of ranks",
    )
    parser.add_argument(
        "config",
        help="a LoRA config file (PEFT, lora-config, axolotl, LLaMA-Factory, torchtune, .py)",
    )
    parser.add_argument(
        "--ranks",
        default=DEFAULT_RANKS,
        help=f"comma-separated ranks to sweep (default {DEFAULT_RANKS})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", dest="output_format")
    parser.add_argument(
        "--min-percent",
        type=float,
        default=None,
        help="lower end of the budget band, in %%",
    )
    parser.add_argument(
        "--max-percent",
        type=float,
        default=None,
        help="upper end of the budget band, in %%",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from lora_lint.arch.counting import AdapterSpec
    from lora_lint.arch.facts import architecture_facts, rank_sweep
    from lora_lint.commands.config_input import ConfigInputError, load_config

    try:
        ranks = tuple(int(part) for part in args.ranks.split(",") if part.strip())
        if not ranks or min(ranks) <= 0:
            raise ValueError
    except ValueError:
        print(
            f"lora-lint params: --ranks wants positive integers separated by commas, got {args.ranks!r}",
            file=sys.stderr,
        )
        return 2
    path = Path(args.config)
    try:
        project, setups = load_config(path)
    except ConfigInputError as exc:
        print(f"lora-lint params: {exc}", file=sys.stderr)
        return 2
    band = _band(args, project)
    reports = []
    for setup in setups:
        facts = architecture_facts(setup, cwd=Path.cwd(), user_models=project.models)
        report: dict[str, Any] = {
            "path": str(path),
            "line": setup.start.line if setup.start else 1,
            "base_model": facts["base_model"],
            "architecture": facts["architecture"],
            "skipped": facts["architecture_skipped"],
            "band_percent": list(band),
            "rows": [],
        }
        count = facts["_param_count"]
        if count is not None:
            spec = AdapterSpec.from_setup(setup)
            written = {
                "r": spec.r,
                "trainable_params": count.trainable_params,
                "total_params": count.total_params,
                "percent": count.trainable_percent,
                "as_written": True,
            }
            sweep = [dict(row, as_written=False) for row in rank_sweep(facts["_architecture"], spec, ranks, count)]
            report["rows"] = [written, *sweep]
            for row in report["rows"]:
                row["in_band"] = band[0] <= row["percent"] <= band[1]
            report["errors"] = list(count.errors)
        reports.append(report)
    if args.output_format == "json":
        print(json.dumps(reports, indent=2))
    else:
        print("\n\n".join(_text(report) for report in reports))
    return 0 if all(report["rows"] for report in reports) else 1


def _band(args: argparse.Namespace, project: Any) -> tuple[float, float]:
    """The budget band: flags, else the project's options for LL204, else the rule's own defaults."""
    from lora_lint.rulepack import BUILTIN_RULES, load_rules

    (rule,) = [rule for rule in load_rules([BUILTIN_RULES]) if rule.code == "LL204"]
    options = {**rule.options, **project.options.get(rule.name, {}), **project.options.get(rule.code, {})}
    low = args.min_percent if args.min_percent is not None else options["min_percent"]
    high = args.max_percent if args.max_percent is not None else options["max_percent"]
    return float(low), float(high)


def _text(report: dict[str, Any]) -> str:
    where = f"{report['path']}:{report['line']}"
    if not report["rows"]:
        reason = report["skipped"] or "no base model named (base_model, or a torchtune builder)"
        return f"{where}: cannot count parameters: {reason}"
    arch = report["architecture"]
    low, high = report["band_percent"]
    lines = [f"{where}: {arch['model_id']} ({arch['family']}, via {arch['resolved_via']})"]
    if arch.get("note"):
        lines.append(f"  note: {arch['note']}")
    for error in report.get("errors", []):
        lines.append(f"  PEFT would refuse this adapter: {error}")
    lines.append(f"  budget band: {low:g} % to {high:g} %   (* = in band)")
    for row in report["rows"]:
        label = f"r={row['r']} (as written)" if row["as_written"] else f"r={row['r']}"
        mark = "*" if row["in_band"] else " "
        lines.append(
            f"  {mark} {label:<18} trainable params: {row['trainable_params']:,d} || "
            f"all params: {row['total_params']:,d} || trainable%: {row['percent']:.4f}"
        )
    return "\n".join(lines)
