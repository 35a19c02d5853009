"""Synthetic demo takes: a simulated pianist "recorded" to a click, with exact ground truth.

The real recordings have no answer key: nobody knows which grid step each note was meant for,
nor the player's true latency. These takes do. A deterministic generator (one
``np.random.default_rng(seed)`` per take, no global state) composes music on a sub-beat grid,
plays it like a human (early overall, per-chord jitter, tight chords, metrical accents) and
writes a MIDI file shaped like the corpus's DAW exports, plus a ``.truth.json`` holding each
note's intended step, its offset from that step and its velocity. Every take is SYNTHETIC and
labelled so in its track name, its truth file and the manifest.

Ground-truth convention (the alignment engine and the tests rely on it):

- ``step_s = 60 / true_bpm / steps_per_beat``; ``origin_s = grid_shift_steps * step_s``;
- note i is played at ``onset_s = origin_s + (step + offset) * step_s + latency_s``, with
  ``step >= 0`` counted from the player's first bar line and ``offset`` in steps, positive =
  late, in [-0.5, 0.5);
- ``true_bpm`` is the tempo the file's tempo map really holds (MIDI stores whole microseconds per
  quarter, so 84 becomes 83.9999664…); ``latency_ms`` is a whole number of ticks, so the
  median offset is exactly 0 after onsets are rounded to ticks;
- offsets are re-centred to median 0 over all notes, onsets rounded to integer ticks, negative
  ticks clipped to 0 (like the DAW export), and every offset recomputed from its final tick.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from piano_metronome.constants import HIGHEST_MIDI_PITCH, LOWEST_MIDI_PITCH, SUSTAIN_CC
from piano_metronome.paths import DEMO_SUBSET as SUBSET

GENERATOR = "piano_metronome.inputs.demo"
TICKS_PER_BEAT = 960
BEATS_PER_BAR = 4
TRACK_NAME = "Synthetic pianist (demo)"
TRUTH_SUFFIX = ".truth.json"

#: |offset| above this (in steps) makes nearest-step rounding doubtful (the README's threshold).
AMBIGUOUS_THRESHOLD = 0.35
#: The planned near-ambiguous notes get |offset| drawn from here, inside (0.36, 0.45) after rounding.
AMBIGUOUS_RANGE = (0.37, 0.44)
#: Minimum distance (steps) from a near-ambiguous note to any other onset, with margin over 0.3.
AMBIGUOUS_CLEARANCE = 0.34
#: Ordinary per-chord jitter is capped here (steps), so only the planned notes look ambiguous.
ORDINARY_LIMIT = 0.27
#: Per-note spread inside a chord (± ms), so a chord's notes lie within ~5 ms of each other.
CHORD_SPREAD_MS = 2.5
#: Same-cell collisions: the early strike and the late strike of one key, offsets in steps.
COLLISION_EARLY = (-0.31, -0.27)
COLLISION_LATE = (0.22, 0.28)
#: Lag-1 correlation of the per-chord jitter: players drift a little early or late for a while.
JITTER_CORRELATION = 0.4

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
TRIADS = {"maj": (0, 4, 7), "min": (0, 3, 7)}
#: One chord per bar, (root above the tonic, quality); both end on a V–I cadence.
MAJOR_PROGRESSION = (
    (0, "maj"), (9, "min"), (5, "maj"), (7, "maj"), (0, "maj"), (5, "maj"), (7, "maj"), (0, "maj"),
    (9, "min"), (5, "maj"), (2, "min"), (7, "maj"), (0, "maj"), (5, "maj"), (7, "maj"), (0, "maj"),
)
MINOR_PROGRESSION = (
    (0, "min"), (5, "min"), (7, "maj"), (0, "min"), (0, "min"), (8, "maj"), (5, "min"), (7, "maj"),
    (0, "min"), (5, "min"), (7, "maj"), (0, "min"), (8, "maj"), (5, "min"), (7, "maj"), (0, "min"),
)

ROLE_MELODY, ROLE_CHORD, ROLE_BASS, ROLE_ALBERTI = 0, 1, 2, 3
#: Base velocity per role: the melody sings over the chords, the Alberti bass stays soft.
ROLE_VELOCITY = (74, 56, 64, 50)

#: A planned note: (step, MIDI pitch, duration in steps, role), before any human timing.
PlannedNote = tuple[int, int, int, int]


@dataclass(frozen=True)
class TakeSpec:
    """What one demo take is: its labels, its true tempo and grid, and its planned features.

    ``labelled_*`` are what the file name claims (they may be wrong on purpose); ``tonic`` and
    ``minor`` the key the music is really in; ``tempo_qpm`` the click the player follows (the
    tempo map); ``style`` "d1" (free textures) or "d2" (chord melody over Alberti bass);
    ``latency_ms`` is snapped to whole ticks; ``jitter_ms`` is the per-chord timing SD.
    """

    take_id: str
    labelled_bpm: str
    labelled_key: str
    tonic: int
    minor: bool
    tempo_qpm: float
    steps_per_beat: int
    style: str
    bars: int
    latency_ms: float
    grid_shift_steps: int
    jitter_ms: float
    n_ambiguous: int
    n_collisions: int
    split: str
    seed: int

    @property
    def file_name(self) -> str:
        """``<id>_<bpm>_<key>.mid``, the corpus's naming, so the same parser reads it."""
        return f"{self.take_id}_{self.labelled_bpm}_{self.labelled_key}.mid"

    @property
    def recording_id(self) -> str:
        """The manifest id, ``demo/<id>``."""
        return f"{SUBSET}/{self.take_id}"

    @property
    def bar_steps(self) -> int:
        """Grid steps in one 4/4 bar."""
        return BEATS_PER_BAR * self.steps_per_beat

    @property
    def step_ticks(self) -> int:
        """Ticks in one grid step (960 ticks per beat divides by 2 and 4)."""
        return TICKS_PER_BEAT // self.steps_per_beat


#: The takes: two of each grid, one with a wrong BPM label, one with a grid shifted by a sub-beat.
TAKES: tuple[TakeSpec, ...] = (
    TakeSpec(take_id="da", labelled_bpm="100", labelled_key="C", tonic=0, minor=False, tempo_qpm=100.0,
             steps_per_beat=4, style="d1", bars=16, latency_ms=-12.5, grid_shift_steps=0, jitter_ms=18.0,
             n_ambiguous=4, n_collisions=2, split="train", seed=20240601),
    TakeSpec(take_id="db", labelled_bpm="84", labelled_key="Am", tonic=9, minor=True, tempo_qpm=84.0,
             steps_per_beat=2, style="d2", bars=16, latency_ms=-13.4, grid_shift_steps=0, jitter_ms=16.0,
             n_ambiguous=3, n_collisions=2, split="train", seed=20240602),
    # The file name says 95, the tempo map (and the click the player followed) says 100.
    TakeSpec(take_id="dc", labelled_bpm="95", labelled_key="F", tonic=5, minor=False, tempo_qpm=100.0,
             steps_per_beat=2, style="d2", bars=16, latency_ms=-20.0, grid_shift_steps=0, jitter_ms=20.0,
             n_ambiguous=3, n_collisions=3, split="validation", seed=20240603),
    # The export starts one 16th early: the player's bar lines sit one sub-beat after the map's.
    TakeSpec(take_id="dd", labelled_bpm="90", labelled_key="G", tonic=7, minor=False, tempo_qpm=90.0,
             steps_per_beat=4, style="d1", bars=16, latency_ms=-8.0, grid_shift_steps=1, jitter_ms=17.0,
             n_ambiguous=5, n_collisions=2, split="test", seed=20240604),
)


@dataclass(frozen=True)
class DemoTake:
    """One generated take: notes in ticks (file order), pedal, and the truth that goes with them."""

    spec: TakeSpec
    true_bpm: float
    latency_ticks: int
    ticks: np.ndarray
    end_ticks: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    steps: np.ndarray
    offsets: np.ndarray
    pedal_ticks: np.ndarray
    pedal_values: np.ndarray

    @property
    def tick_s(self) -> float:
        """Seconds per tick under the file's single tempo."""
        return 60.0 / (self.true_bpm * TICKS_PER_BEAT)

    @property
    def step_s(self) -> float:
        """Seconds per grid step: the truth convention's ``60 / true_bpm / steps_per_beat``."""
        return 60.0 / self.true_bpm / self.spec.steps_per_beat

    @property
    def latency_ms(self) -> float:
        """The declared latency, a whole number of ticks, in milliseconds."""
        return self.latency_ticks * 60.0 / (self.true_bpm * TICKS_PER_BEAT) * 1000.0


# --------------------------------------------------------------------------------------------
# Composition: (step, pitch, duration in steps, role) on the grid, before any human timing.


def _scale(spec: TakeSpec, chord_root: int) -> tuple[int, ...]:
    """Pitch classes of the key; in minor the V chord raises the 7th (harmonic minor, G# in Am)."""
    degrees = list(MINOR_SCALE if spec.minor else MAJOR_SCALE)
    if spec.minor and chord_root == 7:
        degrees[6] = 11
    return tuple((spec.tonic + d) % 12 for d in degrees)


def _chord(spec: TakeSpec, bar: int) -> tuple[int, tuple[int, ...]]:
    """The bar's chord as (root pitch class, chord pitch classes), from the mode's progression."""
    progression = MINOR_PROGRESSION if spec.minor else MAJOR_PROGRESSION
    root, quality = progression[bar % len(progression)]
    if bar == spec.bars - 1:
        root, quality = 0, "min" if spec.minor else "maj"  # always end on the tonic
    pc = (spec.tonic + root) % 12
    return root, tuple((pc + i) % 12 for i in TRIADS[quality])


def _in_range(pcs: tuple[int, ...], low: int, high: int) -> list[int]:
    """MIDI pitches in [low, high] whose pitch class is one of ``pcs``, ascending."""
    return [p for p in range(low, high + 1) if p % 12 in pcs]


@dataclass
class _Line:
    """A melodic line: a random walk that lands on chord tones on strong positions."""

    rng: np.random.Generator
    low: int
    high: int
    prev: int

    def next(self, pcs: tuple[int, ...], repeat: bool = False) -> int:
        """The next pitch: the previous one if ``repeat``, else a near neighbour in ``pcs``."""
        if repeat:
            return self.prev
        cands = [p for p in _in_range(pcs, self.low, self.high) if 0 < abs(p - self.prev) <= 5]
        if not cands:
            cands = sorted(_in_range(pcs, self.low, self.high), key=lambda p: abs(p - self.prev))[:2]
        weights = np.array([1.0 / (1.0 + abs(p - self.prev)) for p in cands])
        self.prev = int(cands[int(self.rng.choice(len(cands), p=weights / weights.sum()))])
        return self.prev


def _bass_root(pcs: tuple[int, ...], low: int) -> int:
    """The chord root in the octave from ``low`` up, the left hand's anchor."""
    return next(p for p in range(low, low + 12) if p % 12 == pcs[0])


def _d1_bar(spec: TakeSpec, bar: int, line: _Line, rng: np.random.Generator) -> list[PlannedNote]:
    """A 16th-grid bar in one of three textures: ballad, backbeat comping, or a run into a chord."""
    root, pcs = _chord(spec, bar)
    scale, s0, texture = _scale(spec, root), bar * spec.bar_steps, int(rng.integers(3))
    bass = _bass_root(pcs, 36)
    voicing = _in_range(pcs, 55, 70)[: 3 + int(rng.random() < 0.4)]
    notes: list[PlannedNote] = []
    repeats: set[int] = set()
    if texture == 0:  # bass on 1 and 3, chords on 1 and 3, melody in 8ths with a 16th pickup
        notes += [(s0, bass, 8, ROLE_BASS), (s0 + 8, bass + 7, 8, ROLE_BASS)]
        notes += [(s0 + s, p, 8, ROLE_CHORD) for s in (0, 8) for p in voicing]
        melody = [s for s in range(0, 16, 2) if s % 4 == 0 or rng.random() < 0.75]
        if rng.random() < 0.6:
            melody, repeats = sorted({*melody, 2, 3}), {3}  # the same key on consecutive 16ths
    elif texture == 1:  # walking quarter-note bass, chord stabs on 2 and 4, syncopated melody
        walk = (bass, bass + 4 if 4 in _intervals(pcs) else bass + 3, bass + 7, bass + 5)
        notes += [(s0 + 4 * i, p, 4, ROLE_BASS) for i, p in enumerate(walk)]
        notes += [(s0 + s, p, 3, ROLE_CHORD) for s in (4, 12) for p in voicing]
        melody = [0, 6, 8, 10, 14] if rng.random() < 0.5 else [0, 4, 8, 12, 14]
    else:  # held bass, a 16th run up to a chord on beat 3
        notes += [(s0, bass, 16, ROLE_BASS)]
        notes += [(s0 + 8, p, 8, ROLE_CHORD) for p in voicing]
        melody, repeats = [0, 1, 2, 3, 4, 6, 8, 12], {1}  # the run starts with a restruck key
    return notes + _melody(spec, line, s0, melody, (pcs, scale), repeats)


def _intervals(pcs: tuple[int, ...]) -> set[int]:
    """Intervals of the chord above its root, to tell a major third from a minor one."""
    return {(p - pcs[0]) % 12 for p in pcs}


def _melody(spec: TakeSpec, line: _Line, s0: int, steps: list[int],
            harmony: tuple[tuple[int, ...], tuple[int, ...]], repeats: set[int]) -> list[PlannedNote]:
    """Melody at bar-relative ``steps``: chord tones on beats, scale tones between, legato.

    ``harmony`` is (chord, scale) pitch classes; steps in ``repeats`` restrike the previous key.
    """
    notes: list[PlannedNote] = []
    for i, s in enumerate(steps):
        end = steps[i + 1] if i + 1 < len(steps) else spec.bar_steps
        pitch = line.next(harmony[0] if s % spec.steps_per_beat == 0 else harmony[1], repeat=s in repeats)
        notes.append((s0 + s, pitch, end - s, ROLE_MELODY))
    return notes


def _d2_bar(spec: TakeSpec, bar: int, line: _Line, rng: np.random.Generator) -> list[PlannedNote]:
    """An 8th-grid bar: right-hand chord melody on the beats, left-hand Alberti bass in 8ths."""
    root, pcs = _chord(spec, bar)
    scale, s0 = _scale(spec, root), bar * spec.bar_steps
    low = _bass_root(pcs, 45)
    third = next(p for p in range(low, low + 12) if p % 12 == pcs[1])
    alberti = (low, low + 7, third, low + 7) * 2
    notes = [(s0 + i, p, 1, ROLE_ALBERTI) for i, p in enumerate(alberti)]
    for s in range(0, 8, 2):
        if s in (0, 4) or rng.random() < 0.6:  # a chord under the melody note
            top = line.next(pcs)
            below = _in_range(pcs, top - 12, top - 1)[-(2 + int(rng.random() < 0.3)):]
            notes += [(s0 + s, p, 2, ROLE_CHORD) for p in below] + [(s0 + s, top, 2, ROLE_MELODY)]
        else:
            notes.append((s0 + s, line.next(scale), 1, ROLE_MELODY))
        if s % 4 == 2 and rng.random() < 0.35:  # an 8th after the beat: a passing note or a repeat
            notes.append((s0 + s + 1, line.next(scale, repeat=rng.random() < 0.5), 1, ROLE_MELODY))
    return notes


def _compose(spec: TakeSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The whole take on the grid, one bar at a time, with a final held tonic chord."""
    bar_fn = _d1_bar if spec.style == "d1" else _d2_bar
    start = _in_range((spec.tonic,), 67, 78)[0]
    line = _Line(rng, 62 if spec.style == "d1" else 64, 84, start)
    notes: list[PlannedNote] = []
    for bar in range(spec.bars - 1):
        notes += bar_fn(spec, bar, line, rng)
    s0, (_, pcs) = (spec.bars - 1) * spec.bar_steps, _chord(spec, spec.bars - 1)
    final = [_bass_root(pcs, 36), *_in_range(pcs, 55, 67)[:3], _in_range((spec.tonic,), 67, 78)[0]]
    notes += [(s0, p, spec.bar_steps, ROLE_CHORD) for p in final]
    return _dedupe(notes)


def _dedupe(notes: list[PlannedNote]) -> dict[str, np.ndarray]:
    """One note per (step, pitch), so no key is struck twice at the same planned instant."""
    seen: dict[tuple[int, int], PlannedNote] = {}
    for note in notes:
        seen.setdefault((int(note[0]), int(note[1])), note)
    rows = sorted(seen.values(), key=lambda n: (n[0], n[1]))
    return {
        "step": np.array([r[0] for r in rows], np.int64),
        "pitch": np.array([r[1] for r in rows], np.int64),
        "dur": np.array([r[2] for r in rows], np.float64),
        "role": np.array([r[3] for r in rows], np.int64),
        "early": np.zeros(len(rows), bool),  # the first strike of a same-cell collision
    }


# --------------------------------------------------------------------------------------------
# Human timing: per-chord jitter, planned collisions and near-ambiguous notes, median re-centring.


def _single_cells(notes: dict[str, np.ndarray], spec: TakeSpec) -> np.ndarray:
    """Indices of notes alone in their step, away from the first and last bar (clipping, ending)."""
    counts = np.bincount(notes["step"])
    alone = counts[notes["step"]] == 1
    inside = (notes["step"] >= spec.bar_steps) & (notes["step"] < (spec.bars - 1) * spec.bar_steps)
    return np.flatnonzero(alone & inside)


def _same_key_near(notes: dict[str, np.ndarray], i: int, reach: int) -> bool:
    """Whether note i's key is struck within ``reach`` steps by another note."""
    near = np.abs(notes["step"] - notes["step"][i]) <= reach
    return int(np.sum(near & (notes["pitch"] == notes["pitch"][i]))) > 1


def _add_collisions(notes: dict[str, np.ndarray], spec: TakeSpec, rng: np.random.Generator,
                    offsets: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Strike a lone key twice in one cell: early (≈ -0.3 step, short) then late (≈ +0.25)."""
    cands = [int(i) for i in rng.permutation(_single_cells(notes, spec)) if not _same_key_near(notes, i, 1)]
    chosen: list[int] = []
    for i in cands:
        if all(abs(notes["step"][i] - notes["step"][j]) > spec.bar_steps for j in chosen):
            chosen.append(i)
        if len(chosen) == spec.n_collisions:
            break
    if len(chosen) < spec.n_collisions:
        raise RuntimeError(f"{spec.take_id}: room for only {len(chosen)} same-cell collisions")
    special = np.zeros(len(offsets), bool)
    extra = {k: v[chosen] for k, v in notes.items()}
    extra["dur"], extra["early"] = np.full(len(chosen), 0.3), np.ones(len(chosen), bool)
    offsets[chosen] = rng.uniform(*COLLISION_LATE, len(chosen))
    special[chosen] = True
    early = rng.uniform(*COLLISION_EARLY, len(chosen))
    merged = {k: np.concatenate([notes[k], extra[k]]) for k in notes}
    return merged, np.concatenate([offsets, early]), np.concatenate([special, np.ones(len(chosen), bool)])


def _jitter(notes: dict[str, np.ndarray], spec: TakeSpec, step_s: float,
            rng: np.random.Generator) -> np.ndarray:
    """Offsets in steps: one correlated jitter per chord (cell) plus a tiny spread per note."""
    cells, inverse = np.unique(notes["step"], return_inverse=True)
    shocks = rng.standard_normal(len(cells))
    group = np.empty(len(cells))
    prev = 0.0
    for k, shock in enumerate(shocks):
        prev = JITTER_CORRELATION * prev + np.sqrt(1 - JITTER_CORRELATION**2) * shock
        group[k] = prev
    group = np.clip(group * spec.jitter_ms / 1000.0 / step_s, -ORDINARY_LIMIT, ORDINARY_LIMIT)
    spread = rng.uniform(-CHORD_SPREAD_MS, CHORD_SPREAD_MS, len(notes["step"])) / 1000.0 / step_s
    return group[inverse] + spread


def _place_ambiguous(notes: dict[str, np.ndarray], spec: TakeSpec, rng: np.random.Generator,
                     offsets: np.ndarray, special: np.ndarray) -> np.ndarray:
    """Push a few lone notes to |offset| ≈ 0.4 step, where no other onset is within 0.34 step."""
    chosen = 0
    for i in rng.permutation(_single_cells(notes, spec)):
        near_special = np.any(special & (np.abs(notes["step"] - notes["step"][i]) <= 2))
        if special[i] or near_special or _same_key_near(notes, i, 1):
            continue
        target = float(rng.choice([-1.0, 1.0]) * rng.uniform(*AMBIGUOUS_RANGE))
        others = np.delete(notes["step"] + offsets, i)
        if np.min(np.abs(others - (notes["step"][i] + target))) < AMBIGUOUS_CLEARANCE:
            continue
        offsets[i], special[i] = target, True
        chosen += 1
        if chosen == spec.n_ambiguous:
            return offsets
    raise RuntimeError(f"{spec.take_id}: room for only {chosen} near-ambiguous notes")


def _exact_ticks(spec: TakeSpec, steps: np.ndarray, offsets: np.ndarray, latency_ticks: int) -> np.ndarray:
    """Onsets in fractional ticks: origin + (step + offset) steps + latency."""
    ticks: NDArray[np.float64] = (spec.grid_shift_steps + steps + offsets) * spec.step_ticks + latency_ticks
    return ticks


def _recentre(spec: TakeSpec, steps: np.ndarray, offsets: np.ndarray, free: np.ndarray,
              latency_ticks: int) -> np.ndarray:
    """Shift the ordinary notes until the median offset (after clipping at tick 0) is exactly 0.

    The planned collisions and near-ambiguous notes keep their offsets; they sit in the tails,
    so moving the rest moves the median one for one. Clipping can change as the rest moves,
    hence the loop.
    """
    offsets = offsets.copy()
    for _ in range(50):
        effective = _clipped_offsets(spec, steps, offsets, latency_ticks)
        median = float(np.median(effective))
        if abs(median) < 1e-12:
            return effective
        offsets[free] -= median
    raise RuntimeError(f"{spec.take_id}: median offset did not settle at 0")


def _clipped_offsets(spec: TakeSpec, steps: np.ndarray, offsets: np.ndarray,
                     latency_ticks: int) -> np.ndarray:
    """Offsets as the file will show them once onsets before tick 0 are clipped to 0."""
    ticks = np.maximum(_exact_ticks(spec, steps, offsets, latency_ticks), 0.0)
    return _offsets_from_ticks(spec, steps, ticks, latency_ticks)


def _offsets_from_ticks(spec: TakeSpec, steps: np.ndarray, ticks: np.ndarray,
                        latency_ticks: int) -> np.ndarray:
    """Invert the truth convention: offset = (tick - origin - latency) / step_ticks - step."""
    offsets: NDArray[np.float64] = (ticks - latency_ticks) / spec.step_ticks - spec.grid_shift_steps - steps
    return offsets


# --------------------------------------------------------------------------------------------
# Durations, velocities, pedal.


def _end_ticks(notes: dict[str, np.ndarray], ticks: np.ndarray, spec: TakeSpec,
               rng: np.random.Generator) -> np.ndarray:
    """Legato-ish releases; a key is always released at least a tick before it is struck again."""
    lengths = np.rint(notes["dur"] * spec.step_ticks * rng.uniform(0.82, 0.98, len(ticks)))
    ends = ticks + np.maximum(lengths.astype(np.int64), 1)
    for pitch in np.unique(notes["pitch"]):
        idx = np.flatnonzero(notes["pitch"] == pitch)
        idx = idx[np.argsort(ticks[idx], kind="stable")]
        ends[idx[:-1]] = np.minimum(ends[idx[:-1]], ticks[idx[1:]] - 1)
    if np.any(ends <= ticks):
        raise RuntimeError(f"{spec.take_id}: a note would have no length")
    return ends


def metrical_accent(steps: np.ndarray, steps_per_beat: int) -> np.ndarray:
    """Velocity added by metrical position in a 4/4 bar: the hierarchy a player leans on.

    Downbeat +14, beat 3 +7, beats 2 and 4 +3, 8th off-beats -4, 16th off-beats -9.
    """
    pos = np.asarray(steps) % (BEATS_PER_BAR * steps_per_beat)
    accent = np.where(pos % steps_per_beat != 0, -4.0, 3.0)
    accent[pos == 0], accent[pos == 2 * steps_per_beat] = 14.0, 7.0
    if steps_per_beat >= 4:
        accent[pos % (steps_per_beat // 2) != 0] = -9.0
    return accent


def _velocities(notes: dict[str, np.ndarray], spec: TakeSpec, rng: np.random.Generator) -> np.ndarray:
    """Role level + metrical accent (downbeats loud, off-beats soft) + a phrase arch + noise."""
    accent = metrical_accent(notes["step"], spec.steps_per_beat)
    phrase = 6.0 * np.sin(np.pi * ((notes["step"] / spec.bar_steps) % 4) / 4)
    level = np.array(ROLE_VELOCITY, np.float64)[notes["role"]] - 10.0 * notes["early"]
    raw = level + accent + phrase + rng.normal(0.0, 5.0, len(accent))
    velocities: NDArray[np.int64] = np.clip(np.rint(raw), 20, 120).astype(np.int64)
    return velocities


def _pedal(spec: TakeSpec, steps: np.ndarray, ticks: np.ndarray, end_tick: int, tick_s: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sustain pedal changed once per bar: a release ramp just after the downbeat, then a press."""
    ms = 0.001 / tick_s
    times: list[float] = []
    values: list[int] = []
    for bar in range(spec.bars):
        down = float(ticks[steps == bar * spec.bar_steps].min())
        if bar > 0:
            start = down + rng.uniform(25, 45) * ms
            times += [start + k * rng.uniform(9, 13) * ms for k in range(4)]
            values += [96, 60, 28, 0]
        start = down + rng.uniform(100, 150) * ms
        times += [start + k * rng.uniform(9, 13) * ms for k in range(4)]
        values += [24, 64, 100, 127]
    start = end_tick + rng.uniform(40, 80) * ms
    times += [start + k * 12 * ms for k in range(4)]
    values += [96, 60, 28, 0]
    order = np.argsort(np.rint(times), kind="stable")
    return np.rint(times).astype(np.int64)[order], np.array(values, np.int64)[order]


# --------------------------------------------------------------------------------------------
# Putting a take together, and writing it.


def tempo_qpm(qpm: float) -> float:
    """The tempo a MIDI file really stores for ``qpm``: whole microseconds per quarter, read back."""
    mspq = round(60_000_000 / qpm)
    return 60_000_000 / mspq


def generate_take(spec: TakeSpec) -> DemoTake:
    """Compose, perform and quantize one take; the same spec always gives the same take."""
    rng = np.random.default_rng(spec.seed)
    true_bpm = tempo_qpm(spec.tempo_qpm)
    tick_s = 60.0 / (true_bpm * TICKS_PER_BEAT)
    latency_ticks = round(spec.latency_ms / 1000.0 / tick_s)
    step_s = 60.0 / true_bpm / spec.steps_per_beat
    notes = _compose(spec, rng)
    offsets = _jitter(notes, spec, step_s, rng)
    notes, offsets, special = _add_collisions(notes, spec, rng, offsets)
    offsets = _place_ambiguous(notes, spec, rng, offsets, special)
    offsets = _recentre(spec, notes["step"], offsets, ~special, latency_ticks)
    ticks = np.maximum(np.rint(_exact_ticks(spec, notes["step"], offsets, latency_ticks)), 0).astype(np.int64)
    ends = _end_ticks(notes, ticks, spec, rng)
    velocities = _velocities(notes, spec, rng)
    pedal_ticks, pedal_values = _pedal(spec, notes["step"], ticks, int(ends.max()), tick_s, rng)
    order = np.lexsort((notes["pitch"], ticks))
    take = DemoTake(
        spec=spec, true_bpm=true_bpm, latency_ticks=latency_ticks, ticks=ticks[order], end_ticks=ends[order],
        pitches=notes["pitch"][order], velocities=velocities[order], steps=notes["step"][order],
        offsets=_offsets_from_ticks(spec, notes["step"], ticks, latency_ticks)[order],
        pedal_ticks=pedal_ticks, pedal_values=pedal_values,
    )
    _check(take)
    return take


def _check(take: DemoTake) -> None:
    """Refuse a take that breaks the truth convention, so a bad seed never reaches the files."""
    spec, off = take.spec, take.offsets
    problems = []
    if np.any(off < -0.5) or np.any(off >= 0.5):
        problems.append("an offset outside [-0.5, 0.5)")
    if abs(float(np.median(off))) > 1e-9:
        problems.append(f"median offset {np.median(off):.2e} is not 0")
    if int(np.sum(np.abs(off) > AMBIGUOUS_THRESHOLD)) != spec.n_ambiguous:
        problems.append("near-ambiguous notes other than the planned ones")
    if len(set(zip(take.ticks.tolist(), take.pitches.tolist(), strict=True))) != len(take.ticks):
        problems.append("two notes of one key at one tick")
    if np.any((take.pitches < LOWEST_MIDI_PITCH) | (take.pitches > HIGHEST_MIDI_PITCH)):
        problems.append("a note outside the 88 keys")
    if problems:
        raise RuntimeError(f"{spec.take_id}: " + "; ".join(problems))


class TruthNote(TypedDict):
    """One note of a truth file: what was played and the grid step it was meant for."""

    pitch: int
    velocity: int
    step: int
    offset: float
    onset_s: float
    duration_s: float


class Truth(TypedDict):
    """A take's ``.truth.json``: its labels, true tempo, grid and latency, and every note."""

    synthetic: bool
    generator: str
    seed: int
    recording_id: str
    file_name: str
    labelled_bpm: str
    labelled_key: str
    true_bpm: float
    steps_per_beat: int
    beats_per_bar: int
    latency_ms: float
    grid_shift_steps: int
    notes: list[TruthNote]


def truth(take: DemoTake) -> Truth:
    """The ground-truth record of a take (notes in file order: by onset tick, then pitch)."""
    spec = take.spec
    onsets = take.ticks * take.tick_s
    durations = (take.end_ticks - take.ticks) * take.tick_s
    notes: list[TruthNote] = [
        {"pitch": int(p), "velocity": int(v), "step": int(s), "offset": _num(o), "onset_s": _num(t),
         "duration_s": _num(d)}
        for p, v, s, o, t, d in zip(take.pitches, take.velocities, take.steps, take.offsets, onsets,
                                    durations, strict=True)
    ]
    return {
        "synthetic": True, "generator": GENERATOR, "seed": spec.seed, "recording_id": spec.recording_id,
        "file_name": spec.file_name, "labelled_bpm": spec.labelled_bpm, "labelled_key": spec.labelled_key,
        "true_bpm": _num(take.true_bpm), "steps_per_beat": spec.steps_per_beat,
        "beats_per_bar": BEATS_PER_BAR, "latency_ms": _num(take.latency_ms),
        "grid_shift_steps": spec.grid_shift_steps, "notes": notes,
    }


def _num(x: float) -> float:
    """A float fixed to 9 decimals (and never -0.0), so the JSON text is the same on every run."""
    return round(float(x), 9) + 0.0


def truth_path(midi_path: Path) -> Path:
    """Where a take's truth lives: beside the MIDI, same stem, ``.truth.json``."""
    return midi_path.with_name(midi_path.stem + TRUTH_SUFFIX)


def write_midi(take: DemoTake, path: Path) -> None:
    """One piano track like a DAW export: name, program 0, one tempo, one 4/4, notes and CC64."""
    # symusic.Score(…), .Track(…), .Note(…) dispatch to these tick classes; naming them gives typed objects
    from symusic.core import ControlChangeTick, NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

    score = ScoreTick(TICKS_PER_BEAT)
    score.tempos.append(TempoTick(0, mspq=round(60_000_000 / take.spec.tempo_qpm)))
    score.time_signatures.append(TimeSignatureTick(0, BEATS_PER_BAR, 4))
    track = TrackTick(TRACK_NAME, 0, False)
    for t, e, p, v in zip(take.ticks, take.end_ticks, take.pitches, take.velocities, strict=True):
        track.notes.append(NoteTick(int(t), int(e - t), int(p), int(v)))
    for t, v in zip(take.pedal_ticks, take.pedal_values, strict=True):
        track.controls.append(ControlChangeTick(int(t), SUSTAIN_CC, int(v)))
    score.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))


def write_truth(take: DemoTake, path: Path) -> None:
    """Sorted keys, 9-decimal floats, indent 1, trailing newline: byte-identical every time."""
    path.write_text(json.dumps(truth(take), sort_keys=True, indent=1) + "\n", encoding="utf-8")


def why_not_demo_file(path: Path) -> str | None:
    """None for a file :func:`write_demo` writes (a take, its truth, the demo manifest), else why not.

    Recognised by content, not by name alone: a take carries the synthetic track name, a truth
    file the generator's name, the manifest our header and only ``demo`` rows. So ``demo --out``
    regenerates its own folder but never writes over a musician's takes or the corpus manifest.
    """
    from piano_metronome.inputs.manifest import is_manifest_file, read_manifest

    not_ours = "which is not a file the demo command writes (a synthetic take, its .truth.json, the demo manifest)"
    if path.is_symlink() or not path.is_file():
        return not_ours
    try:
        if path.name == "manifest.csv" and is_manifest_file(path):
            return None if all(r.subset == SUBSET for r in read_manifest(path, problems=[])) else not_ours
        if path.name.endswith(TRUTH_SUFFIX):
            return None if json.loads(path.read_text(encoding="utf-8")).get("generator") == GENERATOR else not_ours
        if path.suffix == ".mid":
            data = path.read_bytes()
            return None if data.startswith(b"MThd") and TRACK_NAME.encode() in data else not_ours
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON / UTF-8, JSON not an object
        return not_ours
    return not_ours


def write_demo(folder: Path, takes: tuple[TakeSpec, ...] = TAKES) -> list[Path]:
    """Write every take's MIDI and truth, then the demo manifest; returns the paths written.

    Each file is written to a temp file and renamed into place, so an interrupted run leaves
    no half-written take that the next run would not recognise as its own.
    """
    from piano_metronome.inputs.manifest import scan_recordings, write_manifest
    from piano_metronome.safety import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for spec in takes:
        take = generate_take(spec)
        midi = folder / spec.file_name
        write_atomic(midi, partial(write_midi, take))
        write_atomic(truth_path(midi), partial(write_truth, take))
        written += [midi, truth_path(midi)]
    by_name = {spec.file_name: spec for spec in takes}
    rows = [
        replace(row, steps_per_beat=by_name[row.file_name].steps_per_beat, split=by_name[row.file_name].split,
                source_url="")
        for row in scan_recordings(folder, SUBSET, steps_per_beat=0, source_url=None)
        if row.file_name in by_name
    ]
    manifest = folder / "manifest.csv"
    write_manifest(rows, manifest)
    return [*written, manifest]
