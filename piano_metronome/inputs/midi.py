"""Read a MIDI recording into a :class:`Performance`: notes, pedal and tempo map in seconds.

symusic parses a file about 250× faster than pretty_midi (0.04 s against ≈ 10 s for the
whole corpus), which is what makes a full build take seconds. We parse in ticks and convert
with our own float64 tempo map, because symusic's seconds are float32 (0.2 ms steps after an
hour) and because the tempo map itself is one of the grids we verify.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from piano_metronome.constants import HIGHEST_MIDI_PITCH, LOWEST_MIDI_PITCH, SUSTAIN_CC
from piano_metronome.kinds import DropReason, RejectionKind, WarningKind

if TYPE_CHECKING:
    from symusic.core import ScoreTick

    from piano_metronome.inputs.midi_scan import MidiScan, ScannedNotes

MAX_EVENTS = 1_000_000
#: Larger files are refused before parsing, so a huge file costs neither time nor memory (a MIDI
#: event takes at least 2 bytes, so this admits every file under MAX_EVENTS of plain note data).
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_BEATS_PER_BAR = 32
#: The longest take accepted: far beyond any recording session, and what bounds a take's work in steps
#: (a note far out, e.g. at tick 2e9 with 1 tick per beat, would otherwise ask for gigabytes of steps).
MAX_TAKE_SECONDS = 24 * 3600.0
#: Tempo map entries outside this range (qpm) are no click a metronome plays.
MIN_QPM, MAX_QPM = 1.0, 1000.0


class RecordingError(ValueError):
    """A recording that cannot be used, with the file, a one-line reason and (when known) its kind.

    ``kind`` is None for a file that cannot be parsed (stored as ``midi_unusable``); other stages
    and checks give their own :class:`~piano_metronome.kinds.RejectionKind`.
    """

    def __init__(self, path: str | Path, reason: str, kind: RejectionKind | None = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class TempoMap:
    """Tempo changes as (tick, quarter notes per minute), with tick → seconds conversion."""

    ticks_per_beat: int
    change_ticks: np.ndarray
    qpm: np.ndarray
    explicit: bool = True

    @cached_property
    def change_seconds(self) -> np.ndarray:
        """Seconds at each tempo change: the running sum of each segment's length (computed once: every
        conversion needs it, and a take converts its onsets, releases and pedal)."""
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
    #: What was odd in the file and how the parser handled it: (WarningKind value, one line) each.
    findings: tuple[tuple[str, str], ...] = ()

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
    """Where a click track lives inside a file: a track (name or index) and optionally a pitch.

    A name is the safe choice: it is read from the file itself whichever reader read the notes.
    An index counts the tracks symusic keeps, those that hold notes (a conductor track does not
    count), except in a file our own walk has to read (notes never released), where it counts
    the file's track chunks from 0.
    """

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
    """Parse MIDI bytes; every failure becomes a one-line :class:`RecordingError`.

    symusic reads the notes (fast); our own walk over the events (:mod:`midi_scan`) counts every
    note-on, finds notes never released, malformed meta events and ticks beyond 32 bits, and
    names the byte where a damaged file breaks.
    """
    from symusic.core import ScoreTick

    if len(data) == 0:
        raise RecordingError(name, "empty file")
    if not data.startswith(b"MThd"):
        raise RecordingError(name, "not a MIDI file (no 'MThd' header)")
    if len(data) > MAX_FILE_BYTES:
        raise RecordingError(name, f"file too large ({len(data):,} bytes > {MAX_FILE_BYTES:,})",
                             RejectionKind.FILE_TOO_LARGE)
    chunks = _check_chunks(data, name)
    try:
        score = ScoreTick.from_midi(_plain_header(data))  # what symusic.Score.from_midi(data) dispatches to
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on damaged files
        _diagnose(data, chunks, name)
        raise RecordingError(name, f"damaged or truncated MIDI ({str(exc).splitlines()[0][:120]})") from None
    events = sum(t.note_num() + len(t.controls) for t in score.tracks)
    if events >= MAX_EVENTS:
        raise RecordingError(name, f"too many events ({events:,} ≥ {MAX_EVENTS:,})")
    notes = [track.notes.numpy() for track in score.tracks]
    scan, ours = _scan_if_odd(data, chunks, score, notes, name) or (None, None)
    return _performance_from_score(score, name, click, _Walked(chunks, scan, notes, ours))


def _meta_lengths_allowed() -> NDArray[np.bool_]:
    """``[meta type, length byte]`` → whether the spec allows that length (:data:`midi_scan.META_LENGTHS`;
    any length for the types it does not fix)."""
    from piano_metronome.inputs.midi_scan import META_LENGTHS

    allowed = np.ones((256, 256), bool)
    for meta_type, (_, lengths) in META_LENGTHS.items():
        allowed[meta_type] = False
        allowed[meta_type, list(lengths)] = True
    return allowed


_META_LENGTH_ALLOWED = _meta_lengths_allowed()


def _odd_meta(data: NDArray[np.uint8]) -> bool:
    """A byte 0xFF followed by a fixed-length meta type and a length byte that is not the spec's.

    Bytes can match by chance (a delta time's 0xFF), so a match only sends the file to our walk.
    Vectorised: a regular expression over every byte of the corpus cost more than the parse.
    """
    at = np.flatnonzero(data[:-2] == 0xFF)
    return not bool(_META_LENGTH_ALLOWED[data[at + 1], data[at + 2]].all())


def _long_delta(data: NDArray[np.uint8]) -> bool:
    """Four bytes shaped like a 4-byte delta time (2²¹ ticks or more): three with the high bit, then one
    without. That is how ticks beyond 2³¹ are reached, which symusic's 32-bit times do not survive."""
    high = data >= 0x80
    return bool((high[:-3] & high[1:-2] & high[2:-1] & ~high[3:]).any())


def _scan_if_odd(data: bytes, chunks: list[tuple[int, int]], score: ScoreTick, notes: list[dict[str, NDArray[Any]]],
                 name: str) -> tuple[MidiScan, ScannedNotes] | None:
    """Our walk over the events and its notes, when something symusic hides may be there; None for an ordinary file.

    The walk costs about 10 µs an event in Python, so it runs only on suspicion, found at C speed:
    a meta event whose length byte looks wrong, a delta time of 2²¹ ticks or more, a time that
    wrapped, two notes of one key sounding at once (a re-strike without release, which symusic
    pairs wrongly), or a note-on never released (found by parsing again with every key released at
    the end of each track).
    """
    from piano_metronome.inputs.midi_scan import ScanError, collect_notes

    raw = np.frombuffer(data, np.uint8)
    if not (_odd_meta(raw) or _long_delta(raw) or _wrapped(score, notes) or _keys_overlap(notes)
            or _unreleased(data, chunks, score)):
        return None
    try:
        return collect_notes(data, chunks)
    except ScanError as exc:
        raise RecordingError(name, exc.reason, exc.kind) from None


def _wrapped(score: ScoreTick, notes: list[dict[str, NDArray[Any]]]) -> bool:
    """A negative or huge time or duration: a tick beyond 2³¹ wrapped in symusic's 32-bit integers."""
    for track, track_notes in zip(score.tracks, notes, strict=True):
        times = track_notes["time"]
        if len(times) and (times.min() < 0 or track_notes["duration"].min() < 0 or times.max() > 2**30):
            return True
        if len(track.controls) and min(c.time for c in (track.controls[0], track.controls[-1])) < 0:
            return True
    return any(int(t.time) < 0 for t in score.tempos)


def _keys_overlap(tracks: list[dict[str, NDArray[Any]]]) -> bool:
    """Two notes of one key in one track overlapping: symusic paired a re-struck key's note-offs first in, first out."""
    for notes in tracks:
        if len(notes["time"]) < 2:
            continue
        order = np.lexsort((notes["time"], notes["pitch"]))
        pitch, time = notes["pitch"][order], notes["time"][order].astype(np.int64)
        end = time + notes["duration"][order]
        if np.any((pitch[1:] == pitch[:-1]) & (end[:-1] > time[1:])):
            return True
    return False


#: Every key of one channel released (running status, delta 0), put where a track's end-of-track event was.
_RELEASE_CHANNEL = [bytes([0x80 | channel, 0, 0]) + b"".join(bytes([0, key, 0]) for key in range(1, 128))
                    for channel in range(16)]


def _unreleased(data: bytes, chunks: list[tuple[int, int]], score: ScoreTick) -> bool:
    """Whether some note-on is never released: symusic drops those, so released at the end they add notes."""
    from symusic.core import ScoreTick

    # a channel whose note-on status byte appears nowhere has no note-on (running status needs one first)
    release = b"\x00".join(_RELEASE_CHANNEL[ch] for ch in range(16) if bytes([0x90 | ch]) in data)
    parts = [data[:4], (6).to_bytes(4, "big"), data[8:14]]
    for start, end in chunks:
        body = data[start:end]
        if not body.endswith(b"\xff\x2f\x00"):
            return True  # no end-of-track event to put the releases before: let the walk count
        body = body[:-3] + release + b"\x00\xff\x2f\x00"
        parts += [b"MTrk", len(body).to_bytes(4, "big"), body]
    try:
        released = ScoreTick.from_midi(b"".join(parts))
    except Exception:  # the walk will say what is wrong
        return True
    return sum(t.note_num() for t in released.tracks) != sum(t.note_num() for t in score.tracks)


def _plain_header(data: bytes) -> bytes:
    """The file with a 6-byte header: the spec lets ``MThd`` be longer (readers skip the rest), symusic does not."""
    header_len = int.from_bytes(data[4:8], "big")
    if header_len == 6:
        return data
    return data[:4] + (6).to_bytes(4, "big") + data[8:14] + data[8 + header_len:]


def _diagnose(data: bytes, chunks: list[tuple[int, int]], name: str) -> None:
    """Where symusic failed, name the damaged byte and what it should be (our walk stops at the first)."""
    from piano_metronome.inputs.midi_scan import ScanError, walk

    try:
        walk(data, chunks)
    except ScanError as exc:
        raise RecordingError(name, exc.reason, exc.kind) from None


def _check_chunks(data: bytes, name: str) -> list[tuple[int, int]]:
    """Walk the chunk headers: (start, end) of each declared track's events, or say what is wrong.

    A cut-off file is called truncated and says where it ends (symusic reports a short chunk as
    an ``iostream error``, and reads a file cut right after its header as an empty song). The
    header's length is read, not assumed (the spec allows more than 6 bytes). Track chunks the
    header does not declare, and format 2 (independent patterns, not one performance), are
    refused with the reason instead of being dropped or laid on top of each other.
    """
    if len(data) < 14:
        raise RecordingError(name, f"truncated MIDI header ({len(data)} of 14 bytes)")
    header_len = int.from_bytes(data[4:8], "big")
    if header_len < 6:
        raise RecordingError(name, f"damaged MIDI header (length {header_len} < 6)")
    if 8 + header_len > len(data):
        raise RecordingError(name, f"truncated MIDI header (it declares {header_len:,} bytes, "
                                   f"{len(data) - 8:,} remain)")
    midi_format = int.from_bytes(data[8:10], "big")
    if midi_format == 2:
        raise RecordingError(name, "MIDI format 2 (independent patterns, each with its own time) is not one "
                                   "performance; export the take as format 0 or 1")
    tracks = int.from_bytes(data[10:12], "big")
    pos, chunks = 8 + header_len, list[tuple[int, int]]()
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos + 4:pos + 8], "big")
        is_track = data[pos:pos + 4] == b"MTrk"
        if pos + 8 + length > len(data):
            if len(chunks) < tracks:
                raise RecordingError(name, f"truncated: track {len(chunks) + 1} declares {length:,} bytes, only "
                                           f"{len(data) - pos - 8:,} remain")
            break  # trailing bytes after the declared tracks: ignored, as readers do
        if is_track:
            chunks.append((pos + 8, pos + 8 + length))
        pos += 8 + length
    if len(chunks) < tracks:
        raise RecordingError(name, f"truncated: the header declares {tracks} track(s), the file holds {len(chunks)}")
    if len(chunks) > tracks:
        raise RecordingError(name, f"damaged MIDI header: it declares {tracks} track(s) but the file holds "
                                   f"{len(chunks)} track chunks (the header's count is wrong)")
    return chunks


@dataclass(frozen=True)
class _Walked:
    """Our own walk over the file: its track chunks, what the walk found, symusic's notes and ours."""

    chunks: list[tuple[int, int]]
    #: None when nothing made the walk necessary (an ordinary file: symusic read it exactly).
    scan: MidiScan | None
    #: symusic's notes of each of its tracks, as numpy (converted once).
    notes: list[dict[str, NDArray[Any]]]
    #: The walk's notes (None when it did not run).
    ours: ScannedNotes | None


def _tempo_map(score: ScoreTick, name: str, ignored: set[int], last_tick: int,
               findings: list[tuple[str, str]]) -> TempoMap:
    """The file's tempo map; the MIDI default (120 qpm) when it states none, marked implicit.

    Tempo events at ``ignored`` ticks (malformed) are left out. A tempo no click plays (0 µs per
    quarter, say) after the last note changes nothing played and is ignored with a finding; one
    before it makes the file's clock meaningless, and the file is refused.
    """
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise RecordingError(name, f"invalid ticks per quarter note ({tpq})")
    last_at_tick: dict[int, float] = {}
    for tempo in sorted(score.tempos, key=lambda t: t.time):
        tick, value = int(tempo.time), float(tempo.qpm)
        if tick in ignored:
            continue
        if not MIN_QPM < value < MAX_QPM and tick >= last_tick:
            findings.append((WarningKind.MALFORMED_META_IGNORED.value, f"tempo of {value:.4g} qpm at tick {tick:,}, "
                             "after the last note, ignored (no click plays it)"))
            continue
        last_at_tick[tick] = value
    if not last_at_tick:
        return TempoMap(tpq, np.array([0]), np.array([120.0]), explicit=False)
    ticks = np.array(sorted(last_at_tick), dtype=np.int64)
    qpm = np.array([last_at_tick[t] for t in ticks], dtype=np.float64)
    if ticks[0] != 0:
        ticks, qpm = np.concatenate([[0], ticks]), np.concatenate([[120.0], qpm])
    if not np.all((qpm > MIN_QPM) & (qpm < MAX_QPM)):
        raise RecordingError(name, f"implausible tempo in tempo map ({qpm.min():.4g}–{qpm.max():.4g} qpm) while "
                                   "notes sound", RejectionKind.IMPLAUSIBLE_GRID)
    return TempoMap(tpq, ticks, qpm, explicit=True)


def _meter(score: ScoreTick, name: str, ignored: set[int]) -> tuple[int, int]:
    """Beats per bar (in quarter notes) and how many meter changes follow the first."""
    sigs = sorted({(int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures
                   if int(t.time) not in ignored})
    if not sigs:
        return 4, 0
    _, num, den = sigs[0]
    changes = sum(1 for i in range(1, len(sigs)) if sigs[i][1:] != sigs[i - 1][1:])
    if den != 4:
        raise RecordingError(name, f"unsupported meter {num}/{den} (only x/4 meters have a quarter-note click)",
                             RejectionKind.METER_UNSUPPORTED)
    if not 1 <= num <= MAX_BEATS_PER_BAR:
        raise RecordingError(name, f"implausible meter {num}/{den} (1 to {MAX_BEATS_PER_BAR} beats per bar)",
                             RejectionKind.METER_UNSUPPORTED)
    return num, changes


def _malformed_ticks(walked: _Walked, findings: list[tuple[str, str]]) -> tuple[set[int], set[int]]:
    """Ticks of too-short tempo (0x51) and time-signature (0x58) events, to ignore; every malformed one reported."""
    tempo, meter = set(), set()
    for meta in walked.scan.malformed if walked.scan else ():
        findings.append((WarningKind.MALFORMED_META_IGNORED.value, meta.describe()))
        if meta.too_short and meta.meta_type == 0x51:
            tempo.add(meta.tick)
        elif meta.too_short and meta.meta_type == 0x58:
            meter.add(meta.tick)
    return tempo, meter


def _track_notes(score: ScoreTick, walked: _Walked, click: ClickSpec | None,
                 findings: list[tuple[str, str]]) -> list[tuple[int, str, bool, dict[str, NDArray[Any]]]]:
    """(index, name, is drum, notes) of each track: symusic's when it read every note-on, else ours.

    Index and name come from whoever read the notes: symusic's track numbering, or, for our walk,
    the file's track chunks (from 0) and each chunk's own track-name event.

    symusic drops a note-on never released and pairs a re-struck key's note-off with the older
    note-on; then our walk's notes are used, each unreleased note closed at the next note-on of
    its key or at the end of its track (one finding says how many).
    """
    scan, ours = walked.scan, walked.ours
    symusic_notes = sum(t.note_num() for t in score.tracks)
    if scan is None or ours is None or (scan.ordinary and symusic_notes == scan.note_ons):
        pairs = zip(score.tracks, walked.notes, strict=True)
        return [(i, t.name, bool(t.is_drum), n) for i, (t, n) in enumerate(pairs)]
    if len(ours.time) != scan.note_ons:
        raise AssertionError(f"our walk paired {len(ours.time)} notes from {scan.note_ons} note-ons")
    findings.append((WarningKind.NOTES_NEVER_RELEASED.value,
                     f"{scan.restruck + scan.unreleased} note-on(s) never released: {scan.restruck} closed at the "
                     f"next note-on of their key, {scan.unreleased} at the end of their track (symusic read "
                     f"{symusic_notes} of {scan.note_ons} notes)"))
    tracks = []
    for chunk in range(len(walked.chunks)):
        for drum in (False, True):
            sel = (ours.chunk == chunk) & ((ours.channel == 9) == drum)
            columns = {"time": ours.time[sel], "duration": ours.duration[sel], "pitch": ours.pitch[sel],
                       "velocity": ours.velocity[sel]}
            tracks.append((chunk, scan.track_names.get(chunk, ""), drum, columns))
    return tracks


def _performance_from_score(score: ScoreTick, name: str, click: ClickSpec | None, walked: _Walked) -> Performance:
    """Collect notes and pedal from every non-drum, non-click track, in float64 seconds."""
    findings: list[tuple[str, str]] = []
    ignored_tempo, ignored_meter = _malformed_ticks(walked, findings)
    tracks = _track_notes(score, walked, click, findings)
    last_tick = max((int((n["time"].astype(np.int64) + n["duration"]).max()) for *_, n in tracks
                     if len(n["time"])), default=0)
    tempo_map = _tempo_map(score, name, ignored_tempo, last_tick, findings)
    beats_per_bar, meter_changes = _meter(score, name, ignored_meter)
    excluded: dict[str, int] = {}
    parts: list[dict[str, NDArray[Any]]] = []
    click_times: NDArray[np.float64] | None = None
    for index, track_name, is_drum, notes in tracks:
        if click is not None and (track_name == click.track or index == click.track):
            sel = np.ones(len(notes["pitch"]), bool) if click.pitch is None else notes["pitch"] == click.pitch
            click_times = np.unique(tempo_map.ticks_to_seconds(notes["time"][sel]))
            continue
        if is_drum:
            if len(notes["pitch"]):
                drums = DropReason.DRUM_CHANNEL.value
                excluded[drums] = excluded.get(drums, 0) + len(notes["pitch"])
            continue
        parts.append(notes)
    pedal_parts = [_sustain(track) for index, track in enumerate(score.tracks) if not track.is_drum
                   and not (click is not None and (track.name == click.track or index == click.track))]
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
    _check_length(float((onsets + durations).max()), name)
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
        findings=tuple(findings),
    )


def _sustain(track: Any) -> tuple[NDArray[Any], NDArray[Any]]:
    """(ticks, values) of a track's sustain-pedal (CC64) events."""
    controls = track.controls.numpy()
    sustain = controls["number"] == SUSTAIN_CC
    return controls["time"][sustain], controls["value"][sustain]


def _check_length(end_seconds: float, name: str) -> None:
    """Refuse a take longer than any session: every later stage's work grows with its length in steps."""
    if end_seconds > MAX_TAKE_SECONDS:
        raise RecordingError(name, f"the take lasts {end_seconds / 3600:,.1f} hours (its last note ends there); "
                                   f"takes up to {MAX_TAKE_SECONDS / 3600:.0f} hours are accepted",
                             RejectionKind.TAKE_TOO_LONG)
