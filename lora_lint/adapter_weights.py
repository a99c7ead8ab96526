"""The saved LoRA tensors beside an ``adapter_config.json``, read from the safetensors header alone.

A saved adapter is two files: the config and ``adapter_model.safetensors``. PEFT builds the
adapter from the config and then loads the tensors into it, so when the two disagree (a rank
edited in the config, a target added after training) the adapter cannot be loaded or resumed:
a different rank fails with a size mismatch, and tensors of modules the config does not target
are dropped. The header (an 8-byte little-endian length, then JSON with each tensor's dtype,
shape and byte range) says all of that exactly, without torch, numpy or the safetensors
package, and without reading the weights. The trainable-parameter count follows from the shapes
even when the base model is unknown.

A hostile or damaged file (a header length of 10^15, a truncated file, malformed JSON) is
reported in one line; nothing larger than safetensors' own 100 MB header limit is ever read.
"""

from __future__ import annotations

import os
import re
from math import prod

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.lora_setup import LoraSetup

WEIGHTS_FILE = "adapter_model.safetensors"
MAX_HEADER_BYTES = 100_000_000
"""The safetensors format's own limit on the header (``MAX_HEADER_SIZE`` in its Rust reader)."""

DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
"""Bytes per element of each safetensors dtype (sub-byte dtypes such as F4 are not used by PEFT adapters)."""

_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.(?P<kind>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)(?:\.weight)?$")
"""PEFT's saved keys (adapter name removed): ``<module>.lora_A.weight``, ``<module>.lora_embedding_A``,
``<module>.lora_magnitude_vector[.weight]`` (DoRA)."""


class AdapterWeightsError(ValueError):
    """A weights file that is not a readable safetensors file."""


def read_header(path: str | os.PathLike[str]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a safetensors file, checked against the file's size.

    Raises :class:`AdapterWeightsError` with a one-line reason when the length prefix is
    missing or larger than the format allows or the file holds, the JSON is malformed, or a
    tensor's byte range does not fit its shape or the file.
    """
    import json  # imported here: only configs with saved weights beside them need it

    try:
        size = os.stat(path).st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise AdapterWeightsError(f"{size} bytes, shorter than the 8-byte header length")
            length = int.from_bytes(prefix, "little")
            if length > MAX_HEADER_BYTES:
                raise AdapterWeightsError(f"the header claims {length:,} bytes, over safetensors' limit of {MAX_HEADER_BYTES:,}")
            if length > size - 8:
                raise AdapterWeightsError(f"the header claims {length:,} bytes but the file has {size - 8:,} after it: truncated")
            raw = handle.read(length)
    except OSError as exc:
        raise AdapterWeightsError(exc.strerror or str(exc)) from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AdapterWeightsError(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise AdapterWeightsError("the header is not a JSON object")
    data_bytes = size - 8 - length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor(name, entry, data_bytes)
    return tensors


def _tensor(name: str, entry: Any, data_bytes: int) -> tuple[str, tuple[int, ...]]:
    if not isinstance(entry, dict):
        raise AdapterWeightsError(f"tensor {name!r} is not described by an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise AdapterWeightsError(f"tensor {name!r} has an unknown dtype {dtype!r}")
    if not (isinstance(shape, list) and all(_count(n) for n in shape)):
        raise AdapterWeightsError(f"tensor {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_count(n) for n in offsets) and offsets[0] <= offsets[1]):
        raise AdapterWeightsError(f"tensor {name!r} has invalid data offsets {offsets!r}")
    if offsets[1] > data_bytes:
        raise AdapterWeightsError(f"tensor {name!r} ends at byte {offsets[1]:,} of {data_bytes:,}: the file is truncated")
    if offsets[1] - offsets[0] != prod(shape) * DTYPE_BYTES[dtype]:
        raise AdapterWeightsError(f"tensor {name!r}: {offsets[1] - offsets[0]:,} bytes do not hold a {dtype} tensor of shape {shape}")
    return dtype, tuple(shape)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def summarize(tensors: dict[str, tuple[str, tuple[int, ...]]]) -> dict[str, Any]:
    """What the tensors say about the adapter: parameters, adapted modules and their ranks, DoRA.

    ``params`` counts the saved tensors PEFT trains (LoRA matrices, DoRA magnitudes, ``modules_to_save``
    copies), leaving out the frozen embedding weights PEFT saves beside an adapted embedding
    (``<module>.base_layer.weight``); ``ranks`` maps each adapted module to the rank its
    ``lora_A`` (or ``lora_embedding_A``) was saved with.
    """
    ranks: dict[str, int] = {}
    dora: set[str] = set()
    lora_params = 0
    for name, (_, shape) in tensors.items():
        match = _LORA_KEY.match(name)
        if match is None:
            continue
        lora_params += prod(shape)
        module, kind = match.group("module"), match.group("kind")
        if kind in ("lora_A", "lora_embedding_A") and shape:
            ranks[module] = shape[0]
        elif kind == "lora_magnitude_vector":
            dora.add(module)
    return {
        "tensors": len(tensors),
        "params": sum(prod(shape) for name, (_, shape) in tensors.items() if ".base_layer." not in name),
        "lora_params": lora_params,
        "modules": sorted(ranks),
        "module_names": sorted({module.rsplit(".", 1)[-1] for module in ranks}),
        "ranks": ranks,
        "dora_modules": len(dora),
    }


def saved_weights_facts(setup: LoraSetup, facts: dict[str, Any]) -> dict[str, Any]:
    """``saved_weights`` (the summary) and ``saved_weights_mismatch`` of a PEFT ``adapter_config.json``.

    {} when no weights file sits beside the config: :func:`~lora_lint.facts.compute_facts` keeps None for both.
    A weights file that cannot be read (malformed or hostile header, truncated) is an
    :class:`~lora_lint.document.InputError`: the adapter cannot be loaded at all, like a config that cannot be parsed.
    """
    path = os.path.join(os.path.dirname(setup.path), WEIGHTS_FILE)
    if not os.path.isfile(path):
        return {}
    try:
        summary = summarize(read_header(path))
    except AdapterWeightsError as exc:
        from lora_lint.document import InputError

        raise InputError(f"{WEIGHTS_FILE} beside it cannot be read: {exc}") from None
    ranks = summary.pop("ranks")
    summary["path"] = path
    summary["rank_counts"] = {str(rank): count for rank, count in sorted(_rank_counts(ranks).items())}
    return {"saved_weights": summary, "saved_weights_mismatch": mismatch(ranks, summary, facts)}


def _rank_counts(ranks: dict[str, int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for rank in ranks.values():
        counts[rank] = counts.get(rank, 0) + 1
    return counts


def mismatch(ranks: dict[str, int], summary: dict[str, Any], facts: dict[str, Any]) -> str | None:
    """How the saved tensors disagree with the config (rank, targets, DoRA), or None when they agree."""
    if not ranks:
        return None if not summary["params"] else "no LoRA tensors at all"
    problems = []
    rank_pattern = facts["rank_pattern"] if isinstance(facts["rank_pattern"], dict) else {}
    if isinstance(facts["r"], int):
        wrong = {module: saved for module, saved in ranks.items() if saved != _expected_rank(module, facts["r"], rank_pattern)}
        if wrong:
            example = min(wrong)
            expected = _expected_rank(example, facts["r"], rank_pattern)
            others = f" and {len(wrong) - 1} other modules" if len(wrong) > 1 else ""
            scope = "every module" if len(wrong) == len(ranks) else f"{example}{others}"
            problems.append(f"rank {wrong[example]} where the config gives {expected} ({scope})")
    untargeted = _untargeted(sorted(ranks), facts)
    if untargeted:
        names = sorted({module.rsplit(".", 1)[-1] for module in untargeted})
        problems.append(f"tensors for {len(untargeted)} modules ({', '.join(names)}) that target_modules does not select")
    missing = _missing_targets(summary["module_names"], facts)
    if missing:
        problems.append(f"no tensors for {', '.join(missing)}, which target_modules selects")
    if facts["use_dora"] is True and not summary["dora_modules"]:
        problems.append("no DoRA magnitudes although use_dora is true")
    elif facts["use_dora"] is not True and summary["dora_modules"]:
        problems.append("DoRA magnitudes although use_dora is not set")
    return "; ".join(problems) or None


def _expected_rank(module: str, r: int, rank_pattern: dict[str, Any]) -> int:
    """PEFT's rank for ``module``: the first ``rank_pattern`` key naming it (exactly or as a suffix regex), else r."""
    for pattern, rank in rank_pattern.items():
        if pattern == module or _matches(rf"(.*\.)?({pattern})$", module):
            return rank
    return r


def _matches(pattern: str, text: str) -> bool:
    """``re.fullmatch``, False for a pattern that is not a regex (the parameter count reports it, once)."""
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return False


def _untargeted(modules: list[str], facts: dict[str, Any]) -> list[str]:
    """Saved modules the config's targets (and ``layers_to_transform``) do not select; [] when that cannot be told."""
    targets = facts["target_modules"]
    if facts["target_linear"] or not targets:
        return []
    if isinstance(targets, str):
        try:
            re.compile(targets)
        except re.error:
            return []  # no module is targeted by a pattern PEFT cannot use (the parameter count reports it)
        selected = [m for m in modules if re.fullmatch(targets, m) or re.fullmatch(targets, _without_wrapper(m))]
    elif isinstance(targets, list):
        names = [str(t) for t in targets]
        selected = [m for m in modules if any(m == t or m.endswith("." + t) for t in names)]
    else:
        return []
    layers = facts["layers_to_transform"]
    if isinstance(layers, int):
        layers = [layers]
    if isinstance(layers, list):
        selected = [m for m in selected if _layer_index(m) in layers]
    return [m for m in modules if m not in selected]


def _without_wrapper(module: str) -> str:
    return module.removeprefix("base_model.model.")


def _layer_index(module: str) -> int | None:
    return next((int(part) for part in module.split(".") if part.isdigit()), None)


def _missing_targets(saved_names: list[str], facts: dict[str, Any]) -> list[str]:
    """Plain target names PEFT adapts on the base model (known from its architecture) that have no saved tensors."""
    matches = facts.get("target_matches") or []
    return sorted(
        match["target"] for match in matches
        if match["adapted"] and "." not in match["target"] and match["target"] not in saved_names
    )  # fmt: skip
