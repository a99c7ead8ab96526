"""``lora-lint check [PATHS]``: lint config files and folders."""

from __future__ import annotations

import argparse
import gc
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _path(text: str) -> Path:
    """argparse type for the file options: pathlib (~3 ms of start-up) loads only when one is given."""
    from pathlib import Path

    return Path(text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="lint LoRA configs (files, folders, or - for stdin)")
    parser.add_argument("paths", nargs="*", default=["."], help="files or folders (default: .); - reads stdin")
    parser.add_argument("--format", default="auto", choices=["auto", "text", "json", "sarif", "github"],
                        help="output format (auto: github annotations under GitHub Actions, else text)")
    parser.add_argument("--fail-on", choices=["info", "warning", "error"], help="lowest severity that fails (default: error)")
    parser.add_argument("--select", help="comma-separated codes, names or code prefixes to run")
    parser.add_argument("--ignore", help="comma-separated codes, names or code prefixes to skip")
    parser.add_argument("--rules", action="append", type=_path, default=[], metavar="DIR", help="extra rule folder (repeatable)")
    parser.add_argument("--config", type=_path, metavar="FILE", help="settings file (default: nearest pyproject.toml/.lora-lint.toml)")
    parser.add_argument("--stdin-filename", default="<stdin>", help="name and format hint for - (e.g. config.yml, adapter_config.json)")
    parser.add_argument("--gpu", help="target GPU for memory rules, e.g. A100-80GB, H100, RTX4090")
    parser.add_argument("--dataset-examples", type=_count, help="training-set size when the config cannot tell")
    parser.add_argument("--output", "-o", type=_path, help="write the report to a file instead of stdout")
    parser.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings (errors reading files still exit 2)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing when the run passes (exit code 0)")
    parser.add_argument("--jobs", "-j", type=_count, metavar="N",
                        help="processes to lint with (default: one per usable core, with 16 files or more each)")


def run(args: argparse.Namespace) -> int:
    from lora_lint.document import InputError
    from lora_lint.engine import Linter, worst_severity
    from lora_lint.project import ProjectConfigError, load_project
    from lora_lint.report import render, resolve_format
    from lora_lint.rulepack import SEVERITY_RANK, RulePackError

    # A run builds many small objects that all live until the report, and almost none form
    # reference cycles (reference counting frees the rest): the cycle collector only costs time.
    # Measured on 1,920 configs: peak memory 80 MB either way, 3-4 % less time without it.
    gc.disable()
    try:
        project = load_project(os.getcwd(), args.config)
        _apply_flags(project, args)
        # --quiet prints findings only when the run fails: their messages are rendered then, if at all
        linter = Linter(project, args.rules, report_facts=resolve_format(args.format) == "json", render_messages=not args.quiet)
        if args.paths == ["-"]:
            raw = sys.stdin.buffer.read()
            results = linter.lint_bytes(args.stdin_filename, raw)
        else:
            results = linter.lint_paths(args.paths, jobs=args.jobs or None)
    except (ProjectConfigError, RulePackError) as exc:
        print(f"lora-lint: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except InputError as exc:
        print(f"lora-lint: {exc.message}", file=sys.stderr)
        return EXIT_ERROR

    output_format = resolve_format(args.format)
    color = args.color == "always" or (args.color == "auto" and args.output is None and sys.stdout.isatty())
    if any(r.error for r in results):
        code = EXIT_ERROR
    elif args.exit_zero:
        code = EXIT_CLEAN
    else:
        code = EXIT_FINDINGS if worst_severity(results) >= SEVERITY_RANK[project.fail_on] else EXIT_CLEAN
    if not (args.quiet and code == EXIT_CLEAN):  # --quiet: a passing run prints nothing, as a pre-commit hook wants
        try:
            report = render(output_format, results, linter, color=color)
        except RulePackError as exc:  # a message field rendered only now (--quiet)
            print(f"lora-lint: {exc}", file=sys.stderr)
            return EXIT_ERROR
        if args.output:
            try:
                args.output.write_text(report + "\n", encoding="utf-8")
            except OSError as exc:
                print(f"lora-lint: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
                return EXIT_ERROR
        elif report:
            print(report)
    return code


def _apply_flags(project: object, args: argparse.Namespace) -> None:
    """Command-line flags win over the settings file."""
    if args.fail_on:
        project.fail_on = args.fail_on
    from lora_lint.project import rule_ref

    if args.select:
        project.select = [rule_ref(ref) for ref in _split(args.select)]
    if args.ignore:
        project.ignore = project.ignore + [rule_ref(ref) for ref in _split(args.ignore)]
    if args.gpu:
        project.gpu = args.gpu
    if args.dataset_examples is not None:
        project.dataset_examples = args.dataset_examples


def _count(text: str) -> int:
    """A non-negative whole number, for argparse."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
