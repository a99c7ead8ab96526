"""What a sweep trial costs beyond its training steps: model build, data, evaluation.

Runs ``lora-lint sweep``'s trials on a config (default: the bundled CPU example
examples/lora-config/good.yaml) and splits each trial's wall time into the bare training
steps (steps x the median step time) and the rest: building the model, reading and
tokenizing the data, the base-model evaluation and the held-out evaluations during training.

    python benchmarks/sweep_overhead.py [CONFIG] [--ranks 4,8,16] [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "examples/lora-config/good.yaml"))
    parser.add_argument("--ranks", default="4,8,16")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import lora_lint

    started = time.perf_counter()
    result = lora_lint.sweep(args.config, ranks=tuple(int(r) for r in args.ranks.split(",")), steps=args.steps)
    total = time.perf_counter() - started
    print(f"{args.config}: {len(result.trials)} trials in {total:.1f} s on {result.device}")
    print("| r | build s | data s | base + final eval s | in-loop eval s | bare steps s | overhead / bare steps |")
    print("|---|---|---|---|---|---|---|")
    for t in result.trials:
        if t.status != "ok":
            print(f"| {t.r} | {t.status}: {t.reason} |")
            continue
        in_loop = t.wall_seconds - t.train_seconds
        overhead = t.timings["build"] + t.timings["data"] + t.timings["evaluate"] + in_loop
        print(f"| {t.r} | {t.timings['build']:.2f} | {t.timings['data']:.2f} | {t.timings['evaluate']:.2f} | "
              f"{in_loop:.2f} | {t.train_seconds:.2f} | {overhead / t.train_seconds:.2f}x |")  # fmt: skip
    print("(the first trial's build includes importing torch, transformers and peft)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
