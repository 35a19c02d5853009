"""Each recording's result as one JSON line on disk, so no process holds every report at once.

A build of a hundred times the corpus has 36,100 reports of several kB each; kept in lists (in
every worker, then in the parent) they were most of the build's peak memory. Instead, whoever
aligns a recording appends its result to a log (workers and the one-process path alike) and
forgets it; the parent keeps only counts and the few notable results (:class:`RecordingsTally`)
and reads the logs back, one line at a time, to write the recordings table. JSON, not pickle:
a log is plain text a person can read, and floats survive it exactly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from piano_metronome.inputs.manifest import ManifestRow
from piano_metronome.processing.align import AlignmentReport
from piano_metronome.processing.recording import InputWarning, RecordingResult


def result_to_json(result: RecordingResult) -> dict[str, Any]:
    """A result as plain JSON values (the aligned performance is not sent: it lives in the spools)."""
    return {"row": asdict(result.row), "report": asdict(result.report),
            "input_warnings": [list(w) for w in result.input_warnings]}


def result_from_json(data: dict[str, Any]) -> RecordingResult:
    """Inverse of :func:`result_to_json`."""
    return RecordingResult(ManifestRow(**data["row"]), None, AlignmentReport(**data["report"]),
                           tuple(InputWarning(*w) for w in data["input_warnings"]))


class ReportLog:
    """Appends results to a file as JSON lines (a new log replaces an older one at the same path)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("w", encoding="utf-8")

    def write(self, result: RecordingResult) -> None:
        """One line for one result."""
        self.file.write(json.dumps(result_to_json(result), sort_keys=True) + "\n")

    def close(self) -> None:
        """Flush and close (a worker's log must be complete before its parent reads it)."""
        self.file.close()

    def __enter__(self) -> ReportLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def read_log(path: Path) -> Iterator[RecordingResult]:
    """The results of one log, in the order they were written."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            yield result_from_json(json.loads(line))


def by_recording_id(paths: list[Path]) -> Iterator[RecordingResult]:
    """Every result of the logs, ordered by recording id, holding one at a time.

    Only an index (id, log, byte offset) is kept in memory: about 100 bytes a recording.
    """
    index: list[tuple[str, int, int]] = []
    for number, path in enumerate(paths):
        with path.open("rb") as log:
            offset = 0
            for line in log:
                index.append((json.loads(line)["row"]["recording_id"], number, offset))
                offset += len(line)
    index.sort()
    logs = [path.open("rb") for path in paths]
    try:
        for _, number, offset in index:
            logs[number].seek(offset)
            yield result_from_json(json.loads(logs[number].readline()))
    finally:
        for log in logs:
            log.close()


@dataclass
class RecordingsTally:
    """What a build keeps in memory of its recordings: counts, drops and the notable results.

    The full reports stay in the logs (``logs``); rejected results and those with input warnings
    are kept whole, because the build report and the command's summary list each of them.
    """

    logs: list[Path] = field(default_factory=list)
    count: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    rejected: list[RecordingResult] = field(default_factory=list)
    warned: list[RecordingResult] = field(default_factory=list)

    def add(self, result: RecordingResult) -> None:
        """Count one result, keeping it (without its notes and bytes) only if it is rejected or warned."""
        self.count += 1
        self.dropped.update(result.report.dropped)
        if result.ok and not result.input_warnings:
            return
        result = replace(result, aligned=None, midi_bytes=None)
        if not result.ok:
            self.rejected.append(result)
        if result.input_warnings:
            self.warned.append(result)

    def in_order(self, order: dict[str, int]) -> None:
        """Put the kept results in manifest order (workers finish in any order)."""
        self.rejected.sort(key=lambda r: order[r.row.recording_id])
        self.warned.sort(key=lambda r: order[r.row.recording_id])
