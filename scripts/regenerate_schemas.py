"""Regenerate lora-lint's bundled framework schemas from the frameworks' own source code.

For every framework and every version listed in ``VERSIONS`` (or given on the command line)
the package is installed with ``pip install --no-deps`` into a throw-away folder under the
temporary directory (no torch, no CUDA), together with the transformers versions whose
``TrainingArguments`` it parses, and its keys are read from the source with :mod:`ast`
(``lora_lint/readers/schema_source.py``: the same reader lora-lint uses on an installed
framework). A checkout of a framework's main branch can be added with ``--checkout``.
The result goes to ``lora_lint/readers/framework_schemas/<framework>.json`` with the versions, their
origins and the date; every key lists the versions that know it.

    python scripts/regenerate_schemas.py                      # every framework, versions below
    python scripts/regenerate_schemas.py llamafactory --checkout \\
        llamafactory=main@ff6d4d1:/path/to/LLaMA-Factory/src/llamafactory

Needs network access to PyPI (or a mirror pip is configured for); nothing is imported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lora_lint.readers.schema_source import SourceTree
from lora_lint.readers.schemas import EXTRACTORS, SCHEMA_DIR, torchtune_builders

FRAMEWORKS = {
    "llamafactory": {"name": "LLaMA-Factory", "package": "llamafactory"},
    "axolotl": {"name": "axolotl", "package": "axolotl"},
    "peft": {"name": "PEFT", "package": "peft"},
    "trl": {"name": "TRL", "package": "trl"},
    "torchtune": {"name": "torchtune", "package": "torchtune"},
}
VERSIONS = {
    "llamafactory": ["0.9.3", "0.9.4", "0.9.5"],
    "axolotl": ["0.17.0", "0.19.0", "0.21.0"],
    "peft": ["0.17.1", "0.19.1", "0.21.2"],
    "trl": ["0.19.1", "0.29.1", "1.16.0"],
    "torchtune": ["0.5.0", "0.6.1"],
}
"""Released versions read from PyPI, oldest first; the last is what files are checked against."""
PYTHON = "3.13"
"""Wheels are chosen as for this Python (newer axolotl releases need 3.12 or later); only their source is read."""
TRANSFORMERS = {"llamafactory": ["4.57.6", "5.8.0"], "trl": ["4.57.6", "5.24.0"]}
"""transformers versions whose TrainingArguments a framework's parser includes: the oldest and newest it supports."""


def install(package: str, version: str, into: Path) -> Path:
    """``pip install --no-deps`` one wheel into ``into``; the folder of its top-level package."""
    target = into / f"{package}-{version}"
    if not target.exists():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary", ":all:",
                   "--python-version", PYTHON, "--target", str(target), f"{package}=={version}"]  # fmt: skip
        subprocess.run(command, check=True)
    return target / package


def read_keys(framework: str, roots: dict[str, str]) -> dict:
    tree = SourceTree(roots)
    if framework == "torchtune":
        return {"builders": torchtune_builders(tree)}
    return EXTRACTORS[framework].extract(tree)


def handbook_keys(label: str, path: str) -> dict:
    """Keys alignment-handbook's scripts add to TRL's parser: its subclasses' own fields (TRL's bases are not read)."""
    tree = SourceTree({"alignment": os.path.abspath(path)})
    keys: list[str] = []
    for name in ("ScriptArguments", "SFTConfig", "DPOConfig", "ORPOConfig"):
        keys.extend(tree.class_fields(name, "alignment"))
    print(f"alignment-handbook {label}: {len(set(keys))} keys of its own")
    return {"source": f"alignment-handbook {label}", "keys": sorted(set(keys))}


def versions_of(framework: str, releases: list[str], checkouts: list[tuple[str, str]], work: Path) -> list[dict]:
    package = FRAMEWORKS[framework]["package"]
    companions = {version: install("transformers", version, work) for version in TRANSFORMERS.get(framework, [])}
    sources = [(version, str(install(package, version, work)), f"{package}=={version} from PyPI") for version in releases]
    sources += [(label, path, f"checkout {label}") for label, path in checkouts]
    found = []
    for label, path, origin in sources:
        merged: dict = {}
        for companion in companions.values() or [None]:
            roots = {package: path} | ({"transformers": str(companion)} if companion else {})
            read = read_keys(framework, roots)
            for key, value in read.items():
                merged[key] = merged.get(key, []) + value if isinstance(value, list) else {**merged.get(key, {}), **value}
        if companions:
            origin += " with transformers " + " and ".join(companions)
        print(f"{framework} {label}: {len(set(merged.get('keys', merged.get('builders', []))))} entries ({origin})")
        found.append({"name": label, "source": origin, "read": merged})
    return found


def write(framework: str, versions: list[dict], current: str) -> Path:
    today = datetime.date.today().isoformat()
    header = {
        "framework": FRAMEWORKS[framework]["name"],
        "package": FRAMEWORKS[framework]["package"],
        "generated": today,
        "generator": "scripts/regenerate_schemas.py",
        "current": current,
        "versions": [{"name": v["name"], "source": v["source"]} for v in versions],
    }
    path = Path(SCHEMA_DIR) / f"{framework}.json"
    if framework == "torchtune":
        builders: dict = {}
        for version in versions:  # newest signature wins, every version that has a builder is listed
            for name, entry in version["read"]["builders"].items():
                builders[name] = {**entry, "versions": builders.get(name, {}).get("versions", []) + [version["name"]]}
        body = {**header, "builders": dict(sorted(builders.items()))}
        path.write_text(json.dumps(body, indent=1) + "\n")
        return path
    by_name = {v["name"]: v["read"] for v in versions}
    order = list(dict.fromkeys(by_name[current]["keys"]))  # the current version's order first (PEFT: signature order)
    order += sorted({k for v in versions for k in v["read"]["keys"]} - set(order))
    keys = {key: [v["name"] for v in versions if key in v["read"]["keys"]] for key in order}
    extras = by_name[current].get("extras", {})
    lines = [json.dumps(header, indent=1)[:-2] + ","]
    if extras:
        lines.append(f' "extras": {json.dumps(extras)},')
    lines.append(' "keys": {')
    lines += [f"  {json.dumps(key)}: {json.dumps(names)}," for key, names in keys.items()]
    lines[-1] = lines[-1].rstrip(",")
    lines += [" }", "}", ""]
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("frameworks", nargs="*", help=f"default: all of {', '.join(FRAMEWORKS)}")
    parser.add_argument("--versions", help="comma-separated released versions, oldest first (one framework only)")
    parser.add_argument("--checkout", action="append", default=[], metavar="FRAMEWORK=LABEL:PACKAGE_DIR",
                        help="also read a source checkout (newer than every release), e.g. a main branch")  # fmt: skip
    parser.add_argument("--handbook", metavar="LABEL:PACKAGE_DIR",
                        help="TRL: also read alignment-handbook's argument classes (its src/alignment folder)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the throw-away installs (printed)")
    args = parser.parse_args()
    frameworks = args.frameworks or list(FRAMEWORKS)
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        parser.error(f"unknown framework {', '.join(unknown)} (known: {', '.join(FRAMEWORKS)})")
    checkouts: dict[str, list[tuple[str, str]]] = {}
    for item in args.checkout:
        framework, _, rest = item.partition("=")
        label, _, path = rest.partition(":")
        checkouts.setdefault(framework, []).append((label, os.path.abspath(path)))
    work = Path(tempfile.mkdtemp(prefix="lora-lint-schemas-"))
    try:
        for framework in frameworks:
            releases = args.versions.split(",") if args.versions else VERSIONS[framework]
            versions = versions_of(framework, releases, checkouts.get(framework, []), work)
            if framework == "trl" and args.handbook:
                label, _, path = args.handbook.partition(":")
                current = next(v for v in versions if v["name"] == releases[-1])
                current["read"].setdefault("extras", {})["alignment_handbook"] = handbook_keys(label, path)
            print(f"wrote {write(framework, versions, current=releases[-1])}")
    finally:
        if args.keep:
            print(f"installs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
