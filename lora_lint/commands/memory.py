"""``lora-lint memory CONFIG``: the predicted peak training memory, term by term, and a sweep.

Prints what the memory rules decide on: every term of the estimate with its reason, the
target GPU and the changes that fit. ``--sweep seq=...,batch=...`` prints a grid of peaks
over sequence length and micro batch, marking what exceeds the GPU; ``--plot`` draws it
(matplotlib is imported only then).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GIB = 1024**3
SWEEP_KEYS = {"seq": "sequence_len", "batch": "micro_batch_size"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("memory", help="predict the peak GPU memory of a training run")
    parser.add_argument("config", type=Path, help="a LoRA config file (any format lora-lint reads)")
    parser.add_argument("--gpu", help="target GPU, e.g. A100-80GB, H100, RTX4090 (default: from settings)")
    parser.add_argument("--usable-memory-gb", type=float, help="GiB the run may use (cards not in the catalog)")
    parser.add_argument("--margin", type=float, default=0.1, help="share of GPU memory to keep free (default 0.1)")
    parser.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2", help="grid over seq=... and batch=... values")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="draw the sweep against the GPU's memory")
    parser.add_argument("--config", dest="settings", type=Path, metavar="FILE", help="settings file (pyproject.toml)")


def run(args: argparse.Namespace) -> int:
    from lora_lint.arch.facts import architecture_facts
    from lora_lint.commands.config_input import ConfigInputError, load_config
    from lora_lint.memory.facts import memory_facts

    try:
        sweep = _parse_sweep(args.sweep or [])
        project, setups = load_config(Path(args.config), args.settings)
    except (ValueError, ConfigInputError) as exc:
        print(f"lora-lint memory: {exc}", file=sys.stderr)
        return 2
    gpu = args.gpu or project.gpu
    usable = args.usable_memory_gb or project.usable_memory_gb
    usable_bytes = int(usable * GIB) if usable else None
    if gpu and not usable_bytes:
        from lora_lint.memory.gpus import UnknownGpuError, find_gpu

        try:
            find_gpu(gpu)
        except UnknownGpuError as exc:
            print(f"lora-lint memory: {exc}", file=sys.stderr)
            return 2
    reports = []
    for setup in setups:
        arch = architecture_facts(setup, cwd=Path.cwd(), user_models=project.models)
        facts = memory_facts(setup, arch, gpu=gpu, usable_bytes=usable_bytes, safety_margin=args.margin)
        report = {"path": setup.path, "base_model": arch.get("base_model"), **_public(facts)}
        if facts["peak_memory_bytes"] is None:
            report["error"] = arch.get("architecture_skipped") or "the base model is unknown"
        elif sweep:
            report["sweep"] = _sweep(setup, arch, sweep)
        reports.append(report)
    if args.format == "json":
        print(json.dumps(reports, indent=2))
    else:
        print("\n\n".join(_render(report) for report in reports))
    if args.plot and any("sweep" in r for r in reports):
        _plot(next(r for r in reports if "sweep" in r), args.plot)
    return 2 if any("error" in r for r in reports) else 0


def _parse_sweep(items: list[str]) -> dict[str, list[int]]:
    """``["seq=512,1024", "batch=1,2"]`` -> ``{"sequence_len": [512, 1024], "micro_batch_size": [1, 2]}``."""
    sweep: dict[str, list[int]] = {}
    for item in items:
        key, _, values = item.partition("=")
        if key not in SWEEP_KEYS or not values:
            raise ValueError(f"--sweep takes seq=V1,V2,... and batch=V1,V2,...; got {item!r}")
        try:
            sweep[SWEEP_KEYS[key]] = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--sweep {key}: values must be whole numbers, got {values!r}") from None
    return sweep


def _sweep(setup: object, arch: dict, sweep: dict[str, list[int]]) -> list[dict]:
    """The peak for every combination of swept values, the rest of the config unchanged."""
    from itertools import product

    from lora_lint.memory.estimate import estimate_for_shape
    from lora_lint.memory.inputs import TrainingInputs
    from lora_lint.memory.shape import shape_from_architecture

    shape = shape_from_architecture(arch["_architecture"], arch["_param_count"])
    base = TrainingInputs.from_setup(setup)
    seqs = sweep.get("sequence_len", [base.sequence_len])
    batches = sweep.get("micro_batch_size", [base.micro_batch_size])
    return [
        {"sequence_len": seq, "micro_batch_size": batch,
         "peak_memory_bytes": estimate_for_shape(shape, base.with_changes(sequence_len=seq, micro_batch_size=batch)).peak_bytes}
        for seq, batch in product(seqs, batches)
    ]  # fmt: skip


def _public(facts: dict) -> dict:
    return {key: value for key, value in facts.items() if not key.startswith("_")}


def _render(report: dict) -> str:
    lines = [f"{report['path']}: {report.get('base_model') or 'no base model'}"]
    if "error" in report:
        return "\n".join(lines + [f"  cannot estimate: {report['error']}"])
    peak = report["peak_memory_bytes"]
    lines.append(f"  predicted peak {peak / GIB:.2f} GiB (at {report['memory_phase']})")
    if report["memory_assumed"]:
        lines.append(f"  assumed (not in the file): {', '.join(report['memory_assumed'])}")
    if report.get("memory_convention"):
        lines.append(f"  unquantized weights: {report['memory_convention']}")
    width = max(len(name) for name in report["memory_breakdown"])
    for name, size in report["memory_breakdown"].items():
        lines.append(f"    {name:<{width}}  {size / GIB:8.3f} GiB  {100 * size / peak:5.1f}%")
    gpu = report["gpu"]
    if gpu and report.get("memory_unchecked"):
        lines.append(f"  {gpu['name']}: {gpu['memory_bytes'] / GIB:.1f} GiB, not compared: {report['memory_unchecked']}")
    elif gpu:
        verdict = "fits" if report["memory_fits"] else "DOES NOT FIT"
        lines.append(f"  {gpu['name']}: {gpu['memory_bytes'] / GIB:.1f} GiB, {verdict}, "
                     f"headroom {report['memory_headroom_bytes'] / GIB:.2f} GiB")  # fmt: skip
        for suggestion in report["memory_suggestions"]:
            lines.append(f"    try {suggestion['change']} -> {suggestion['peak_memory_bytes'] / GIB:.2f} GiB")
    elif report["gpu_error"]:
        lines.append(f"  {report['gpu_error']}")
    if "sweep" in report:
        lines += _render_sweep(report["sweep"], gpu["memory_bytes"] if gpu else None)
    return "\n".join(lines)


def _render_sweep(grid: list[dict], limit: int | None) -> list[str]:
    """A table: sequence lengths down, micro batches across; ``!`` marks peaks above the GPU."""
    seqs = sorted({cell["sequence_len"] for cell in grid})
    batches = sorted({cell["micro_batch_size"] for cell in grid})
    peak = {(c["sequence_len"], c["micro_batch_size"]): c["peak_memory_bytes"] for c in grid}
    lines = ["", "  peak GiB   " + "".join(f"{f'batch {b}':>11}" for b in batches)]
    for seq in seqs:
        cells = []
        for batch in batches:
            value = peak[(seq, batch)]
            mark = "!" if limit is not None and value > limit else " "
            cells.append(f"{value / GIB:10.1f}{mark}")
        lines.append(f"  seq {seq:<6} " + "".join(cells))
    if limit is not None:
        lines.append(f"  ! exceeds {limit / GIB:.1f} GiB")
    return lines


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = report["sweep"]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for batch in sorted({c["micro_batch_size"] for c in grid}):
        cells = sorted((c for c in grid if c["micro_batch_size"] == batch), key=lambda c: c["sequence_len"])
        axes.plot([c["sequence_len"] for c in cells], [c["peak_memory_bytes"] / GIB for c in cells],
                  marker="o", label=f"micro batch {batch}")  # fmt: skip
    if report["gpu"]:
        axes.axhline(report["gpu"]["memory_bytes"] / GIB, color="red", linestyle="--", label=report["gpu"]["name"])
    axes.set_xscale("log", base=2)
    axes.set_xlabel("sequence length")
    axes.set_ylabel("predicted peak (GiB)")
    axes.set_title(f"{report.get('base_model')}: predicted peak training memory")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
