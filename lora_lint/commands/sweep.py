"""``lora-lint sweep CONFIG``: train a few ranks briefly, choose one by the 95 % / 70 % rule, lock it.

Needs the ``[torch]`` extra; torch is imported only when trials run. Exit codes: 0 a rank
was chosen, 1 no rank met the rule, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CHOSEN, EXIT_NO_RANK, EXIT_ERROR = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="choose the rank from short training runs (needs torch)")
    parser.add_argument("config", help="a LoRA config file (any format lora-lint reads)")
    parser.add_argument("--ranks", help="comma-separated ranks to try (default: 4,8,16)")
    parser.add_argument("--data-fraction", type=float, help="share of the training data each trial uses (default 0.1)")  # fmt: skip
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help="epochs over the data fraction (default 1)")
    length.add_argument("--steps", type=int, help="optimizer steps per trial (instead of epochs)")
    parser.add_argument("--alpha", choices=("follow", "fixed"),
                        help="follow: keep alpha/r as written (alpha = 2r when absent); fixed: keep alpha")  # fmt: skip
    parser.add_argument("--quality-target", type=float, help="share of the best gain to reach (default 0.95)")
    parser.add_argument("--time-budget", type=float, help="share of the slowest trial's time allowed (default 0.7)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--gpu", help="skip ranks predicted not to fit this GPU (e.g. A100-40GB)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--backend", choices=("local", "ray"), help="local (default) or one Ray task per trial")
    parser.add_argument("--tracker", choices=("none", "mlflow", "tensorboard", "wandb"))
    parser.add_argument("--metric", metavar="MODULE:FUNCTION",
                        help="metric(model, tokenizer, eval_data) -> float, higher is better (default: held-out loss)")  # fmt: skip
    parser.add_argument("--output", type=Path, metavar="DIR", help="write sweep.json, the plots and the locked config here")  # fmt: skip
    parser.add_argument("--format", choices=("text", "json"), default="text", dest="output_format")
    parser.add_argument("--config", type=Path, dest="settings", metavar="FILE", help="settings file instead of pyproject.toml")  # fmt: skip
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a local model folder's own code to run")


def run(args: argparse.Namespace) -> int:
    from lora_lint.rank_sweep.api import project_defaults
    from lora_lint.rank_sweep.options import (
        SweepInputError,
        SweepOptions,
        load_metric,
        parse_ranks,
    )

    try:
        values = project_defaults(args.settings)
        given = {
            "ranks": parse_ranks(args.ranks) if args.ranks is not None else None,
            "data_fraction": args.data_fraction, "epochs": args.epochs, "steps": args.steps, "alpha": args.alpha,
            "quality_target": args.quality_target, "time_budget": args.time_budget, "device": args.device,
            "gpu": args.gpu, "seed": args.seed, "backend": args.backend, "tracker": args.tracker,
            "metric": load_metric(args.metric) if args.metric else None,
            "trust_remote_code": args.trust_remote_code or None,
        }  # fmt: skip
        values.update({k: v for k, v in given.items() if v is not None})
        if args.steps is not None:
            values.pop("epochs", None)
        options = SweepOptions(**values).checked()
        result = _run(args, options)
    except SweepInputError as exc:
        print(f"lora-lint sweep: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.output_format == "json":
        import json

        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        from lora_lint.rank_sweep.report import text_report

        print(text_report(result))
    return EXIT_CHOSEN if result.r is not None else EXIT_NO_RANK


def _run(args: argparse.Namespace, options: object) -> object:
    from lora_lint.rank_sweep.progress import Bars, Silent
    from lora_lint.rank_sweep.run import run_sweep
    from lora_lint.runtime import quiet_library_chatter

    quiet_library_chatter()
    progress = Bars() if args.output_format == "text" and sys.stderr.isatty() else Silent()
    return run_sweep(args.config, options, output=args.output, settings=args.settings, progress=progress)  # type: ignore[arg-type]
