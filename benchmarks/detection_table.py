"""The detection table: every planted scenario of tests/scenarios/ under several seeds, scenario x detector.

Each scenario is a LoRA config with one planted fault (or none); a cell counts the seeds in which
that detector fired. Healthy rows must be all zeros; each faulty row fires its own detector.

    python benchmarks/detection_table.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"
STEPS = {"healthy-fast": 60, "overfit": 150}  # the rest run the default 30 steps, as in the tests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    from lora_lint.engine import Linter
    from lora_lint.project import Project
    from lora_lint.runtime.check import ConfigCheck, RuntimeOptions
    from lora_lint.runtime.detectors import SYMPTOM_NAMES

    linter = Linter(Project(SCENARIOS))
    print("| scenario | " + " | ".join(SYMPTOM_NAMES) + " |")
    print("|---" * (len(SYMPTOM_NAMES) + 1) + "|")
    for path in sorted(SCENARIOS.glob("*.yaml")):
        counts = dict.fromkeys(SYMPTOM_NAMES, 0)
        [result] = linter.lint_bytes(str(path), path.read_bytes())
        for seed in range(args.seeds):
            check = ConfigCheck(result, RuntimeOptions(device="cpu", steps=STEPS.get(path.stem, 30), seed=seed))
            for symptom in check.smoke().symptoms:
                counts[symptom.name] += 1
            check.release()
        print(f"| {path.stem} | " + " | ".join(f"{counts[name]}/{args.seeds}" for name in SYMPTOM_NAMES) + " |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
