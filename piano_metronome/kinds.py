"""Every kind of warning, grid conflict, rejection and dropped note, declared once.

A finding about a recording is stored as its human text (free to be reworded) *and* its kind,
one of the values below (stable: the recordings table, the build report, the card's counts and
``rebuild``'s checks are keyed by it). Code that counts or branches on a finding reads its kind,
never its wording, so rewording a message cannot move a count.

This module imports nothing from the package, so every stage (inputs included) can use it.
"""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """A kind is stored as its plain string value; ``str()`` gives that value on every Python."""

    def __str__(self) -> str:
        return str(self.value)


class WarningKind(Kind):
    """Something worth knowing about an accepted recording (column ``warning_kinds``).

    Declared in the order the card lists them.
    """

    KEY_LABEL_DISAGREES = "key_label_disagrees"
    BPM_LABEL_DISAGREES = "bpm_label_disagrees"
    BAR_LINE_MOVED = "bar_line_moved"
    NOTES_DRIFT_FROM_GRID = "notes_drift_from_grid"
    METER_CHANGES_IGNORED = "meter_changes_ignored"
    NO_TEMPO_EVENT = "no_tempo_event"
    KEY_LABEL_UNREADABLE = "key_label_unreadable"
    TEMPO_CHANGES = "tempo_changes"
    NOTES_EXCLUDED = "notes_excluded"
    NOTES_NEVER_RELEASED = "notes_never_released"
    MALFORMED_META_IGNORED = "malformed_meta_ignored"
    BPM_LABEL_ABSURD = "bpm_label_absurd"

    @property
    def label(self) -> str:
        """How the card's "Warnings by kind" table names this kind."""
        return WARNING_LABELS[self]


#: The card's name for each warning kind.
WARNING_LABELS: dict[WarningKind, str] = {
    WarningKind.KEY_LABEL_DISAGREES: "key label disagrees with the notes",
    WarningKind.BPM_LABEL_DISAGREES: "BPM label disagrees with the notes",
    WarningKind.BAR_LINE_MOVED: "bar line moved by sub-beats",
    WarningKind.NOTES_DRIFT_FROM_GRID: "notes drift from the click (fitted period used)",
    WarningKind.METER_CHANGES_IGNORED: "meter changes ignored",
    WarningKind.NO_TEMPO_EVENT: "no tempo event (120 qpm assumed)",
    WarningKind.KEY_LABEL_UNREADABLE: "key label unreadable",
    WarningKind.TEMPO_CHANGES: "tempo changes in the file",
    WarningKind.NOTES_EXCLUDED: "notes excluded (drum channel, outside the 88 keys)",
    WarningKind.NOTES_NEVER_RELEASED: "notes never released (closed at the next same-key note-on or the track's end)",
    WarningKind.MALFORMED_META_IGNORED: "malformed meta events ignored (tempo, meter)",
    WarningKind.BPM_LABEL_ABSURD: "BPM label outside what a click plays (ignored)",
}


class ConflictKind(Kind):
    """The grid source whose BPM the notes contradicted (column ``conflict_kinds``).

    The values are the grid sources' own names, so ``ConflictKind(candidate.grid.source)``
    classifies a conflict and an unknown source fails loudly.
    """

    TEMPO_MAP = "tempo_map"
    LABEL_BPM = "label_bpm"
    CLICK_TRACK = "click_track"
    BEAT_SIDECAR = "beat_sidecar"


class RejectionKind(Kind):
    """Why a recording was rejected (column ``reason_kind``; empty for accepted recordings)."""

    FILE_MISSING = "file_missing"
    #: A FIFO, folder, device, or a dangling or looping symbolic link where a recording should be.
    NOT_A_FILE = "not_a_file"
    PATH_OUTSIDE_RAW = "path_outside_raw"
    FILE_UNREADABLE = "file_unreadable"
    SIZE_DIFFERS = "size_differs"
    FILE_TOO_LARGE = "file_too_large"
    SHA256_DIFFERS = "sha256_differs"
    MIDI_UNUSABLE = "midi_unusable"
    BPM_LABEL_INVALID = "bpm_label_invalid"
    NO_GRID_FITS = "no_grid_fits"
    #: Fewer notes than it takes to tell a grid from chance (the score floor is 4/√n).
    TOO_FEW_NOTES = "too_few_notes"
    #: The best grid is no click: a tempo outside what a metronome plays, or a latency beyond a fraction of a beat.
    IMPLAUSIBLE_GRID = "implausible_grid"
    #: A take longer than a recording session (a note far out, ticks beyond 32 bits): its work would be unbounded.
    TAKE_TOO_LONG = "take_too_long"
    #: Bars that do not tile the fixed-size windows (3/4 or 5/4 in 64 steps): windows could not start on bar lines.
    METER_UNSUPPORTED = "meter_unsupported"
    #: Every note was dropped (zero durations, all before the first bar): nothing to put in a window.
    NO_WINDOWS = "no_windows"
    #: Only when the user asks to skip files that hit a bug; otherwise a bug fails the build.
    INTERNAL_ERROR = "internal_error"


class DropReason(Kind):
    """Why an input note is not in any window: the keys of ``dropped_json`` and the build report."""

    DRUM_CHANNEL = "drum_channel"
    OUTSIDE_PIANO_RANGE = "outside_piano_range"
    BEFORE_FIRST_BAR = "before_first_bar"
    ZERO_DURATION = "zero_duration"
    SAME_CELL_COLLISION = "same_cell_collision"


def _check_labels() -> None:
    """Every warning kind has exactly one card label (checked at import: a missing one is a bug)."""
    if set(WARNING_LABELS) != set(WarningKind):
        raise AssertionError(f"WARNING_LABELS does not cover WarningKind: {set(WarningKind) ^ set(WARNING_LABELS)}")


_check_labels()
