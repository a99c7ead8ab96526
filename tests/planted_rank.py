"""A task with a known intrinsic rank: the evidence that a sweep measures what it claims.

A small random-weight Llama is saved to a folder (weights and a word-level tokenizer whose
tokens are ``t0 .. t255``); the teacher is that base plus a rank-``k`` change on every
q_proj and v_proj; training and held-out text are sampled from the teacher. A student
config adapts the same layers of the saved base. A LoRA of rank r >= k can represent the
change exactly and one of rank r < k cannot, so held-out quality should stop growing at
r = k: the sweep's knee. Used by ``benchmarks/sweep_planted_rank.py`` and its short test.
"""

from __future__ import annotations

import json
from pathlib import Path

VOCAB = 256
WIDTH = 64
TARGETS = ("q_proj", "v_proj")
BASE_INIT = 0.15  # weight scale of the base: large enough that attention (and the change) matters
LOGIT_SCALE = 4.0  # the output layer is scaled up so that the teacher's text is far from uniform
CHANGE_SCALE = 3.0  # singular value of each planted direction, against ~2.4 for the base weights


def base_config() -> object:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=VOCAB, hidden_size=WIDTH, intermediate_size=2 * WIDTH, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                       initializer_range=BASE_INIT, tie_word_embeddings=False)  # fmt: skip


def plant(folder: Path, k: int, seed: int, *, train: int = 600, val: int = 100, length: int = 16,
          learning_rate: float = 1e-2, batch: int = 8) -> Path:  # fmt: skip
    """Write the base model, the teacher's data and a student config into ``folder``; returns the config."""
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    base = LlamaForCausalLM(base_config())
    with torch.no_grad():
        base.lm_head.weight *= LOGIT_SCALE
    base.save_pretrained(folder / "base")
    words = Tokenizer(WordLevel({f"t{i}": i for i in range(VOCAB)}, unk_token="t0"))
    words.pre_tokenizer = WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="t0").save_pretrained(folder / "base")
    teacher = base
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, module in teacher.named_modules():
            if name.rsplit(".", 1)[-1] in TARGETS:
                out_features, in_features = module.weight.shape
                left = torch.linalg.qr(torch.randn(out_features, k, generator=generator))[0]
                right = torch.linalg.qr(torch.randn(in_features, k, generator=generator))[0]
                module.weight += CHANGE_SCALE * left @ right.T
    sequences = _sample(teacher, train + val, length, generator)
    for name, rows in (("train", sequences[:train]), ("val", sequences[train:])):
        with (folder / f"{name}.jsonl").open("w") as handle:
            for row in rows:
                handle.write(json.dumps({"text": " ".join(f"t{t}" for t in row)}) + "\n")
    config = folder / "student.yaml"
    config.write_text(
        f"# student of a rank-{k} teacher\nr: 8\nlora_alpha: 16\nlora_dropout: 0.0\n"
        f"target_modules: [{', '.join(TARGETS)}]\nbase_model: base\n"
        "datasets:\n  - path: train.jsonl\nval_datasets:\n  - path: val.jsonl\n"
        f"sequence_len: {length}\nmicro_batch_size: {batch}\nlearning_rate: {learning_rate}\n"
    )
    return config


def _sample(model: object, count: int, length: int, generator: object) -> list[list[int]]:
    """Sequences drawn from the teacher at temperature 1 (the first token uniformly)."""
    import torch

    model.eval()
    tokens = torch.randint(0, VOCAB, (count, 1), generator=generator)
    with torch.no_grad():
        for _ in range(length - 1):
            logits = model(input_ids=tokens).logits[:, -1, :]
            following = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
            tokens = torch.cat([tokens, following], dim=1)
    return tokens.tolist()
