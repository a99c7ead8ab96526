"""Start-up and throughput of ``lora-lint check``, side by side with its alternatives.

Every command runs as a fresh process, interleaved round by round so that machine noise
hits all of them alike; the table reports the best and the median time of each and their
ratios against the floor (the same interpreter starting, importing PyYAML and loading the
file). Children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed), as
installed tools do: without ``.pyc`` files every import compiles its source again.

    python benchmarks/check_speed.py [--rounds 15] [--config FILE] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_CONFIG = ROOT / "examples" / "axolotl" / "good-qlora.yml"
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
CHILD_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}

PEFT_VALIDATE = """
import sys, yaml
from peft import LoraConfig
cfg = yaml.safe_load(open(sys.argv[1]))
LoraConfig(r=cfg.get("lora_r", 8), lora_alpha=cfg.get("lora_alpha", 8), lora_dropout=cfg.get("lora_dropout", 0.0),
           target_modules=cfg.get("lora_target_modules"))
"""


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=CHILD_ENV)
    return time.perf_counter() - start


def measure(commands: dict[str, list[str]], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for name, command in commands.items():  # warm the page cache and .pyc files
        timed(command)
    for _ in range(rounds):
        for name, command in commands.items():
            samples[name].append(timed(command))
    return samples


def table(title: str, samples: dict[str, list[float]], baseline: str) -> str:
    """Best and median per command: the best shows the cost itself, the median what noise adds."""
    best = {name: min(values) for name, values in samples.items()}
    median = {name: statistics.median(values) for name, values in samples.items()}
    lines = [f"### {title}", "", f"| command | best | vs {baseline} | median | vs {baseline} |", "|---|---|---|---|---|"]
    for name in samples:
        lines.append(
            f"| {name} | {best[name] * 1000:.1f} ms | {best[name] / best[baseline]:.2f}x "
            f"| {median[name] * 1000:.1f} ms | {median[name] / median[baseline]:.2f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--skip-peft", action="store_true", help="leave out the PEFT LoraConfig baseline (needs the [torch] extra)")
    args = parser.parse_args()

    lora_lint = [str(BIN / "lora-lint")] if (BIN / "lora-lint").exists() else [sys.executable, "-m", "lora_lint"]
    yamllint = shutil.which("yamllint", path=str(BIN)) or shutil.which("yamllint")
    single = {
        "floor: python + import yaml + load": [sys.executable, "-c", "import sys, yaml; yaml.safe_load(open(sys.argv[1]))", str(args.config)],
        "lora-lint check": [*lora_lint, "check", "--quiet", str(args.config)],
    }
    if yamllint:
        single["yamllint"] = [yamllint, "-d", "relaxed", str(args.config)]
    if not args.skip_peft:
        single["PEFT LoraConfig(...)"] = [sys.executable, "-c", PEFT_VALIDATE, str(args.config)]
    print(f"One config ({args.config.name}), {args.rounds} rounds\n")
    print(table("Single file", measure(single, args.rounds), "floor: python + import yaml + load"))

    if args.corpus.is_dir():
        files = sorted(str(p) for p in args.corpus.rglob("*") if p.suffix in (".yml", ".yaml"))
        corpus = {"lora-lint check": [*lora_lint, "check", "--quiet", "--exit-zero", str(args.corpus)]}
        if yamllint:
            corpus["yamllint"] = [yamllint, "-d", "relaxed", *files]
        rounds = max(3, args.rounds // 3)
        print(f"\nCorpus: {len(files)} files under {args.corpus}, {rounds} rounds\n")
        print(table("Whole corpus", measure(corpus, rounds), "lora-lint check"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
