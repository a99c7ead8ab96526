"""GPU names are matched forgivingly, and memory is what nvidia-smi reports."""

from __future__ import annotations

import pytest

from lora_lint.memory.gpus import MIB, UnknownGpuError, find_gpu, known_gpus


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("a100-80gb", "A100 80GB"), ("A100 80GB", "A100 80GB"), ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
     ("h100", "H100 80GB"), ("NVIDIA H100 80GB HBM3", "H100 80GB"), ("H100 PCIe", "H100 80GB"),
     ("Tesla T4", "T4"), ("GeForce RTX 4090", "RTX 4090"), ("rtx4090", "RTX 4090"), ("a10g", "A10G"),
     ("a10", "A10"), ("L40S", "L40S"), ("h200 141gb", "H200"), ("B200 192GB", "B200"), ("mi300x", "MI300X"),
     ("V100-SXM2-32GB", "V100 32GB")],
)  # fmt: skip
def test_forgiving_names(name, canonical):
    assert find_gpu(name).name == canonical


def test_memory_is_nvidia_smi_total():
    assert find_gpu("A100 80GB").memory_bytes == 81920 * MIB
    assert find_gpu("T4").memory_bytes == 15360 * MIB
    assert find_gpu("H100").memory_bytes == 81559 * MIB


def test_family_with_two_sizes_is_ambiguous():
    with pytest.raises(UnknownGpuError, match="A100 40GB, A100 80GB"):
        find_gpu("a100")


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownGpuError, match="RTX 4090"):
        find_gpu("4090")
    with pytest.raises(UnknownGpuError, match="usable-memory-gb"):
        find_gpu("quantum-card")


def test_a_size_that_does_not_match_is_not_accepted():
    with pytest.raises(UnknownGpuError):
        find_gpu("A100 50GB")


def test_catalog_is_sorted_by_memory():
    sizes = [gpu.memory_bytes for gpu in known_gpus()]
    assert sizes == sorted(sizes) and len(sizes) >= 20
