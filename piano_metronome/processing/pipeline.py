"""One manifest row → one aligned recording (or a rejection with its reason), cached per process.

This is where a bad recording is contained: every failure becomes a ``rejected`` report that
names the file and the reason, and the build goes on with the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from piano_metronome.inputs.manifest import ManifestRow
from piano_metronome.inputs.midi import RecordingError, parse_midi_bytes
from piano_metronome.processing.align import (
    AlignedPerformance,
    AlignmentReport,
    AlignOptions,
    RecordingInfo,
    align,
)


@dataclass(frozen=True)
class RecordingResult:
    """The outcome for one manifest row: an aligned performance, or None and a rejection report."""

    row: ManifestRow
    aligned: AlignedPerformance | None
    report: AlignmentReport

    @property
    def ok(self) -> bool:
        """Whether the recording made it into the dataset."""
        return self.aligned is not None


_CACHE: dict[tuple, RecordingResult] = {}


def info_of(row: ManifestRow) -> RecordingInfo:
    """The alignment's view of a manifest row (a beat sidecar ``<stem>.beats.json`` if present)."""
    return RecordingInfo(
        recording_id=row.recording_id, subset=row.subset, split=row.split, steps_per_beat=row.steps_per_beat,
        labelled_bpm=row.labelled_bpm, labelled_key=row.labelled_key,
    )


def find_file(row: ManifestRow, sources: list[Path]) -> Path | None:
    """The first source folder holding ``<subset>/<file_name>``."""
    for source in sources:
        path = row.path(source)
        if path.is_file():
            return path
    return None


def rejected(row: ManifestRow, path: str, reason: str) -> RecordingResult:
    """A rejection report: nothing from this recording is placed, and the reason says why."""
    report = AlignmentReport(recording_id=row.recording_id, subset=row.subset, split=row.split, path=path,
                             status="rejected", reason=reason, steps_per_beat=row.steps_per_beat)
    return RecordingResult(row, None, report)


def process_row(row: ManifestRow, sources: list[Path], options: AlignOptions) -> RecordingResult:
    """Read, verify, parse and align one recording; never raises for bad input."""
    try:
        path = find_file(row, sources)
    except RecordingError as exc:
        return rejected(row, exc.path, exc.reason)
    if path is None:
        where = ", ".join(str(s) for s in sources)
        return rejected(row, f"{row.subset}/{row.file_name}", f"file missing (looked in {where}; run "
                        "`piano-metronome fetch`)")
    key = (str(path), row, options)
    if key in _CACHE:
        return _CACHE[key]
    result = _process_file(row, path, options)
    _CACHE[key] = result
    return result


def _process_file(row: ManifestRow, path: Path, options: AlignOptions) -> RecordingResult:
    """The uncached work of :func:`process_row` for a file that exists."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.sha256:
        return rejected(row, str(path), f"sha256 {digest[:12]}… differs from the manifest's {row.sha256[:12]}… "
                        "(file changed since the manifest was made)")
    try:
        performance = parse_midi_bytes(data, str(path))
        aligned = align(performance, info_of(row), options)
    except RecordingError as exc:
        return rejected(row, str(path), exc.reason)
    return RecordingResult(row, aligned, aligned.report)


def clear_cache() -> None:
    """Forget cached results (tests that edit files in place need this)."""
    _CACHE.clear()
