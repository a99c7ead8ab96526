"""The ``lora-lint`` command line.

Only the sub-command asked for is imported and given a parser: start-up time is the
product when the linter runs as a pre-commit hook. Exit codes: 0 clean, 1 findings at
or above ``--fail-on``, 2 usage, settings or internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from importlib import import_module

COMMANDS = {
    "check": "lora_lint.commands.check",
    "explain": "lora_lint.commands.explain",
    "rules": "lora_lint.commands.rules",
    "params": "lora_lint.commands.params",
    "memory": "lora_lint.commands.memory",
    "smoke": "lora_lint.commands.smoke",
    "guard-report": "lora_lint.commands.guard_report",
    "sweep": "lora_lint.commands.sweep",
}
EXIT_USAGE = 2


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, minus its ``import shutil`` (which loads bz2 and lzma: ~3 ms) for the width.

    argparse makes one for every argument it adds, so the width is found once per process.
    """

    _width: int | None = None

    def __init__(self, prog: str) -> None:
        if _HelpFormatter._width is None:
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns
            except (OSError, ValueError, AttributeError):
                width = int(os.environ.get("COLUMNS", 80))
            _HelpFormatter._width = max(width - 2, 40)
        super().__init__(prog, width=_HelpFormatter._width)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from lora_lint import __version__

    parser = argparse.ArgumentParser(
        prog="lora-lint", description="Lint LoRA/QLoRA fine-tuning configs before the GPU-hour.", formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"lora-lint {__version__}")
    subparsers = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        required=True,
        parser_class=partial(argparse.ArgumentParser, formatter_class=_HelpFormatter),
    )
    for name, module in COMMANDS.items():
        if only is None or name == only:
            import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    try:
        return import_module(COMMANDS[args.command]).run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - a linter must never print a traceback at its user
        if os.environ.get("LORA_LINT_DEBUG"):
            raise
        print(f"lora-lint: internal error: {type(exc).__name__}: {exc} (set LORA_LINT_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_USAGE
