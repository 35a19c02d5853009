"""One manifest row → one aligned recording, or a rejection with its reason and its kind.

This is where bad input is contained: a missing, changed, unreadable or unusable recording
becomes a ``rejected`` report that names the file, the reason and its
:class:`~piano_metronome.kinds.RejectionKind`, and the build goes on with the others. A bug is
not bad input: any other exception while processing a file (a broken invariant such as the
accounting check, an unexpected error) is raised as :class:`AlignmentBugError` naming the file, and
fails the build unless the caller chooses to skip such files (:func:`broken`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from piano_metronome.inputs.manifest import ManifestRow, not_a_file
from piano_metronome.inputs.midi import MAX_FILE_BYTES, Performance, RecordingError, parse_midi_bytes
from piano_metronome.kinds import DropReason, RejectionKind, WarningKind
from piano_metronome.processing.align import (
    AlignedPerformance,
    AlignmentReport,
    AlignOptions,
    RecordingInfo,
    align,
)


class AlignmentBugError(Exception):
    """A bug met while processing one recording (broken invariant, unexpected exception): not bad input.

    Carries the manifest row and the file, so the build can fail naming it (or, when asked to
    skip such files, record it with :func:`broken`); the original exception is ``__cause__``.
    """

    def __init__(self, row: ManifestRow, path: str, error: BaseException) -> None:
        self.row, self.path, self.error = row, path, error
        super().__init__(f"{path}: {self.summary}; please report it with this file")

    @property
    def summary(self) -> str:
        """``internal error while aligning (Type: first line of the message)``."""
        first = (str(self.error).splitlines() or [""])[0][:160]
        return f"internal error while aligning ({type(self.error).__name__}: {first})"


class InputWarning(NamedTuple):
    """One thing unusual about a file itself, and its :class:`~piano_metronome.kinds.WarningKind` value."""

    kind: str
    text: str


@dataclass(frozen=True)
class RecordingResult:
    """The outcome for one manifest row: an aligned performance, or None and a rejection report."""

    row: ManifestRow
    aligned: AlignedPerformance | None
    report: AlignmentReport
    #: What is unusual about the file itself (no tempo, tempo or meter changes, excluded notes):
    #: one line each, printed by the build beside the file name; also in ``report.warnings``
    #: unless the alignment already words the same kind there.
    input_warnings: tuple[InputWarning, ...] = ()
    #: The file's bytes (sha256 verified against the manifest) of an accepted recording, for its
    #: ``takes`` row, so the file is read once; dropped with ``aligned`` once they are written.
    midi_bytes: bytes | None = None

    @property
    def ok(self) -> bool:
        """Whether the recording made it into the dataset (``aligned`` may be dropped to save memory)."""
        return self.report.status == "ok"


def info_of(row: ManifestRow) -> RecordingInfo:
    """The alignment's view of a manifest row.

    Beat sidecars are not read in dataset builds: the manifest does not checksum them, so a
    build from them could not be verified (``piano-metronome align --beats`` takes one).
    """
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


def rejected(row: ManifestRow, path: str, reason: str, kind: RejectionKind) -> RecordingResult:
    """A rejection report: nothing from this recording is placed; the reason says why, the kind what."""
    report = AlignmentReport(recording_id=row.recording_id, subset=row.subset, split=row.split, path=path,
                             steps_per_beat=row.steps_per_beat)
    report.reject(kind, reason)
    return RecordingResult(row, None, report)


def broken(bug: AlignmentBugError) -> RecordingResult:
    """A file that hit a bug, recorded as a rejection (``internal_error``) for a build told to skip such files."""
    return rejected(bug.row, bug.path, f"{bug.summary}; please report it with this file", RejectionKind.INTERNAL_ERROR)


def process_row(row: ManifestRow, sources: list[Path], options: AlignOptions) -> RecordingResult:
    """Read, verify, parse and align one recording.

    Never raises for bad input (that is a rejection with its kind); raises :class:`AlignmentBugError`
    for a bug, so a broken invariant can never pass for an ordinary rejected row.
    """
    try:
        path = find_file(row, sources)
    except RecordingError as exc:
        return rejected(row, exc.path, exc.reason, RejectionKind.PATH_OUTSIDE_RAW)
    if path is None:
        special = _special_file(row, sources)
        if special is not None:
            return special
        # the reason names no absolute path: it is stored, and must not depend on the machine
        where = "the raw folder" + (f" or {len(sources) - 1} other source folder(s)" if len(sources) > 1 else "")
        return rejected(row, row.relative_name, f"file missing: {row.relative_name} is "
                        f"not in {where}; run `piano-metronome fetch`", RejectionKind.FILE_MISSING)
    data = _verified_bytes(row, path)
    if isinstance(data, RecordingResult):
        return data
    try:
        return _align_bytes(row, path, data, options)
    except Exception as exc:  # not bad input (that was returned above): a bug, raised with the file named
        raise AlignmentBugError(row, str(path), exc) from exc


def _special_file(row: ManifestRow, sources: list[Path]) -> RecordingResult | None:
    """A rejection when something that is not a regular file stands where the recording should be.

    A FIFO would block the read and ``/dev/zero`` never ends, so it is named for what it is (never
    opened), not called missing: fetching would not help.
    """
    for source in sources:
        path = row.path(source)
        what = not_a_file(path) if os.path.lexists(path) else None
        if what is not None:
            return rejected(row, row.relative_name, f"{row.relative_name} is {what}, not a "
                            "recording file; it was not read", RejectionKind.NOT_A_FILE)
    return None


def _verified_bytes(row: ManifestRow, path: Path) -> bytes | RecordingResult:
    """The file's bytes if they are the manifest's, else the rejection saying how they differ.

    The size is checked before reading, so a huge or wrong file costs no memory.
    """
    try:
        size = path.stat().st_size
        if size != row.size:
            return rejected(row, str(path), f"size {size:,} bytes differs from the manifest's {row.size:,} "
                            "(file changed since the manifest was made)", RejectionKind.SIZE_DIFFERS)
        if size > MAX_FILE_BYTES:
            return rejected(row, str(path), f"file too large ({size:,} bytes > {MAX_FILE_BYTES:,})",
                            RejectionKind.FILE_TOO_LARGE)
        data = path.read_bytes()
    except OSError as exc:
        return rejected(row, str(path), f"cannot read file ({exc.strerror or exc})", RejectionKind.FILE_UNREADABLE)
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.sha256:
        return rejected(row, str(path), f"sha256 {digest[:12]}… differs from the manifest's {row.sha256[:12]}… "
                        "(file changed since the manifest was made)", RejectionKind.SHA256_DIFFERS)
    return data


def _align_bytes(row: ManifestRow, path: Path, data: bytes, options: AlignOptions) -> RecordingResult:
    """Parse and align verified bytes; a file that cannot be used is a rejection of its kind."""
    try:
        performance = parse_midi_bytes(data, str(path))
    except RecordingError as exc:
        return rejected(row, str(path), exc.reason, exc.kind or RejectionKind.MIDI_UNUSABLE)
    try:
        aligned = align(performance, info_of(row), options)
    except RecordingError as exc:  # a GridError, with the kind of its reason
        return rejected(row, str(path), exc.reason, exc.kind or RejectionKind.NO_GRID_FITS)
    found = input_findings(performance, aligned.report)
    worded = set(aligned.report.warning_kinds)  # facts the alignment words its own way (taken before adding)
    for kind, text in found:
        if kind.value not in worded:
            aligned.report.warn(kind, text)
    return RecordingResult(row, aligned, aligned.report,
                           tuple(InputWarning(kind.value, text) for kind, text in found), data)


EXCLUDED_WORDS = {DropReason.DRUM_CHANNEL: "on a drum channel (MIDI channel 10)",
                  DropReason.OUTSIDE_PIANO_RANGE: "outside the 88 piano keys (MIDI 21–108)"}


def input_findings(performance: Performance, report: AlignmentReport) -> list[tuple[WarningKind, str]]:
    """One (kind, line) per oddity of the file itself: what it was, and how the build handled it.

    These are worth a line on the console (unlike label disagreements, which are about the
    playing and live in the recordings table): they change what the dataset holds.
    """
    found = []
    tempo = performance.tempo_map
    if not tempo.explicit:
        found.append((WarningKind.NO_TEMPO_EVENT, "no tempo event: the MIDI default of 120 qpm is not trusted; "
                      f"grid from {report.grid_source}"))
    elif len(tempo.qpm) > 1:
        found.append((WarningKind.TEMPO_CHANGES, f"{len(tempo.qpm) - 1} tempo change(s), {tempo.qpm.min():.2f}–"
                      f"{tempo.qpm.max():.2f} qpm; grid from {report.grid_source}"))
    if performance.meter_changes:
        found.append((WarningKind.METER_CHANGES_IGNORED, f"meter change(s): {performance.meter_changes} ignored, "
                      f"bars of {performance.beats_per_bar} beats assumed throughout"))
    found += [(WarningKind(kind), text) for kind, text in performance.findings]  # never released, malformed metas
    for reason, count in sorted(performance.excluded.items()):
        found.append((WarningKind.NOTES_EXCLUDED,
                      f"{count} note(s) {EXCLUDED_WORDS[DropReason(reason)]} excluded (counted as dropped)"))
    return found
