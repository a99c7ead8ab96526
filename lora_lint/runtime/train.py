"""The smoke run: a few dozen optimizer steps that record what the detectors read.

The run mirrors the config where it matters (its learning rate, adapter, precision,
quantization, gradient checkpointing) and shrinks what only costs time (batch and
sequence length are capped; the smoke run leaves gradient accumulation out, since each
micro-batch step is what a detector sees, while a sweep trial accumulates and follows the
config's warmup and schedule, because it must train as the real run will). On a narrow CPU proxy lora_A's learning rate is
multiplied by the width ratio (see :mod:`lora_lint.runtime.proxy`); lora_B's fan-in is
the rank, which the proxy keeps, so its rate stays the config's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from lora_lint.runtime.record import RunRecord

IGNORE_INDEX = -100
WATCH_STEPS = 3
"""Steps over which gradients are watched: lora_A's first non-zero gradient arrives at step 1."""


@dataclass(frozen=True)
class RunSettings:
    steps: int
    learning_rate: float
    batch_size: int
    sequence_length: int
    eval_every: int
    seed: int
    lora_a_lr_multiplier: float = 1.0
    gradient_accumulation: int = 1  # micro-batches per optimizer step (a sweep trial trains as the config does)
    warmup_steps: int = 0
    schedule: str = "constant"  # constant | linear | cosine: the rate after warmup, decaying to 0 at the last step

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def batches(sequences: list[list[int]], batch_size: int, seed: int) -> Any:
    """Endless shuffled batches: (input_ids, attention_mask, labels) tensors, right-padded."""
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            fresh = list(range(len(sequences)))
            rng.shuffle(fresh)
            order += fresh
        chosen, order = order[:batch_size], order[batch_size:]
        yield collate([sequences[i] for i in chosen])


def collate(sequences: list[list[int]]) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(seq) for seq in sequences)
    ids = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    return ids, mask, labels


def smoke_train(
    built: Any,
    train: list[list[int]],
    val: list[list[int]],
    settings: RunSettings,
    *,
    vocab_size: int,
    on_step: Callable[[int, float], None] | None = None,
) -> RunRecord:
    """Train ``built.model`` for ``settings.steps`` steps and record losses and gradients."""
    import torch

    from lora_lint.runtime.build import keep_training_mode

    model = built.model
    device = built.device
    torch.manual_seed(settings.seed)
    keep_training_mode(model)
    record = RunRecord(settings.learning_rate, vocab_size, built.weights == "random", watch_steps=WATCH_STEPS)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    lora_a = [p for name, p in named if "lora_A" in name]
    others = [p for name, p in named if "lora_A" not in name]
    optimizer = torch.optim.AdamW(
        [{"params": lora_a, "lr": settings.learning_rate * settings.lora_a_lr_multiplier},
         {"params": others, "lr": settings.learning_rate}],
        lr=settings.learning_rate, weight_decay=0.0,
    )  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(_rate_factor, settings))
    layers = _adapted_layers(model)
    stream = batches(train, settings.batch_size, settings.seed)
    first = [t.to(device) for t in next(stream)]
    base_loss, record.initial_loss, output_change = _initial_losses(model, first)
    if _adapter_starts_as_no_op(built.setup.get("init_lora_weights", True)):
        record.base_loss = base_loss
        record.initial_output_change = output_change
    val_batches = [[t.to(device) for t in collate(val[i : i + settings.batch_size])] for i in range(0, len(val), settings.batch_size)]  # fmt: skip
    watch = GradientWatch(named)
    batch = first
    for step in range(settings.steps):
        if val_batches and step % settings.eval_every == 0:
            record.val_losses.append((step, _mean_loss(model, val_batches)))
        extra = [[t.to(device) for t in next(stream)] for _ in range(settings.gradient_accumulation - 1)]
        loss = _accumulated_backward(model, [batch, *extra])
        grad_norm = _grad_norm(named)
        if step < WATCH_STEPS:
            watch.observe(step)
        record.losses.append(loss)
        record.grad_norms.append(grad_norm)
        if on_step is not None:
            on_step(step, record.losses[-1])
        if not (math.isfinite(record.losses[-1]) and math.isfinite(grad_norm)):
            break  # divergence is established; more steps only produce NaN
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record.update_ratios.append(_largest_update_ratio(layers))
        if step + 1 == WATCH_STEPS:
            record.frozen_lora_b = watch.frozen_lora_b()
        batch = [t.to(device) for t in next(stream)]
    else:
        if val_batches:
            record.val_losses.append((settings.steps, _mean_loss(model, val_batches)))
    record.grads_missing, record.grads_zero = watch.missing, watch.zero()
    keep_training_mode(model)
    return record


def _accumulated_backward(model: Any, micro_batches: list[list[Any]]) -> float:
    """Backward over the micro-batches of one optimizer step; their mean loss."""
    total = 0.0
    for batch in micro_batches:
        loss = _loss(model, batch) / len(micro_batches)
        loss.backward()
        total += loss.item()
    return total


def _rate_factor(settings: RunSettings, step: int) -> float:
    """The learning-rate multiplier at ``step``: linear warmup, then the schedule's decay."""
    if step < settings.warmup_steps:
        return (step + 1) / (settings.warmup_steps + 1)
    if settings.schedule == "constant":
        return 1.0
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    if settings.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


def _loss(model: Any, batch: list[Any]) -> Any:
    ids, mask, labels = batch
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def _adapter_starts_as_no_op(init: Any) -> bool:
    """Whether "adapter off" is the model training starts from.

    PEFT's default and Gaussian inits start lora_B at zero; ``False`` should too, and the
    initial-loss detector reports that it does not. PiSSA, OLoRA, LoftQ, EVA and CorDA
    move part of each weight into the adapter, so only "adapter on" is the original model.
    """
    return init in (True, False, None, "gaussian")


def _initial_losses(model: Any, batch: list[Any]) -> tuple[float, float, float]:
    """First-batch loss with the adapter off and on, before any step (eval mode: no dropout),
    and the largest change the adapter makes to the logits, relative to the largest logit."""
    import torch

    ids, mask, labels = batch
    model.eval()
    with torch.no_grad():
        with model.disable_adapter():
            base = model(input_ids=ids, attention_mask=mask, labels=labels)
        start = model(input_ids=ids, attention_mask=mask, labels=labels)
        change = (start.logits.float() - base.logits.float()).abs().max() / base.logits.float().abs().max().clamp_min(1e-12)  # fmt: skip
    model.train()
    return base.loss.item(), start.loss.item(), float(change)


def _mean_loss(model: Any, batches: list[list[Any]]) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        values = [_loss(model, batch).item() for batch in batches]
    model.train()
    return sum(values) / len(values)


def _grad_norm(named: list[tuple[str, Any]]) -> float:
    total = 0.0
    for _, param in named:
        if param.grad is not None:
            total += float(param.grad.detach().float().pow(2).sum())
    return math.sqrt(total) if math.isfinite(total) else total


class GradientWatch:
    """Which trainable tensors get no gradient, or only zeros, in the first steps.

    lora_A's gradient is B^T times the upstream gradient, so it is zero while its
    lora_B is all zero (PEFT's init): that is excused, not counted as dead.
    """

    def __init__(self, named: list[tuple[str, Any]]) -> None:
        self.named = named
        self.by_name = dict(named)
        self.missing: list[str] = []
        self.nonzero: set[str] = set()
        self.excused: set[str] = set()

    def observe(self, step: int) -> None:
        for name, param in self.named:
            if param.grad is None:
                if step == 0:
                    self.missing.append(_short(name))
                continue
            if bool(param.grad.detach().ne(0).any()):
                self.nonzero.add(name)
            elif "lora_A" in name and self._paired_b_is_zero(name):
                self.excused.add(name)

    def _paired_b_is_zero(self, name: str) -> bool:
        partner = self.by_name.get(name.replace("lora_A", "lora_B"))
        return partner is not None and not bool(partner.detach().ne(0).any())

    def zero(self) -> list[str]:
        missing = set(self.missing)
        return [_short(n) for n, _ in self.named if n not in self.nonzero and n not in self.excused and _short(n) not in missing]  # fmt: skip

    def frozen_lora_b(self) -> list[str]:
        return [_short(n) for n, p in self.named if "lora_B" in n and n in self.nonzero and not bool(p.detach().ne(0).any())]  # fmt: skip


def _short(name: str) -> str:
    return name.removeprefix("base_model.model.")


def _adapted_layers(model: Any) -> list[tuple[Any, Any, float, float]]:
    """(lora_A weight, lora_B weight, scaling, |W|) for every adapted linear layer."""
    layers = []
    for module in model.modules():
        lora_a, lora_b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
        if lora_a is None or lora_b is None or "default" not in lora_a:
            continue
        base = module.get_base_layer()
        norm = _weight_norm(base)
        if norm > 0:
            layers.append((lora_a["default"].weight, lora_b["default"].weight, float(module.scaling["default"]), norm))
    return layers


def _weight_norm(layer: Any) -> float:
    """Frobenius norm of a base layer's weight, dequantized when it is 4-bit."""
    import torch

    weight = layer.weight
    quant_state = getattr(weight, "quant_state", None)
    with torch.no_grad():
        if quant_state is not None:
            import bitsandbytes.functional as bnb_functional

            return float(bnb_functional.dequantize_4bit(weight.data, quant_state).float().norm())
        return float(weight.detach().float().norm())


def _largest_update_ratio(layers: list[tuple[Any, Any, float, float]]) -> float:
    """max over layers of scaling * |B| |A| / |W|: an upper bound of |dW| / |W|, cheap at any size."""
    worst = 0.0
    for a, b, scaling, norm in layers:
        ratio = abs(scaling) * float(b.detach().float().norm()) * float(a.detach().float().norm()) / norm
        if not math.isfinite(ratio):
            return math.inf
        worst = max(worst, ratio)
    return worst
