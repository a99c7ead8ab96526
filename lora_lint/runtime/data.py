"""Smoke-run data: the config's own local files when it has them, else a learnable task.

Records are read from jsonl/json/csv/parquet files and rendered to text from the usual
fields (``text``; ``instruction``/``input``/``output``; ``messages``/``conversations``;
``prompt``/``completion``). Text is tokenized with the model folder's tokenizer when
there is one, else byte by byte. Without local data, the task is arithmetic progressions
over a few symbols: random tokens would plateau at ln(vocab) by construction, while
this task rewards every step the adapter learns, and held-out sequences come from the
same rule, so a healthy run does not overfit it.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_RECORDS = 2000  # a smoke run needs a few hundred sequences at most
TEXT_FIELDS = ("text", "content", "completion", "output", "response", "answer", "chosen")
SYNTHETIC_SYMBOLS = 16


class DataError(Exception):
    """Local data named by the config that cannot be read."""


@dataclass
class TaskData:
    """Token sequences for training and held-out evaluation, and where they came from."""

    train: list[list[int]]
    val: list[list[int]]
    source: str  # "local" or "synthetic"
    tokenizer: str  # "model", "bytes" or "none"
    description: str

    def max_token(self) -> int:
        return max((max(seq) for seq in self.train + self.val if seq), default=0)


def dataset_files(entries: Any, config_dir: Path) -> list[Path]:
    """Local files among a setup's dataset entries (hub ids and missing paths are ignored)."""
    files = []
    for entry in entries or []:
        raw = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(raw, str) or not raw:
            continue
        for base in (config_dir, Path.cwd()):
            candidate = (base / raw).expanduser()
            if candidate.is_file():
                files.append(candidate)
                break
            if candidate.is_dir():
                files.extend(
                    sorted(p for p in candidate.iterdir() if p.suffix in (".jsonl", ".json", ".csv", ".parquet"))
                )
                break
    return files


def read_texts(files: list[Path]) -> list[str]:
    """Rendered text of every usable record in ``files``."""
    texts = []
    for path in files:
        for record in _records(path):
            text = render_record(record)
            if text:
                texts.append(text)
            if len(texts) >= MAX_RECORDS:
                return texts
    return texts


def _records(path: Path) -> list[Any]:
    try:
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()][:MAX_RECORDS]
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, list) else data.get("data", []) if isinstance(data, dict) else []
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as handle:
                return list(csv.DictReader(handle))[:MAX_RECORDS]
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).slice(0, MAX_RECORDS).to_pylist()
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read dataset {path}: {exc}") from None
    except ImportError:
        raise DataError(f"reading {path} needs pyarrow") from None
    return []


def render_record(record: Any) -> str:
    """One training text from a record of any common dataset layout ('' when none fits)."""
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return ""
    turns = record.get("messages") or record.get("conversations")
    if isinstance(turns, list):
        parts = []
        for turn in turns:
            if isinstance(turn, dict):
                role = turn.get("role") or turn.get("from") or ""
                content = turn.get("content") or turn.get("value") or ""
                parts.append(f"{role}: {content}" if role else str(content))
        return "\n".join(parts)
    if "instruction" in record:
        parts = [record.get("instruction"), record.get("input"), record.get("output")]
        return "\n".join(str(p) for p in parts if p)
    if "prompt" in record and ("completion" in record or "response" in record):
        return f"{record['prompt']}{record.get('completion') or record.get('response')}"
    if "question" in record and "answer" in record:
        return f"{record['question']}\n{record['answer']}"
    for key in TEXT_FIELDS:
        if isinstance(record.get(key), str):
            return record[key]
    return ""


class ByteTokenizer:
    """UTF-8 bytes as tokens: needs no files and fits any vocabulary of 258 or more."""

    bos, eos = 256, 257

    def encode(self, text: str, max_length: int) -> list[int]:
        return [self.bos, *text.encode("utf-8")[: max_length - 2], self.eos]


def model_tokenizer(model_dir: str | None, trust_remote_code: bool) -> Any | None:
    """The model folder's own tokenizer, or None when the folder has none."""
    if not model_dir:
        return None
    folder = Path(model_dir)
    folder = folder if folder.is_dir() else folder.parent
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)


def tokenize(texts: list[str], tokenizer: Any | None, max_length: int) -> list[list[int]]:
    if tokenizer is None:
        byte_tokenizer = ByteTokenizer()
        return [byte_tokenizer.encode(text, max_length) for text in texts]
    encoded = tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
    return [list(ids) for ids in encoded if len(ids) > 1]


def split_validation(texts: list[str], val_size: Any, seed: int) -> tuple[list[str], list[str]]:
    """Hold out ``val_size`` (a fraction or a count; default 10 %, at least one record)."""
    shuffled = texts[:]
    random.Random(seed).shuffle(shuffled)
    if isinstance(val_size, float) and 0 < val_size < 1:
        count = round(len(texts) * val_size)
    elif isinstance(val_size, int) and not isinstance(val_size, bool) and val_size > 0:
        count = val_size
    else:
        count = round(len(texts) * 0.1)
    count = min(max(1, count), len(texts) - 1)
    return shuffled[count:], shuffled[:count]


def synthetic_task(vocab_size: int, special_ids: set[int], count: int, val_count: int, length: int, seed: int) -> tuple[list[list[int]], list[list[int]]]:  # fmt: skip
    """Arithmetic progressions modulo a few symbols: learnable, and held-out data follows the same rule."""
    rng = random.Random(seed)
    candidates = [t for t in range(min(vocab_size, 4096)) if t not in special_ids]
    symbols = rng.sample(candidates, min(SYNTHETIC_SYMBOLS, len(candidates)))

    def sequence() -> list[int]:
        start, stride = rng.randrange(len(symbols)), rng.randrange(1, 4)
        return [symbols[(start + stride * i) % len(symbols)] for i in range(length)]

    return [sequence() for _ in range(count)], [sequence() for _ in range(val_count)]


def fit_vocabulary(data: TaskData, vocab_size: int) -> bool:
    """Remap token ids into ``vocab_size`` by frequency (random weights only); True if remapped.

    A random-weight proxy has no reason to keep a tokenizer's 150k ids: the mapping is
    arbitrary anyway, and a small vocabulary keeps the softmax cheap.
    """
    if data.max_token() < vocab_size:
        return False
    counts = Counter(t for seq in data.train + data.val for t in seq)
    mapping = {token: min(rank, vocab_size - 1) for rank, (token, _) in enumerate(counts.most_common())}
    data.train = [[mapping[t] for t in seq] for seq in data.train]
    data.val = [[mapping[t] for t in seq] for seq in data.val]
    return True
