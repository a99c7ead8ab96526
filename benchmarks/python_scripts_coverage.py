"""How many LoRA setups in real training scripts and notebooks the Python reader resolves.

Run: ``python benchmarks/python_scripts_coverage.py DIR [--out-of-scope FILE] [--list]``

``DIR`` holds ``.py`` scripts and ``.ipynb`` notebooks, one per public repository, unedited.
Every ``LoraConfig(...)`` call and every Unsloth ``Fast*Model.get_peft_model(...)`` call in them
is counted (found by a plain ``ast`` scan, independent of the reader), then matched with the
setups ``lora_lint.readers.read_file`` returns for the file. A call's ``r``, ``lora_alpha`` and
targets are *resolved* when the reader knows their value (written, resolved through the
script, or the framework's default).

``--out-of-scope FILE`` lists, one per line as ``file<TAB>call<TAB>reason``, the calls whose
values do not come from plain constants, argparse defaults or dataclass defaults (a YAML
file loaded at run time, a function's parameter, ``self.config``); ``call`` is ``LoraConfig#1``
or ``get_peft_model#1`` (kind and ordinal in the file). The other calls are *in scope*, and
the script reports how many of them are fully resolved, the reader's target being 3 in 4.
The same file serves any version of the reader, so before/after numbers share a denominator.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from lora_lint.readers import read_file

UNSLOTH_CLASSES = ("FastLanguageModel", "FastVisionModel", "FastModel", "FastTextModel")
CHECKED = ("r", "lora_alpha", "targets")


def code_of(path: Path) -> str:
    """The file's Python: a notebook's code cells joined, IPython magics and shell lines left out."""
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8-sig", errors="replace")
    cells = json.loads(path.read_text(encoding="utf-8-sig")).get("cells", [])
    lines = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            lines += [line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def calls_in(code: str) -> list[str]:
    """``LoraConfig#n`` / ``get_peft_model#n`` for every LoRA setup call, in source order."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name == "LoraConfig":
            found.append((node.lineno, node.col_offset, "LoraConfig"))
        elif name == "get_peft_model" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in UNSLOTH_CLASSES:
                found.append((node.lineno, node.col_offset, "get_peft_model"))
    counts: dict[str, int] = {}
    names = []
    for _, _, kind in sorted(found):
        counts[kind] = counts.get(kind, 0) + 1
        names.append(f"{kind}#{counts[kind]}")
    return names


def setup_kind(setup) -> str:
    return "get_peft_model" if setup.extras.get("unsloth") else "LoraConfig"


def resolved(setup) -> dict[str, bool]:
    def known(name: str) -> bool:
        setting = setup.settings.get(name)
        return setting is not None and setting.known

    targets = known("target_modules") or setup.get("target_linear") is True
    return {"r": known("r"), "lora_alpha": known("lora_alpha"), "targets": targets}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out-of-scope", type=Path, help="calls whose values the reader is not meant to resolve")
    parser.add_argument("--list", action="store_true", help="print every call that is not fully resolved")
    args = parser.parse_args()

    out_of_scope: dict[tuple[str, str], str] = {}
    if args.out_of_scope:
        for line in args.out_of_scope.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                file, call, reason = (line.split("\t") + ["", ""])[:3]
                out_of_scope[(file, call)] = reason

    files = sorted(p for p in args.folder.iterdir() if p.suffix in (".py", ".ipynb"))
    totals = {name: 0 for name in CHECKED}
    calls = full = in_scope = in_scope_full = errors = 0
    for path in files:
        names = calls_in(code_of(path))
        try:
            setups = read_file(str(path), path.read_bytes())
        except Exception as exc:  # a crash is a result to report here, not a reason to stop
            print(f"{path.name}: reader failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            setups, errors = [], errors + 1
        by_kind: dict[str, list] = {}
        for setup in sorted(setups, key=lambda s: (s.start.line, s.start.column) if s.start else (0, 0)):
            by_kind.setdefault(setup_kind(setup), []).append(setup)
        for name in names:
            kind, ordinal = name.split("#")
            matches = by_kind.get(kind, [])
            setup = matches[int(ordinal) - 1] if int(ordinal) <= len(matches) else None
            result = resolved(setup) if setup is not None else {key: False for key in CHECKED}
            calls += 1
            for key in CHECKED:
                totals[key] += result[key]
            complete = all(result.values())
            full += complete
            scoped = (path.name, name) not in out_of_scope
            in_scope += scoped
            in_scope_full += scoped and complete
            if args.list and not complete:
                missing = ", ".join(key for key in CHECKED if not result[key])
                why = "" if scoped else f"  (out of scope: {out_of_scope[(path.name, name)]})"
                print(f"  {path.name} {name}: {missing} unknown{why}")

    print(f"{len(files)} files, {calls} LoRA setup calls ({errors} files the reader failed on)")
    for key in CHECKED:
        print(f"  {key:<11} resolved in {totals[key]:>3} of {calls}")
    print(f"  all three   resolved in {full:>3} of {calls}")
    if in_scope:
        share = in_scope_full / in_scope
        print(f"in scope (plain constants, argparse or dataclass defaults): {in_scope_full} of {in_scope} fully resolved ({share:.0%}; target 75%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
