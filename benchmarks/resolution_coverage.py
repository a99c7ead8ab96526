"""How many configs that name a base model resolve to an architecture, on a folder of real configs.

Every file under DIR that lora-lint reads as a LoRA config and that names a base model counts
once per config it holds; a config resolves when the base model is found (user entries aside:
none are given) and its family is one the architecture model describes. The unresolved names
are listed with the reason, so a missing catalog entry, alias or family shows at a glance.

    python benchmarks/resolution_coverage.py DIR [--verbose]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

SUFFIXES = (".yaml", ".yml", ".json", ".py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--verbose", action="store_true", help="list every config with its resolution")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2

    from lora_lint.arch.facts import architecture_facts, base_model_name
    from lora_lint.document import InputError
    from lora_lint.readers import read_file

    named = resolved = 0
    sources: Counter[str] = Counter()
    unresolved: Counter[tuple[str, str]] = Counter()
    by_folder: dict[str, list[int]] = {}
    for path in sorted(p for p in args.folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES):
        try:
            setups = read_file(str(path), path.read_bytes())
        except (InputError, OSError):
            continue
        for setup in setups:
            name = base_model_name(setup)
            if name is None:
                continue
            named += 1
            facts = architecture_facts(setup, cwd=os.getcwd(), user_models={})
            group = by_folder.setdefault(path.relative_to(args.folder).parts[0], [0, 0])
            group[0] += 1
            if facts["architecture"] is not None:
                resolved += 1
                group[1] += 1
                sources[facts["architecture"]["resolved_via"]] += 1
                outcome = f"{facts['architecture']['model_id']} ({facts['architecture']['resolved_via']})"
            else:
                reason = "unknown name" if facts["architecture_skipped"].startswith("unknown base model") else facts["architecture_skipped"].split(": ", 1)[-1]
                unresolved[(name, reason)] += 1
                outcome = f"UNRESOLVED: {reason}"
            if args.verbose:
                print(f"{path.relative_to(args.folder)}: {name} -> {outcome}")
    if not named:
        print("no config under that folder names a base model")
        return 1
    print(f"{resolved} of {named} configs with a named base model resolve to an architecture ({resolved / named:.1%})")
    for folder, (total, ok) in sorted(by_folder.items()):
        print(f"  {folder}: {ok} of {total} ({ok / total:.1%})")
    print("resolved via: " + ", ".join(f"{source} {count}" for source, count in sources.most_common()))
    print(f"unresolved ({named - resolved}):")
    for (name, reason), count in sorted(unresolved.items(), key=lambda item: (item[0][1], item[0][0])):
        print(f"  {name}{f' (x{count})' if count > 1 else ''}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
