"""Facts about the adapter itself: where alpha and r came from, the init method, the saved adapter a run resumes.

These are what the configuration-level rules read. They hold no opinion: a rule decides
whether, say, a framework's default alpha at this rank is a mistake; this module only
says that the default applied, whose default it was, and what a saved adapter holds.
The saved ``adapter_config.json`` is read with :mod:`json`, never through PEFT.
"""

from __future__ import annotations

import os
import re

from lora_lint.lora_setup import UNKNOWN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from lora_lint.lora_setup import LoraSetup

FRAMEWORKS = {
    "peft": "PEFT",
    "lora-config": "PEFT",
    "python": "PEFT",
    "axolotl": "axolotl",
    "llamafactory": "LLaMA-Factory",
    "torchtune": "torchtune",
    "trl": "TRL",
}
"""Reader format -> the framework whose defaults and behaviour apply."""

UNKNOWN_KEY_EFFECTS = {
    "peft": "PEFT loads adapter_config.json with only a warning for it, so the value written here never applies",
    "lora-config": "LoraConfig(**config) raises TypeError on it, and a script that picks keys by name ignores it",
    "python": "LoraConfig(...) raises TypeError (unexpected keyword argument) when the script runs",
    "axolotl": "axolotl drops keys its schema does not know, so the value written here never applies",
    "llamafactory": "LLaMA-Factory stops at start-up (Some keys are not used by the HfArgumentParser)",
    "llamafactory-v1": "LLaMA-Factory v1 does not read it, so the value written here never applies",
    "torchtune": "the model builder raises TypeError (unexpected keyword argument) when the recipe starts",
    "trl": "TRL stops at start-up (Unknown arguments from config file)",
}
"""What each framework does with a key it does not know (checked in its argument parsing code)."""

INIT_EFFECTS = {
    "pissa": (
        "A and B start from the top-r singular vectors of the base weight, whose residual replaces it; "
        "PEFT divides the singular values by alpha/r, so alpha/r sets the size of A and B instead of "
        "damping an update that starts at zero"
    ),
    "olora": (
        "A and B start from a QR decomposition of the base weight, which becomes W - (alpha/r)*B*A; "
        "the adapter is non-zero from step 0, so alpha/r scales a full-size component, not a small update"
    ),
    "corda": (
        "A and B start from a context-oriented decomposition of the base weight (its singular values "
        "divided by alpha/r) and the base keeps the residual, so alpha/r sets the size of A and B"
    ),
    "loftq": (
        "A and B are LoftQ's low-rank fit of the quantization error, computed without alpha/r, while the "
        "forward pass multiplies them by alpha/r: the start matches LoftQ's approximation only when alpha equals r"
    ),
    "eva": (
        "A starts from the SVD of the layer inputs on your data and EVA redistributes ranks between layers "
        "(rescaling alpha with them when adjust_scaling_factors is on), so one alpha/r no longer holds everywhere"
    ),
    "gaussian": (
        "A is drawn with standard deviation 1/r instead of PEFT's Kaiming-uniform, so the first updates "
        "shrink with r on top of alpha/r"
    ),
    "orthogonal": (
        "A and B start as non-zero orthogonal matrices while the base weight stays as it is, so the adapter "
        "changes the model's output from step 0 by alpha/r times B*A"
    ),
    "mica": (
        "B is fixed to the base weight's smallest singular vectors and only A is trained, "
        "so alpha/r scales a frozen direction"
    ),
}
"""What each non-default ``init_lora_weights`` does to the meaning of alpha/r (from peft/tuners/lora/layer.py)."""

DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}

MAX_ADAPTER_CONFIG_BYTES = 1024 * 1024
"""A saved adapter_config.json is a few kB; anything larger is not one."""

_CHECKPOINT = r"^checkpoint-(\d+)$"


def adapter_facts(setup: LoraSetup, facts: dict[str, Any]) -> dict[str, Any]:
    """Derived facts of the adapter: value sources, init method, the saved adapter a resumed run loads."""
    init_method = _init_method(facts["init_lora_weights"], setup)
    saved = saved_adapter(facts["resume_adapter"], os.path.dirname(setup.path))
    return {
        "framework": FRAMEWORKS.get(setup.format, setup.format),
        "unknown_key_effect": UNKNOWN_KEY_EFFECTS.get(_dialect(setup), "the framework does not read it"),
        "r_source": value_source(setup, "r"),
        "alpha_source": value_source(setup, "lora_alpha"),
        "compute_dtype": _dtype_name(facts["bnb_4bit_compute_dtype"]),
        "init_method": init_method,
        "init_effect": INIT_EFFECTS.get(init_method or ""),
        "string_numbers": string_numbers(facts["notes"]),
        "saved_adapter": saved,
        "saved_adapter_mismatch": adapter_mismatch(saved, facts) if saved else None,
    }


def _dialect(setup: LoraSetup) -> str:
    """The format, told apart from its variants where they treat keys differently (LLaMA-Factory v1)."""
    if setup.format == "llamafactory" and setup.extras.get("config_version") == "v1":
        return "llamafactory-v1"
    return setup.format


def value_source(setup: LoraSetup, name: str) -> str:
    """``written`` (in the file), ``default`` (the framework's), ``missing`` (no value at all) or ``unknown``."""
    setting = setup.settings.get(name)
    if setting is None or setting.value is None:
        return "missing"
    if setting.value is UNKNOWN:
        return "unknown"
    return "written" if setting.explicit else "default"


def _init_method(value: Any, setup: LoraSetup) -> str | None:
    """``init_lora_weights`` as one name: ``default`` (True), ``random`` (False), ``pissa`` (also ``pissa_niter_N``)."""
    if value is None:
        return None if "init_lora_weights" in setup.settings else "default"
    if value is True:
        return "default"
    if value is False:
        return "random"
    if isinstance(value, str):
        name = value.strip().lower()
        return "pissa" if name.startswith("pissa_niter_") else name
    return None


def _dtype_name(value: Any) -> str | None:
    """``torch.bfloat16`` / ``bf16`` / ``bfloat16`` -> ``bfloat16``; None stays None."""
    if not isinstance(value, str):
        return None
    name = value.strip().lower().removeprefix("torch.")
    return DTYPE_ALIASES.get(name, name)


def string_numbers(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``yaml-string-number`` notes with the two spellings PyYAML reads as the float that was meant."""
    records = []
    for note in notes:
        if note["kind"] != "yaml-string-number":
            continue
        try:
            value = float(note["text"])
        except (KeyError, ValueError):
            continue
        records.append(dict(note, value=value, yaml_float=_yaml_float(value), decimal=_decimal(value)))
    return records


def _yaml_float(value: float) -> str:
    """``2e-4`` -> ``2.0e-04``: a dot and a signed exponent, as YAML 1.1 requires."""
    mantissa, exponent = f"{value:.6e}".split("e")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}0e{exponent}" if mantissa.endswith(".") else f"{mantissa}e{exponent}"


def _decimal(value: float) -> str:
    """``2e-4`` -> ``0.0002``, ``1e5`` -> ``100000.0``."""
    text = f"{value:.15f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def saved_adapter(resume: Any, config_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The r, alpha and targets of the local adapter a run resumes from, or None when there is none to read.

    ``resume`` names a folder holding ``adapter_config.json``, a training output folder whose
    newest ``checkpoint-N/`` holds one, or the JSON file itself; it is looked up relative
    to the config's folder, then the working directory. Hub ids are not fetched.
    """
    if not isinstance(resume, str) or not resume.strip() or "://" in resume:
        return None
    expanded = os.path.expanduser(resume.strip().rstrip("/"))  # what Path(...).expanduser() names, unnormalized
    if not any(os.path.exists(place) for place in (os.path.join(config_dir, expanded), expanded)):
        return None  # a hub id: nothing local to read, and no pathlib import (~3 ms of start-up)
    from pathlib import Path

    path = Path(resume.strip()).expanduser()
    for place in (path,) if path.is_absolute() else (Path(config_dir) / path, path):
        found = _adapter_config_in(place)
        if found is not None:
            data = _read_json(found)
            if data is not None:
                return {
                    "path": str(found),
                    "r": data.get("r"),
                    "lora_alpha": data.get("lora_alpha"),
                    "target_modules": data.get("target_modules"),
                }
    return None


def _adapter_config_in(place: Path) -> Path | None:
    try:
        if place.is_file():
            return place if place.suffix == ".json" else None
        if not place.is_dir():
            return None
        direct = place / "adapter_config.json"
        if direct.is_file():
            return direct
        checkpoints = [(int(m.group(1)), child) for child in place.iterdir() if (m := re.match(_CHECKPOINT, child.name))]
        for _, child in sorted(checkpoints, reverse=True):
            if (child / "adapter_config.json").is_file():
                return child / "adapter_config.json"
    except OSError:
        return None
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    import json  # imported here: ~1 ms of start-up, only runs that resume a local adapter need it

    try:
        if path.stat().st_size > MAX_ADAPTER_CONFIG_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def adapter_mismatch(saved: dict[str, Any], facts: dict[str, Any]) -> str | None:
    """How the saved adapter's shape differs from this config ("r 16 there, 32 here; ..."), or None.

    Targets are compared as sets of names, and only when both sides are explicit lists:
    ``all-linear`` or a regular expression cannot be compared without the model.
    """
    differences = []
    r = facts["r"]
    if isinstance(saved["r"], int) and isinstance(r, int) and saved["r"] != r:
        differences.append(f"r {saved['r']} there, {r} here")
    here, there = facts["target_modules"], saved["target_modules"]
    comparable = isinstance(here, list) and isinstance(there, list) and here and there and not facts["target_linear"]
    if comparable and {str(name) for name in here} != {str(name) for name in there}:
        differences.append(f"target_modules {_names(there)} there, {_names(here)} here")
    return "; ".join(differences) or None


def _names(names: list[Any]) -> str:
    return "[" + ", ".join(sorted(str(name) for name in names)) + "]"
