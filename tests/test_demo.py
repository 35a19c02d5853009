"""The synthetic demo takes: reproducible byte for byte, truth that matches the MIDI, planned features.

Every number checked here comes from the generator's plan (:data:`TAKES`) or from the brief's
bounds, never from a previous output, so a change that breaks the truth convention fails here.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import symusic
import typer
from typer.testing import CliRunner

from piano_metronome.commands.demo import register
from piano_metronome.inputs.demo import (
    AMBIGUOUS_THRESHOLD,
    SUBSET,
    TAKES,
    TakeSpec,
    metrical_accent,
    truth_path,
    write_demo,
)
from piano_metronome.inputs.manifest import parse_file_name, read_manifest, sha256_file
from piano_metronome.inputs.midi import Performance, read_midi
from piano_metronome.processing.keys import estimate_key, parse_key

DEMO_DIR = Path(__file__).resolve().parent.parent / "raw_midi" / "demo"
SPEC_IDS = [spec.take_id for spec in TAKES]


def load(spec: TakeSpec) -> tuple[dict, Performance]:
    """The committed truth and the committed MIDI parsed by the project's reader."""
    midi = DEMO_DIR / spec.file_name
    return json.loads(truth_path(midi).read_text(encoding="utf-8")), read_midi(midi)


def note_arrays(truth: dict) -> dict[str, np.ndarray]:
    """The truth's notes as arrays, in file order."""
    return {k: np.array([n[k] for n in truth["notes"]]) for k in truth["notes"][0]}


def positions(truth: dict) -> np.ndarray:
    """Latency-free onset positions in grid steps: step + offset."""
    notes = note_arrays(truth)
    return notes["step"] + notes["offset"]


# ------------------------------------------------------------------------------------------
# Reproducibility


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    """Regenerating gives exactly the committed bytes, file for file."""
    written = write_demo(tmp_path)
    committed = sorted(p.name for p in DEMO_DIR.iterdir() if p.is_file())
    assert sorted(p.name for p in written) == committed
    for path in written:
        assert path.read_bytes() == (DEMO_DIR / path.name).read_bytes(), path.name


def test_two_runs_agree(tmp_path: Path) -> None:
    """No hidden state: two runs in one process write the same bytes."""
    first, second = write_demo(tmp_path / "a"), write_demo(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_cli_command_writes_the_takes(tmp_path: Path) -> None:
    """``demo --out`` through a typer app writes every take, its truth and the manifest."""
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `demo` a named sub-command
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for spec in TAKES:
        assert (tmp_path / spec.file_name).read_bytes() == (DEMO_DIR / spec.file_name).read_bytes()
        assert spec.file_name in result.output
    assert (tmp_path / "manifest.csv").is_file()
    help_text = runner.invoke(app, ["demo", "--help"]).output
    assert "SYNTHETIC" in help_text and "--out" in help_text


# ------------------------------------------------------------------------------------------
# The file looks like a DAW export


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_file_shape(spec: TakeSpec) -> None:
    """One named piano track, one tempo and one 4/4 at tick 0, 960 tpq, pedal ramps about once a bar."""
    score = symusic.Score(str(DEMO_DIR / spec.file_name))
    assert score.ticks_per_quarter == 960
    assert len(score.tracks) == 1
    track = score.tracks[0]
    assert "synthetic" in track.name.lower() and track.program == 0 and not track.is_drum
    assert [t.time for t in score.tempos] == [0]
    assert [(t.time, t.numerator, t.denominator) for t in score.time_signatures] == [(0, 4, 4)]
    pedal = [c for c in track.controls if c.number == 64]
    presses = sum(1 for c in pedal if c.value == 127)
    assert spec.bars - 1 <= presses <= spec.bars + 1
    assert len({c.value for c in pedal}) > 2  # ramps, not bare on/off
    notes = track.notes.numpy()
    assert notes["pitch"].min() >= 21 and notes["pitch"].max() <= 108
    assert notes["duration"].min() >= 1


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_take_lasts_30_to_60_seconds(spec: TakeSpec) -> None:
    """Long enough to align, short enough to stay a demo."""
    _, perf = load(spec)
    assert 30.0 <= perf.end_seconds <= 60.0


# ------------------------------------------------------------------------------------------
# Truth matches the MIDI and follows the convention


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_truth_header(spec: TakeSpec) -> None:
    """Labels from the file name, the tempo map's tempo, the planned grid; marked synthetic."""
    truth, perf = load(spec)
    _, bpm, key = parse_file_name(spec.file_name)
    assert truth["synthetic"] is True and truth["generator"] == "piano_metronome.inputs.demo"
    assert truth["recording_id"] == f"{SUBSET}/{spec.take_id}" and truth["file_name"] == spec.file_name
    assert (truth["labelled_bpm"], truth["labelled_key"]) == (bpm, key)
    assert len(perf.tempo_map.qpm) == 1
    assert truth["true_bpm"] == pytest.approx(float(perf.tempo_map.qpm[0]), abs=1e-8)
    assert truth["steps_per_beat"] == spec.steps_per_beat and truth["beats_per_bar"] == 4
    assert truth["grid_shift_steps"] == spec.grid_shift_steps and truth["seed"] == spec.seed
    assert truth["latency_ms"] < 0  # players are early


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_truth_matches_midi(spec: TakeSpec) -> None:
    """Note for note, in file order: pitch, velocity, onset and duration as the reader sees them."""
    truth, perf = load(spec)
    notes = note_arrays(truth)
    assert len(notes["pitch"]) == len(perf.onsets)
    np.testing.assert_array_equal(notes["pitch"], perf.pitches)
    np.testing.assert_array_equal(notes["velocity"], perf.velocities)
    np.testing.assert_allclose(notes["onset_s"], perf.onsets, rtol=0, atol=1e-9)
    np.testing.assert_allclose(notes["duration_s"], perf.durations, rtol=0, atol=1e-9)
    assert np.all(notes["duration_s"] > 0)
    order = np.lexsort((notes["pitch"], notes["onset_s"]))
    np.testing.assert_array_equal(order, np.arange(len(order)))


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_convention_reproduces_onsets(spec: TakeSpec) -> None:
    """origin + (step + offset) * step_s + latency gives onset_s; offsets in [-0.5, 0.5), median 0."""
    truth, _ = load(spec)
    notes = note_arrays(truth)
    step_s = 60.0 / truth["true_bpm"] / truth["steps_per_beat"]
    origin_s = truth["grid_shift_steps"] * step_s
    onsets = origin_s + (notes["step"] + notes["offset"]) * step_s + truth["latency_ms"] / 1000.0
    np.testing.assert_allclose(onsets, notes["onset_s"], rtol=0, atol=1e-9)
    assert np.all(notes["step"] >= 0) and notes["step"].dtype.kind == "i"
    assert np.all(notes["offset"] >= -0.5) and np.all(notes["offset"] < 0.5)
    assert abs(float(np.median(notes["offset"]))) <= 1e-3


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_human_timing(spec: TakeSpec) -> None:
    """Ordinary notes scatter by ≈ 15–20 ms (brief's range, with slack); chords stay within ~6 ms."""
    truth, _ = load(spec)
    notes = note_arrays(truth)
    step_s = 60.0 / truth["true_bpm"] / truth["steps_per_beat"]
    cells = Counter(zip(notes["step"].tolist(), notes["pitch"].tolist(), strict=True))
    plain = np.array([cells[(s, p)] == 1 for s, p in zip(notes["step"], notes["pitch"], strict=True)])
    ordinary = plain & (np.abs(notes["offset"]) <= AMBIGUOUS_THRESHOLD) & (notes["onset_s"] > 0)
    assert 10.0 <= np.std(notes["offset"][ordinary] * step_s * 1000) <= 25.0
    for step in np.unique(notes["step"][ordinary]):
        at = notes["onset_s"][ordinary & (notes["step"] == step)]
        assert (at.max() - at.min()) * 1000 <= 6.0, f"chord at step {step} spreads too far"


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_same_key_never_overlaps(spec: TakeSpec) -> None:
    """MIDI cannot hold one key twice: each note is released before its key is struck again."""
    _, perf = load(spec)
    for pitch in np.unique(perf.pitches):
        sel = perf.pitches == pitch
        on, off = perf.onsets[sel], perf.onsets[sel] + perf.durations[sel]
        assert np.all(off[:-1] < on[1:]), f"key {pitch} overlaps itself"


# ------------------------------------------------------------------------------------------
# Planned features


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_near_ambiguous_notes(spec: TakeSpec) -> None:
    """The planned 3–6 lone notes with |offset| in [0.36, 0.45], no other onset within 0.3 step."""
    truth, _ = load(spec)
    notes, pos = note_arrays(truth), positions(truth)
    ambiguous = np.flatnonzero(np.abs(notes["offset"]) > AMBIGUOUS_THRESHOLD)
    assert len(ambiguous) == spec.n_ambiguous and 3 <= len(ambiguous) <= 6
    for i in ambiguous:
        assert 0.36 <= abs(notes["offset"][i]) <= 0.45
        assert np.sum(notes["step"] == notes["step"][i]) == 1, "a near-ambiguous note is part of a chord"
        assert np.min(np.abs(np.delete(pos, i) - pos[i])) >= 0.3


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_same_key_repeats_and_collisions(spec: TakeSpec) -> None:
    """≥ 2 repeats on consecutive steps; ≥ 2 same-cell collisions, released before the restrike."""
    truth, _ = load(spec)
    notes = note_arrays(truth)
    by_cell: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (s, p) in enumerate(zip(notes["step"].tolist(), notes["pitch"].tolist(), strict=True)):
        by_cell[(s, p)].append(i)
    collisions = [idx for idx in by_cell.values() if len(idx) > 1]
    assert len(collisions) == spec.n_collisions >= 2
    for first, second in collisions:
        assert notes["offset"][first] < 0 < notes["offset"][second]  # both round to the same step
        assert notes["onset_s"][first] + notes["duration_s"][first] < notes["onset_s"][second]
    repeats = sum(1 for (s, p) in by_cell if (s + 1, p) in by_cell)
    assert repeats >= 2


def test_takes_cover_the_planned_cases() -> None:
    """An 8th and a 16th grid, a BPM label that disagrees with the tempo map, a shifted grid."""
    truths = [load(spec)[0] for spec in TAKES]
    assert {t["steps_per_beat"] for t in truths} >= {2, 4}
    assert any(abs(float(t["labelled_bpm"]) - t["true_bpm"]) > 1 for t in truths)
    assert any(t["grid_shift_steps"] == 1 for t in truths)
    assert 3 <= len(truths) <= 4


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_key_material_matches_label(spec: TakeSpec) -> None:
    """Krumhansl–Schmuckler on the notes finds the labelled key (mode included)."""
    truth, perf = load(spec)
    want = parse_key(truth["labelled_key"])
    assert want == spec.tonic + 12 * spec.minor
    assert estimate_key(perf.pitches, perf.durations).key == want
    assert estimate_key(perf.pitches).key == want


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_notes_concentrate_on_beats(spec: TakeSpec) -> None:
    """More notes on beats than on all off-beat phases together, seen in the player's grid."""
    truth, _ = load(spec)
    phase = np.bincount(note_arrays(truth)["step"] % spec.steps_per_beat, minlength=spec.steps_per_beat)
    assert phase[0] > phase[1:].sum()


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_beat_phase_in_the_file_shows_the_shift(spec: TakeSpec) -> None:
    """Against the tempo map's own grid the busiest phase is the declared shift (0 or 1 sub-beat)."""
    truth, perf = load(spec)
    step_s = 60.0 / truth["true_bpm"] / spec.steps_per_beat
    map_steps = np.rint((perf.onsets - truth["latency_ms"] / 1000.0) / step_s).astype(int)
    phase = np.bincount(map_steps % spec.steps_per_beat, minlength=spec.steps_per_beat)
    assert int(np.argmax(phase)) == truth["grid_shift_steps"] % spec.steps_per_beat


@pytest.mark.parametrize("steps_per_beat", [2, 4])
def test_metrical_accent_hierarchy(steps_per_beat: int) -> None:
    """Downbeat > beat 3 > beats 2, 4 > 8th off-beats (> 16th off-beats on a 16th grid)."""
    bar = np.arange(4 * steps_per_beat)
    accent = metrical_accent(bar, steps_per_beat)
    half = steps_per_beat // 2
    ladder = [accent[0], accent[2 * steps_per_beat], accent[steps_per_beat], accent[half]]
    if steps_per_beat == 4:
        ladder.append(accent[1])
    assert all(a > b for a, b in zip(ladder, ladder[1:], strict=False))
    np.testing.assert_array_equal(metrical_accent(bar + 4 * steps_per_beat, steps_per_beat), accent)


@pytest.mark.parametrize("spec", TAKES, ids=SPEC_IDS)
def test_downbeats_are_loudest(spec: TakeSpec) -> None:
    """In the take itself, downbeat notes are louder on average than beat and off-beat notes.

    Beats and off-beats are not compared with each other: off-beats are mostly melody, which
    a pianist plays over the chords, so role and metre pull their means in opposite ways.
    """
    truth, _ = load(spec)
    notes = note_arrays(truth)
    pos = notes["step"] % (4 * spec.steps_per_beat)
    vel = notes["velocity"]
    down, beat, off = pos == 0, (pos % spec.steps_per_beat == 0) & (pos != 0), pos % spec.steps_per_beat != 0
    assert vel[down].mean() > max(vel[beat].mean(), vel[off].mean())


# ------------------------------------------------------------------------------------------
# Manifest


def test_manifest() -> None:
    """Every take listed once, with its hash, true grid, planned split and no download address."""
    rows = {row.recording_id: row for row in read_manifest(DEMO_DIR / "manifest.csv")}
    assert set(rows) == {spec.recording_id for spec in TAKES}
    for spec in TAKES:
        row = rows[spec.recording_id]
        assert (row.subset, row.file_name, row.split) == (SUBSET, spec.file_name, spec.split)
        assert row.steps_per_beat == spec.steps_per_beat and row.source_url == ""
        assert row.sha256 == sha256_file(DEMO_DIR / spec.file_name)
    assert {spec.split for spec in TAKES} == {"train", "validation", "test"}
