"""Align recordings in forked worker processes, one group of subsets each, with no pickle.

While workers align, the parent imports what writing the dataset needs (``datasets`` alone
takes about as long to import as the whole corpus takes to align). Each worker writes its
windows to its own spool files (spools are per subset and split, and a subset never spans
two workers) and its reports as JSON; the parent reads them back. A worker
that fails or hangs is killed and its recordings are aligned again in the parent, so a worker
problem can slow a build down but never change what it writes.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from piano_metronome.inputs.manifest import ManifestRow
from piano_metronome.processing.align import AlignmentReport
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
    """Split rows into at most ``jobs`` groups of whole subsets, balanced by bytes to parse.

    Order inside each group is kept (spools must be written in recording order).
    """
    by_subset: dict[str, list[ManifestRow]] = {}
    for row in rows:
        by_subset.setdefault(row.subset, []).append(row)
    groups: list[list[ManifestRow]] = [[] for _ in range(max(1, jobs))]
    loads = [0] * len(groups)
    for subset in sorted(by_subset, key=lambda s: -sum(r.size for r in by_subset[s])):
        lightest = loads.index(min(loads))
        groups[lightest].extend(by_subset[subset])
        loads[lightest] += sum(r.size for r in by_subset[subset])
    return [g for g in groups if g]


def result_to_json(result: RecordingResult) -> dict[str, Any]:
    """A result as plain JSON values (the aligned performance is not sent: it lives in the spools)."""
    return {"row": asdict(result.row), "report": asdict(result.report),
            "input_warnings": list(result.input_warnings), "input_warning_kinds": list(result.input_warning_kinds)}


def result_from_json(data: dict[str, Any]) -> RecordingResult:
    """Inverse of :func:`result_to_json`."""
    return RecordingResult(ManifestRow(**data["row"]), None, AlignmentReport(**data["report"]),
                           tuple(data["input_warnings"]), tuple(data["input_warning_kinds"]))


def start(rows: list[ManifestRow], run: Callable[..., list[RecordingResult]], report_path: Path) -> Worker:
    """Fork a child that runs ``run(rows, progress)`` and writes the results as JSON, then exits."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the caller's code
        code = 1
        try:
            os.close(read_fd)
            results = run(rows, lambda _result: os.write(write_fd, b"."))
            report_path.write_text(json.dumps([result_to_json(r) for r in results]), encoding="utf-8")
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Worker(pid, rows, report_path, read_fd)


def _progress(worker: Worker) -> int:
    """Recordings the worker finished since the last call."""
    try:
        return len(os.read(worker.progress_fd, 65536))
    except BlockingIOError:
        return 0


def collect(worker: Worker, timeout_s: float,
            on_progress: Callable[[int], None] | None = None) -> list[RecordingResult] | None:
    """The worker's results, or None if it failed or outlived ``timeout_s`` (it is then killed)."""
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
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        return None
    try:
        return [result_from_json(d) for d in json.loads(worker.report_path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return None
