"""``lora-lint smoke CONFIG``: build the model, check adapter shapes, smoke-train, report symptoms.

Needs the ``[torch]`` extra; torch is imported only when the command runs. Exit codes:
0 no symptoms, 1 symptoms (or shape problems), 2 errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CLEAN, EXIT_SYMPTOMS, EXIT_ERROR = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("smoke", help="smoke-train a config and watch for symptoms (needs torch)")
    parser.add_argument("config", help="a LoRA config file")
    parser.add_argument("--steps", type=int, default=30, help="training steps (default: 30)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: CUDA when available; cpu builds a scaled-down proxy of large models")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--report", type=Path, metavar="PATH", help="write the JSON report here, and a loss plot beside it"
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a local model folder's own code to run")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the reference adapter's run (alpha = 2r), which doubles the time for configs with "
                             "another alpha/r; slow learning is then judged on absolute bars only")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        print("lora-lint smoke needs torch: pip install 'lora-lint[torch]'", file=sys.stderr)
        return EXIT_ERROR
    from lora_lint.runtime import quiet_library_chatter

    quiet_library_chatter()
    from lora_lint.document import InputError
    from lora_lint.engine import Linter
    from lora_lint.project import ProjectConfigError, load_project
    from lora_lint.runtime.build import BuildError, Unsupported
    from lora_lint.runtime.check import ConfigCheck, RuntimeOptions

    try:
        project = load_project(Path.cwd())
        results = Linter(project).lint_paths([args.config])
    except (ProjectConfigError, InputError) as exc:
        print(f"lora-lint: {exc}", file=sys.stderr)
        return EXIT_ERROR
    readable = [r for r in results if r.setup is not None]
    if not readable:
        reason = next((r.error.message if r.error else r.skipped for r in results), "not found")
        print(f"lora-lint: {args.config}: {reason}", file=sys.stderr)
        return EXIT_ERROR
    if args.device == "cuda" and not torch.cuda.is_available():
        print("lora-lint: --device cuda: torch sees no CUDA device", file=sys.stderr)
        return EXIT_ERROR
    options = RuntimeOptions(
        device=args.device,
        steps=args.steps,
        seed=args.seed,
        trust_remote_code=args.trust_remote_code,
        reference=not args.no_reference,
    )
    entries, status = [], EXIT_CLEAN
    for result in readable:
        check = ConfigCheck(result, options, dict(project.models))
        try:
            status = max(status, _run_one(check, args.steps))
        except Unsupported as exc:
            print(f"{check.path}: skipped: {exc}")
        except BuildError as exc:
            print(f"{check.path}: cannot build: {exc}", file=sys.stderr)
            status = EXIT_ERROR
        entries.append(check.report_entry())
        check.release()
    if args.report:
        _write(args.report, entries)
    return status


def _run_one(check: object, steps: int) -> int:
    from tqdm import tqdm

    shapes = check.shapes()  # type: ignore[attr-defined]
    built = check.model()  # type: ignore[attr-defined]
    size = "CPU proxy" if built.proxy else "full size"
    quantized = f", {built.quantization}" if built.quantization else ""
    print(f"{check.path}: {built.config.get('model_type')} ({size}{quantized}) on {built.device}, "  # type: ignore[attr-defined]
          f"{shapes.trainable_params:,} trainable parameters")  # fmt: skip
    for note in built.notes + shapes.notes:
        print(f"  note: {note}")
    with tqdm(total=steps, desc="smoke", unit="step", leave=False) as bar:

        def on_step(step: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")

        result = check.run_smoke(on_step)  # type: ignore[attr-defined]
    losses = result.record.losses
    print(f"  loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} steps")
    for problem in shapes.problems:
        print(f"  shapes: {problem}")
    for symptom in result.symptoms:
        print(f"  {symptom.name}: {symptom.message}")
    if not shapes.problems and not result.symptoms:
        print("  no symptoms")
    return EXIT_SYMPTOMS if shapes.problems or result.symptoms else EXIT_CLEAN


def _write(path: Path, entries: list[dict]) -> None:
    from lora_lint.runtime.report import plot_losses, write_report

    write_report(path, entries)
    for index, entry in enumerate(entries):
        if entry.get("losses"):
            suffix = ".png" if len(entries) == 1 else f".{index}.png"
            plot_losses(entry, path.with_suffix(suffix))
    print(f"report: {path}")
