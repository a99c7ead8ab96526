"""Lint a long list of files on several cores: fork after start-up, then take chunks of files in turn.

Start-up (Python, PyYAML, the rule pack) is paid once, before the fork. The files are cut
into chunks of consecutive files (configs of one folder, often of one base model, stay
together and share a worker's memoized architectures), and the chunks' numbers are written
into a pipe that every process, this one included, reads four bytes at a time: each number
goes to exactly one reader, and a process that finishes early takes the next chunk, so no
process waits on another's share of slow files (how long a config takes depends more on
whether its base model was seen before than on its size). Workers send their results back
through a pipe, pickled, and the results are put back in the file list's order.

What comes back is what reports read: path, format, findings, error, skip reason, and
the public facts when they are asked for (``report_facts``). A worker that fails for
any reason is not trusted: the chunks it took are linted again in the parent, which then
raises whatever the worker met. Platforms without ``fork`` lint in one process.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lora_lint.engine import FileResult

    Chunk = list[tuple[str, bool]]  # (path, named on the command line) of consecutive files
    LintShare = Callable[[Chunk], list[FileResult]]

MIN_FILES_PER_WORKER = 16
"""Fewer files than this per extra process do not repay a fork and the pickling (~2 ms each)."""
CHUNKS_PER_WORKER = 16
"""Enough chunks that the last one to finish is short; few enough that a base model seldom spans two processes."""
_TOKEN = 4  # bytes per chunk number in the pipe
MAX_WORKERS = 64
"""All chunk numbers are written before any worker reads them: 64 x 16 x 4 bytes fill at most one 4 KiB page of pipe."""


def worker_count(files: int, requested: int | None = None) -> int:
    """How many processes to lint ``files`` files with: ``requested``, or the usable cores, whichever the files fill."""
    if not hasattr(os, "fork"):
        return 1
    if requested is None:
        requested = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(requested, files // MIN_FILES_PER_WORKER, MAX_WORKERS))


def lint_in_workers(
    candidates: list[tuple[str, bool]],
    workers: int,
    lint_share: LintShare,
    *,
    keep_facts: bool,
) -> list[FileResult]:
    """``lint_share`` over ``candidates``, chunk by chunk, in ``workers`` processes (this one included)."""
    chunks = split_into_chunks(candidates, workers * CHUNKS_PER_WORKER)
    queue, queue_writer = os.pipe()
    os.write(queue_writer, b"".join(index.to_bytes(_TOKEN, "little") for index in range(len(chunks))))
    children = [_fork(chunks, queue, queue_writer, lint_share, keep_facts) for _ in range(workers - 1)]
    os.close(queue_writer)
    done = _take_chunks(chunks, queue, lint_share)
    os.close(queue)
    for pid, reader in children:
        done.update(_collect(pid, reader) or {})
    for index in range(len(chunks)):
        if index not in done:  # taken by a worker that failed
            done[index] = lint_share(chunks[index])
    return [result for index in range(len(chunks)) for result in done[index]]


def split_into_chunks(candidates: list[tuple[str, bool]], count: int) -> list[Chunk]:
    """``candidates`` cut into at most ``count`` runs of consecutive files, as equal in length as they can be."""
    size = max(1, -(-len(candidates) // max(count, 1)))
    return [candidates[start : start + size] for start in range(0, len(candidates), size)] or [[]]


def _take_chunks(chunks: list[Chunk], queue: int, lint_share: LintShare) -> dict[int, list[FileResult]]:
    """Lint the chunks whose numbers this process reads from ``queue``, until it is empty."""
    done = {}
    while True:
        token = os.read(queue, _TOKEN)
        if len(token) < _TOKEN:
            return done
        index = int.from_bytes(token, "little")
        done[index] = lint_share(chunks[index])


def _fork(
    chunks: list[Chunk],
    queue: int,
    queue_writer: int,
    lint_share: LintShare,
    keep_facts: bool,
) -> tuple[int, int]:
    import pickle  # only a run on several cores needs it

    reader, writer = os.pipe()
    pid = os.fork()
    if pid:
        os.close(writer)
        return pid, reader
    status = 1
    try:  # the worker: lint, send, and leave without running the parent's exit handlers
        os.close(reader)
        os.close(queue_writer)  # the queue ends when every copy of its writing end is closed
        done = _take_chunks(chunks, queue, lint_share)
        portable = {index: [_portable(result, keep_facts) for result in results] for index, results in done.items()}
        payload = pickle.dumps(portable, pickle.HIGHEST_PROTOCOL)
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(payload)
        status = 0
    finally:
        os._exit(status)


def _collect(pid: int, reader: int) -> dict[int, list[FileResult]] | None:
    """The worker's results by chunk number, or None when it did not finish cleanly."""
    import pickle

    with os.fdopen(reader, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        return None
    try:
        return {index: [_restored(fields) for fields in results] for index, results in pickle.loads(payload).items()}
    except Exception:  # noqa: BLE001 - a garbled answer is a failed worker: its chunks are linted again
        return None


def _portable(result: FileResult, keep_facts: bool) -> tuple:
    from lora_lint.facts import public_facts

    error = result.error
    return (
        result.path,
        result.format,
        public_facts(result.facts) if keep_facts else {},
        [f.as_dict() for f in result.findings],
        None if error is None else (error.message, error.line, error.column),
        result.skipped,
    )


def _restored(fields: tuple) -> FileResult:
    from lora_lint.document import InputError
    from lora_lint.engine import FileResult, Finding

    path, fmt, facts, findings, error, skipped = fields
    return FileResult(
        path,
        fmt,
        facts,
        [Finding(**finding) for finding in findings],
        None if error is None else InputError(*error),
        skipped,
    )
