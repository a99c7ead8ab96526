"""``lora-lint guard-report DIR``: the guard's verdict on a run, for people and job schedulers.

With a ``lora-guard.json`` in DIR (the guard watched the run) it prints that verdict. A run
without the guard (a transformers output or checkpoint folder with ``trainer_state.json``,
or a Lightning ``metrics.csv``) gets a post-mortem: the same detectors replayed over its
logs, saying what the guard would have done and at which step. With ``--config`` the
post-mortem also writes the rollback or overfit config (under DIR/lora-guard/) and
DIR/lora-guard.json. Pure Python: needs no torch.

Exit codes: 0 ran clean, 1 stopped (a rollback config is written when the guard had the
config), 3 overfit warned, 2 usage errors or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_ERROR = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "guard-report", help="the live guard's verdict on a run folder, or a post-mortem of an unguarded run"
    )
    parser.add_argument("run", type=Path, metavar="DIR",
                        help="a run's output folder (lora-guard.json, trainer_state.json, checkpoint-*/ or "
                             "Lightning metrics.csv), or one of those files")  # fmt: skip
    parser.add_argument("--config", type=Path, help="post-mortem: the run's LoRA config, to write the rollback")
    parser.add_argument("--window", type=float, nargs=2, default=(0.1, 0.2), metavar=("START", "END"),
                        help="post-mortem: the plateau check window as fractions of the planned steps")  # fmt: skip
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from lora_lint.guard.decision import EXIT_CODES
    from lora_lint.guard.postmortem import PostmortemError, find_guard_report

    report = find_guard_report(args.run)
    if report is not None and args.config is None:
        return _print_guard_report(report, args.format, EXIT_CODES)
    try:
        return _postmortem(args)
    except PostmortemError as exc:
        print(f"lora-lint: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _print_guard_report(path: Path, fmt: str, exit_codes: dict[str, int]) -> int:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"lora-lint: {path}: cannot read the guard report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    verdict = document.get("verdict") if isinstance(document, dict) else None
    if verdict not in exit_codes:
        print(f"lora-lint: {path}: verdict {verdict!r} is not one of {', '.join(exit_codes)}", file=sys.stderr)
        return EXIT_ERROR
    if fmt == "json":
        print(json.dumps(document, indent=2))
    else:
        _print_text(str(path), "the guard", document)
    return exit_codes[verdict]


def _postmortem(args: argparse.Namespace) -> int:
    from lora_lint.guard.core import Guard
    from lora_lint.guard.postmortem import read_history, replay

    if args.config is not None and not args.config.is_file():
        print(f"lora-lint: {args.config}: no such config file", file=sys.stderr)
        return EXIT_ERROR
    history = read_history(args.run)
    out_dir = None
    if args.config is not None:
        out_dir = args.run if args.run.is_dir() else args.run.parent
    try:
        guard = Guard(args.config, out_dir, window=tuple(args.window), on_overfit="warn")
    except ValueError as exc:
        print(f"lora-lint: {exc}", file=sys.stderr)
        return EXIT_ERROR
    replay(history, guard)
    decision = guard.finish() if out_dir is not None else guard.verdict()
    document = {**decision.as_dict(), "planned_steps": guard.planned_steps, "source": str(history.source),
                "notes": guard.notes}  # fmt: skip
    if args.format == "json":
        from lora_lint.runtime.report import json_safe

        print(json.dumps(json_safe(document), indent=2))
    else:
        _print_text(str(history.source), "post-mortem: the guard would have", document)
    return decision.exit_code


def _print_text(source: str, who: str, document: dict) -> None:
    verdict, symptom, step = document.get("verdict"), document.get("symptom"), document.get("step")
    clean = "ran clean" if who == "the guard" else "let the run finish"
    action = {"clean": clean, "stopped": "stopped the run", "warned": "warned"}.get(verdict, verdict)
    where = f" at step {step}" if step is not None and verdict != "clean" else ""
    print(f"{source}: {who} {action}{where}" + (f" ({symptom})" if symptom else ""))
    print(f"  {document.get('message', '')}")
    rollback = document.get("rollback")
    if rollback:
        print(f"  config written: {rollback.get('config_path')} (r {rollback.get('r')}, lora_alpha "
              f"{rollback.get('lora_alpha')})")  # fmt: skip
        for change in rollback.get("changes") or []:
            print(f"    {change}")
    for note in document.get("notes") or []:
        print(f"  note: {note}")
