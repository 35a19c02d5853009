"""Click grids: where each beat falls, from several sources, scored against the notes.

A grid maps seconds ↔ beats (piecewise linear, extrapolated with its end tempi). Every
source gives one: the MIDI tempo map (what a DAW writes with its click), a constant BPM from
the hand-typed label, a click track inside the file, or a beat-list sidecar. We never trust a
source blindly: each is scored by how tightly the note onsets gather on its sub-beats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from piano_metronome.inputs.midi import Performance, RecordingError
from piano_metronome.kinds import RejectionKind


class GridError(RecordingError):
    """A recording rejected because no trustworthy grid can be had from it, with the kind of reason."""

    def __init__(self, path: str | Path, reason: str, kind: RejectionKind) -> None:
        super().__init__(path, reason, kind)  # a kind is required here: the reason is always the aligner's


def fast_median(values: np.ndarray) -> float:
    """Median by one partial sort: ``np.median``'s checks cost more than the work on small arrays,
    and alignment takes a few thousand medians per corpus build."""
    n = len(values)
    if n == 0:
        return float("nan")
    k = n // 2
    if n % 2:
        return float(np.partition(values, k)[k])
    part = np.partition(values, (k - 1, k))
    return float(0.5 * (part[k - 1] + part[k]))


@dataclass(frozen=True)
class Grid:
    """A monotone map between beat positions and seconds, given by knots (beat, seconds)."""

    source: str
    knot_beats: np.ndarray
    knot_seconds: np.ndarray
    beats_per_bar: int = 4

    def seconds_to_beats(self, seconds: np.ndarray) -> np.ndarray:
        """Fractional beat position of times, extrapolating linearly past the end knots."""
        return _interp_extrapolate(np.asarray(seconds, dtype=np.float64), self.knot_seconds, self.knot_beats)

    def beats_to_seconds(self, beats: np.ndarray) -> np.ndarray:
        """Seconds at fractional beat positions (inverse of :meth:`seconds_to_beats`)."""
        return _interp_extrapolate(np.asarray(beats, dtype=np.float64), self.knot_beats, self.knot_seconds)

    def median_bpm(self) -> float:
        """The typical tempo, to compare sources by one number."""
        if len(self.knot_beats) < 2:
            raise ValueError("a grid needs two knots")
        bpm = 60.0 * np.diff(self.knot_beats) / np.diff(self.knot_seconds)
        return fast_median(bpm)

    def rescaled(self, scale: float, shift_s: float = 0.0) -> Grid:
        """A grid whose beat times are ``shift + scale · t`` (a fitted period and phase)."""
        return Grid(self.source, self.knot_beats, self.knot_seconds * scale + shift_s, self.beats_per_bar)

    def shifted_beats(self, beats: float) -> Grid:
        """The same grid with its origin moved by ``beats`` (a bar line found elsewhere)."""
        return Grid(self.source, self.knot_beats - beats, self.knot_seconds, self.beats_per_bar)


def _interp_extrapolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp`` with linear extrapolation by the first and last segments."""
    y: np.ndarray = np.interp(x, xp, fp)
    lo, hi = x < xp[0], x > xp[-1]
    if lo.any():
        y[lo] = fp[0] + (x[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    if hi.any():
        y[hi] = fp[-1] + (x[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return y


def constant_grid(bpm: float, source: str, beats_per_bar: int = 4) -> Grid:
    """A click at a constant tempo starting at t = 0."""
    if not 1 < bpm < 1000:
        raise ValueError(f"implausible BPM {bpm}")
    return Grid(source, np.array([0.0, 1.0]), np.array([0.0, 60.0 / bpm]), beats_per_bar)


def tempo_map_grid(performance: Performance) -> Grid:
    """The grid a DAW's click follows: the file's tempo map from tick 0."""
    tm = performance.tempo_map
    beats = tm.change_ticks / tm.ticks_per_beat
    beats = np.append(beats, beats[-1] + 1.0)  # a knot after the last change, so its tempo is extrapolated
    return Grid("tempo_map", beats.astype(np.float64), tm.beats_to_seconds(beats), performance.beats_per_bar)


def beat_times_grid(times: np.ndarray, source: str, beats_per_bar: int = 4, first_beat: float = 0.0) -> Grid:
    """A grid through given beat times (a click track or an annotated beat list)."""
    times = np.unique(np.asarray(times, dtype=np.float64))
    if len(times) < 2:
        raise ValueError(f"{source}: needs at least two beat times, got {len(times)}")
    return Grid(source, first_beat + np.arange(len(times), dtype=np.float64), times, beats_per_bar)


def read_beat_sidecar(path: Path, beats_per_bar: int = 4) -> Grid:
    """A beat-list sidecar: JSON ``{"beats": [seconds…], "downbeats": [bool…]}`` or one time per line.

    With downbeat flags, the first flagged beat becomes a bar line, so bar counting is right
    even when the list starts mid-bar.
    """
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        times = np.asarray(data["beats"], dtype=np.float64)
        flags = data.get("downbeats")
    else:
        times = np.array([float(line.split()[0]) for line in text.splitlines() if line.strip()])
        flags = None
    first_beat = 0.0
    if flags:
        flagged = np.flatnonzero(np.asarray(flags, bool))
        if len(flagged):
            first_beat = float((-flagged[0]) % beats_per_bar)
    return beat_times_grid(times, "beat_sidecar", beats_per_bar, first_beat)


def concentration(steps: np.ndarray) -> tuple[float, float]:
    """How tightly fractional steps gather on integers: (resultant length R in [0, 1], mean phase).

    R is the length of the mean unit vector of the phases 2π·steps: 1 when every onset
    sits on a sub-beat, ≈ 1/√n for a grid unrelated to the music. The mean phase (in steps,
    in [−0.5, 0.5)) is a first guess at the player's latency.
    """
    angle = 2 * np.pi * steps
    c, s = np.cos(angle).mean(), np.sin(angle).mean()
    return float(np.hypot(c, s)), float(np.arctan2(s, c) / (2 * np.pi))


@dataclass(frozen=True)
class Candidate:
    """A grid source with its score against the notes."""

    grid: Grid
    bpm: float
    score: float

    def as_dict(self) -> dict[str, float | str]:
        """For the alignment report."""
        return {"source": self.grid.source, "bpm": round(self.bpm, 4), "score": round(self.score, 4)}


def candidate_grids(
    performance: Performance, labelled_bpm: float | None, beat_sidecar: Path | None = None
) -> list[Grid]:
    """Every grid this recording offers: tempo map, label BPM, click track, sidecar."""
    grids = [tempo_map_grid(performance)]
    if labelled_bpm is not None:
        try:
            grids.append(constant_grid(labelled_bpm, "label_bpm", performance.beats_per_bar))
        except ValueError as exc:
            raise GridError(performance.path, f"labelled BPM: {exc}", RejectionKind.BPM_LABEL_INVALID) from None
    if performance.click_times is not None:
        grids.append(beat_times_grid(performance.click_times, "click_track", performance.beats_per_bar))
    if beat_sidecar is not None:
        grids.append(read_beat_sidecar(beat_sidecar, performance.beats_per_bar))
    return grids


def score_candidates(grids: list[Grid], onsets: np.ndarray, steps_per_beat: int) -> list[Candidate]:
    """Score each grid by onset concentration on its sub-beats, best first (stable on ties)."""
    scored = []
    for grid in grids:
        score, _ = concentration(grid.seconds_to_beats(onsets) * steps_per_beat)
        scored.append(Candidate(grid, grid.median_bpm(), score))
    order = sorted(range(len(scored)), key=lambda i: -scored[i].score)
    return [scored[i] for i in order]


#: Onsets the label search scores each trial tempo on: a longer take is searched on an even subsample
#: (then the winner is scored on every onset), so the search costs the same for any take.
REFINE_ONSETS = 50_000
#: Elements of the (trial tempi × onsets) phase matrix computed at once (32 MB of float64).
REFINE_BLOCK = 1 << 22


def refine_label(labelled_bpm: float, performance: Performance, steps_per_beat: int,
                 search: float = 0.03, resolution: float = 2e-4) -> Candidate:
    """The best constant grid within ±``search`` of a labelled BPM (a typed label may be rounded).

    Used only when no grid fits as given: a label 0.4 % off drifts a whole 16th in 40 s.
    The phases (trial tempi × onsets) are scored a block of tempi at a time, so memory stays
    bounded; a take of more than ``REFINE_ONSETS`` notes is searched on an even subsample.
    """
    factors = 1.0 + np.arange(-search, search + resolution / 2, resolution)
    onsets = performance.onsets
    if len(onsets) > REFINE_ONSETS:
        onsets = onsets[np.linspace(0, len(onsets) - 1, REFINE_ONSETS).astype(np.int64)]
    rates = factors * labelled_bpm / 60.0 * steps_per_beat
    scores = np.concatenate([_phase_scores(rates[i:i + _rows(len(onsets))], onsets)
                             for i in range(0, len(rates), _rows(len(onsets)))])
    best = float(labelled_bpm * factors[int(np.argmax(scores))])
    score = float(scores.max()) if len(onsets) == len(performance.onsets) else concentration(
        performance.onsets * best / 60.0 * steps_per_beat)[0]
    grid = constant_grid(best, "label_bpm", performance.beats_per_bar)
    return Candidate(grid, best, score)


def _rows(onsets: int) -> int:
    """Trial tempi per block, so a block's phase matrix holds at most ``REFINE_BLOCK`` numbers."""
    return max(1, REFINE_BLOCK // max(onsets, 1))


def _phase_scores(rates: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Concentration of the onsets' phases for each trial rate (steps per second)."""
    phases = 2 * np.pi * np.outer(rates, onsets)
    scores: np.ndarray = np.hypot(np.cos(phases).mean(axis=1), np.sin(phases).mean(axis=1))
    return scores
