"""The alignment engine against ground truth (the demo takes) and against the real corpus."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from piano_metronome.inputs.manifest import read_manifest
from piano_metronome.inputs.midi import Performance, RecordingError, TempoMap, read_midi
from piano_metronome.kinds import ConflictKind, WarningKind
from piano_metronome.processing.align import AlignOptions, RecordingInfo, align
from piano_metronome.processing.recording import info_of

DEMO = Path(__file__).resolve().parent.parent / "raw_midi" / "demo"
DEMO_ROWS = {r.recording_id: r for r in read_manifest(DEMO / "manifest.csv")}


def demo_take(recording_id: str):
    """(truth, performance, manifest row) of a demo take."""
    row = DEMO_ROWS[recording_id]
    midi = DEMO / row.file_name
    truth = json.loads(midi.with_suffix(".truth.json").read_text(encoding="utf-8"))
    return truth, read_midi(midi), row


def truth_arrays(truth: dict) -> dict[str, np.ndarray]:
    """The truth notes as arrays (same order as the performance's notes)."""
    notes = truth["notes"]
    return {k: np.array([n[k] for n in notes]) for k in ("pitch", "velocity", "step", "offset", "onset_s")}


def placed_cells(aligned) -> dict[tuple[int, int], tuple[float, int]]:
    """(step, MIDI pitch) → (offset, velocity) of every placed note."""
    n = aligned.notes
    rows = zip(n.step, n.key, n.offset, n.velocity, strict=True)
    return {(int(s), int(k) + 21): (float(o), int(v)) for s, k, o, v in rows}


def expected_kept(truth: dict) -> dict[tuple[int, int], int]:
    """Per (step, pitch) cell, the truth note the documented rule keeps: loudest, then earliest."""
    t = truth_arrays(truth)
    kept: dict[tuple[int, int], int] = {}
    for i in range(len(t["step"])):
        cell = (int(t["step"][i]), int(t["pitch"][i]))
        j = kept.get(cell)
        if j is None or (t["velocity"][i], -t["onset_s"][i]) > (t["velocity"][j], -t["onset_s"][j]):
            kept[cell] = i
    return kept


@pytest.mark.parametrize("recording_id", sorted(DEMO_ROWS))
class TestDemoGroundTruth:
    """Each acceptance bound of the alignment issue, on every demo take."""

    def test_latency_within_1ms(self, recording_id):
        truth, perf, row = demo_take(recording_id)
        report = align(perf, info_of(row)).report
        assert abs(report.latency_ms - truth["latency_ms"]) < 1.0

    def test_fitted_bpm_within_001(self, recording_id):
        truth, perf, row = demo_take(recording_id)
        report = align(perf, info_of(row)).report
        assert abs(report.bpm_fitted - truth["true_bpm"]) < 0.01
        assert report.grid_source.startswith("tempo_map")

    def test_notes_on_true_step_with_exact_offsets(self, recording_id):
        truth, perf, row = demo_take(recording_id)
        cells = placed_cells(align(perf, info_of(row)))
        kept = expected_kept(truth)
        t = truth_arrays(truth)
        clear = np.abs(t["offset"]) < 0.4
        assert clear.sum() > 0.9 * len(clear)
        for i in np.flatnonzero(clear):
            cell = (int(t["step"][i]), int(t["pitch"][i]))
            assert cell in cells, f"note {cell[1]} of step {cell[0]} not on its true step"
            if kept[cell] == i:
                assert abs(cells[cell][0] - t["offset"][i]) < 1e-3
                assert cells[cell][1] == t["velocity"][i]

    def test_accounting_and_collisions(self, recording_id):
        truth, perf, row = demo_take(recording_id)
        report = align(perf, info_of(row)).report
        t = truth_arrays(truth)
        cells = list(zip(t["step"].tolist(), t["pitch"].tolist(), strict=True))
        duplicates = len(cells) - len(set(cells))
        assert duplicates >= 1
        assert report.dropped == {"same_cell_collision": duplicates}
        assert report.notes_input == len(cells) == report.notes_placed + report.notes_dropped

    def test_collision_keeps_the_loudest_then_earliest(self, recording_id):
        truth, perf, row = demo_take(recording_id)
        cells = placed_cells(align(perf, info_of(row)))
        t = truth_arrays(truth)
        for cell, i in expected_kept(truth).items():
            assert cells[cell] == pytest.approx((t["offset"][i], t["velocity"][i]), abs=1e-3)


def test_wrong_bpm_label_detected_and_overridden():
    truth, perf, row = demo_take("demo/dc")
    assert float(row.labelled_bpm) != truth["true_bpm"]
    report = align(perf, info_of(row)).report
    assert report.grid_source == "tempo_map"
    assert ConflictKind.LABEL_BPM in report.conflict_kinds
    label_bpm = report.conflict_bpms[report.conflict_kinds.index(ConflictKind.LABEL_BPM)]
    assert label_bpm == round(float(row.labelled_bpm), 2)
    (flagged,) = [w for k, w in zip(report.warning_kinds, report.warnings, strict=True)
                  if k == WarningKind.BPM_LABEL_DISAGREES]
    assert f"{report.bpm_fitted:.2f}" in flagged


def test_grid_shifted_by_one_sub_beat_detected():
    truth, perf, row = demo_take("demo/dd")
    assert truth["grid_shift_steps"] == 1
    report = align(perf, info_of(row)).report
    assert report.grid_shift_steps == 1


def test_no_shift_reported_on_unshifted_takes():
    for recording_id in ("demo/da", "demo/db", "demo/dc"):
        _, perf, row = demo_take(recording_id)
        assert align(perf, info_of(row)).report.grid_shift_steps == 0


def _without_tempo_map(perf: Performance) -> Performance:
    """The same notes with no tempo event in the file (the MIDI default 120 qpm applies)."""
    return dataclasses.replace(perf, tempo_map=TempoMap(960, np.array([0]), np.array([120.0]), explicit=False))


@pytest.mark.parametrize("label_error", [0.0, 0.004, -0.004])
def test_label_only_grid_is_fitted(label_error):
    truth, perf, row = demo_take("demo/da")
    info = dataclasses.replace(info_of(row), labelled_bpm=f"{truth['true_bpm'] * (1 + label_error):.3f}")
    report = align(_without_tempo_map(perf), info).report
    assert report.grid_source == "label_bpm+fit"
    assert abs(report.bpm_fitted - truth["true_bpm"]) < 0.05
    # without a click the phase comes from the regression's intercept: SE ≈ 2.6 ms on this 38 s take
    assert abs(report.latency_ms - truth["latency_ms"]) < 8.0


def test_random_onsets_are_rejected_with_reason():
    rng = np.random.default_rng(0)
    n = 400
    onsets = np.sort(rng.uniform(0, 60, n))
    perf = Performance(path="noise.mid", onsets=onsets, durations=np.full(n, 0.2),
                       pitches=rng.integers(40, 80, n).astype(np.int16), velocities=np.full(n, 64, np.int16),
                       pedal_times=np.zeros(0), pedal_values=np.zeros(0, np.uint8),
                       tempo_map=TempoMap(960, np.array([0]), np.array([100.0])))
    with pytest.raises(RecordingError, match="no grid fits"):
        align(perf, RecordingInfo("x/noise", "x", "train", 4, "100", "C"))


def test_latency_modes():
    truth, perf, row = demo_take("demo/da")
    robust = align(perf, info_of(row))
    none = align(perf, info_of(row), AlignOptions(latency="none"))
    fixed = align(perf, info_of(row), AlignOptions(latency=-12.5))
    assert none.report.latency_ms == 0.0 and fixed.report.latency_ms == -12.5
    step_ms = 60000 / truth["true_bpm"] / truth["steps_per_beat"]
    shift = np.median(none.notes.offset) - np.median(robust.notes.offset)
    assert abs(shift - truth["latency_ms"] / step_ms) < 0.01


def test_rolled_chord_across_half_step_gets_one_step():
    """Three chord notes 8 ms apart around a half step: one step for all, none split off."""
    bpm, spb = 100.0, 4
    step_s = 60 / bpm / spb
    base = np.arange(0, 200) * step_s  # a steady pulse to define the grid
    chord = 200 * step_s + 0.5 * step_s + np.array([-0.008, 0.0, 0.006])
    onsets = np.concatenate([base, chord])
    pitches = np.concatenate([np.full(200, 60), [64, 67, 71]]).astype(np.int16)
    n = len(onsets)
    perf = Performance(path="chord.mid", onsets=onsets, durations=np.full(n, 0.1), pitches=pitches,
                       velocities=np.full(n, 64, np.int16), pedal_times=np.zeros(0),
                       pedal_values=np.zeros(0, np.uint8), tempo_map=TempoMap(960, np.array([0]), np.array([bpm])))
    aligned = align(perf, RecordingInfo("x/c", "x", "train", spb, "100", "C"), AlignOptions(latency="none"))
    chord_steps = {s for s, k in zip(aligned.notes.step, aligned.notes.key, strict=True) if k + 21 in (64, 67, 71)}
    assert len(chord_steps) == 1
    chord = np.isin(aligned.notes.key + 21, (64, 67, 71))
    assert np.all(np.abs(aligned.notes.offset[chord]) < 0.7)
    assert np.all(aligned.notes.offset[~chord] >= -0.5) and np.all(aligned.notes.offset[~chord] < 0.5)


def test_a_chain_of_close_onsets_is_no_chord():
    """An arpeggio of 20 ms steps spans more than the chord window: each note rounds alone."""
    bpm, spb = 100.0, 4
    step_s = 60 / bpm / spb
    base = np.arange(0, 200) * step_s
    run = 200 * step_s + np.arange(8) * 0.020
    onsets = np.concatenate([base, run])
    n = len(onsets)
    perf = Performance(path="arp.mid", onsets=onsets, durations=np.full(n, 0.1),
                       pitches=np.concatenate([np.full(200, 48), 60 + np.arange(8)]).astype(np.int16),
                       velocities=np.full(n, 64, np.int16), pedal_times=np.zeros(0),
                       pedal_values=np.zeros(0, np.uint8), tempo_map=TempoMap(960, np.array([0]), np.array([bpm])))
    aligned = align(perf, RecordingInfo("x/a", "x", "train", spb, "100", "C"), AlignOptions(latency="none"))
    run_notes = aligned.notes.key + 21 >= 60
    expected = np.floor((run - 0.0) / step_s + 0.5)
    assert sorted(aligned.notes.step[run_notes].tolist()) == sorted(expected.astype(int).tolist())


def test_windows_keep_early_downbeats_and_long_notes():
    truth, perf, row = demo_take("demo/da")
    width = 8
    aligned = align(perf, info_of(row), AlignOptions(window_steps=width))
    begin, end = aligned.window_slices(width)
    for b, e, start in zip(begin, end, aligned.window_starts, strict=True):
        steps = aligned.notes.step[b:e]
        assert np.all((steps >= start) & (steps < start + width))
    assert sum(e - b for b, e in zip(begin, end, strict=True)) == aligned.report.notes_placed
    early_on_bar = (aligned.notes.step % width == 0) & (aligned.notes.offset < 0)
    assert early_on_bar.any(), "an early downbeat belongs to the window of its step"
    ends = aligned.notes.step + aligned.notes.offset + aligned.notes.duration
    assert np.any(ends > (aligned.notes.step // width + 1) * width + 1), "no note rings past its window"
    step_s = 60 / truth["true_bpm"] / truth["steps_per_beat"]
    true_duration = {(n["step"], n["pitch"]): n["duration_s"] / step_s for n in truth["notes"]}
    for s, k, d in zip(aligned.notes.step, aligned.notes.key, aligned.notes.duration, strict=True):
        assert d == pytest.approx(true_duration[(int(s), int(k) + 21)], abs=1e-3) or (int(s), int(k) + 21) in {
            c for c, i in expected_kept(truth).items() if sum(1 for n in truth["notes"]
                                                             if (n["step"], n["pitch"]) == c) > 1}


def test_hop_gives_overlapping_windows():
    _, perf, row = demo_take("demo/da")
    plain = align(perf, info_of(row), AlignOptions(window_steps=32))
    hopped = align(perf, info_of(row), AlignOptions(window_steps=32, hop_steps=16))
    assert len(hopped.window_starts) > len(plain.window_starts)
    assert hopped.report.notes_placed == plain.report.notes_placed


@pytest.mark.corpus
def test_corpus_all_align_with_conflicts_flagged(corpus):
    from piano_metronome.processing.recording import process_row

    rows = read_manifest(Path(__file__).resolve().parent.parent / "raw_midi" / "manifest.csv")
    assert len(rows) == 361
    label_conflicts = 0
    for row in rows:
        result = process_row(row, [corpus], AlignOptions())
        assert result.ok, f"{row.recording_id}: {result.report.reason}"
        report = result.report
        assert report.notes_input == report.notes_placed + report.notes_dropped
        disagrees = abs(float(row.labelled_bpm) - report.bpm_fitted) > 0.5
        flagged = [w for k, w in zip(report.warning_kinds, report.warnings, strict=True)
                   if k == WarningKind.BPM_LABEL_DISAGREES]
        assert bool(flagged) == disagrees, row.recording_id
        if disagrees:
            label_conflicts += 1
            assert f"{report.bpm_fitted:.2f}" in flagged[0]
    assert label_conflicts > 0


def _click_times(truth: dict, seconds: float) -> np.ndarray:
    """Beat times of the true click (the tempo map) up to ``seconds``."""
    return np.arange(0, seconds, 60 / truth["true_bpm"])


def test_click_track_grid_wins_over_a_wrong_label():
    truth, perf, row = demo_take("demo/da")
    clicked = dataclasses.replace(_without_tempo_map(perf), click_times=_click_times(truth, perf.end_seconds + 2))
    info = dataclasses.replace(info_of(row), labelled_bpm="93")
    report = align(clicked, info).report
    assert report.grid_source == "click_track"
    assert abs(report.latency_ms - truth["latency_ms"]) < 1.0
    assert WarningKind.BPM_LABEL_DISAGREES in report.warning_kinds


def test_click_track_read_from_a_midi_file(tmp_path):
    """A real file with a click track: the click notes are taken out of the performance."""
    import symusic

    from piano_metronome.inputs.midi import ClickSpec

    truth, perf, row = demo_take("demo/da")
    score = symusic.Score(DEMO / row.file_name)
    click = symusic.Track("click", 0, False)
    for beat in range(int(perf.end_seconds * truth["true_bpm"] / 60) + 2):
        click.notes.append(symusic.Note(beat * 960, 60, 37, 100))
    score.tracks.append(click)
    path = tmp_path / "with_click.mid"
    score.dump_midi(path)
    clicked = read_midi(path, ClickSpec("click", 37))
    assert len(clicked.onsets) == len(perf.onsets)
    assert clicked.click_times is not None and len(clicked.click_times) > 10
    report = align(dataclasses.replace(clicked, tempo_map=_without_tempo_map(perf).tempo_map), info_of(row)).report
    assert report.grid_source == "click_track"  # ties with the (correct) label go to the click
    assert abs(report.latency_ms - truth["latency_ms"]) < 1.0


def test_beat_sidecar_grid_with_downbeats(tmp_path):
    truth, perf, row = demo_take("demo/dd")  # its bar lines sit one sub-beat after the tempo map's
    beat_s = 60 / truth["true_bpm"]
    origin = truth["grid_shift_steps"] * beat_s / truth["steps_per_beat"]
    times = origin - beat_s + np.arange(0, perf.end_seconds / beat_s + 3) * beat_s  # starts one beat early
    sidecar = tmp_path / "dd.beats.json"
    sidecar.write_text(json.dumps({"beats": times.tolist(), "downbeats": [i % 4 == 1 for i in range(len(times))]}))
    info = dataclasses.replace(info_of(row), labelled_bpm="", beat_sidecar=sidecar)
    report = align(_without_tempo_map(perf), info).report
    assert report.grid_source == "beat_sidecar"
    assert report.grid_shift_steps == 0  # the sidecar already puts the bar line right
    assert abs(report.latency_ms - truth["latency_ms"]) < 1.0
