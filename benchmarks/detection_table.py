"""The detectors' calibration: every planted scenario of tests/scenarios/ under many seeds.

Each scenario is a LoRA config with one planted fault or none (tests/scenarios/expected.json
says which symptoms it must show and how many steps it runs). Every run (and its reference
adapter's run) is kept in a JSON-lines file, so the table can be recomputed from the records
after a detector changes, without training again:

    python benchmarks/detection_table.py --seeds 10                     # train, keep records, print
    python benchmarks/detection_table.py --seeds 10 --from-records      # recompute from the records

The first table counts, per scenario and detector, the seeds in which the detector fired;
the second gives each detector's detection rate (runs where its symptom is planted) and false
alarm rate (every other run, the healthy ones included). The bar: no false alarm, every
planted symptom found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"
DEFAULT_RECORDS = ROOT / "benchmarks" / "out" / "detection-records.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--records", type=Path, default=DEFAULT_RECORDS, help="JSON-lines file of the runs")
    parser.add_argument("--from-records", action="store_true", help="only recompute the table from the records")
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference adapter's runs")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads only add contention
    expected = json.loads((SCENARIOS / "expected.json").read_text())
    names = args.only or list(expected)
    if not args.from_records:
        _train(names, expected, args)
    runs = _load(args.records)
    _print_tables(names, expected, runs, args.seeds)
    return 0


def _train(names: list[str], expected: dict, args: argparse.Namespace) -> None:
    import torch

    from lora_lint.engine import Linter
    from lora_lint.project import Project
    from lora_lint.runtime.check import ConfigCheck, RuntimeOptions

    torch.set_num_threads(1)
    done = set(_load(args.records))
    linter = Linter(Project(SCENARIOS))
    args.records.parent.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seeds):
        for name in names:
            steps = expected[name]["steps"]
            if (name, seed, steps) in done:
                continue
            path = SCENARIOS / f"{name}.yaml"
            [result] = linter.lint_bytes(str(path), path.read_bytes())
            started = time.perf_counter()
            options = RuntimeOptions(device="cpu", steps=steps, seed=seed, reference=not args.no_reference)
            check = ConfigCheck(result, options)
            smoke = check.smoke()
            check.release()
            line = {"scenario": name, "seed": seed, "steps": steps, "record": smoke.record.as_dict(),
                    "reference": smoke.reference.as_dict() if smoke.reference else None}  # fmt: skip
            with args.records.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(line) + "\n")
            found = ", ".join(s.name for s in smoke.symptoms) or "-"
            print(f"{name} seed {seed}: {found} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)


def _load(path: Path) -> dict[tuple[str, int, int], tuple]:
    from lora_lint.runtime.record import RunRecord

    def record(data: dict | None) -> RunRecord | None:
        if data is None:
            return None
        data = dict(data)
        data["val_losses"] = [tuple(pair) for pair in data["val_losses"]]
        return RunRecord(**data)

    runs = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            runs[(item["scenario"], item["seed"], item["steps"])] = (record(item["record"]), record(item["reference"]))
    return runs


def _print_tables(names: list[str], expected: dict, runs: dict, seeds: int) -> None:
    from lora_lint.runtime.detectors import SYMPTOM_NAMES, diagnose

    fired: dict[str, dict[str, int]] = {}
    counted: dict[str, int] = {}
    for name in names:
        fired[name] = dict.fromkeys(SYMPTOM_NAMES, 0)
        counted[name] = 0
        for seed in range(seeds):
            run = runs.get((name, seed, expected[name]["steps"]))
            if run is None:
                continue
            counted[name] += 1
            for symptom in diagnose(*run):
                fired[name][symptom.name] += 1
    print("| scenario | planted | " + " | ".join(SYMPTOM_NAMES) + " |")
    print("|---" * (len(SYMPTOM_NAMES) + 2) + "|")
    for name in names:
        planted = set(expected[name]["symptoms"])
        cells = [_cell(fired[name][d], counted[name], d in planted) for d in SYMPTOM_NAMES]
        print(f"| {name} | {', '.join(sorted(planted)) or 'none'} | " + " | ".join(cells) + " |")
    print()
    print("| detector | detected | false alarms (all other runs) | false alarms (healthy runs) |")
    print("|---|---|---|---|")
    for detector in SYMPTOM_NAMES:
        hits = planted_runs = alarms = others = healthy_alarms = healthy_runs = 0
        for name in names:
            planted = expected[name]["symptoms"]
            if detector in planted:
                hits += fired[name][detector]
                planted_runs += counted[name]
            else:
                alarms += fired[name][detector]
                others += counted[name]
            if not planted:
                healthy_alarms += fired[name][detector]
                healthy_runs += counted[name]
        print(f"| {detector} | {hits}/{planted_runs} | {alarms}/{others} | {healthy_alarms}/{healthy_runs} |")


def _cell(count: int, runs: int, planted: bool) -> str:
    text = f"{count}/{runs}"
    return f"**{text}**" if planted else text


if __name__ == "__main__":
    sys.exit(main())
