"""Count the examples of a dataset without loading or downloading it, or bound them.

Several mistakes are about data size (too many trainable parameters for a few hundred
examples, an epoch count that overfits). A config usually names its data file, so the
count is cheap to know: lines for JSON Lines and text, the length of a top-level JSON list,
rows of a CSV, and the row count stored in a Parquet footer. A hub dataset downloaded before
is counted from the local caches' metadata. Where no count exists, an upper bound often does
(``max_samples``, a sliced split, ``max_steps`` x batch): :func:`examples_bound`. Anything
else, or a file too large to count quickly, stays unknown (None) rather than guessed.
"""

from __future__ import annotations

import os
import re
from functools import cache

from lora_lint.lora_setup import Location

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

    PathText = str | os.PathLike[str]

MAX_LINE_COUNT_BYTES = 512 * 1024 * 1024
"""Counting lines is I/O bound (about 1 s per GB); larger files stay unknown."""
MAX_JSON_BYTES = 32 * 1024 * 1024
"""A JSON list must be parsed whole to be counted; bound the memory that takes."""
MAX_CSV_BYTES = 64 * 1024 * 1024


def resolve(path: str, config_dir: PathText) -> str | None:
    """The local file ``path`` names: relative to the config's folder first, then the working directory.

    The result is spelled as ``str(Path(config_dir) / path)`` would spell it (see :func:`pathlib_spelling`).
    """
    if not path or "://" in path:
        return None
    candidate = os.path.expanduser(path)
    places = (candidate,) if candidate.startswith("/") else (os.path.join(config_dir, candidate), candidate)
    for place in places:
        place = pathlib_spelling(place)
        if os.path.isfile(place):
            return place
    return None


def pathlib_spelling(path: str) -> str:
    """``str(PurePosixPath(path))`` without importing pathlib (~3 ms of start-up).

    Empty and ``.`` components go, ``..`` stays (it may cross a symlink), a leading ``//``
    is kept as POSIX allows: the spelling reports have always shown.
    """
    root = "//" if path.startswith("//") and not path.startswith("///") else "/" if path.startswith("/") else ""
    return root + "/".join(part for part in path.split("/") if part not in ("", ".")) or "."


def count_examples(path: PathText) -> int | None:
    """Number of examples in a local data file, or None when it cannot be known cheaply."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        size = os.stat(path).st_size
        if suffix in (".jsonl", ".txt"):
            return _count_lines(path) if size <= MAX_LINE_COUNT_BYTES else None
        if suffix == ".json":
            return _count_json(path, size)
        if suffix == ".csv":
            return _count_csv(path) if size <= MAX_CSV_BYTES else None
        if suffix == ".parquet":
            return parquet_row_count(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return None


def _count_lines(path: PathText) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _count_json(path: PathText, size: int) -> int | None:
    """A top-level list counts its items; a file of one object per line (saved as .json) counts lines."""
    if size > MAX_JSON_BYTES:
        return None
    import json  # imported here: ~1 ms of start-up, only configs with a local JSON dataset need it

    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines under a .json name, as axolotl and datasets accept
            return sum(1 for line in text.splitlines() if line.strip())
        return None
    return len(data) if isinstance(data, list) else None


def _count_csv(path: PathText) -> int | None:
    import csv  # only configs with a local CSV file pay for it

    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = sum(1 for row in csv.reader(handle) if row)
    except csv.Error:
        return None
    return max(rows - 1, 0)


def parquet_row_count(path: PathText) -> int | None:
    """``num_rows`` of a Parquet file, read from its footer (Thrift compact protocol) without pyarrow.

    The footer ends with the metadata length and ``PAR1``; ``FileMetaData`` field 3 is the row
    count. Fields before it (version, schema) are skipped generically.
    """
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        end = handle.tell()
        if end < 12:
            return None
        handle.seek(end - 8)
        length_bytes, magic = handle.read(4), handle.read(4)
        if magic != b"PAR1":
            return None
        length = int.from_bytes(length_bytes, "little")
        if length > end - 12:
            return None
        handle.seek(end - 8 - length)
        return _ThriftCompact(handle.read(length)).field_i64(3)


class _ThriftCompact:
    """Just enough of the Thrift compact protocol to find one i64 field of the top-level struct."""

    _I64_TYPES = {5, 6}  # i32, i64 (zigzag varints)

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def field_i64(self, wanted: int) -> int | None:
        field_id = 0
        while True:
            header = self._byte()
            if header == 0:  # stop
                return None
            kind, delta = header & 0x0F, header >> 4
            field_id = field_id + delta if delta else self._zigzag(self._varint())
            if field_id == wanted and kind in self._I64_TYPES:
                return self._zigzag(self._varint())
            self._skip(kind)

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("truncated parquet footer")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _varint(self) -> int:
        shift = result = 0
        while True:
            byte = self._byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ValueError("bad varint")

    @staticmethod
    def _zigzag(value: int) -> int:
        return (value >> 1) ^ -(value & 1)

    def _skip(self, kind: int, depth: int = 0) -> None:
        if depth > 32:
            raise ValueError("nesting too deep")
        if kind in (1, 2):  # bool true/false stored in the header
            return
        if kind == 3:  # byte
            self.pos += 1
        elif kind in (4, 5, 6):  # i16, i32, i64
            self._varint()
        elif kind == 7:  # double
            self.pos += 8
        elif kind == 8:  # binary
            length = self._varint()
            self.pos += length
        elif kind in (9, 10):  # list, set
            header = self._byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self._varint()
            for _ in range(size):
                self._skip_element(element, depth)
        elif kind == 11:  # map
            size = self._varint()
            if size:
                types = self._byte()
                for _ in range(size):
                    self._skip_element(types >> 4, depth)
                    self._skip_element(types & 0x0F, depth)
        elif kind == 12:  # struct
            self._skip_struct(depth + 1)
        else:
            raise ValueError(f"unknown thrift type {kind}")
        if self.pos > len(self.data):
            raise ValueError("truncated parquet footer")

    def _skip_element(self, kind: int, depth: int) -> None:
        if kind in (1, 2):  # a bool inside a collection takes one byte
            self.pos += 1
        else:
            self._skip(kind, depth + 1)

    def _skip_struct(self, depth: int) -> None:
        while True:
            header = self._byte()
            if header == 0:
                return
            if not header >> 4:
                self._varint()
            self._skip(header & 0x0F, depth)


def dataset_record(
    source: Any, location: Location | None, config_dir: PathText, *, data_files: Any = None, **fields: Any
) -> dict[str, Any]:
    """One entry of the normalized ``datasets`` list: what the file says, where, and its size when known.

    ``source`` is the hub id or path as written. The files counted are ``data_files`` when given
    (a path or a list of paths), else ``source`` itself. ``files`` lists the local files found;
    ``examples`` is their total size, None when any of them is not local or not countable. A hub
    dataset already in the local Hugging Face cache is counted from the cache's metadata, and
    LLaMA-Factory's ``num_samples`` fixes the count outright. ``examples_max`` is an upper bound
    where only that is known (a split such as ``train[:500]``); ``examples_from`` says where
    either number came from.
    """
    names = data_files if data_files is not None else source
    names = names if isinstance(names, list) else [names]
    local = [resolve(name, config_dir) if isinstance(name, str) else None for name in names]
    counts = [count_examples(path) if path else None for path in local]
    record: dict[str, Any] = {"path": source, **fields}
    if data_files is not None:
        record["data_files"] = data_files
    record["files"] = [str(path) for path in local if path]
    examples = None if not counts or None in counts else sum(c for c in counts if c is not None)
    origin = "local files" if examples is not None else None
    split = fields.get("split")
    split_name, split_stop = _split_slice(split)
    hub_id = fields.get("hf_hub_url") or source
    if examples is None and not record["files"] and _looks_like_hub_id(hub_id, data_files):
        subset = fields.get("name") or fields.get("subset")
        cached = cached_dataset_rows(hub_id, split_name or "train", subset)
        cached = cached or hub_cached_parquet_rows(hub_id, split_name or "train", subset)
        if cached is not None:
            examples, origin = cached
    maximum = None
    if split_stop is not None:
        if examples is not None:
            examples = min(examples, split_stop)
        else:
            maximum, origin = split_stop, f"split {split}"
    num_samples = fields.get("num_samples")
    if _positive_int(num_samples):  # LLaMA-Factory resamples the dataset to exactly this many rows
        examples, maximum, origin = num_samples, None, "num_samples in dataset_info.json"
    record["examples"] = examples
    record["examples_max"] = examples if examples is not None else maximum
    record["examples_from"] = origin
    if location is not None:
        record.update(line=location.line, column=location.column, key=location.key)
    return record


def total_examples(records: list[dict[str, Any]], max_samples: Any = None) -> int | None:
    """Training examples over all datasets, each capped at ``max_samples``; None if any size is unknown."""
    if not records or any(not isinstance(r.get("examples"), int) for r in records):
        return None
    cap = max_samples if _positive_int(max_samples) else None
    return sum(min(r["examples"], cap) if cap else r["examples"] for r in records)


def examples_bound(
    records: Any, *, max_samples: Any = None, max_steps: Any = None, micro_batch: Any = None,
    accumulation: Any = None, packed: bool = False,
) -> tuple[int, str] | None:
    """The fewest training examples a run can reach, as an upper bound with its reason, or None.

    Two limits apply, and the smaller wins. Per dataset: its exact size, or a bound (``max_samples``,
    which caps every dataset; a sliced split), summed over datasets when every one has either. Per
    run: ``max_steps x micro batch x gradient accumulation`` examples at most are drawn per device,
    however large the data (not with sample packing, where one row holds many examples). No config
    format states the number of devices (it is a launcher flag), so the bound is for one device, and
    its reason says so.
    """
    limits: list[tuple[int, str]] = []
    if isinstance(records, list) and records:
        cap = max_samples if _positive_int(max_samples) else None
        bounds, reasons = [], set()
        for record in records:
            bound = record.get("examples_max") if isinstance(record, dict) else None
            if cap is not None and (bound is None or cap < bound):
                bound = cap
                reasons.add(f"max_samples {cap}")
            elif bound is not None and record.get("examples_from"):
                reasons.add(record["examples_from"])
            if not _positive_int(bound) and bound != 0:
                bounds = []
                break
            bounds.append(bound)
        if bounds:
            limits.append((sum(bounds), ", ".join(sorted(reasons)) or "dataset sizes"))
    if _positive_int(max_steps) and _positive_int(micro_batch) and not packed:
        steps = accumulation if _positive_int(accumulation) else 1
        reason = f"max_steps {max_steps} x micro batch {micro_batch} x gradient accumulation {steps} on one device"
        limits.append((max_steps * micro_batch * steps, reason))
    return min(limits, key=lambda limit: limit[0]) if limits else None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_SPLIT_SLICE = r"^\s*([\w.-]+)\s*\[\s*0?\s*:\s*(\d+)\s*\]\s*$"  # compiled by `re` on first use
"""``train[:500]`` / ``train[0:500]``: the datasets split syntax that keeps the first rows."""


def _split_slice(split: Any) -> tuple[str | None, int | None]:
    """(split name, rows kept) of a split string; a percentage or other slice keeps only the name."""
    if not isinstance(split, str):
        return None, None
    match = re.match(_SPLIT_SLICE, split)
    if match:
        return match.group(1), int(match.group(2))
    return split.split("[", 1)[0].strip() or None, None


def _looks_like_hub_id(name: Any, data_files: Any) -> bool:
    """``org/name`` or ``name`` with no files named: what ``load_dataset`` fetches from the hub."""
    if not isinstance(name, str) or data_files not in (None, [None]):
        return False
    return bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name)) and not name.endswith(DATA_SUFFIXES)


DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt", ".arrow")


def datasets_cache_dir() -> str:
    """Where the ``datasets`` library keeps prepared datasets, found as it finds it."""
    environ = os.environ
    return _datasets_cache_dir(environ.get("HF_DATASETS_CACHE"), environ.get("HF_HOME"), environ.get("XDG_CACHE_HOME"), environ.get("HOME"))


@cache
def _datasets_cache_dir(explicit: str | None, hf_home: str | None, cache_home: str | None, home: str | None) -> str:
    """Memoized on the variables it reads (``HOME`` for ``~``): asked once per dataset a config names."""
    if explicit:
        return os.path.expanduser(explicit)
    hf_home = hf_home or os.path.join(cache_home or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return os.path.join(os.path.expanduser(hf_home), "datasets")


def cached_dataset_rows(hub_id: str, split: str, subset: str | None = None) -> tuple[int, str] | None:
    """Rows of ``split`` of a hub dataset prepared before by ``datasets``, from its cached ``dataset_info.json``.

    The cache holds ``org___name/<config>/<version>/<hash>/dataset_info.json``, whose ``splits``
    record ``num_examples``; the config is ``subset``, else ``default``, else the only one there.
    When several cached versions disagree, the count is unknown. Nothing is imported or downloaded.
    """
    root = datasets_cache_dir()
    folder = _listed(root, hub_id.replace("/", "___"))
    if folder is None:
        return None
    configs = _subdirs(folder)
    wanted = [c for c in configs if c.lower() == (subset or "default").lower()]
    if not wanted and subset is None and len(configs) == 1:
        wanted = configs
    counts = set()
    for config in wanted:
        for version in _subdirs(os.path.join(folder, config)):
            for digest in _subdirs(os.path.join(folder, config, version)):
                rows = _split_rows(os.path.join(folder, config, version, digest, "dataset_info.json"), split)
                if rows is not None:
                    counts.add(rows)
    if len(counts) != 1:
        return None
    return counts.pop(), f"the local datasets cache ({folder})"


def hub_cached_parquet_rows(hub_id: str, split: str, subset: str | None = None) -> tuple[int, str] | None:
    """Rows of ``split`` from the Parquet files of a dataset repo in the local hub cache, read from their footers.

    ``load_dataset`` downloads a Parquet-backed repo to ``datasets--org--name/snapshots/<revision>/``
    (the one ``refs/main`` names). The split's files are those named ``<split>-*.parquet`` or found
    under a ``<split>/`` folder (inside ``<subset>/`` when a subset is named); sharded names
    (``-00000-of-00004``) must all be present. Anything missing or unreadable leaves the count unknown.
    """
    # imported here: only hub datasets missing from the datasets cache look in the hub cache
    from lora_lint.arch.resolve import hub_cache_location

    repo = _listed(hub_cache_location(), "datasets--" + hub_id.replace("/", "--"))
    if repo is None:
        return None
    try:
        with open(os.path.join(repo, "refs", "main"), encoding="utf-8") as handle:
            snapshot = os.path.join(repo, "snapshots", handle.read().strip())
    except OSError:
        return None
    files = []
    for folder, _, names in os.walk(snapshot):
        parts = os.path.relpath(folder, snapshot).split(os.sep)
        if subset and parts[0] != subset:
            continue
        files += [os.path.join(folder, n) for n in names if n.endswith(".parquet") and (split in parts or n.startswith(split + "-"))]
    tops = {os.path.relpath(os.path.dirname(f), snapshot).split(os.sep)[0] for f in files}
    sharded = [m.group(1) for f in files if (m := re.search(r"-of-(\d+)\.parquet$", f))]
    if not files or len(tops) > 1 or (sharded and (len(set(sharded)) > 1 or int(sharded[0]) != len(files))):
        return None  # nothing, several subsets with none named, or a shard missing
    counts = [parquet_row_count(f) for f in files]
    if None in counts:
        return None
    return sum(c for c in counts if c is not None), f"Parquet files in the local hub cache ({repo})"


def _listed(root: str, name: str) -> str | None:
    """``root/name``, matched without regard to case, or None."""
    entries = _entries_by_lower_name(root)
    if entries is None:
        return None
    exact = os.path.join(root, name)
    if name in entries.get(name.lower(), ()) and os.path.isdir(exact):
        return exact
    found = next(iter(entries.get(name.lower(), ())), None)
    return os.path.join(root, found) if found and os.path.isdir(os.path.join(root, found)) else None


_LISTINGS: dict[str, tuple[int, dict[str, list[str]]]] = {}
"""Folder -> (its mtime, its entries by lower-cased name): a cache folder is listed once per process while
unchanged (adding or removing an entry changes the folder's mtime), however many datasets a folder of configs names."""


def _entries_by_lower_name(root: str) -> dict[str, list[str]] | None:
    try:
        stamp = os.stat(root).st_mtime_ns
    except OSError:
        return None
    known = _LISTINGS.get(root)
    if known is not None and known[0] == stamp:
        return known[1]
    try:
        names = os.listdir(root)
    except OSError:
        return None
    entries: dict[str, list[str]] = {}
    for entry in names:
        entries.setdefault(entry.lower(), []).append(entry)
    _LISTINGS[root] = (stamp, entries)
    return entries


def _subdirs(folder: str) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    except OSError:
        return []


MAX_DATASET_INFO_BYTES = 16 * 1024 * 1024


def _split_rows(info_path: str, split: str) -> int | None:
    import json  # imported here: only hub datasets found in the local cache need it

    try:
        if os.stat(info_path).st_size > MAX_DATASET_INFO_BYTES:
            return None
        with open(info_path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return None
    splits = info.get("splits") if isinstance(info, dict) else None
    entry = splits.get(split) if isinstance(splits, dict) else None
    rows = entry.get("num_examples") if isinstance(entry, dict) else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None
