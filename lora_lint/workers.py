"""Lint a long list of files on several cores: fork after start-up, one contiguous share per process.

Start-up (Python, PyYAML, the rule pack) is paid once, before the fork; each forked
worker then lints its share with everything already loaded, and sends its results back
through a pipe, pickled. Shares are contiguous runs of the file list, of about equal
bytes, so configs of one folder (often of one base model) share a worker and its
memoized architectures, and the results come back in the file list's order.

What comes back is what reports read: path, format, findings, error, skip reason, and
the public facts when they are asked for (``report_facts``). A worker that fails for
any reason is not trusted: its share is linted again in the parent, which then raises
whatever the worker met. Platforms without ``fork`` lint in one process.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lora_lint.engine import FileResult

MIN_FILES_PER_WORKER = 16
"""Fewer files than this per extra process do not repay a fork and the pickling (~2 ms each)."""


def worker_count(files: int, requested: int | None = None) -> int:
    """How many processes to lint ``files`` files with: ``requested``, or the usable cores, whichever the files fill."""
    if not hasattr(os, "fork"):
        return 1
    if requested is None:
        requested = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(requested, files // MIN_FILES_PER_WORKER))


def lint_in_workers(
    candidates: list[tuple[str, bool]],
    workers: int,
    lint_share: Callable[[list[tuple[str, bool]]], list[FileResult]],
    *,
    keep_facts: bool,
) -> list[FileResult]:
    """``lint_share`` over ``candidates`` split into ``workers`` shares, the first in this process."""
    shares = _split(candidates, workers)
    children = [_fork(share, lint_share, keep_facts) for share in shares[1:]]
    results = lint_share(shares[0])
    for share, (pid, reader) in zip(shares[1:], children):
        returned = _collect(pid, reader)
        results.extend(returned if returned is not None else lint_share(share))
    return results


def _split(candidates: list[tuple[str, bool]], workers: int) -> list[list[tuple[str, bool]]]:
    """Contiguous shares of about equal size on disk (one file's size at most apart)."""
    sizes = []
    for path, _ in candidates:
        try:
            sizes.append(os.path.getsize(path))
        except OSError:
            sizes.append(0)
    total = sum(sizes) or 1
    shares: list[list[tuple[str, bool]]] = [[] for _ in range(workers)]
    running = 0
    for candidate, size in zip(candidates, sizes):
        shares[min(workers - 1, running * workers // total)].append(candidate)
        running += size
    return [share for share in shares if share] or [[]]


def _fork(
    share: list[tuple[str, bool]], lint_share: Callable[[list[tuple[str, bool]]], list[FileResult]], keep_facts: bool
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
        payload = pickle.dumps([_portable(result, keep_facts) for result in lint_share(share)], pickle.HIGHEST_PROTOCOL)
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(payload)
        status = 0
    finally:
        os._exit(status)


def _collect(pid: int, reader: int) -> list[FileResult] | None:
    """The worker's results, or None when it did not finish cleanly."""
    import pickle

    with os.fdopen(reader, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        return None
    try:
        return [_restored(fields) for fields in pickle.loads(payload)]
    except Exception:  # noqa: BLE001 - a garbled answer is a failed worker: its share is linted again
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
