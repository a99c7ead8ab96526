"""Start-up and throughput of ``lora-lint check``, side by side with its alternatives.

Every command runs as a fresh process, interleaved round by round so that machine noise
hits all of them alike; the tables report the best and the median time of each and their
ratios against the floor: the same interpreter starting, importing PyYAML and composing
the same files with libyaml (``yaml.compose`` with ``CSafeLoader``, which is what
lora-lint parses with), in one process. Children run with bytecode caching on
(``PYTHONDONTWRITEBYTECODE`` removed), as installed tools do: without ``.pyc`` files
every import compiles its source again.

On a machine other work keeps busy, the best of many rounds is the number to read, and
``lora-lint check -j1`` shows what one core does (the default uses every usable core).
``--instructions`` counts instructions instead (valgrind's callgrind, one warm run each),
which no other load on the machine changes: for a command that forks workers, the count
of its longest process (a worker's count includes the start-up it inherits), which is its
wall-clock time on enough free cores.

    python benchmarks/check_speed.py [--rounds 15] [--config FILE] [--corpus DIR] [--skip-peft] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_CONFIG = ROOT / "examples" / "axolotl" / "good-qlora.yml"
DEFAULT_CORPUS = next((p for p in (ROOT.parent / "shared" / "corpus", ROOT.parent.parent / "shared" / "corpus") if p.is_dir()), ROOT / "corpus")
CHILD_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}

COMPOSE_FLOOR = """
import os, sys, yaml
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
for path in sys.argv[1:]:
    if os.path.isdir(path):
        files = [os.path.join(d, f) for d, _, names in os.walk(path) for f in names if f.endswith((".yml", ".yaml"))]
    else:
        files = [path]
    for name in files:
        with open(name, "rb") as handle:
            yaml.compose(handle.read(), Loader=loader)
"""
FLOOR = "floor: python + import yaml + libyaml compose"

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


def instructions(command: list[str]) -> float:
    """Instructions (millions) of the longest process of ``command``, counted by callgrind after a warm run."""
    timed(command)
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={folder}/cg.%p", *command],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
            env={**CHILD_ENV, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
    counts = [int(n) for n in re.findall(r"Collected : (\d+)", done.stderr)]
    return max(counts) / 1e6


def count_table(title: str, commands: dict[str, list[str]], baseline: str) -> tuple[str, dict[str, float]]:
    counts = {name: instructions(command) for name, command in commands.items()}
    short = baseline.split(":")[0]
    lines = [f"### {title}", "", f"| command | instructions | vs {short} |", "|---|---|---|"]
    for name, count in counts.items():
        lines.append(f"| {name} | {count:,.0f} M | {count / counts[baseline]:.2f}x |")
    return "\n".join(lines), counts


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
    short = baseline.split(":")[0]
    lines = [f"### {title}", "", f"| command | best | vs {short} | median | vs {short} |", "|---|---|---|---|---|"]
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
    parser.add_argument("--instructions", action="store_true", help="count instructions with valgrind instead of timing")
    args = parser.parse_args()
    if args.instructions and not shutil.which("valgrind"):
        parser.error("--instructions needs valgrind on the PATH")

    lora_lint = [str(BIN / "lora-lint")] if (BIN / "lora-lint").exists() else [sys.executable, "-m", "lora_lint"]
    yamllint = shutil.which("yamllint", path=str(BIN)) or shutil.which("yamllint")
    single = {
        FLOOR: [sys.executable, "-c", COMPOSE_FLOOR, str(args.config)],
        "lora-lint check": [*lora_lint, "check", "--quiet", str(args.config)],
    }
    if yamllint:
        single["yamllint"] = [yamllint, "-d", "relaxed", str(args.config)]
    if not args.skip_peft:
        single["PEFT LoraConfig(...)"] = [sys.executable, "-c", PEFT_VALIDATE, str(args.config)]
    if args.instructions:
        text, counts = count_table(f"Single file ({args.config.name})", single, FLOOR)
        print(text)
        if yamllint:
            print(f"\nlora-lint takes {counts['lora-lint check'] / counts['yamllint']:.2f}x of yamllint's instructions")
    else:
        print(f"One config ({args.config.name}), {args.rounds} rounds\n")
        samples = measure(single, args.rounds)
        print(table("Single file", samples, FLOOR))
        if yamllint:
            print(f"\nlora-lint takes {_ratio(samples, 'lora-lint check', 'yamllint')} of yamllint's time (best of each)")

    if args.corpus.is_dir():
        files = sorted(str(p) for p in args.corpus.rglob("*") if p.suffix in (".yml", ".yaml"))
        folder = str(args.corpus)
        corpus = {
            FLOOR: [sys.executable, "-c", COMPOSE_FLOOR, folder],
            "lora-lint check": [*lora_lint, "check", "--quiet", "--exit-zero", folder],
            "lora-lint check -j1 (one core)": [*lora_lint, "check", "--quiet", "--exit-zero", "-j1", folder],
        }
        if yamllint:
            corpus["yamllint"] = [yamllint, "-d", "relaxed", *files]
        if args.instructions:
            text, counts = count_table(f"Whole corpus ({len(files)} files under {args.corpus})", corpus, FLOOR)
            print("\n" + text)
            if yamllint:
                print(f"\nlora-lint takes {counts['yamllint'] / counts['lora-lint check']:.1f}x fewer instructions than "
                      "yamllint on the corpus (its longest process)")  # fmt: skip
            return 0
        rounds = max(5, args.rounds // 2)
        print(f"\nCorpus: {len(files)} files under {args.corpus}, {rounds} rounds\n")
        samples = measure(corpus, rounds)
        print(table("Whole corpus", samples, FLOOR))
        if yamllint:
            speedup = min(samples["yamllint"]) / min(samples["lora-lint check"])
            print(f"\nlora-lint is {speedup:.1f}x faster than yamllint on the corpus (best of each)")
    return 0


def _ratio(samples: dict[str, list[float]], name: str, other: str) -> str:
    return f"{min(samples[name]) / min(samples[other]):.2f}x"


if __name__ == "__main__":
    sys.exit(main())
