"""Rendering windows back to MIDI: real tempo, offsets, velocities, durations, pedal, no negative times.

The round trip is the proof: render every window of a recording into one file, parse it,
align it again with the project's own aligner (latency ``none``, or the recording's latency
when it was re-applied) and get back the same hits, offsets, velocities and pedal.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import symusic
import typer
from typer.testing import CliRunner

from piano_metronome.commands.render import register
from piano_metronome.inputs.midi import RecordingError, parse_midi_bytes
from piano_metronome.outputs.dense import dense_arrays
from piano_metronome.outputs.layout import read_windows, window_shards
from piano_metronome.outputs.render import (
    RenderSpec,
    _onset_ticks,
    read_render_info,
    render_performance,
    render_recording,
    render_window,
)
from piano_metronome.processing.align import AlignOptions, RecordingInfo, align
from tests.conftest import command_app

#: Offsets and durations survive to a tick (1/240 step on 16ths) plus, at a half-step tie, one tick more.
STEP_TOLERANCE = 1e-2


def recordings_of(folder: Path, configs: tuple[str, ...]) -> dict[str, list[dict]]:
    """recording id → its window rows (as dicts), for the configs that exist in the folder."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for config in configs:
        if config in window_shards(folder):
            for row in read_windows(folder, config).to_pylist():
                grouped[row["recording_id"]].append(row)
    return dict(grouped)


def concat(rows: list[dict], column: str, first_step: bool = False) -> np.ndarray:
    """One note column over every window of a recording (steps made absolute when asked)."""
    parts = [np.asarray(r[column], dtype=np.float64) + (r["start_step"] if first_step else 0) for r in rows]
    return np.concatenate(parts) if parts else np.zeros(0)


def realign(data: bytes, rows: list[dict], latency: str | float, **options):
    """Parse rendered MIDI bytes and align them again, as a new recording with the same grid."""
    first = rows[0]
    info = RecordingInfo(first["recording_id"], first["subset"], first["split"], int(first["steps_per_beat"]))
    return align(parse_midi_bytes(data, first["recording_id"]), info, AlignOptions(latency=latency, **options))


def assert_recording_round_trip(rows: list[dict], apply_latency: bool) -> None:
    """Render every window of one recording, re-align, compare every note and the pedal."""
    rows = sorted(rows, key=lambda r: r["start_step"])
    data = render_recording(rows, apply_latency=apply_latency).dumps_midi()
    info = read_render_info(symusic.Score.from_midi(data))
    aligned = realign(data, rows, float(rows[0]["latency_ms"]) if apply_latency else "none")
    lead = info["lead_in_beats"] * info["steps_per_beat"]
    notes, rid = aligned.notes, rows[0]["recording_id"]
    assert aligned.report.notes_dropped == 0, (rid, aligned.report.dropped)
    np.testing.assert_array_equal(notes.step - lead, concat(rows, "note_step", True), err_msg=rid)
    np.testing.assert_array_equal(notes.key, concat(rows, "note_key"), err_msg=rid)
    np.testing.assert_array_equal(notes.velocity, concat(rows, "note_velocity"), err_msg=rid)
    np.testing.assert_allclose(notes.offset, concat(rows, "note_offset"), atol=STEP_TOLERANCE, err_msg=rid)
    np.testing.assert_allclose(notes.duration, concat(rows, "note_duration"), atol=STEP_TOLERANCE, err_msg=rid)
    for r in rows:
        valid = int(r["valid_steps"])
        start = int(r["start_step"]) + lead
        np.testing.assert_array_equal(aligned.pedal[start:start + valid], r["pedal"][:valid], err_msg=r["window_id"])


# ------------------------------------------------------------------------------------------
# Round trips through the aligner


@pytest.mark.parametrize("apply_latency", [False, True], ids=["grid", "latency"])
def test_demo_recordings_round_trip(demo_dataset: Path, apply_latency: bool) -> None:
    """Every window of every demo take, rendered and re-aligned, gives back the same H/O/V and pedal."""
    recordings = recordings_of(demo_dataset, ("demo",))
    assert len(recordings) >= 4
    for rows in recordings.values():
        assert_recording_round_trip(rows, apply_latency)


def test_dense_round_trip(demo_dataset: Path) -> None:
    """The same in dense form: windows cut from the re-aligned take give the same H, V and (nearly) O."""
    from piano_metronome.outputs.tables import windows_table

    for rows in recordings_of(demo_dataset, ("demo",)).values():
        rows = sorted(rows, key=lambda r: r["start_step"])
        data = render_recording(rows, lead_in_beats=0).dumps_midi()
        table = windows_table(realign(data, rows, "none"), AlignOptions())
        before, after = dense_arrays(read_windows_rows(rows)), dense_arrays(table)
        np.testing.assert_array_equal(after["H"], before["H"])
        np.testing.assert_array_equal(after["V"], before["V"])
        np.testing.assert_allclose(after["O"], before["O"], atol=STEP_TOLERANCE)


def read_windows_rows(rows: list[dict]) -> dict:
    """Rows as a dict of columns, the batch form :func:`dense_arrays` accepts."""
    return {k: [r[k] for r in rows] for k in ("note_step", "note_key", "note_offset", "note_velocity",
                                                "key_signature", "tempo_norm", "num_steps")}


@pytest.mark.corpus
def test_corpus_recordings_round_trip(corpus_build: Path) -> None:
    """Every corpus recording round-trips on the grid; every third also with its latency put back.

    This includes the recordings with a note at exactly +0.5 step (a tie the aligner would
    round up) and the one whose onsets were quantized before export.
    """
    recordings = recordings_of(corpus_build, ("all",))
    assert len(recordings) > 300
    for index, rows in enumerate(recordings.values()):
        assert_recording_round_trip(rows, apply_latency=False)
        if index % 3 == 0:
            assert_recording_round_trip(rows, apply_latency=True)


def test_single_windows_realign(demo_dataset: Path) -> None:
    """A window alone re-aligns to itself when it holds enough notes for the aligner's grid check."""
    checked = 0
    for rows in recordings_of(demo_dataset, ("demo",)).values():
        for row in rows:
            data = render_window(row, apply_latency=True).dumps_midi()
            lead = read_render_info(symusic.Score.from_midi(data))["lead_in_beats"] * row["steps_per_beat"]
            try:  # the grid is known here: a short excerpt must not move its bar line
                aligned = realign(data, [row], float(row["latency_ms"]), detect_shift=False)
            except RecordingError:
                continue  # too few notes to prove a grid fits; the recording round trip covers them
            np.testing.assert_array_equal(aligned.notes.step - lead, row["note_step"])
            np.testing.assert_array_equal(aligned.notes.key, row["note_key"])
            np.testing.assert_array_equal(aligned.notes.velocity, row["note_velocity"])
            np.testing.assert_allclose(aligned.notes.offset, row["note_offset"], atol=STEP_TOLERANCE)
            checked += 1
    assert checked >= 6


# ------------------------------------------------------------------------------------------
# What a rendered window file holds


def read_back(score, row: dict) -> dict[str, np.ndarray]:
    """Notes of a rendered window as (key, position in steps, velocity, duration), sorted by (key, position)."""
    info = read_render_info(score)
    tps, lead = info["ticks_per_step"], info["lead_in_ticks"]
    latency_ticks = info["latency_ms"] / 1000.0 * float(row["bpm"]) / 60.0 * 960
    notes = score.tracks[0].notes.numpy()
    position = (notes["time"] - lead - latency_ticks) / tps
    order = np.lexsort((position, notes["pitch"]))
    return {"key": notes["pitch"][order] - 21, "position": position[order], "velocity": notes["velocity"][order],
            "duration": notes["duration"][order] / tps, "time": notes["time"]}


def pedal_at_steps(score, row: dict) -> np.ndarray:
    """The CC64 value in force at each step's tick (the last change at or before it)."""
    info = read_render_info(score)
    controls = score.tracks[0].controls.numpy()
    ticks = info["lead_in_ticks"] + np.arange(int(row["valid_steps"])) * info["ticks_per_step"]
    if not len(controls["time"]):
        return np.zeros(len(ticks), np.int64)
    idx = np.searchsorted(controls["time"], ticks, side="right") - 1
    return np.where(idx >= 0, controls["value"][np.clip(idx, 0, None)], 0)


def check_window_file(row: dict, apply_latency: bool) -> None:
    """Tempo, notes, durations, pedal and times of one rendered window, read back from MIDI bytes."""
    score = symusic.Score.from_midi(render_window(row, apply_latency=apply_latency).dumps_midi())
    assert len(score.tempos) == 1 and score.tempos[0].qpm == pytest.approx(row["bpm"], rel=1e-5)
    assert (score.time_signatures[0].numerator, score.time_signatures[0].denominator) == (row["beats_per_bar"], 4)
    got = read_back(score, row)
    order = np.lexsort((np.asarray(row["note_step"]) + np.asarray(row["note_offset"]), row["note_key"]))
    key, step = np.asarray(row["note_key"])[order], np.asarray(row["note_step"])[order]
    np.testing.assert_array_equal(got["key"], key)
    np.testing.assert_array_equal(got["velocity"], np.asarray(row["note_velocity"])[order])
    np.testing.assert_allclose(got["position"], step + np.asarray(row["note_offset"])[order], atol=STEP_TOLERANCE)
    np.testing.assert_allclose(got["duration"], np.asarray(row["note_duration"])[order], atol=STEP_TOLERANCE)
    np.testing.assert_array_equal(pedal_at_steps(score, row), row["pedal"][: row["valid_steps"]])
    assert got["time"].min() >= 0 and score.tracks[0].controls.numpy()["time"].min(initial=0) >= 0
    assert read_render_info(score)["window_id"] == row["window_id"]


def test_every_demo_window_file(demo_dataset: Path) -> None:
    """Each demo window, on the grid and with its latency back, read from the MIDI it became."""
    for rows in recordings_of(demo_dataset, ("demo",)).values():
        for row in rows:
            check_window_file(row, apply_latency=False)
            check_window_file(row, apply_latency=True)


@pytest.mark.corpus
def test_corpus_window_files(corpus_build: Path) -> None:
    """Every window of a sample of corpus recordings, both subsets, read back from its MIDI bytes."""
    recordings = recordings_of(corpus_build, ("d1", "d2"))
    for rid in sorted(recordings)[::12]:
        for row in recordings[rid]:
            check_window_file(row, apply_latency=True)


# ------------------------------------------------------------------------------------------
# Edge cases: early hits, ties, model output


def synthetic_row(**changes) -> dict:
    """A small window: a chord on the downbeat played early, one note on the "&" of beat 1."""
    row = {"window_id": "x/aa/000", "recording_id": "x/aa", "start_step": 0, "start_time_s": 0.0,
           "steps_per_beat": 4, "beats_per_bar": 4, "bpm": 120.0, "latency_ms": -30.0, "num_steps": 64,
           "valid_steps": 64, "note_step": [0, 0, 2], "note_key": [39, 43, 46], "note_offset": [-0.3, -0.25, 0.1],
           "note_velocity": [80, 70, 60], "note_duration": [2.0, 2.0, 1.0], "pedal": [127] * 8 + [0] * 56}
    return {**row, **changes}


def test_early_first_hit_gets_a_lead_in() -> None:
    """An early downbeat is delayed by one whole beat, recorded in the file; nothing before tick 0."""
    score = render_window(synthetic_row(), apply_latency=True)
    info = read_render_info(score)
    assert info["lead_in_beats"] == 1 and info["lead_in_ticks"] == 960
    times = score.tracks[0].notes.numpy()["time"]
    assert times.min() >= 0
    # step 0, offset −0.3, latency −30 ms at 120 BPM (−57.6 ticks): 960 − 72 − 57.6 → 830
    assert times.min() == 830
    assert read_render_info(render_window(synthetic_row(), apply_latency=False))["lead_in_beats"] == 1
    on_time = synthetic_row(note_offset=[0.0, 0.1, 0.1])
    assert read_render_info(render_window(on_time))["lead_in_beats"] == 0


def test_too_short_lead_in_is_refused() -> None:
    """Asking for no lead-in when a hit is early is an error, not a negative time."""
    with pytest.raises(ValueError, match="lead-in"):
        render_window(synthetic_row(), lead_in_beats=0)
    assert read_render_info(render_window(synthetic_row(), lead_in_beats=2))["lead_in_ticks"] == 1920


def test_half_step_tie_stays_on_its_step() -> None:
    """A note at exactly +0.5 (the aligner rounds ties up) is written one tick early; −0.5 one tick late."""
    spec = RenderSpec(steps_per_beat=4)
    ticks = _onset_ticks(spec, np.array([10, 10, 10, 10]), np.array([0.5, -0.5, 0.25, 0.65]))
    assert ticks.tolist() == [10 * 240 + 120 - 1, 10 * 240 - 120 + 1, 10 * 240 + 60, 10 * 240 + 156]


def test_pedal_changes_only() -> None:
    """CC64 is written only where the value changes, just before its step, and released at the end."""
    score = render_window(synthetic_row(note_offset=[0.0, 0.0, 0.0]))
    controls = score.tracks[0].controls.numpy()
    assert controls["value"].tolist() == [127, 0]
    assert controls["time"].tolist() == [0, 8 * 240 - 1]


def test_render_performance_matches_render_window(demo_dataset: Path) -> None:
    """Dense model output (H, O, V) renders the same notes as the sparse window it came from."""
    row = read_windows(demo_dataset, "demo", "train").to_pylist()[0]
    dense = dense_arrays(read_windows_rows([row]))
    durations = np.zeros((64, 88))
    durations[row["note_step"], row["note_key"]] = row["note_duration"]
    pedal = np.asarray(row["pedal"])[: row["valid_steps"]]
    model = render_performance(dense["H"][0], dense["O"][0], dense["V"][0], row["bpm"], row["steps_per_beat"],
                               durations=durations, pedal=pedal)
    window = render_window(row)
    assert model.tracks[0].notes.numpy().keys() == window.tracks[0].notes.numpy().keys()
    for name in ("time", "duration", "pitch", "velocity"):
        np.testing.assert_array_equal(model.tracks[0].notes.numpy()[name], window.tracks[0].notes.numpy()[name])
    assert read_render_info(model)["source"] == "model output"


def test_render_performance_thresholds_and_clips() -> None:
    """H is thresholded (probabilities welcome), V clipped to velocity 1…127, shapes checked."""
    H, O, V = np.zeros((16, 88)), np.zeros((16, 88)), np.zeros((16, 88))
    H[0, 39], V[0, 39] = 0.9, 1.4
    H[4, 40], V[4, 40] = 0.4, 0.5
    H[8, 41], V[8, 41] = 1.0, 0.0
    notes = render_performance(H, O, V, 100, 4).tracks[0].notes.numpy()
    assert notes["pitch"].tolist() == [60, 62] and notes["velocity"].tolist() == [127, 1]
    assert notes["duration"].tolist() == [240, 240]
    with pytest.raises(ValueError, match="shape"):
        render_performance(H[:, :80], O, V, 100, 4)


# ------------------------------------------------------------------------------------------
# The command


@pytest.fixture()
def runner_app() -> typer.Typer:
    """A typer app with just ``render`` (and a no-op so it stays a named sub-command)."""
    return command_app(register)


def test_cli_renders_a_window_and_a_recording(demo_dataset: Path, tmp_path: Path, runner_app) -> None:
    """``render ID out.mid`` writes a file that parses; a recording id renders all its windows."""
    runner = CliRunner()
    window = read_windows(demo_dataset, "demo", "train").to_pylist()[1]
    out = tmp_path / "w.mid"
    result = runner.invoke(runner_app, ["render", window["window_id"], str(out), "--data", str(demo_dataset)])
    assert result.exit_code == 0, result.output
    assert symusic.Score(str(out)).note_num() == len(window["note_step"])
    out_rec = tmp_path / "rec.mid"
    result = runner.invoke(runner_app, ["render", window["recording_id"], str(out_rec), "--data", str(demo_dataset),
                                        "--latency"])
    assert result.exit_code == 0, result.output
    info = read_render_info(symusic.Score(str(out_rec)))
    assert info["recording_id"] == window["recording_id"] and info["latency_ms"] == pytest.approx(window["latency_ms"])


def test_cli_errors(demo_dataset: Path, tmp_path: Path, runner_app) -> None:
    """Unknown ids, configs and folders exit 2 with a one-line reason."""
    runner = CliRunner()
    for args in (["demo/zz/000", str(tmp_path / "x.mid"), "--data", str(demo_dataset)],
                 ["demo/da/000", str(tmp_path / "x.mid"), "--data", str(demo_dataset), "--config", "d9"],
                 ["demo/da/000", str(tmp_path / "x.mid"), "--data", str(tmp_path / "nowhere")]):
        result = runner.invoke(runner_app, ["render", *args])
        assert result.exit_code == 2, result.output
        assert "error:" in result.output
    assert not (tmp_path / "x.mid").exists()
