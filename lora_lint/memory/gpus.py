"""The GPUs a training run targets, with the memory a process can see on each.

Memory is ``memory.total`` as ``nvidia-smi`` prints it (``rocm-smi --showmeminfo vram``
for AMD), in MiB: the board's capacity minus what the driver reserves (ECC, firmware).
That is the ceiling a CUDA process runs against; the CUDA context comes out of it and
is a separate term of the estimate. Marketing sizes overstate it: an "80 GB" H100
reports 81559 MiB (79.6 GiB), a "16 GB" T4 15360 MiB.

Names are matched forgivingly: case, spaces, dashes, "GB" suffixes and vendor words
("NVIDIA", "Tesla", "GeForce") do not matter, so ``a100-80gb``, ``A100 80GB`` and
``NVIDIA A100-SXM4-80GB`` are the same card. A bare family name (``h100``, ``a100``)
means its largest-memory variant only where the family has one common size; otherwise
the lookup is ambiguous and says which names to use.
"""

from __future__ import annotations

import re

from lora_lint.record import Record

MIB = 1024**2


class Gpu(Record):
    """A catalog entry: display name and the memory nvidia-smi reports, in bytes."""

    name: str
    memory_bytes: int


_CATALOG_MIB: dict[str, int] = {
    "T4": 15360,
    "P100 16GB": 16280,
    "V100 16GB": 16160,
    "V100 32GB": 32510,
    "A10": 23028,
    "A10G": 23028,
    "A40": 46068,
    "L4": 23034,
    "L40": 46068,
    "L40S": 46068,
    "RTX 3060": 12288,
    "RTX 3090": 24576,
    "RTX 4080": 16376,
    "RTX 4090": 24564,
    "RTX 5090": 32607,
    "RTX A6000": 49140,
    "RTX 6000 Ada": 49140,
    "A100 40GB": 40960,
    "A100 80GB": 81920,
    "H100 80GB": 81559,
    "H100 NVL": 95830,
    "H200": 143771,
    "B200": 183359,
    "MI300X": 196288,
}
"""memory.total in MiB per card. SXM and PCIe variants of A100/H100 report the same 80 GB size."""

_FAMILY_DEFAULTS = {"h100": "H100 80GB", "v100": None, "a100": None, "p100": "P100 16GB"}
"""Bare family names: the one variant they mean, or None where the family has two common sizes."""

_NOISE = re.compile(r"nvidia|tesla|geforce|quadro|amd|instinct|radeon|sxm\d?|pcie|hbm\d?e?|\bgpu\b")


class UnknownGpuError(ValueError):
    """A GPU name the catalog does not know, or one that names several cards."""


def _key(name: str) -> str:
    """``NVIDIA A100-SXM4-80GB`` -> ``a10080``: the spelling-independent part of a name."""
    lowered = _NOISE.sub(" ", name.lower())
    lowered = re.sub(r"(\d+)\s*gi?b\b", r"\1", lowered)
    return re.sub(r"[^a-z0-9]", "", lowered)


_BY_KEY = {_key(name): name for name in _CATALOG_MIB}


def known_gpus() -> list[Gpu]:
    """Every catalog entry, smallest memory first."""
    return sorted((Gpu(name, mib * MIB) for name, mib in _CATALOG_MIB.items()), key=lambda gpu: gpu.memory_bytes)


def find_gpu(name: str) -> Gpu:
    """The catalog entry for ``name``; raises :class:`UnknownGpuError` with the close names."""
    key = _key(name)
    family = _FAMILY_DEFAULTS.get(key, "")
    if family is None:
        variants = sorted(n for k, n in _BY_KEY.items() if k.startswith(key))
        raise UnknownGpuError(f"{name!r} has several memory sizes; use one of: {', '.join(variants)}")
    canonical = family or _BY_KEY.get(key) or _sized_alias(key)
    if canonical is None:
        import difflib  # imported here: ~1 ms of start-up, only an unknown name needs it

        close = [_BY_KEY[k] for k in difflib.get_close_matches(key, _BY_KEY, n=3, cutoff=0.6)]
        hint = f"; did you mean {', '.join(close)}?" if close else "; set usable-memory-gb in [tool.lora-lint] (or --usable-memory-gb) for other cards"
        raise UnknownGpuError(f"unknown GPU {name!r}{hint}")
    return Gpu(canonical, _CATALOG_MIB[canonical] * MIB)


def _sized_alias(key: str) -> str | None:
    """``h200141`` -> ``H200``: a card with one size, named with (roughly) that size appended."""
    for catalog_key, name in _BY_KEY.items():
        size = re.fullmatch(re.escape(catalog_key) + r"(\d+)", key)
        decimal_gb = _CATALOG_MIB[name] * MIB / 1e9
        if size and "GB" not in name and abs(int(size.group(1)) - decimal_gb) <= 0.1 * decimal_gb:
            return name
    return None
