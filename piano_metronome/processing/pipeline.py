"""One manifest row → one aligned recording (or a rejection with its reason), cached per process.

This is where a bad recording is contained: every failure becomes a ``rejected`` report that
names the file and the reason, and the build goes on with the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from piano_metronome.inputs.manifest import ManifestRow
from piano_metronome.inputs.midi import MAX_FILE_BYTES, Performance, RecordingError, parse_midi_bytes
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
    #: What is unusual about the file itself (no tempo, tempo or meter changes, excluded notes):
    #: one line each, printed by the build beside the file name; also in ``report.warnings``.
    input_warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the recording made it into the dataset (``aligned`` may be dropped to save memory)."""
        return self.report.status == "ok"


_CACHE: dict[tuple, RecordingResult] = {}


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
    if path is None:  # the reason names no absolute path: it is stored, and must not depend on the machine
        where = "the raw folder" + (f" or {len(sources) - 1} other source folder(s)" if len(sources) > 1 else "")
        return rejected(row, f"{row.subset}/{row.file_name}", f"file missing: {row.subset}/{row.file_name} is "
                        f"not in {where}; run `piano-metronome fetch`")
    key = (str(path), row, options)
    if key in _CACHE:
        return _CACHE[key]
    result = _process_file(row, path, options)
    _CACHE[key] = result
    return result


def _process_file(row: ManifestRow, path: Path, options: AlignOptions) -> RecordingResult:
    """The uncached work of :func:`process_row` for a file that exists.

    The size is checked before reading, so a huge or wrong file costs no memory; anything
    unexpected while aligning becomes a rejection too, so one file never stops a build.
    """
    try:
        size = path.stat().st_size
        if size != row.size:
            return rejected(row, str(path), f"size {size:,} bytes differs from the manifest's {row.size:,} "
                            "(file changed since the manifest was made)")
        if size > MAX_FILE_BYTES:
            return rejected(row, str(path), f"file too large ({size:,} bytes > {MAX_FILE_BYTES:,})")
        data = path.read_bytes()
    except OSError as exc:
        return rejected(row, str(path), f"cannot read file ({exc.strerror or exc})")
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.sha256:
        return rejected(row, str(path), f"sha256 {digest[:12]}… differs from the manifest's {row.sha256[:12]}… "
                        "(file changed since the manifest was made)")
    try:
        performance = parse_midi_bytes(data, str(path))
        aligned = align(performance, info_of(row), options)
    except RecordingError as exc:
        return rejected(row, str(path), exc.reason)
    except Exception as exc:  # a bug, but one recording must not stop the build: reject it, loudly
        first = (str(exc).splitlines() or [""])[0][:160]
        return rejected(row, str(path), f"internal error while aligning ({type(exc).__name__}: {first}); "
                        "please report it with this file")
    notes = input_warnings(performance, aligned.report)
    aligned.report.warnings.extend(w for w in notes if not w.startswith(ALIGN_REPORTS))
    return RecordingResult(row, aligned, aligned.report, notes)


#: Oddities the alignment already writes into ``report.warnings`` in its own words (not repeated there).
ALIGN_REPORTS = ("no tempo event", "meter change")
EXCLUDED_WORDS = {"drum_channel": "on a drum channel (MIDI channel 10)",
                  "outside_piano_range": "outside the 88 piano keys (MIDI 21–108)"}


def input_warnings(performance: Performance, report: AlignmentReport) -> tuple[str, ...]:
    """One line per oddity of the file itself: what it was, and how the build handled it.

    These are worth a line on the console (unlike label disagreements, which are about the
    playing and live in the recordings table): they change what the dataset holds.
    """
    notes = []
    tempo = performance.tempo_map
    if not tempo.explicit:
        notes.append(f"no tempo event: the MIDI default of 120 qpm is not trusted; grid from {report.grid_source}")
    elif len(tempo.qpm) > 1:
        notes.append(f"{len(tempo.qpm) - 1} tempo change(s), {tempo.qpm.min():.2f}–{tempo.qpm.max():.2f} qpm; "
                     f"grid from {report.grid_source}")
    if performance.meter_changes:
        notes.append(f"meter change(s): {performance.meter_changes} ignored, bars of {performance.beats_per_bar} "
                     "beats assumed throughout")
    for reason, count in sorted(performance.excluded.items()):
        notes.append(f"{count} note(s) {EXCLUDED_WORDS.get(reason, reason)} excluded (counted as dropped)")
    return tuple(notes)


def clear_cache() -> None:
    """Forget cached results (tests that edit files in place need this)."""
    _CACHE.clear()
