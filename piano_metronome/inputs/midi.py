"""Read a MIDI recording into a :class:`Performance`: notes, pedal and tempo map in seconds.

symusic parses a file about 250× faster than pretty_midi (0.04 s against ≈ 10 s for the
whole corpus), which is what makes a full build take seconds. We parse in ticks and convert
with our own float64 tempo map, because symusic's seconds are float32 (0.2 ms steps after an
hour) and because the tempo map itself is one of the grids we verify.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from piano_metronome.constants import HIGHEST_MIDI_PITCH, LOWEST_MIDI_PITCH, SUSTAIN_CC
from piano_metronome.kinds import DropReason

if TYPE_CHECKING:
    from symusic.core import ScoreTick

MAX_EVENTS = 1_000_000
#: Larger files are refused before parsing, so a huge file costs neither time nor memory (a MIDI
#: event takes at least 2 bytes, so this admits every file under MAX_EVENTS of plain note data).
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_BEATS_PER_BAR = 32


class RecordingError(ValueError):
    """A recording that cannot be used, with the file and a one-line reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class TempoMap:
    """Tempo changes as (tick, quarter notes per minute), with tick → seconds conversion."""

    ticks_per_beat: int
    change_ticks: np.ndarray
    qpm: np.ndarray
    explicit: bool = True

    @property
    def change_seconds(self) -> np.ndarray:
        """Seconds at each tempo change: the running sum of each segment's length."""
        seg_beats = np.diff(self.change_ticks) / self.ticks_per_beat
        seconds: NDArray[np.float64] = np.concatenate([[0.0], np.cumsum(seg_beats * 60.0 / self.qpm[:-1])]) + (
            self.change_ticks[0] / self.ticks_per_beat * 60.0 / self.qpm[0]
        )
        return seconds

    def ticks_to_seconds(self, ticks: np.ndarray) -> np.ndarray:
        """Convert tick positions to seconds, piecewise-linear over the tempo segments."""
        ticks = np.asarray(ticks, dtype=np.float64)
        seg = np.clip(np.searchsorted(self.change_ticks, ticks, side="right") - 1, 0, None)
        start_s = self.change_seconds
        seconds: NDArray[np.float64] = (
            start_s[seg] + (ticks - self.change_ticks[seg]) / self.ticks_per_beat * 60.0 / self.qpm[seg]
        )
        return seconds

    def beats_to_seconds(self, beats: np.ndarray) -> np.ndarray:
        """Seconds at (fractional) beat positions counted from tick 0."""
        return self.ticks_to_seconds(np.asarray(beats, dtype=np.float64) * self.ticks_per_beat)

    def seconds_to_beats(self, seconds: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`beats_to_seconds`."""
        seconds = np.asarray(seconds, dtype=np.float64)
        start_s = self.change_seconds
        seg = np.clip(np.searchsorted(start_s, seconds, side="right") - 1, 0, None)
        beats: NDArray[np.float64] = (
            self.change_ticks[seg] / self.ticks_per_beat + (seconds - start_s[seg]) * self.qpm[seg] / 60.0
        )
        return beats


@dataclass(frozen=True)
class Performance:
    """One recording's notes and pedal in seconds (file time), sorted by onset then pitch.

    ``excluded`` counts notes that could not be used at all (drum channel, outside the 88
    keys), so accounting can show them: input notes = placed + dropped, always.
    """

    path: str
    onsets: np.ndarray
    durations: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    pedal_times: np.ndarray
    pedal_values: np.ndarray
    tempo_map: TempoMap
    beats_per_bar: int = 4
    meter_changes: int = 0
    click_times: np.ndarray | None = None
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def input_notes(self) -> int:
        """Every note the file holds (usable or not): the left side of the accounting."""
        return int(len(self.onsets) + sum(self.excluded.values()))

    @property
    def end_seconds(self) -> float:
        """When the last note is released."""
        return float((self.onsets + self.durations).max()) if len(self.onsets) else 0.0


@dataclass(frozen=True)
class ClickSpec:
    """Where a click track lives inside a file: a track (name or index) and optionally a pitch."""

    track: str | int
    pitch: int | None = None


def read_midi(path: str | Path, click: ClickSpec | None = None) -> Performance:
    """Parse ``path`` into a :class:`Performance`, or raise :class:`RecordingError` saying why."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(path, f"cannot read file ({exc.strerror or exc})") from None
    return parse_midi_bytes(data, str(path), click)


def parse_midi_bytes(data: bytes, name: str, click: ClickSpec | None = None) -> Performance:
    """Parse MIDI bytes; every failure becomes a one-line :class:`RecordingError`."""
    from symusic.core import ScoreTick

    if len(data) == 0:
        raise RecordingError(name, "empty file")
    if not data.startswith(b"MThd"):
        raise RecordingError(name, "not a MIDI file (no 'MThd' header)")
    if len(data) > MAX_FILE_BYTES:
        raise RecordingError(name, f"file too large ({len(data):,} bytes > {MAX_FILE_BYTES:,})")
    _check_chunks(data, name)
    try:
        score = ScoreTick.from_midi(data)  # what symusic.Score.from_midi(data) dispatches to: ticks
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on damaged files
        raise RecordingError(name, f"damaged or truncated MIDI ({str(exc).splitlines()[0][:120]})") from None
    events = sum(t.note_num() + len(t.controls) for t in score.tracks)
    if events >= MAX_EVENTS:
        raise RecordingError(name, f"too many events ({events:,} ≥ {MAX_EVENTS:,})")
    return _performance_from_score(score, name, click)


def _check_chunks(data: bytes, name: str) -> None:
    """Walk the chunk headers, so a cut-off file is called truncated and says where it ends.

    symusic reports a short chunk as an ``iostream error`` and reads a file cut right after its
    header as an empty song ("no notes"), which would hide the real problem.
    """
    if len(data) < 14:
        raise RecordingError(name, f"truncated MIDI header ({len(data)} of 14 bytes)")
    header_len = int.from_bytes(data[4:8], "big")
    if header_len < 6:
        raise RecordingError(name, f"damaged MIDI header (length {header_len} < 6)")
    tracks = int.from_bytes(data[10:12], "big")
    pos, found = 8 + header_len, 0
    while found < tracks:
        if pos + 8 > len(data):
            raise RecordingError(name, f"truncated: the header declares {tracks} track(s), the file holds {found}")
        length = int.from_bytes(data[pos + 4:pos + 8], "big")
        if pos + 8 + length > len(data):
            raise RecordingError(name, f"truncated: track {found + 1} declares {length:,} bytes, only "
                                       f"{len(data) - pos - 8:,} remain")
        found += data[pos:pos + 4] == b"MTrk"
        pos += 8 + length


def _tempo_map(score: ScoreTick, name: str) -> TempoMap:
    """The file's tempo map; the MIDI default (120 qpm) when it states none, marked implicit."""
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise RecordingError(name, f"invalid ticks per quarter note ({tpq})")
    last_at_tick = {int(t.time): float(t.qpm) for t in sorted(score.tempos, key=lambda t: t.time)}
    if not last_at_tick:
        return TempoMap(tpq, np.array([0]), np.array([120.0]), explicit=False)
    ticks = np.array(sorted(last_at_tick), dtype=np.int64)
    qpm = np.array([last_at_tick[t] for t in ticks], dtype=np.float64)
    if ticks[0] != 0:
        ticks, qpm = np.concatenate([[0], ticks]), np.concatenate([[120.0], qpm])
    if not np.all((qpm > 1) & (qpm < 1000)):
        raise RecordingError(name, f"implausible tempo in tempo map ({qpm.min():.1f}–{qpm.max():.1f} qpm)")
    return TempoMap(tpq, ticks, qpm, explicit=True)


def _meter(score: ScoreTick, name: str) -> tuple[int, int]:
    """Beats per bar (in quarter notes) and how many meter changes follow the first."""
    sigs = sorted({(int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures})
    if not sigs:
        return 4, 0
    _, num, den = sigs[0]
    changes = sum(1 for i in range(1, len(sigs)) if sigs[i][1:] != sigs[i - 1][1:])
    if den != 4:
        raise RecordingError(name, f"unsupported meter {num}/{den} (only x/4 meters have a quarter-note click)")
    if not 1 <= num <= MAX_BEATS_PER_BAR:
        raise RecordingError(name, f"implausible meter {num}/{den} (1 to {MAX_BEATS_PER_BAR} beats per bar)")
    return num, changes


def _performance_from_score(score: ScoreTick, name: str, click: ClickSpec | None) -> Performance:
    """Collect notes and pedal from every non-drum, non-click track, in float64 seconds."""
    tempo_map = _tempo_map(score, name)
    beats_per_bar, meter_changes = _meter(score, name)
    excluded: dict[str, int] = {}
    parts: list[dict[str, NDArray[Any]]] = []
    pedal_parts: list[tuple[NDArray[Any], NDArray[Any]]] = []
    click_times: NDArray[np.float64] | None = None
    for index, track in enumerate(score.tracks):
        notes = track.notes.numpy()
        if click is not None and (track.name == click.track or index == click.track):
            sel = np.ones(len(notes["pitch"]), bool) if click.pitch is None else notes["pitch"] == click.pitch
            click_times = np.unique(tempo_map.ticks_to_seconds(notes["time"][sel]))
            continue
        if track.is_drum:
            if len(notes["pitch"]):
                drums = DropReason.DRUM_CHANNEL.value
                excluded[drums] = excluded.get(drums, 0) + len(notes["pitch"])
            continue
        parts.append(notes)
        controls = track.controls.numpy()
        sustain = controls["number"] == SUSTAIN_CC
        pedal_parts.append((controls["time"][sustain], controls["value"][sustain]))
    if click is not None and click_times is None:
        raise RecordingError(name, f"click track {click.track!r} not found")
    cat = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, int) for k in
           ("time", "duration", "pitch", "velocity")}
    in_range = (cat["pitch"] >= LOWEST_MIDI_PITCH) & (cat["pitch"] <= HIGHEST_MIDI_PITCH)
    if (~in_range).any():
        excluded[DropReason.OUTSIDE_PIANO_RANGE.value] = int((~in_range).sum())
    cat = {k: v[in_range] for k, v in cat.items()}
    if len(cat["time"]) == 0:
        reason = "no notes" + (f" on the 88 piano keys ({sum(excluded.values())} excluded)" if excluded else "")
        raise RecordingError(name, reason)
    start_ticks = cat["time"].astype(np.int64)
    end_ticks = start_ticks + np.maximum(cat["duration"].astype(np.int64), 0)
    onsets = tempo_map.ticks_to_seconds(start_ticks)
    durations = tempo_map.ticks_to_seconds(end_ticks) - onsets
    order = np.lexsort((cat["pitch"], onsets))
    pedal_ticks = np.concatenate([p[0] for p in pedal_parts]) if pedal_parts else np.zeros(0)
    pedal_values = np.concatenate([p[1] for p in pedal_parts]) if pedal_parts else np.zeros(0)
    porder = np.argsort(pedal_ticks, kind="stable")
    return Performance(
        path=name,
        onsets=onsets[order],
        durations=durations[order],
        pitches=cat["pitch"][order].astype(np.int16),
        velocities=cat["velocity"][order].astype(np.int16),
        pedal_times=tempo_map.ticks_to_seconds(pedal_ticks[porder]),
        pedal_values=pedal_values[porder].astype(np.uint8),
        tempo_map=tempo_map,
        beats_per_bar=beats_per_bar,
        meter_changes=meter_changes,
        click_times=click_times,
        excluded=excluded,
    )
