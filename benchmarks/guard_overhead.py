"""What the live guard costs per training step: the same tiny-model Trainer run with and without it.

The runs alternate (plain, guarded, plain, ...) so machine load hits both alike; the
figure is the ratio of the median seconds per step over whole runs (logging included). The guard reads only what the trainer logs
(and, at each log, the adapter's tensors), so it should cost well under 1 %.

    python benchmarks/guard_overhead.py [--steps 200] [--repeats 5] [--logging-steps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--logging-steps", type=int, default=10)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import Trainer
    from transformers.utils import logging as hf_logging

    from lora_lint.guard import LoraGuardCallback
    from tests.guard_models import TokenDataset, counting_sequences, tiny_lora_model, training_args

    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)

    def one_run(guarded: bool) -> float:
        """Seconds per optimizer step over a whole run: logging and callbacks included."""
        with tempfile.TemporaryDirectory() as folder:
            settings = training_args(folder, max_steps=args.steps, logging_steps=args.logging_steps)
            trainer = Trainer(model=tiny_lora_model(), args=settings, train_dataset=TokenDataset(counting_sequences(512, 0)),
                              callbacks=[LoraGuardCallback()] if guarded else [])  # fmt: skip
            started = time.perf_counter()
            trainer.train()
            return (time.perf_counter() - started) / args.steps

    plain, guarded = [], []
    for _ in range(args.repeats):
        plain.append(one_run(False))
        guarded.append(one_run(True))
    base, with_guard = statistics.median(plain), statistics.median(guarded)
    print(f"median step: plain {base * 1e3:.2f} ms, guarded {with_guard * 1e3:.2f} ms, "
          f"overhead {100 * (with_guard / base - 1):+.2f} % ({args.steps} steps x {args.repeats} runs each, "
          f"logging every {args.logging_steps} steps)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
