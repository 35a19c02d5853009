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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # kept light: commands read DEFAULT_JOBS while building their --help
    from piano_metronome.inputs.manifest import ManifestRow

#: What a worker runs: ``run(items, done, report_path)`` works through its items, calls ``done(...)`` after
#: each (any arguments: the parent only counts the calls), and leaves its results at ``report_path``.
WorkerRun = Callable[[list[Any], Callable[..., None], Path], None]

#: Worker processes by default (the build's aligners, the certificates' tracker): work that is CPU-bound,
#: so two where there are two cores or more, one on a one-core machine.
DEFAULT_JOBS = min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class Worker:
    """A forked child working through ``items`` (recordings to align, takes to certify); it leaves its
    results in ``report_path`` and writes one byte to ``progress_fd`` per item done, so the parent
    can draw progress."""

    pid: int
    items: list[Any]
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


def start(items: list[Any], run: WorkerRun, report_path: Path) -> Worker:
    """Fork a child that runs ``run(items, done, report_path)``, then exits (0 only if ``run`` returned)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the caller's code
        code = 1
        try:
            os.close(read_fd)
            run(items, lambda *_: _tick(write_fd), report_path)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Worker(pid, items, report_path, read_fd)


def _tick(fd: int) -> None:
    """One byte to the parent: one more item done."""
    os.write(fd, b".")


def _progress(worker: Worker) -> int:
    """Items the worker finished since the last call."""
    try:
        return len(os.read(worker.progress_fd, 65536))
    except BlockingIOError:
        return 0


def collect(workers: list[Worker], stall_s: float,
            on_progress: Callable[[int], None] | None = None) -> list[Path | None]:
    """Each worker's report path, or None for one that failed or finished no item for ``stall_s``
    seconds (it is then killed): a hang, told apart from a long job however long the job is.
    Every worker's progress is passed on as it comes."""
    done: dict[int, Path | None] = {}
    last = dict.fromkeys(range(len(workers)), time.monotonic())
    try:
        while len(done) < len(workers):
            for number, worker in enumerate(workers):
                if number not in done:
                    _poll(worker, number, stall_s, last, done, on_progress)
            if len(done) < len(workers):
                time.sleep(0.005)
    finally:
        for worker in workers:
            os.close(worker.progress_fd)
    return [done[number] for number in range(len(workers))]


def _poll(worker: Worker, number: int, stall_s: float, last: dict[int, float], done: dict[int, Path | None],
          on_progress: Callable[[int], None] | None) -> None:
    """One look at a running worker: its progress, its exit (with its results) or its stall (killed)."""
    ticks = _progress(worker)
    if ticks:
        last[number] = time.monotonic()
    pid, status = os.waitpid(worker.pid, os.WNOHANG)
    if pid:
        ticks += _progress(worker)  # what it wrote between the last read and its exit
        ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and worker.report_path.is_file()
        done[number] = worker.report_path if ok else None
    elif time.monotonic() - last[number] > stall_s:
        os.kill(worker.pid, signal.SIGKILL)
        os.waitpid(worker.pid, 0)
        done[number] = None
    if on_progress and ticks:
        on_progress(ticks)
