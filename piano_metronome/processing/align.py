"""Align one recording to its click grid: verify the grid, measure latency, quantize, cut windows.

The pipeline, in the order it runs (each step a short function below):

1. score every grid source against the note onsets and keep the best (conflicts are reported);
2. fit the exact period and phase from the notes (robust regression of onsets on steps);
3. find the bar line at sub-beat level (a grid off by one sub-beat puts the beats on "e");
4. remove a constant latency (players are early against a click), then give each chord one step;
5. keep one note per (step, key) cell, count the rest; cut bar-aligned windows.

Sign convention: ``offset = (played − grid) / step`` in [−0.5, 0.5), **positive = late**
(members of a chord rolled across a half step keep the chord's step and may exceed ±0.5 by
at most the chord window, 0.2 step).
GrooVAE uses the opposite sign (positive = early) and scales by 2; ``-offset * 2`` converts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from piano_metronome.constants import LOWEST_MIDI_PITCH
from piano_metronome.inputs.midi import Performance
from piano_metronome.kinds import ConflictKind, DropReason, RejectionKind, WarningKind
from piano_metronome.notes import Notes
from piano_metronome.processing.grid import (
    Candidate,
    Grid,
    GridError,
    candidate_grids,
    concentration,
    fast_median,
    refine_label,
    score_candidates,
)
from piano_metronome.processing.keys import KEY_NAMES, estimate_key, key_signature, parse_key

#: Tempi a click plays (BPM): a metronome's range with room to spare. A grid outside it is no click,
#: whatever fits (4 BPM "fits" any take as one long beat); a label outside it is a typing accident.
MIN_CLICK_BPM, MAX_CLICK_BPM = 20.0, 400.0
#: A player further off the click than this (ms, either way) is not playing to it.
MAX_LATENCY_MS = 250.0
#: Fewer notes cannot verify a grid: the score floor 4/√n is then above 0.9, near the best a real take reaches.
MIN_GRID_NOTES = 20
#: The most steps one take may span: what its pedal-per-step array (one byte a step) may cost.
MAX_TAKE_STEPS = 1 << 24

MAX_WINDOW_STEPS = 128  # note_step is stored as int8: steps 0…127


@dataclass(frozen=True)
class AlignOptions:
    """Knobs of the alignment, with the defaults the dataset is built with."""

    window_steps: int = 64
    hop_steps: int | None = None
    latency: str | float = "robust"
    chord_window_ms: float = 25.0
    min_concentration: float = 0.12
    drift_tolerance_steps: float = 0.25
    detect_shift: bool = True
    shift_margin: float = 1.5
    tie_tolerance: float = 0.01
    bpm_conflict: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.window_steps <= MAX_WINDOW_STEPS:
            raise ValueError(f"window_steps must be 1…{MAX_WINDOW_STEPS}, got {self.window_steps}")
        if not 1 <= self.hop <= self.window_steps:
            raise ValueError(f"hop_steps must be 1…window_steps, got {self.hop_steps}")
        if not (self.latency in ("robust", "none") or isinstance(self.latency, (int, float))):
            raise ValueError(f"latency must be 'robust', 'none' or a number of ms, got {self.latency!r}")

    @property
    def hop(self) -> int:
        """Steps between window starts (non-overlapping by default)."""
        return self.window_steps if self.hop_steps is None else self.hop_steps


@dataclass(frozen=True)
class RecordingInfo:
    """What the manifest says about a recording; labels are claims to check, not truth."""

    recording_id: str
    subset: str
    split: str
    steps_per_beat: int
    labelled_bpm: str = ""
    labelled_key: str = ""
    beat_sidecar: Path | None = None


@dataclass
class AlignmentReport:
    """Everything measured about one recording, kept in the dataset's ``recordings`` table.

    Findings are parallel lists, as the table stores them: ``warnings[i]`` is the text of a
    warning of kind ``warning_kinds[i]`` (and the same for conflicts). Kinds are stored as their
    plain string values (see :mod:`piano_metronome.kinds`), so the report survives JSON unchanged.
    Add findings only through :meth:`warn`, :meth:`conflict` and :meth:`reject`.
    """

    recording_id: str
    subset: str
    split: str
    path: str
    status: str = "ok"
    reason: str = ""
    reason_kind: str = ""
    grid_source: str = ""
    candidates: list[dict[str, float | str]] = field(default_factory=list)
    bpm_labelled: float | None = None
    bpm_tempo_map: float | None = None
    bpm_fitted: float | None = None
    bpm_used: float | None = None
    drift_ms: float = 0.0
    used_fitted_period: bool = False
    grid_shift_steps: int = 0
    steps_per_beat: int = 0
    beats_per_bar: int = 4
    latency_ms: float = 0.0
    fit_concentration: float = 0.0
    timing_sd_ms: float = 0.0
    mean_abs_offset: float = 0.0
    share_beyond_035: float = 0.0
    duration_s: float = 0.0
    notes_input: int = 0
    notes_placed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    windows: int = 0
    windows_empty: int = 0
    key_label: str = ""
    key_estimated: str = ""
    key_confidence: float = 0.0
    key_signature_agrees: bool | None = None
    conflicts: list[str] = field(default_factory=list)
    conflict_kinds: list[str] = field(default_factory=list)
    conflict_bpms: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warning_kinds: list[str] = field(default_factory=list)

    @property
    def notes_dropped(self) -> int:
        """All dropped notes, whatever the reason."""
        return sum(self.dropped.values())

    def warn(self, kind: WarningKind, text: str) -> None:
        """Record a warning: its kind (what counts use) and its text (what people read)."""
        self.warning_kinds.append(WarningKind(kind).value)
        self.warnings.append(text)

    def conflict(self, kind: ConflictKind, bpm: float, text: str) -> None:
        """Record a grid source the notes contradict, with the BPM it claimed (to 0.01) and the text."""
        self.conflict_kinds.append(ConflictKind(kind).value)
        self.conflict_bpms.append(round(float(bpm), 2))
        self.conflicts.append(text)

    def reject(self, kind: RejectionKind, reason: str) -> None:
        """Mark the recording rejected, with the kind of reason and the reason in words."""
        self.status, self.reason_kind, self.reason = "rejected", RejectionKind(kind).value, reason

    def check_findings(self) -> None:
        """Every finding has one kind: parallel lists of equal length (anything else is a bug)."""
        lengths = {"warnings": (len(self.warnings), len(self.warning_kinds)),
                   "conflicts": (len(self.conflicts), len(self.conflict_kinds), len(self.conflict_bpms))}
        broken = {name: n for name, n in lengths.items() if len(set(n)) != 1}
        if broken or (self.status == "rejected") != bool(self.reason_kind):
            raise AssertionError(f"{self.path}: findings and kinds out of step: {broken}, status {self.status!r}, "
                                 f"reason_kind {self.reason_kind!r}")


@dataclass(frozen=True)
class WindowFrame:
    """Where a take's windows start (steps and click seconds) and the grid's tempo over each one."""

    starts: np.ndarray
    start_s: np.ndarray
    bpm: np.ndarray
    empty: int  # windows skipped for holding no note


def window_frame(grid: Grid, note_steps: np.ndarray, total_steps: int, steps_per_beat: int,
                 options: AlignOptions) -> WindowFrame:
    """The windows of a take on its grid: the build cuts its windows with it, and so does re-cutting
    stored takes into windows of another length (the same numbers, so the same bytes)."""
    starts, empty = window_starts(note_steps, total_steps, options)
    bounds = grid.beats_to_seconds(np.stack([starts, starts + options.window_steps]) / steps_per_beat)
    bpm = 60.0 * options.window_steps / steps_per_beat / np.diff(bounds, axis=0)[0]
    return WindowFrame(starts, bounds[0], bpm.astype(np.float32), empty)


@dataclass(frozen=True)
class AlignedPerformance:
    """A recording on its grid: the notes, pedal per step, windows, the grid itself and the report.

    ``onset_s`` and ``release_s`` are the placed notes' played times (seconds from the file start),
    kept so a whole take can be stored with its performance, not only its quantized form.
    """

    info: RecordingInfo
    report: AlignmentReport
    notes: Notes
    pedal: np.ndarray
    window_starts: np.ndarray
    window_bpm: np.ndarray
    window_start_s: np.ndarray
    total_steps: int
    grid: Grid
    onset_s: np.ndarray
    release_s: np.ndarray

    @property
    def frame(self) -> WindowFrame:
        """The windows as one :class:`WindowFrame`."""
        return WindowFrame(self.window_starts, self.window_start_s, self.window_bpm, self.report.windows_empty)

    def window_slices(self, window_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """[begin, end) indices into ``notes`` for each window (notes are sorted by step)."""
        begin = np.searchsorted(self.notes.step, self.window_starts, side="left")
        end = np.searchsorted(self.notes.step, self.window_starts + window_steps, side="left")
        return begin, end


def align(performance: Performance, info: RecordingInfo, options: AlignOptions | None = None) -> AlignedPerformance:
    """Align one parsed recording; raises :class:`GridError` (with its kind) when it must be rejected.

    Any other exception is a bug (the accounting check raises ``AssertionError``), never bad input.
    """
    options = options or AlignOptions()
    report = _new_report(performance, info)
    _check_meter(performance, info, options)
    onsets = performance.onsets
    chosen = _choose_grid(performance, info, options, report)
    grid = _fit_grid(chosen, onsets, info.steps_per_beat, options, report)
    report.grid_source = grid.source
    _check_bpm_label(report, options)
    latency_s = _latency(grid, onsets, info.steps_per_beat, options)
    grid = _find_bar_line(grid, onsets - latency_s, performance.durations, info.steps_per_beat, options, report)
    steps_f = grid.seconds_to_beats(onsets - latency_s) * info.steps_per_beat
    step = _chord_steps(onsets, steps_f, grid, info.steps_per_beat, options.chord_window_ms)
    report.latency_ms = latency_s * 1000.0
    _check_plausible(grid, latency_s, info.steps_per_beat, performance.path, report)
    return _place(performance, info, options, report, grid, latency_s, steps_f, step)


def _new_report(performance: Performance, info: RecordingInfo) -> AlignmentReport:
    """A report with what is known before aligning: labels, input notes, excluded notes."""
    report = AlignmentReport(
        recording_id=info.recording_id, subset=info.subset, split=info.split, path=performance.path,
        steps_per_beat=info.steps_per_beat, beats_per_bar=performance.beats_per_bar,
        notes_input=performance.input_notes, duration_s=round(performance.end_seconds, 3),
        dropped={DropReason(reason).value: count for reason, count in performance.excluded.items()},
    )
    if performance.meter_changes:
        report.warn(WarningKind.METER_CHANGES_IGNORED, f"{performance.meter_changes} meter change(s) ignored; "
                    f"bars of {performance.beats_per_bar} beats assumed throughout")
    if not performance.tempo_map.explicit:
        report.warn(WarningKind.NO_TEMPO_EVENT, "no tempo event: the tempo-map grid is the MIDI default of 120 qpm")
    for kind, text in performance.findings:
        report.warn(WarningKind(kind), text)
    return report


def _check_meter(performance: Performance, info: RecordingInfo, options: AlignOptions) -> None:
    """Refuse a meter whose bars and windows do not line up: every bar line must start a window.

    A 3/4 bar of 16ths is 12 steps, and windows every 64 steps would start mid-bar (step 64 is
    bar 5 and a third); windows of another length would change the dataset's shape, so such takes
    are refused, naming the bar length and the hops that would fit.
    """
    bar, hop = performance.beats_per_bar * info.steps_per_beat, options.hop
    if hop % bar == 0 or (options.window_steps < bar and bar % hop == 0):  # whole bars, or bars of whole windows
        return
    fits = [n * bar for n in (hop // bar, hop // bar + 1) if 0 < n * bar <= MAX_WINDOW_STEPS]
    raise GridError(performance.path, f"bars of {performance.beats_per_bar}/4 are {bar} steps, and windows every "
                    f"{hop} steps would start mid-bar; windows of whole bars near that length: "
                    f"{' or '.join(map(str, fits)) or 'none'} steps", RejectionKind.METER_UNSUPPORTED)


def _check_plausible(grid: Grid, latency_s: float, steps_per_beat: int, path: str, report: AlignmentReport) -> None:
    """Refuse a grid no click plays: a tempo outside a metronome's range, or a player far off the click.

    A grid of 4 BPM "fits" anything (every onset is near a 3.75 s step) and would make a take of
    a few notes into a 36-minute one; a latency of −350 ms is no player following a click.
    """
    bpm = grid.median_bpm()
    if not MIN_CLICK_BPM <= bpm <= MAX_CLICK_BPM:
        raise GridError(path, f"the best grid ({grid.source}) is {bpm:.4g} BPM, outside what a click plays "
                        f"({MIN_CLICK_BPM:g}–{MAX_CLICK_BPM:g} BPM)", RejectionKind.IMPLAUSIBLE_GRID)
    beat_ms = 60000.0 / bpm
    if abs(latency_s * 1000.0) > min(MAX_LATENCY_MS, beat_ms / 4):
        raise GridError(path, f"latency {latency_s * 1000:.0f} ms on the {grid.source} grid at {bpm:.2f} BPM is "
                        f"beyond what a player following a click shows (±{min(MAX_LATENCY_MS, beat_ms / 4):.0f} ms)",
                        RejectionKind.IMPLAUSIBLE_GRID)


def _labelled_bpm(info: RecordingInfo, path: str) -> float | None:
    """The label's BPM as a number, or None when the file name gives none."""
    if not info.labelled_bpm:
        return None
    try:
        return float(info.labelled_bpm)
    except ValueError:
        raise GridError(path, f"labelled BPM {info.labelled_bpm!r} is not a number",
                            RejectionKind.BPM_LABEL_INVALID) from None


def _choose_grid(performance: Performance, info: RecordingInfo, options: AlignOptions,
                 report: AlignmentReport) -> Candidate:
    """Score every grid source against the notes, record conflicts, reject a bad best fit.

    When nothing fits as given and there is a BPM label, the label is searched ±3 % (a typed
    tempo may be rounded) before the recording is rejected.
    """
    labelled = _labelled_bpm(info, performance.path)
    report.bpm_labelled = labelled
    absurd = labelled is not None and not MIN_CLICK_BPM <= labelled <= MAX_CLICK_BPM
    if absurd:  # a conflict to report, never a reason to reject a take whose own grid fits
        report.warn(WarningKind.BPM_LABEL_ABSURD, f"BPM label {info.labelled_bpm} is outside what a click plays "
                    f"({MIN_CLICK_BPM:g}–{MAX_CLICK_BPM:g} BPM); ignored")
    n = len(performance.onsets)
    if n < MIN_GRID_NOTES:
        raise GridError(performance.path, f"too few notes to verify a grid ({n} < {MIN_GRID_NOTES})",
                        RejectionKind.TOO_FEW_NOTES)
    usable = None if absurd else labelled
    grids = candidate_grids(performance, usable, info.beat_sidecar)
    implicit = not performance.tempo_map.explicit  # 120 qpm by default: kept as a candidate, but ranked last on ties
    ranked = _prefer_clicks(score_candidates(grids, performance.onsets, info.steps_per_beat), options, implicit)
    floor = max(options.min_concentration, 4.0 / np.sqrt(n))
    if ranked[0].score < floor and usable is not None:
        refined = refine_label(usable, performance, info.steps_per_beat)
        ranked = _prefer_clicks(sorted([*ranked, refined], key=lambda c: -c.score), options, implicit)
    best = ranked[0]
    report.candidates = [c.as_dict() for c in ranked]
    report.grid_source, report.fit_concentration = best.grid.source, round(best.score, 4)
    tempo_map = next((c for c in ranked if c.grid.source == "tempo_map" and not implicit), None)
    report.bpm_tempo_map = round(tempo_map.bpm, 4) if tempo_map else None
    if best.score < floor:
        raise GridError(performance.path, f"no grid fits the notes: best {best.grid.source} at "
                            f"{best.bpm:.2f} BPM scores {best.score:.3f} < {floor:.3f}", RejectionKind.NO_GRID_FITS)
    _note_conflicts([c for c in ranked if not (implicit and c.grid.source == "tempo_map" and c is not best)],
                    options, report)
    if absurd and labelled is not None:
        report.conflict(ConflictKind.LABEL_BPM, labelled, f"label_bpm says {info.labelled_bpm} BPM, outside what a "
                        f"click plays; using {best.grid.source} ({best.bpm:.2f} BPM)")
    return best


_SOURCE_PRIORITY = {"click_track": 0, "beat_sidecar": 1, "tempo_map": 2, "label_bpm": 3}


def _prefer_clicks(ranked: list[Candidate], options: AlignOptions, implicit_tempo: bool = False) -> list[Candidate]:
    """Among candidates scoring within ``tie_tolerance`` of the best, prefer a real click.

    A label that equals the tempo map gives the same grid and the same score up to rounding;
    the click is the recorded truth, the label a typed claim. A tempo map the file never stated
    (``implicit_tempo``: MIDI's default 120 qpm) is no click: it comes after the label on a tie.
    """
    top = ranked[0].score

    def priority(candidate: Candidate) -> int:
        if implicit_tempo and candidate.grid.source == "tempo_map":
            return len(_SOURCE_PRIORITY)
        return _SOURCE_PRIORITY.get(candidate.grid.source, 9)

    return sorted(ranked, key=lambda c: (c.score < top - options.tie_tolerance, priority(c), -c.score))


def _note_conflicts(ranked: list[Candidate], options: AlignOptions, report: AlignmentReport) -> None:
    """Every disagreement between sources, with numbers, so the card can list them."""
    best = ranked[0]
    for other in ranked[1:]:
        if abs(other.bpm - best.bpm) > options.bpm_conflict:
            report.conflict(
                ConflictKind(other.grid.source), other.bpm,
                f"{other.grid.source} says {other.bpm:.2f} BPM (score {other.score:.3f}) but "
                f"{best.grid.source} says {best.bpm:.2f} BPM (score {best.score:.3f}); using {best.grid.source}"
            )


def _check_bpm_label(report: AlignmentReport, options: AlignOptions) -> None:
    """Flag a BPM label that the notes contradict, with the BPM fitted from the notes."""
    labelled, fitted = report.bpm_labelled, report.bpm_fitted
    if WarningKind.BPM_LABEL_ABSURD.value in report.warning_kinds:
        return  # said already: a label no click plays is no claim to compare
    if labelled is not None and fitted is not None and abs(labelled - fitted) > options.bpm_conflict:
        report.warn(WarningKind.BPM_LABEL_DISAGREES, f"BPM label {labelled:g} disagrees with the notes: fitted "
                    f"{fitted:.2f} BPM on the {report.grid_source} grid; the label is overridden")


def _robust_line(x: np.ndarray, y: np.ndarray, iterations: int = 3) -> tuple[float, float, float]:
    """Line ``y = a + b·x`` refitted on inliers (|residual| < 3·MAD): (a, b, standard error of b).

    Closed-form least squares: this runs a few thousand times per corpus build.
    """
    keep = np.ones(len(x), bool)
    a, b, se = fast_median(y), 1.0, np.inf
    for _ in range(iterations):
        xk, yk = x[keep], y[keep]
        if len(xk) < 3:
            break
        dx = xk - xk.mean()
        sxx = float(dx @ dx)
        if sxx == 0:
            break
        b = float(dx @ (yk - yk.mean())) / sxx
        a = float(yk.mean() - b * xk.mean())
        res = y - (a + b * x)
        se = float(np.sqrt(float(res[keep] @ res[keep]) / (len(xk) - 2) / sxx)) if len(xk) > 2 else np.inf
        inliers = np.abs(res) < 3 * 1.4826 * fast_median(np.abs(res)) + 1e-9
        if np.array_equal(inliers, keep):
            break
        keep = inliers
    return a, b, se


#: Prior SD of the period scale per grid source: a click is exact, a typed label only roughly right.
CLICK_PRIOR_SD = 2e-5
PERIOD_PRIOR_SD = {"tempo_map": CLICK_PRIOR_SD, "click_track": CLICK_PRIOR_SD, "beat_sidecar": 1e-3, "label_bpm": 0.05}


def _period_scale(grid: Grid, onsets: np.ndarray, steps_per_beat: int, horizon: float,
                  scale: float) -> tuple[float, float]:
    """One fit of the period scale on the onsets before ``horizon`` seconds: (scale, its SE).

    Notes of one step are averaged first, so a chord counts once (its notes share one timing).
    """
    chosen = onsets[: np.searchsorted(onsets, horizon, side="right")]  # onsets are sorted
    if len(chosen) < 3:  # a take that starts late: no evidence before this horizon yet
        return 1.0, np.inf
    steps_f = grid.rescaled(scale).seconds_to_beats(chosen) * steps_per_beat
    _, phase = concentration(steps_f)
    step = np.floor(steps_f - phase + 0.5)  # non-decreasing, so equal steps are adjacent
    first = np.concatenate([[True], step[1:] != step[:-1]])
    group = np.cumsum(first) - 1
    mean_onset = np.bincount(group, weights=chosen) / np.bincount(group)
    _, b, se = _robust_line(grid.beats_to_seconds(step[first] / steps_per_beat), mean_onset)
    return b, se


def _fit_grid(chosen: Candidate, onsets: np.ndarray, steps_per_beat: int, options: AlignOptions,
              report: AlignmentReport) -> Grid:
    """Fit the exact period from the notes, with the chosen grid as prior.

    Onsets are regressed on the prior's times of their steps, over a horizon that grows
    fourfold from 10 s to the whole take (so a label a few percent off cannot wrap the step count;
    a click is too exact to wrap, so its fit takes the whole take at once), and the slope is
    shrunk towards the prior by its standard error (``PERIOD_PRIOR_SD``).
    A click is kept unless the notes drift from it by more than ``drift_tolerance_steps``
    over the take (a slowly changing latency drifts 20–40 ms in the corpus and is no reason
    to leave the click); a BPM label is only a claim, so its fit replaces it.
    """
    grid = chosen.grid
    tau = PERIOD_PRIOR_SD.get(grid.source, 1e-3)
    end = float(onsets.max())
    scale, horizon = 1.0, (10.0 if tau > CLICK_PRIOR_SD else end)
    while True:
        b, se = _period_scale(grid, onsets, steps_per_beat, horizon, scale)
        if np.isfinite(se) and se > 0:
            w_data, w_prior = 1.0 / se**2, 1.0 / tau**2
            scale = (w_data * b + w_prior) / (w_data + w_prior)
        if horizon >= end:
            break
        horizon *= 4
    report.drift_ms = round((scale - 1.0) * end * 1000.0, 3)  # how far the fit and the prior part by the end
    report.bpm_fitted = round(chosen.bpm / scale, 4)
    step_ms = 60000.0 / chosen.bpm / steps_per_beat
    use_fit = grid.source == "label_bpm" or abs(report.drift_ms) > options.drift_tolerance_steps * step_ms
    report.used_fitted_period = bool(use_fit)
    if use_fit:
        if grid.source != "label_bpm":
            report.warn(WarningKind.NOTES_DRIFT_FROM_GRID, f"notes drift {report.drift_ms:.1f} ms from the "
                        f"{grid.source} over the take; using the fitted period ({report.bpm_fitted:.3f} BPM)")
        fitted = grid.rescaled(scale)  # the phase stays the click's (t = 0); the intercept is latency
        grid = Grid(grid.source + "+fit", fitted.knot_beats, fitted.knot_seconds, grid.beats_per_bar)
    report.bpm_used = round(grid.median_bpm(), 4)
    return grid


def _latency(grid: Grid, onsets: np.ndarray, steps_per_beat: int, options: AlignOptions) -> float:
    """The player's constant lag behind the click in seconds (negative = early).

    Robust: the median residual to the nearest step, iterated from the circular mean so a
    latency near half a step cannot flip the assignment.
    """
    if options.latency == "none":
        return 0.0
    if not isinstance(options.latency, str):
        return float(options.latency) / 1000.0
    steps_f = grid.seconds_to_beats(onsets) * steps_per_beat
    _, phase = concentration(steps_f)
    latency_steps = phase
    for _ in range(3):
        residual = steps_f - latency_steps - np.floor(steps_f - latency_steps + 0.5)
        latency_steps += fast_median(residual)
    # back to seconds at the local step length around the median onset
    mid = fast_median(onsets)
    step_s = float(np.diff(grid.beats_to_seconds(grid.seconds_to_beats(np.array([mid])) + [0, 1]))[0])
    return latency_steps * step_s / steps_per_beat


def _find_bar_line(grid: Grid, onsets: np.ndarray, durations: np.ndarray, steps_per_beat: int,
                   options: AlignOptions, report: AlignmentReport) -> Grid:
    """Detect a grid off by whole sub-beats: music puts its long notes on beats, not between them.

    Counting onsets alone is fooled by syncopation (one corpus take has 1.5× more onsets on
    the "&" than on beats); weighting by duration is not (corpus maximum 1.13). If a sub-beat
    residue other than 0 carries ``shift_margin`` × the beats' weight, the origin moves there.
    """
    if not options.detect_shift or steps_per_beat == 1:
        return grid
    step = np.floor(grid.seconds_to_beats(onsets) * steps_per_beat + 0.5).astype(np.int64)
    counts = np.bincount(step % steps_per_beat, weights=durations, minlength=steps_per_beat)
    best = int(np.argmax(counts))
    if best == 0 or counts[best] < options.shift_margin * counts[0]:
        return grid
    report.grid_shift_steps = best
    report.warn(WarningKind.BAR_LINE_MOVED, f"grid shifted by {best} sub-beat(s): sub-beat {best} carries "
                f"{counts[best] / counts[0]:.2f}× the note-seconds of the beats; moved the bar line")
    return grid.shifted_beats(best / steps_per_beat)


def _chord_steps(onsets: np.ndarray, steps_f: np.ndarray, grid: Grid, steps_per_beat: int,
                 chord_window_ms: float) -> np.ndarray:
    """Nearest step for each note, one step per chord.

    Notes whose onsets all lie within the chord window (25 ms, at most a fifth of a step)
    form a chord and share the step nearest their mean position, so a chord rolled across a
    half step is not split into two fake events. Its members may then sit up to a chord window
    beyond ±0.5 step (0.03 % of corpus notes); every other note's offset is in [−0.5, 0.5).
    A chain of close onsets spanning more than the window is no chord: each note rounds alone.
    """
    order = np.argsort(onsets, kind="stable")
    t, x = onsets[order], steps_f[order]
    step_s = 60.0 / grid.median_bpm() / steps_per_beat
    window = min(chord_window_ms / 1000.0, 0.2 * step_s)
    starts = np.concatenate([[True], np.diff(t) > window])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    span = np.maximum.reduceat(t, first) - np.minimum.reduceat(t, first)
    mean = np.bincount(group, weights=x) / np.bincount(group)
    chosen = np.where(span[group] <= window, np.floor(mean[group] + 0.5), np.floor(x + 0.5))
    step = np.empty_like(chosen)
    step[order] = chosen
    return step.astype(np.int64)


def _drop(mask: np.ndarray, reason: DropReason, report: AlignmentReport) -> None:
    """Count dropped notes under a reason (nothing is lost without a count)."""
    n = int(mask.sum())
    if n:
        report.dropped[reason.value] = report.dropped.get(reason.value, 0) + n


def _stored_offsets(offset: np.ndarray) -> np.ndarray:
    """Offsets as stored (float32); one just below +0.5 must not round up to 0.5, outside [−0.5, 0.5)."""
    stored = offset.astype(np.float32)
    stored[(offset < 0.5) & (stored >= 0.5)] = np.nextafter(np.float32(0.5), np.float32(0))
    return stored


def _place(performance: Performance, info: RecordingInfo, options: AlignOptions, report: AlignmentReport,
           grid: Grid, latency_s: float, steps_f: np.ndarray, step: np.ndarray) -> AlignedPerformance:
    """Keep one note per cell, drop what cannot be placed (counted), cut windows, fill the report."""
    offset = steps_f - step
    end_f = grid.seconds_to_beats(performance.onsets + performance.durations - latency_s) * info.steps_per_beat
    duration = end_f - steps_f
    key = performance.pitches.astype(np.int64) - LOWEST_MIDI_PITCH
    valid = step >= 0
    _drop(~valid, DropReason.BEFORE_FIRST_BAR, report)
    _drop(valid & ~(duration > 0), DropReason.ZERO_DURATION, report)
    valid &= duration > 0
    idx = np.flatnonzero(valid)
    # same key on the same step: keep the loudest (then the earliest), count the others
    order = idx[np.lexsort((performance.onsets[idx], -performance.velocities[idx], key[idx], step[idx]))]
    cell = step[order] * 128 + key[order]
    first = np.concatenate([[True], cell[1:] != cell[:-1]]) if len(order) else np.zeros(0, bool)
    _drop(~first, DropReason.SAME_CELL_COLLISION, report)
    keep = order[first]  # sorted by (step, key) already
    notes = Notes(
        step=step[keep], key=key[keep].astype(np.int8), offset=_stored_offsets(offset[keep]),
        velocity=performance.velocities[keep].astype(np.uint8), duration=duration[keep].astype(np.float32),
    )
    total_steps = int(notes.step.max()) + 1 if len(keep) else 0
    _check_placed(report, performance.path, total_steps)
    pedal = _pedal_per_step(performance, grid, latency_s, info.steps_per_beat, total_steps)
    frame = window_frame(grid, notes.step, total_steps, info.steps_per_beat, options)
    report.windows, report.windows_empty = len(frame.starts), frame.empty
    _timing_stats(report, notes, grid, info.steps_per_beat)
    _keys(report, performance, info)
    report.notes_placed = len(keep)
    _check_accounting(report, performance.path)
    report.check_findings()
    return AlignedPerformance(info, report, notes, pedal, frame.starts, frame.bpm, frame.start_s, total_steps,
                              grid, performance.onsets[keep], performance.onsets[keep] + performance.durations[keep])


def _check_placed(report: AlignmentReport, path: str, total_steps: int) -> None:
    """Refuse a take with no note left to window, or one too long for its per-step work.

    Sized before anything per step is allocated: a take's pedal costs a byte a step, so its
    span is bounded (``MAX_TAKE_STEPS``) whatever its notes (a far-out note would otherwise ask
    for gigabytes).
    """
    if total_steps == 0:
        dropped = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in sorted(report.dropped.items()))
        raise GridError(path, f"no note can be placed in a window: all {report.notes_input} dropped ({dropped})",
                        RejectionKind.NO_WINDOWS)
    if total_steps > MAX_TAKE_STEPS:
        raise GridError(path, f"the take spans {total_steps:,} steps on its grid; at most {MAX_TAKE_STEPS:,} are "
                        "accepted (a note far from the others?)", RejectionKind.TAKE_TOO_LONG)


#: Steps whose pedal is sampled at once: bounds the temporary arrays of a long take.
_PEDAL_CHUNK = 1 << 20


def _pedal_per_step(performance: Performance, grid: Grid, latency_s: float, steps_per_beat: int,
                    total_steps: int) -> np.ndarray:
    """Sustain CC64 value at each step (held from the last event; 0 before the first).

    The pedal is sampled at the *played* time of each step (grid + latency), because the
    foot is early or late together with the hands. Steps are sampled a chunk at a time, so the
    work arrays stay small however long the take is (the result is one byte a step).
    """
    values = np.zeros(total_steps, np.uint8)
    if not len(performance.pedal_times):
        return values
    for first in range(0, total_steps, _PEDAL_CHUNK):
        steps = np.arange(first, min(first + _PEDAL_CHUNK, total_steps))
        times = grid.beats_to_seconds(steps / steps_per_beat) + latency_s
        idx = np.searchsorted(performance.pedal_times, times, side="right") - 1
        values[steps] = np.where(idx >= 0, performance.pedal_values[np.clip(idx, 0, None)], 0)
    return values


def window_starts(step: np.ndarray, total_steps: int, options: AlignOptions) -> tuple[np.ndarray, int]:
    """Bar-aligned window starts every ``hop`` steps; windows without notes are skipped (counted).

    The trailing partial window is kept: its steps past the end are the genuine silence after
    the take ends, and dropping it (as GrooVAE does) would lose the last notes. Only the windows
    holding a note are listed (found from the notes' steps), so the work is bounded by the notes,
    never by the take's span; the empty ones are counted by arithmetic.
    """
    if total_steps == 0:
        return np.zeros(0, np.int64), 0
    hop, width = options.hop, options.window_steps
    every = -(-total_steps // hop)  # starts 0, hop, … below total_steps
    last = np.unique(step // hop)  # the windows holding step s start at multiples of hop in (s − width, s]
    reach = -(-width // hop)  # how many hop-spaced starts can cover one step
    if reach * len(last) >= every:  # a dense take: every start is as cheap
        candidates = np.arange(0, total_steps, hop, dtype=np.int64)
    else:
        candidates = np.unique((last[:, None] - np.arange(reach)[None, :]).ravel())
        candidates = candidates[candidates >= 0].astype(np.int64) * hop
    counts = np.searchsorted(step, candidates + width) - np.searchsorted(step, candidates)
    starts = candidates[counts > 0]
    return starts, every - len(starts)


def _timing_stats(report: AlignmentReport, notes: Notes, grid: Grid, steps_per_beat: int) -> None:
    """Spread of the human part: robust SD in ms, mean |offset|, share beyond 0.35 step."""
    if len(notes.offset) == 0:
        return
    step_ms = 60000.0 / grid.median_bpm() / steps_per_beat
    off = notes.offset.astype(np.float64)
    report.timing_sd_ms = round(1.4826 * fast_median(np.abs(off - fast_median(off))) * step_ms, 3)
    report.mean_abs_offset = round(float(np.abs(off).mean()), 5)
    report.share_beyond_035 = round(float((np.abs(off) > 0.35).mean()), 5)


def _keys(report: AlignmentReport, performance: Performance, info: RecordingInfo) -> None:
    """The labelled key (checked), the key estimated from the notes, and whether they agree."""
    estimate = estimate_key(performance.pitches, performance.durations)
    report.key_estimated = KEY_NAMES[estimate.key]
    report.key_confidence = round(estimate.confidence, 4)
    if not info.labelled_key:
        return
    try:
        label = parse_key(info.labelled_key)
    except ValueError as exc:
        report.warn(WarningKind.KEY_LABEL_UNREADABLE, f"key label: {exc}")
        return
    report.key_label = KEY_NAMES[label]
    report.key_signature_agrees = key_signature(label) == key_signature(estimate.key)
    if not report.key_signature_agrees:
        report.warn(WarningKind.KEY_LABEL_DISAGREES, f"key label {report.key_label} (signature "
                    f"{key_signature(label)}) disagrees with the notes: {report.key_estimated} "
                    f"(confidence {estimate.confidence:.2f})")


def _check_accounting(report: AlignmentReport, path: str) -> None:
    """Input notes must equal placed + dropped; anything else is a bug, never a silent loss."""
    if report.notes_input != report.notes_placed + report.notes_dropped:
        raise AssertionError(f"{path}: accounting broken: {report.notes_input} input ≠ "
                             f"{report.notes_placed} placed + {report.notes_dropped} dropped")

