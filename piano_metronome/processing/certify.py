"""An independent certificate for one take's grid: a published beat tracker, fed the note onsets alone.

The aligner scores the tempo map against the file-name label and the notes, so its grid is only as
trustworthy as the aligner. The certificate is a second opinion that shares none of its choices:

* **tracked side** — partitura's ``estimate_time`` (a Dixon multiple-agent beat tracker, no weights,
  no audio) gets the note onsets in seconds and nothing else: no tempo map, no label, no grid;
* **reference side** — the grid the dataset stores (click times after the fitted period and any moved
  bar line), passed in as a :class:`~piano_metronome.processing.grid.Grid`;
* **comparison** — mir_eval's beat F-measure (±70 ms, both sequences trimmed before 5 s, as
  ``mir_eval.beat.evaluate`` does), the tempo ratio tracked / grid snapped to a metrical multiple,
  and the median phase of the tracked beats against the grid.

Both libraries are imported only when a certificate is made; without the ``verify`` extra the error
says how to install it. This module is pure: arrays in, a :class:`Certificate` out, nothing printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import numpy as np

from piano_metronome.processing.grid import Grid

VERIFY_EXTRA = "pip install 'piano_metronome[verify]'"

AGREES = "agrees"
AGREES_AT_MULTIPLE = "agrees at a multiple"
DISAGREES = "disagrees"
VERDICTS = (AGREES, AGREES_AT_MULTIPLE, DISAGREES)

#: mir_eval's default F-measure window (MIREX): a tracked beat within ±70 ms of a grid beat is a hit.
F_MEASURE_WINDOW_S = 0.07
#: mir_eval.beat.evaluate drops beats before 5 s in both sequences (a tracker needs time to lock on).
TRIM_BEFORE_S = 5.0
#: Metrical levels a tracker may lock onto instead of the beat (tracked beats per grid beat).
MULTIPLES = (1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0, 4.0)
#: How far the tempo ratio may sit from its multiple: 4 %, the ACC1 tolerance of tempo estimation
#: (Gouyon et al. 2006). A 95-for-100 map is 5.3 % off, so it can never count as "1".
RATIO_TOLERANCE = 0.04
#: F-measure needed at the multiple's level for a verdict of agreement (see README "Certificates").
MIN_F_MEASURE = 0.8
#: A BPM label is wrong for the tracker when the tracked tempo (at its multiple) is this far from it.
LABEL_TOLERANCE = 0.02
#: A tracker that returns fewer beats (after trimming) has given no opinion worth comparing.
MIN_TRACKED_BEATS = 8


class VerifyExtraMissingError(ImportError):
    """partitura or mir_eval is not installed: the one-line fix is :data:`VERIFY_EXTRA`."""


@dataclass(frozen=True)
class Certificate:
    """The tracker's opinion of one take's grid, with the numbers behind the verdict.

    ``multiple`` is the metrical level the tracker chose (tracked beats per grid beat: 2 = it tapped
    8ths on a quarter-note click), or NaN when its tempo ratio is near none of :data:`MULTIPLES`.
    ``f_measure`` compares tracked beats with the grid's beats; ``f_measure_at_multiple`` with the
    grid at the tracker's level (equal when ``multiple`` is 1). ``phase_ms`` is the median signed
    distance of tracked beats from the nearest grid beat at that level (positive = tracked later
    than the click, like a latency). ``label_f_measure`` is the F-measure at the tracker's level against
a click at the file name's BPM (NaN without a label); ``label_disagrees`` is None without a label.
    """

    verdict: str
    tracked_bpm: float
    grid_bpm: float
    tempo_ratio: float
    multiple: float
    f_measure: float
    f_measure_at_multiple: float
    phase_ms: float
    tracked_beats: int
    label_f_measure: float
    label_disagrees: bool | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN stays a float; JSON writers in this project accept it)."""
        return asdict(self)


def _libraries() -> tuple[Callable[..., dict[str, Any]], ModuleType]:
    """partitura's tracker and mir_eval's beat module, or :class:`VerifyExtraMissingError` saying how to get them."""
    try:
        import mir_eval.beat
        from partitura.musicanalysis import estimate_time
    except ImportError as exc:
        raise VerifyExtraMissingError(f"certificates need partitura and mir_eval ({exc.name or exc} is missing): "
                                 f"{VERIFY_EXTRA}") from None
    return estimate_time, mir_eval.beat


def library_versions() -> dict[str, str]:
    """The versions that made a certificate, recorded so a rebuild can say if they changed."""
    from importlib.metadata import version

    _libraries()
    return {"partitura": version("partitura"), "mir_eval": version("mir_eval")}


def track_beats(onsets: np.ndarray) -> np.ndarray:
    """Beat times (s) partitura's Dixon tracker finds in the onsets alone, sorted.

    The tracker takes a note array; only ``onset_sec`` and ``duration_sec`` (it reads the pair to
    know the unit) are filled, and pitch is a constant: nothing but timing reaches it.
    """
    estimate_time, _ = _libraries()
    onsets = np.sort(np.asarray(onsets, dtype=np.float64))
    if len(onsets) == 0:
        return np.zeros(0)
    notes = np.zeros(len(onsets), dtype=[("onset_sec", "f8"), ("duration_sec", "f8"), ("pitch", "i4"),
                                         ("velocity", "i4"), ("id", "U8")])
    notes["onset_sec"], notes["duration_sec"], notes["pitch"] = onsets, 0.1, 60
    result = estimate_time(notes)
    beats = np.array([float(b[0]) for b in result["beats"]], dtype=np.float64)
    return np.unique(beats)


def grid_beats(grid: Grid, start_s: float, end_s: float, multiple: float = 1.0, phase: int = 0) -> np.ndarray:
    """The grid's beats (or its level at ``multiple`` tracked beats per beat) between two times.

    A level ``p/q`` has a beat every ``q/p`` grid beats; ``phase`` (0…q−1) picks which of the grid's
    ``1/p`` subdivisions it starts on, since half time can fall on beats 1 and 3 or on 2 and 4.
    """
    p, q = _fraction(multiple)
    first, last = grid.seconds_to_beats(np.array([start_s, end_s]))
    k = np.arange(math.floor((first * p - phase) / q) - 1, math.ceil((last * p - phase) / q) + 2)
    times = grid.beats_to_seconds((phase + k * q) / p)
    return times[(times >= start_s) & (times <= end_s)]


def _fraction(multiple: float) -> tuple[int, int]:
    """``multiple`` as a small fraction p/q (every entry of :data:`MULTIPLES` is one)."""
    from fractions import Fraction

    f = Fraction(multiple).limit_denominator(4)
    return f.numerator, f.denominator


def tempo_from_beats(beats: np.ndarray) -> float:
    """The tracked tempo: 60 / the median inter-beat interval of the tracked beats.

    The median is the tracker's dominant period: a missed or doubled beat cannot move it, nor can a
    stretch where the tracker switches to off-beats (half intervals), which would bend a line fitted
    through beat counts (corpus take d2/gi: F 0.91 at the beat, yet such a line read 1.05 × the tempo).
    """
    if len(beats) < 2:
        return math.nan
    return 60.0 / float(np.median(np.diff(beats)))


def nearest_multiple(ratio: float) -> float:
    """The metrical multiple within :data:`RATIO_TOLERANCE` of ``ratio``, or NaN when none is."""
    if not np.isfinite(ratio):
        return math.nan
    best = min(MULTIPLES, key=lambda m: abs(math.log(ratio / m)))
    return best if abs(ratio / best - 1.0) <= RATIO_TOLERANCE else math.nan


def f_measure(reference: np.ndarray, estimated: np.ndarray) -> float:
    """mir_eval's beat F-measure at ±70 ms, after its own 5 s trimming of both sequences."""
    _, beat = _libraries()
    reference, estimated = beat.trim_beats(reference, TRIM_BEFORE_S), beat.trim_beats(estimated, TRIM_BEFORE_S)
    return float(beat.f_measure(reference, estimated, F_MEASURE_WINDOW_S))


def phase_ms(reference: np.ndarray, estimated: np.ndarray) -> float:
    """Median signed distance (ms) from each tracked beat to its nearest reference beat."""
    if len(reference) == 0 or len(estimated) == 0:
        return math.nan
    idx = np.clip(np.searchsorted(reference, estimated), 1, len(reference) - 1) if len(reference) > 1 else \
        np.zeros(len(estimated), int)
    left, right = reference[idx - 1] if len(reference) > 1 else reference[idx], reference[idx]
    nearest = np.where(np.abs(estimated - left) <= np.abs(estimated - right), left, right)
    return float(np.median(estimated - nearest) * 1000.0)


def _best_level(grid: Grid, tracked: np.ndarray, span: tuple[float, float],
                multiple: float) -> tuple[float, np.ndarray]:
    """F-measure at the tracker's level, over the phases that level allows (the best one), and its beats."""
    _, q = _fraction(multiple)
    best_f, best_ref = -1.0, np.zeros(0)
    for phase in range(q):
        reference = grid_beats(grid, *span, multiple, phase)
        f = f_measure(reference, tracked)
        if f > best_f:
            best_f, best_ref = f, reference
    return best_f, best_ref


def verdict_of(tempo_ratio: float, multiple: float, f_at_multiple: float, tracked_beats: int) -> str:
    """The verdict from its numbers alone (``validate`` re-derives it from the stored ones).

    ``agrees``: the tracker's tempo is the grid's (±4 %) and its beats hit the grid's (F ≥ 0.8).
    ``agrees at a multiple``: the same at another metrical level (8ths, half notes, …).
    ``disagrees``: anything else, including a tracker that found almost no beats.
    """
    if tracked_beats < MIN_TRACKED_BEATS or not np.isfinite(multiple) or not f_at_multiple >= MIN_F_MEASURE:
        return DISAGREES
    if abs(tempo_ratio / multiple - 1.0) > RATIO_TOLERANCE:
        return DISAGREES
    return AGREES if multiple == 1.0 else AGREES_AT_MULTIPLE


def label_disagrees(labelled_bpm: float | None, tempo_map_bpm: float | None, label_f: float) -> bool | None:
    """Whether a file-name BPM contradicts both the tempo map (> 0.5 BPM apart) and the tracker.

    The tracker contradicts a label when a click at the label's BPM from t = 0 (where the corpus's
    exports start, on a bar line) fails the same test the stored grid must pass: F < 0.8 at the
    tracker's level. A tempo number alone could not tell 95 from 100 on a 40 s take (the tracker's
    tempo wanders a few percent); a 5 % wrong click drifts off the beats within bars.
    """
    if labelled_bpm is None or not np.isfinite(labelled_bpm):
        return None
    map_differs = tempo_map_bpm is None or not np.isfinite(tempo_map_bpm) or abs(labelled_bpm - tempo_map_bpm) > 0.5
    return bool(map_differs and not label_f >= MIN_F_MEASURE)


def _label_f(labelled_bpm: float | None, tracked: np.ndarray, span: tuple[float, float],
             tracked_bpm: float) -> float:
    """F-measure of the tracked beats against a constant click at the label's BPM, at the tracker's level."""
    from piano_metronome.processing.grid import constant_grid

    if labelled_bpm is None or not np.isfinite(labelled_bpm) or not 1 < labelled_bpm < 1000:
        return math.nan
    multiple = nearest_multiple(tracked_bpm / labelled_bpm)
    if not np.isfinite(multiple):
        return 0.0
    return _best_level(constant_grid(labelled_bpm, "label_bpm"), tracked, span, multiple)[0]


def certify_onsets(onsets: np.ndarray, grid: Grid, *, labelled_bpm: float | None = None,
                   tempo_map_bpm: float | None = None) -> Certificate:
    """The certificate of one take: track beats in ``onsets`` (seconds) and compare them with ``grid``.

    ``grid`` is the take's stored click grid; the tracker never sees it. The comparison runs over
    the played span (first to last onset, ±70 ms), where the grid is a claim about the notes.
    """
    onsets = np.sort(np.asarray(onsets, dtype=np.float64))
    if len(onsets) == 0:
        raise ValueError("no onsets: nothing to track")
    tracked = track_beats(onsets)
    span = (max(0.0, float(onsets[0]) - F_MEASURE_WINDOW_S), float(onsets[-1]) + F_MEASURE_WINDOW_S)
    tracked = tracked[(tracked >= span[0]) & (tracked <= span[1])]
    grid_bpm = grid.median_bpm()
    tracked_bpm = tempo_from_beats(tracked)
    ratio = tracked_bpm / grid_bpm if np.isfinite(tracked_bpm) else math.nan
    multiple = nearest_multiple(ratio)
    beats = grid_beats(grid, *span)
    f1 = f_measure(beats, tracked)
    if np.isfinite(multiple) and multiple != 1.0:
        f_level, level_beats = _best_level(grid, tracked, span, multiple)
    else:
        f_level, level_beats = f1, beats
    count = int(len(tracked[tracked >= TRIM_BEFORE_S]))
    verdict = verdict_of(ratio, multiple, f_level, count)
    phase = phase_ms(level_beats, tracked[tracked >= TRIM_BEFORE_S])
    label_f = _label_f(labelled_bpm, tracked, span, tracked_bpm)
    label = label_disagrees(labelled_bpm, tempo_map_bpm, label_f)
    return Certificate(verdict, _round(tracked_bpm, 4), _round(grid_bpm, 4), _round(ratio, 5), multiple,
                       _round(f1, 4), _round(f_level, 4), _round(phase, 2), count, _round(label_f, 4), label,
                       describe(verdict, ratio, multiple, f1, f_level, phase, count, labelled_bpm, label, label_f))


def _round(value: float, digits: int) -> float:
    """Rounded for storage (NaN kept), so the same take gives the same bytes on every machine."""
    return round(float(value), digits) if np.isfinite(value) else math.nan


def describe(verdict: str, ratio: float, multiple: float, f1: float, f_level: float, phase: float, count: int,
             labelled_bpm: float | None, label: bool | None, label_f: float) -> str:
    """One line a reader can check: the verdict and the numbers it rests on."""
    level = "no metrical multiple" if not np.isfinite(multiple) else f"multiple {fraction_text(multiple)}"
    text = (f"{verdict}: tracked/grid tempo {ratio:.3f} ({level}), F {f1:.2f} at the beat"
            + (f", {f_level:.2f} at the multiple" if np.isfinite(multiple) and multiple != 1.0 else "")
            + f", phase {phase:+.0f} ms, {count} tracked beats")
    if label:
        text += (f"; the BPM label {labelled_bpm:g} disagrees with both the tempo map and the tracker "
                 f"(F {label_f:.2f} against a click at {labelled_bpm:g})")
    return text


def fraction_text(multiple: float) -> str:
    """``2``, ``1/2``, ``3/2``: how a multiple reads in a note."""
    p, q = _fraction(multiple)
    return f"{p}" if q == 1 else f"{p}/{q}"
