"""Measure the real peak memory of a few training steps, to check the estimator against.

Needs torch; nothing on the static path imports this module. On CUDA the numbers are
the allocator's own (``max_memory_allocated`` / ``max_memory_reserved``) plus the
process's share that the allocator does not see (context, cuBLAS workspaces), read from
``cudaMemGetInfo``. On CPU there is no allocator to ask, so every tensor storage is
tracked instead (:class:`LiveTensorBytes`): the peak of live tensor bytes, which is what
the estimate predicts minus context and fragmentation.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def measure_training_peak(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    steps: int = 3,
    *,
    autocast_dtype: torch.dtype | None = torch.bfloat16,
) -> dict[str, Any]:
    """Run ``steps`` AdamW steps of ``model`` on ``batch`` (which includes ``labels``) and report peaks.

    Several steps are needed: optimizer states appear at the first step, so the steady
    state (weights, states, gradients and activations together) starts at the second.
    """
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    model.train()

    def step() -> None:
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)  # keep gradients allocated, as accumulation does

    if device.type == "cuda":
        return _measure_cuda(step, steps, device)
    return _measure_tracked(step, steps, model, optimizer, device)


def _measure_cuda(step: Any, steps: int, device: torch.device) -> dict[str, Any]:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(steps):
        step()
    torch.cuda.synchronize(device)
    free, total = torch.cuda.mem_get_info(device)
    reserved = torch.cuda.memory_reserved(device)
    outside_allocator = total - free - reserved  # context, workspaces (and other processes, if any)
    peak_reserved = torch.cuda.max_memory_reserved(device)
    return {
        "device": torch.cuda.get_device_name(device),
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
        "peak_reserved_bytes": peak_reserved,
        "context_bytes": outside_allocator,
        "peak_total_bytes": peak_reserved + outside_allocator,
    }


def _measure_tracked(step: Any, steps: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     device: torch.device) -> dict[str, Any]:  # fmt: skip
    step()  # create the optimizer states first: the steady state holds them
    tracker = LiveTensorBytes()
    for tensor in _resident_tensors(model, optimizer):
        tracker.add(tensor)
    with tracker:
        for _ in range(max(steps - 1, 1)):
            step()
    return {
        "device": str(device),
        "peak_allocated_bytes": tracker.peak,
        "peak_reserved_bytes": None,
        "context_bytes": None,
        "peak_total_bytes": tracker.peak,
    }


def _resident_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Tensors alive before the step: weights, buffers, gradients, optimizer states."""
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [value for state in optimizer.state.values() for value in state.values() if isinstance(value, torch.Tensor)]
    return tensors


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of tensor storage alive at each moment, and their peak, on any device.

    Every storage an operator returns is counted once (views share it) until Python's
    last reference to it dies (a weakref finalizer on the storage object, which PyTorch
    keeps one-to-one with the C++ storage). Used where no allocator reports a peak (CPU).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def add(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.live:
            return
        self.live[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.add(leaf)
        return out
