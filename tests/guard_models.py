"""Tiny real training runs for the guard's tests: a random 2-layer Llama with a PEFT adapter.

The task is learnable in a few dozen steps (sequences that count up modulo a small
alphabet), so a healthy adapter's loss falls fast and a planted fault shows quickly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

VOCAB = 64
LENGTH = 16


def counting_sequences(count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    sequences = []
    for _ in range(count):
        start, stride = rng.randrange(VOCAB), rng.choice((1, 2, 3))
        sequences.append([(start + stride * i) % VOCAB for i in range(LENGTH)])
    return sequences


def stride_sequences(count: int, stride: int, seed: int) -> list[list[int]]:
    """Counting by one fixed stride: training on stride 1 makes a model confidently wrong on stride 3,
    so held-out loss on stride 3 climbs while the training loss falls (the overfit symptom)."""
    rng = random.Random(seed)
    return [[(start + stride * i) % VOCAB for i in range(LENGTH)] for start in (rng.randrange(VOCAB) for _ in range(count))]


class TokenDataset:
    """A map-style dataset of causal-LM examples (labels = inputs), what Trainer expects."""

    def __init__(self, sequences: list[list[int]]) -> None:
        self.sequences = sequences

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        ids = torch.tensor(self.sequences[index])
        return {"input_ids": ids, "labels": ids.clone()}


def tiny_lora_model(*, r: int = 8, lora_alpha: float = 16, targets: tuple[str, ...] = ("q_proj", "v_proj"),
                    lora_dropout: float = 0.0, seed: int = 0) -> Any:  # fmt: skip
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)  # fmt: skip
    model = LlamaForCausalLM(config)
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=lora_alpha, target_modules=list(targets), lora_dropout=lora_dropout))


def training_args(output_dir: Any, **overrides: Any) -> Any:
    from transformers import TrainingArguments

    settings = {"output_dir": str(output_dir), "max_steps": 100, "logging_steps": 2, "per_device_train_batch_size": 8,
                "learning_rate": 1e-2, "report_to": "none", "save_strategy": "no", "use_cpu": True,
                "disable_tqdm": True, "seed": 0, "lr_scheduler_type": "constant"}  # fmt: skip
    settings.update(overrides)
    return TrainingArguments(**settings)


@contextmanager
def single_thread() -> Iterator[None]:
    """One torch thread for the block: tiny models run ~20x faster on a busy 2-core box."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
