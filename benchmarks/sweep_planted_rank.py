"""Does the sweep find a planted intrinsic rank? Teachers that differ from the base by a rank-k change.

For each k and seed (tests/planted_rank.py): a random-weight base is saved to a folder, the
teacher is the base plus a rank-k change on every q_proj and v_proj, text is sampled from
the teacher, and ``lora_lint.sweep`` runs the student config over the ranks. The knee is the
smallest rank whose gain over the base reaches 95 % of the best gain (the rule with the time
budget opened, since on a CPU the time hardly grows with the rank of a tiny model). A row
prints the knee and each rank's share of the best gain.

    python benchmarks/sweep_planted_rank.py [--ks 2,4,8] [--seeds 3] [--ranks 1,2,4,8,16,32] [--steps 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="2,4,8")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ranks", default="1,2,4,8,16,32")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for models this small)")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    import lora_lint
    from tests.planted_rank import plant

    torch.set_num_threads(args.threads)
    ranks = tuple(int(r) for r in args.ranks.split(","))
    print(f"| k | seed | knee | {' | '.join(f'r={r}' for r in ranks)} | sweep s |")
    print(f"|---|---|---|{'---|' * len(ranks)}---|")
    hits = total = 0
    for k in (int(x) for x in args.ks.split(",")):
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as folder:
                config = plant(Path(folder), k, seed)
                started = time.perf_counter()
                result = lora_lint.sweep(config, ranks=ranks, data_fraction=1.0, steps=args.steps, time_budget=1.0)
                seconds = time.perf_counter() - started
            best = max(t.quality for t in result.trials if t.status == "ok")
            shares = [f"{t.quality / best:.0%}" if t.status == "ok" else t.status for t in result.trials]
            hits += result.r == k
            total += 1
            print(f"| {k} | {seed} | {result.r} | {' | '.join(shares)} | {seconds:.0f} |", flush=True)
    print(f"\nknee at the planted rank: {hits}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
