"""Windows (or model output) back to MIDI at the real tempo, so any window can be listened to.

Step ``k`` of a window sounds at ``lead_in + (k + offset) · ticks_per_step`` ticks, with one
tempo event per window at the window's BPM and 960 ticks per beat (an offset survives to
1/240 step on a 16th grid). Velocities are the stored MIDI integers, durations come from
``note_duration`` and the sustain pedal is written back as CC64, one event per *change*.

No event may start before tick 0, yet a window's first hit is often early (offsets go below
−0.5 step for rolled chords, and a re-applied latency moves everything earlier). The whole
window is then delayed by a **lead-in** of whole beats (whole beats, so the sub-beat grid,
and with it a re-alignment, stays where it was). The lead-in and everything else needed to
map the file back to the window is written into the file as a JSON marker at tick 0
(:func:`read_render_info`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from piano_metronome.constants import LOWEST_MIDI_PITCH, MAX_MIDI_VALUE, NUM_KEYS, SUSTAIN_CC
from piano_metronome.notes import Notes

if TYPE_CHECKING:
    from symusic.core import ScoreTick

TICKS_PER_BEAT = 960
MARKER_PREFIX = "piano-metronome "


@dataclass(frozen=True)
class RenderSpec:
    """How hits map to ticks: tempo per segment, grid, latency and lead-in."""

    steps_per_beat: int
    tempo_steps: tuple[int, ...] = (0,)  # step where each tempo segment starts (first is 0)
    tempo_bpm: tuple[float, ...] = (120.0,)
    beats_per_bar: int = 4
    latency_ms: float = 0.0  # added to every event (negative = early), as the player was
    lead_in_beats: int | None = None  # None: the fewest whole beats that keep every event ≥ 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.steps_per_beat < 1 or TICKS_PER_BEAT % self.steps_per_beat:
            raise ValueError(f"steps_per_beat must divide {TICKS_PER_BEAT}, got {self.steps_per_beat}")
        if len(self.tempo_steps) != len(self.tempo_bpm) or not self.tempo_steps or self.tempo_steps[0] != 0:
            raise ValueError("tempo segments need matching steps and BPMs, the first at step 0")
        if not all(0 < b < 1000 for b in self.tempo_bpm):
            raise ValueError(f"implausible BPM in {self.tempo_bpm}")

    @property
    def ticks_per_step(self) -> int:
        """Ticks of one sub-beat (240 on a 16th grid, 480 on an 8th grid)."""
        return TICKS_PER_BEAT // self.steps_per_beat

    def latency_ticks(self, steps: np.ndarray) -> np.ndarray:
        """The latency in ticks at each (fractional) step: ms → beats at the local tempo."""
        seg = np.searchsorted(np.asarray(self.tempo_steps), np.floor(steps), side="right") - 1
        bpm = np.asarray(self.tempo_bpm, dtype=np.float64)[np.clip(seg, 0, None)]
        ticks: NDArray[np.float64] = self.latency_ms / 1000.0 * bpm / 60.0 * TICKS_PER_BEAT
        return ticks


def _ticks(spec: RenderSpec, steps: np.ndarray) -> np.ndarray:
    """Ticks (before the lead-in) of fractional step positions, latency included, rounded."""
    steps = np.asarray(steps, dtype=np.float64)
    ticks: NDArray[np.int64] = np.rint(steps * spec.ticks_per_step + spec.latency_ticks(steps)).astype(np.int64)
    return ticks


def _onset_ticks(spec: RenderSpec, step: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Onset ticks that stay on their step: a whole tick may cross the half-step line.

    Rounding to ticks (and a latency that is no whole number of ticks) can carry a note
    within half a tick of ±0.5 step over to the neighbouring step; such a note is moved by
    one tick back inside (−0.5, 0.5), 1/240 step at most. So is a note at exactly +0.5, a tie
    that the aligner would round up to the next step. Chord members beyond ±0.5 keep their
    time: they belong to their chord's step whatever their own distance.
    """
    step = np.asarray(step, dtype=np.float64)
    ticks = _ticks(spec, step + offset)
    position = (ticks - spec.latency_ticks(step + offset)) / spec.ticks_per_step - step
    alone = np.abs(offset) <= 0.5 + 1e-6
    ticks = np.where(alone & (position >= 0.5 - 1e-6), ticks - 1, ticks)
    moved: NDArray[np.int64] = np.where(alone & (position <= -0.5 + 1e-6), ticks + 1, ticks)
    return moved


def _pedal_ticks(spec: RenderSpec, steps: np.ndarray) -> np.ndarray:
    """Ticks of pedal changes: half a tick to a tick and a half *before* their step.

    The dataset gives the pedal's value *at* each step; a change written exactly on the
    step is a knife-edge for any reader that samples there (float seconds on either side),
    so it is written just before, where the value at the step is unambiguous. A change at a
    step at or after tick 0 never moves before tick 0 for this (so no lead-in is forced).
    """
    exact = np.asarray(steps, dtype=np.float64) * spec.ticks_per_step + spec.latency_ticks(steps)
    early = np.floor(exact - 0.5).astype(np.int64)
    ticks: NDArray[np.int64] = np.where(exact >= 0, np.maximum(early, 0), early)
    return ticks


def _pedal_changes(pedal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) where the pedal value changes; the pedal starts up (0) and ends up."""
    values = np.concatenate([np.asarray(pedal, dtype=np.int64), [0]])
    previous = np.concatenate([[0], values[:-1]])
    steps = np.flatnonzero(values != previous)
    return steps, values[steps]


def _lead_in(spec: RenderSpec, earliest_tick: int) -> int:
    """Lead-in in whole beats: the one asked for, or the fewest that keep the earliest event ≥ 0."""
    needed = max(0, math.ceil(-earliest_tick / TICKS_PER_BEAT))
    if spec.lead_in_beats is None:
        return needed
    if spec.lead_in_beats < needed:
        raise ValueError(f"a lead-in of {spec.lead_in_beats} beat(s) leaves events before tick 0; "
                         f"at least {needed} needed")
    return spec.lead_in_beats


def render_hits(hits: Notes, spec: RenderSpec, pedal: np.ndarray | None = None) -> ScoreTick:
    """A ``symusic.Score`` (one piano track, in ticks) of sparse hits and a per-step pedal."""
    # symusic.Score(…), .Track(…), .Note(…) dispatch to these tick classes; naming them gives typed objects
    from symusic.core import (
        ControlChangeTick,
        NoteTick,
        ScoreTick,
        TempoTick,
        TextMetaTick,
        TimeSignatureTick,
        TrackTick,
    )

    onset = _onset_ticks(spec, hits.step, hits.offset)
    end = np.maximum(_ticks(spec, hits.step + hits.offset + hits.duration), onset + 1)
    p_steps, p_values = _pedal_changes(pedal if pedal is not None else np.zeros(0))
    p_ticks = _pedal_ticks(spec, p_steps)
    earliest = int(min(onset.min(initial=0), p_ticks.min(initial=0)))
    lead_beats = _lead_in(spec, earliest)
    lead = lead_beats * TICKS_PER_BEAT
    score = ScoreTick(TICKS_PER_BEAT)
    score.time_signatures.append(TimeSignatureTick(0, spec.beats_per_bar, 4))
    for i, (step, bpm) in enumerate(zip(spec.tempo_steps, spec.tempo_bpm, strict=True)):
        if i == 0 or bpm != spec.tempo_bpm[i - 1]:
            score.tempos.append(TempoTick(0 if i == 0 else lead + step * spec.ticks_per_step, qpm=float(bpm)))
    track = TrackTick("piano", 0, False)
    order = np.lexsort((hits.key, onset))
    for i in order:
        track.notes.append(NoteTick(int(lead + onset[i]), int(end[i] - onset[i]),
                                    int(hits.key[i]) + LOWEST_MIDI_PITCH, int(hits.velocity[i])))
    for tick, value in zip(p_ticks, p_values, strict=True):
        track.controls.append(ControlChangeTick(int(lead + tick), SUSTAIN_CC, int(value)))
    score.tracks.append(track)
    info = {**spec.meta, "steps_per_beat": spec.steps_per_beat, "ticks_per_step": spec.ticks_per_step,
            "lead_in_beats": lead_beats, "lead_in_ticks": lead, "latency_ms": spec.latency_ms}
    score.markers.append(TextMetaTick(0, MARKER_PREFIX + json.dumps(info, sort_keys=True)))
    return score


def read_render_info(score: ScoreTick) -> dict[str, Any] | None:
    """The JSON a rendered file carries in its tick-0 marker (lead-in, grid, latency), or None."""
    for marker in score.markers:
        if marker.text.startswith(MARKER_PREFIX):
            info: dict[str, Any] = json.loads(marker.text[len(MARKER_PREFIX):])  # render_hits writes an object
            return info
    return None


def _window_hits(row: Mapping[str, Any], first_step: int = 0) -> Notes:
    """The hits of one dataset row, their steps moved by ``first_step``."""
    return Notes(
        step=np.asarray(row["note_step"], dtype=np.int64) + first_step,
        key=np.asarray(row["note_key"], dtype=np.int64),
        offset=np.asarray(row["note_offset"], dtype=np.float64),
        velocity=np.asarray(row["note_velocity"], dtype=np.int64),
        duration=np.asarray(row["note_duration"], dtype=np.float64),
    )


def render_window(row: Mapping[str, Any], *, apply_latency: bool = False,
                  lead_in_beats: int | None = None) -> ScoreTick:
    """One window (a dataset row as a dict) → ``symusic.Score`` at the window's BPM.

    ``apply_latency`` adds the recording's measured latency back (the player's own timing
    against the click); by default the file's grid is the click, as the offsets are.
    """
    spec = RenderSpec(
        steps_per_beat=int(row["steps_per_beat"]), tempo_bpm=(float(row["bpm"]),),
        beats_per_bar=int(row["beats_per_bar"]), latency_ms=float(row["latency_ms"]) if apply_latency else 0.0,
        lead_in_beats=lead_in_beats,
        meta={"window_id": row["window_id"], "recording_id": row["recording_id"],
              "start_step": int(row["start_step"]), "start_time_s": float(row["start_time_s"])},
    )
    pedal = np.asarray(row["pedal"], dtype=np.int64)[: int(row["valid_steps"])]
    return render_hits(_window_hits(row), spec, pedal)


def render_recording(rows: Sequence[Mapping[str, Any]], *, apply_latency: bool = False,
                     lead_in_beats: int | None = None) -> ScoreTick:
    """Every window of one recording, each at its ``start_step``, as one file (step 0 = first bar line).

    Overlapping windows (a hop shorter than the window) hold the same notes twice; each
    (step, key) cell is written once. Steps in skipped (empty) windows have no pedal.
    """
    rows = sorted(rows, key=lambda r: int(r["start_step"]))
    if not rows or len({r["recording_id"] for r in rows}) != 1:
        raise ValueError("render_recording needs the windows of exactly one recording")
    parts = [_window_hits(r, int(r["start_step"])) for r in rows]
    cat = {name: np.concatenate([getattr(p, name) for p in parts]) for name in Notes.__dataclass_fields__}
    _, first = np.unique(cat["step"] * NUM_KEYS + cat["key"], return_index=True)
    hits = Notes(**{name: values[first] for name, values in cat.items()})
    total = max(int(r["start_step"]) + int(r["valid_steps"]) for r in rows)
    pedal = np.zeros(total, np.int64)
    for r in rows:
        start, valid = int(r["start_step"]), int(r["valid_steps"])
        pedal[start:start + valid] = np.asarray(r["pedal"], dtype=np.int64)[:valid]
    first_row = rows[0]
    spec = RenderSpec(
        steps_per_beat=int(first_row["steps_per_beat"]),
        tempo_steps=(0, *(int(r["start_step"]) for r in rows[1:])),  # the first tempo also covers a lead-in
        tempo_bpm=tuple(float(r["bpm"]) for r in rows), beats_per_bar=int(first_row["beats_per_bar"]),
        latency_ms=float(first_row["latency_ms"]) if apply_latency else 0.0, lead_in_beats=lead_in_beats,
        meta={"recording_id": first_row["recording_id"], "windows": [r["window_id"] for r in rows]},
    )
    return render_hits(hits, spec, pedal)


def render_performance(H: np.ndarray, O: np.ndarray, V: np.ndarray, bpm: float, steps_per_beat: int, *,
                       durations: np.ndarray | float = 1.0, pedal: np.ndarray | None = None,
                       latency_ms: float = 0.0, beats_per_bar: int = 4, threshold: float = 0.5,
                       lead_in_beats: int | None = None) -> ScoreTick:
    """Dense model output (``H``, ``O``, ``V`` of shape (steps, 88)) → ``symusic.Score``.

    A hit is a cell with ``H > threshold`` (H may be a probability); its offset is ``O`` in
    steps (positive = late) and its velocity ``round(V · 127)`` clipped to 1…127. Models that
    predict no durations get ``durations`` steps per note (an array of shape (steps, 88) or one
    number); ``pedal`` is CC64 per step.
    """
    hit, offset, velocity = (np.asarray(a, dtype=np.float64) for a in (H, O, V))
    if hit.ndim != 2 or hit.shape[1] != NUM_KEYS or offset.shape != hit.shape or velocity.shape != hit.shape:
        raise ValueError(f"H, O, V must all have shape (steps, {NUM_KEYS}); "
                         f"got {hit.shape}, {offset.shape}, {velocity.shape}")
    step, key = np.nonzero(hit > threshold)
    dur = np.broadcast_to(np.asarray(durations, dtype=np.float64), hit.shape)[step, key]
    midi_velocity = np.clip(np.rint(velocity[step, key] * MAX_MIDI_VALUE), 1, MAX_MIDI_VALUE).astype(np.int64)
    hits = Notes(step=step, key=key, offset=offset[step, key], velocity=midi_velocity, duration=dur)
    spec = RenderSpec(steps_per_beat=steps_per_beat, tempo_bpm=(float(bpm),), beats_per_bar=beats_per_bar,
                      latency_ms=latency_ms, lead_in_beats=lead_in_beats, meta={"source": "model output"})
    return render_hits(hits, spec, pedal)
