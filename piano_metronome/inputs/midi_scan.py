"""Walk a standard MIDI file's events ourselves, for what symusic cannot tell us.

symusic parses fast but silently: a note-on that is never released is dropped without a
count, a tempo meta event shorter than its 3 bytes is read past its end, a tick past 2³¹ wraps
to a negative time, and a damaged byte is reported as ``Get velocity=255`` with no place.
This module reads the same bytes event by event (one pass in Python, about a second per
million events) and says, with byte offsets: how many note-ons the file holds (the left side
of the accounting), which notes were never released, which meta events are malformed, and
where a file is damaged. When every note-on is released in the ordinary way, symusic's notes
are exactly the file's and are used; otherwise :func:`collect_notes` gives the notes with each
unreleased one closed at the next note-on of its key or at the end of its track.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from piano_metronome.kinds import RejectionKind

#: Ticks are read into 32-bit integers by symusic: an event beyond this tick would wrap.
MAX_TICK = 2**31 - 1
#: Channel messages walked before giving up (symusic's own cap counts notes and controls only).
MAX_MESSAGES = 4_000_000
#: Meta events with a fixed length in the MIDI spec: type → (name, allowed data lengths).
META_LENGTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    0x00: ("sequence number", (0, 2)), 0x20: ("channel prefix", (1,)), 0x21: ("port", (1,)),
    0x2F: ("end of track", (0,)), 0x51: ("tempo", (3,)), 0x54: ("SMPTE offset", (5,)),
    0x58: ("time signature", (4,)), 0x59: ("key signature", (2,)),
}
#: The meta event that names a track (a click track may be asked for by that name).
TRACK_NAME = 0x03
#: What the data bytes of each channel message mean, for messages naming a damaged byte.
DATA_MEANING = {0x80: ("note-off key", "note-off velocity"), 0x90: ("note-on key", "note-on velocity"),
                0xA0: ("aftertouch key", "aftertouch pressure"), 0xB0: ("controller number", "controller value"),
                0xC0: ("program number", ""), 0xD0: ("channel pressure", ""),
                0xE0: ("pitch bend (low 7 bits)", "pitch bend (high 7 bits)")}


class ScanError(ValueError):
    """The bytes break the MIDI format at a known place: the reason (with its byte offset) and its kind."""

    def __init__(self, reason: str, kind: RejectionKind = RejectionKind.MIDI_UNUSABLE) -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


@dataclass(frozen=True)
class MalformedMeta:
    """A meta event whose length is not the spec's: where it is and what was done with it."""

    meta_type: int
    track: int
    tick: int
    offset: int
    length: int

    @property
    def name(self) -> str:
        """The spec's name of the event."""
        return META_LENGTHS[self.meta_type][0]

    @property
    def too_short(self) -> bool:
        """Shorter than its value: a reader would take bytes of the next event as its value."""
        return self.length < max(META_LENGTHS[self.meta_type][1])

    def describe(self) -> str:
        """One line: which event, where, and that it was ignored."""
        allowed = " or ".join(str(n) for n in META_LENGTHS[self.meta_type][1])
        action = "ignored" if self.too_short else "its first bytes used"
        return (f"malformed {self.name} meta event at byte {self.offset:,} (track {self.track}, tick {self.tick:,}): "
                f"{self.length} data byte(s), the MIDI spec says {allowed}; {action}")


@dataclass
class MidiScan:
    """What one walk over a file's tracks found."""

    note_ons: int = 0
    #: Note-ons of a key that was already sounding (the sounding note is closed there).
    restruck: int = 0
    #: Note-ons still sounding when their track ends (closed at the track's last tick).
    unreleased: int = 0
    malformed: list[MalformedMeta] = field(default_factory=list)
    #: The first track-name meta event (0x03) of each chunk, by chunk index from 0: a click track is
    #: looked up by name in the walk's own numbering (symusic numbers only the tracks it keeps).
    track_names: dict[int, str] = field(default_factory=dict)

    @property
    def ordinary(self) -> bool:
        """Every note-on released before its key sounds again: symusic pairs these exactly."""
        return self.restruck == 0 and self.unreleased == 0


@dataclass
class ScannedNotes:
    """Notes of a whole file from our own walk: parallel arrays, plus the chunk each came from."""

    time: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    channel: np.ndarray
    chunk: np.ndarray


def _vlq(data: bytes, pos: int, end: int, what: str, track: int) -> tuple[int, int]:
    """A variable-length quantity at ``pos``: (value, position after it)."""
    value = 0
    while True:
        if pos >= end:
            raise ScanError(f"truncated {what} at byte {pos:,} (track {track} ends there)")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos


def _data_error(status: int, index: int, byte: int, pos: int, track: int, tick: int) -> ScanError:
    """A data byte ≥ 0x80: name the byte, its place and what it should have been."""
    meaning = DATA_MEANING[status & 0xF0][index]
    return ScanError(f"damaged MIDI: byte {pos:,} (track {track}, tick {tick:,}) is 0x{byte:02X} where the "
                     f"{meaning} (0–127) of a 0x{status:02X} message belongs")


def walk(data: bytes, chunks: list[tuple[int, int]], notes: list[list[int]] | None = None) -> MidiScan:
    """Walk every track chunk ``(start, end)`` of ``data``; raise :class:`ScanError` where it is damaged.

    With ``notes`` (six empty lists: time, duration, pitch, velocity, channel, chunk index), every
    note is appended, unreleased ones closed at the next note-on of their key
    or at the end of their track.
    """
    scan = MidiScan()
    messages = 0
    for number, (start, end) in enumerate(chunks, 1):
        messages += _walk_track(data, start, end, number, scan, notes)
        if messages > MAX_MESSAGES:
            raise ScanError(f"too many events (more than {MAX_MESSAGES:,} channel messages)")
    return scan


def _walk_track(data: bytes, start: int, end: int, track: int, scan: MidiScan,
                notes: list[list[int]] | None) -> int:
    """One track; returns how many channel messages it holds. Sounding notes are tracked per (channel, key).

    The hot loop is written out (no helper calls for the common one-byte delta and for notes):
    a million-note file is walked in seconds.
    """
    pos, tick, status, messages = start, 0, 0, 0
    sounding: dict[int, tuple[int, int]] = {}  # channel·128 + key → (onset tick, velocity)
    append = _appender(notes, track)
    while pos < end:
        byte = data[pos]
        if byte < 0x80:
            tick += byte
            pos += 1
        else:
            delta, pos = _vlq(data, pos, end, "delta time", track)
            tick += delta
            if tick > MAX_TICK:
                raise ScanError(f"an event at byte {pos:,} (track {track}) lies at tick {tick:,}, beyond 2³¹−1: "
                                "the take would be longer than any recording session", RejectionKind.TAKE_TOO_LONG)
        if pos >= end:
            raise ScanError(f"truncated event at byte {pos:,} (track {track} ends after a delta time)")
        byte = data[pos]
        if byte >= 0xF0:
            pos = _walk_system(data, pos, end, track, tick, scan)
            continue
        if byte >= 0x80:
            status, pos = byte, pos + 1
        elif not status:
            raise ScanError(f"damaged MIDI: byte {pos:,} (track {track}) is data 0x{byte:02X} with no status before it")
        size = 1 if status & 0xE0 == 0xC0 else 2
        if pos + size > end:
            raise ScanError(f"truncated 0x{status:02X} message at byte {pos:,} (track {track} ends inside it)")
        first = data[pos]
        if first >= 0x80:
            raise _data_error(status, 0, first, pos, track, tick)
        second = data[pos + 1] if size == 2 else 0
        if second >= 0x80:
            raise _data_error(status, 1, second, pos + 1, track, tick)
        pos += size
        messages += 1
        kind = status & 0xF0
        if kind == 0x90 or kind == 0x80:
            cell = ((status & 0x0F) << 7) | first
            opened = sounding.pop(cell, None)
            if kind == 0x90 and second:
                scan.note_ons += 1
                sounding[cell] = (tick, second)
                if opened is not None:
                    scan.restruck += 1  # a key struck again while sounding: the sounding note ends here
            if opened is not None and append is not None:
                append(opened, tick, cell)
    scan.unreleased += len(sounding)
    if append is not None:
        for cell, opened in sorted(sounding.items()):
            append(opened, tick, cell)
    return messages


def _appender(notes: list[list[int]] | None, track: int) -> Callable[[tuple[int, int], int, int], None] | None:
    """A function appending one finished note to the parallel lists (None when notes are not collected)."""
    if notes is None:
        return None
    times, durations, pitches, velocities, channels, chunks = (column.append for column in notes)

    def append(opened: tuple[int, int], tick: int, cell: int) -> None:
        times(opened[0])
        durations(tick - opened[0])
        pitches(cell & 0x7F)
        velocities(opened[1])
        channels(cell >> 7)
        chunks(track - 1)

    return append


def _walk_system(data: bytes, pos: int, end: int, track: int, tick: int, scan: MidiScan) -> int:
    """A meta or SysEx event at ``pos``; returns the position after it. Malformed metas are noted."""
    byte = data[pos]
    if byte == 0xFF:
        if pos + 1 >= end:
            raise ScanError(f"truncated meta event at byte {pos:,} (track {track})")
        meta_type = data[pos + 1]
        length, after = _vlq(data, pos + 2, end, "meta event length", track)
        if after + length > end:
            raise ScanError(f"truncated meta event at byte {pos:,} (track {track}): it declares {length:,} bytes, "
                            f"{end - after:,} remain")
        allowed = META_LENGTHS.get(meta_type)
        if allowed is not None and length not in allowed[1]:
            scan.malformed.append(MalformedMeta(meta_type, track, tick, pos, length))
        if meta_type == TRACK_NAME and track - 1 not in scan.track_names:
            scan.track_names[track - 1] = data[after:after + length].decode("utf-8", "replace")
        return after + length
    if byte in (0xF0, 0xF7):
        length, after = _vlq(data, pos + 1, end, "SysEx length", track)
        if after + length > end:
            raise ScanError(f"truncated SysEx at byte {pos:,} (track {track})")
        return after + length
    raise ScanError(f"damaged MIDI: byte {pos:,} (track {track}, tick {tick:,}) is 0x{byte:02X}, a real-time or "
                    "system-common status that cannot appear in a MIDI file")


def collect_notes(data: bytes, chunks: list[tuple[int, int]]) -> tuple[MidiScan, ScannedNotes]:
    """What :func:`walk` finds, and every note of the file by our own pairing, as arrays."""
    columns: list[list[int]] = [[] for _ in range(6)]
    scan = walk(data, chunks, columns)
    time, duration, pitch, velocity, channel, chunk = (np.asarray(c, dtype=np.int64) for c in columns)
    return scan, ScannedNotes(time, duration, pitch, velocity, channel, chunk)
