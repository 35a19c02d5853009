"""Align recordings in forked worker processes, one group of (subset, split) parts each, with no pickle.

While workers align, the parent imports what writing the dataset needs (``datasets`` alone
takes about as long to import as the whole corpus takes to align). Each worker writes its
windows to its own spool files (spools are per subset and split, and a part never spans
two workers) and its results to its own report log (:mod:`report_log`), which the parent reads
back once the worker is done. A worker
that fails or hangs is killed and its recordings are aligned again in the parent, so a worker
problem can slow a build down but never change what it writes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from piano_metronome.inputs.manifest import ManifestRow
from piano_metronome.processing.recording import RecordingResult


@dataclass(frozen=True)
class Worker:
    """A forked child aligning ``rows``; it leaves its reports in ``report_path``.

    It writes one byte to ``progress_fd`` per recording done, so the parent can draw progress.
    """

    pid: int
    rows: list[ManifestRow]
    report_path: Path
    progress_fd: int


def can_fork() -> bool:
    """Workers need ``os.fork`` (POSIX); elsewhere everything is aligned in one process."""
    return hasattr(os, "fork")


def partition(rows: list[ManifestRow], jobs: int) -> list[list[ManifestRow]]:
    """Split rows into at most ``jobs`` groups of whole (subset, split) parts, balanced by bytes to parse.

    A spool file holds one subset and split, so a part never spans two workers; parts finer than
    whole subsets let two workers share the corpus almost evenly (d1 against d2 alone is 41 : 59).
    Order inside each group is kept (spools must be written in recording order).
    """
    parts: dict[tuple[str, str], list[ManifestRow]] = {}
    for row in rows:
        parts.setdefault((row.subset, row.split), []).append(row)
    groups: list[list[ManifestRow]] = [[] for _ in range(max(1, jobs))]
    loads = [0] * len(groups)
    for key in sorted(parts, key=lambda k: (-sum(r.size for r in parts[k]), k)):
        lightest = loads.index(min(loads))
        groups[lightest].extend(parts[key])
        loads[lightest] += sum(r.size for r in parts[key])
    order = {row.recording_id: i for i, row in enumerate(rows)}
    return [sorted(g, key=lambda r: order[r.recording_id]) for g in groups if g]


#: What a worker runs: align ``rows``, tell the callback of each result, write every result to the log at the path.
AlignGroup = Callable[[list[ManifestRow], Callable[[RecordingResult], None], Path], None]


def start(rows: list[ManifestRow], run: AlignGroup, report_path: Path) -> Worker:
    """Fork a child that runs ``run(rows, progress, report_path)``, then exits."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the caller's code
        code = 1
        try:
            os.close(read_fd)
            run(rows, lambda _result: _tick(write_fd), report_path)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Worker(pid, rows, report_path, read_fd)


def _tick(fd: int) -> None:
    """One byte to the parent: one more recording done."""
    os.write(fd, b".")


def _progress(worker: Worker) -> int:
    """Recordings the worker finished since the last call."""
    try:
        return len(os.read(worker.progress_fd, 65536))
    except BlockingIOError:
        return 0


def collect(worker: Worker, timeout_s: float,
            on_progress: Callable[[int], None] | None = None) -> Path | None:
    """The worker's report log, or None if it failed or outlived ``timeout_s`` (it is then killed)."""
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if on_progress:
                on_progress(_progress(worker))
            pid, status = os.waitpid(worker.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(worker.pid, signal.SIGKILL)
                os.waitpid(worker.pid, 0)
                return None
            time.sleep(0.005)
        if on_progress:
            on_progress(_progress(worker))  # what it wrote between the last read and its exit
    finally:
        os.close(worker.progress_fd)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and worker.report_path.is_file()):
        return None
    return worker.report_path
