"""Property tests: quantization recovers what was played, and sparse ↔ dense is lossless.

Performances are synthesised on a known grid (one or several tempi, a known latency), so
every step and offset the engine finds can be checked exactly. Hypothesis draws the knobs
and a seed; numpy draws the hundreds of notes a take needs (a grid fit wants > 100 onsets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piano_metronome.constants import LOWEST_MIDI_PITCH, NUM_KEYS
from piano_metronome.inputs.midi import Performance, TempoMap
from piano_metronome.outputs.dense import dense_arrays, iter_dense
from piano_metronome.outputs.invariants import window_invariants
from piano_metronome.outputs.schema import arrow_schema
from piano_metronome.outputs.tables import windows_table
from piano_metronome.processing.align import AlignOptions, RecordingInfo, align

TICKS = 480
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Played:
    """What was played: notes on steps of a known grid, with their true offsets."""

    steps: np.ndarray
    keys: np.ndarray
    offsets: np.ndarray
    velocities: np.ndarray
    performance: Performance


def tempo_map(bpm: float, changes: list[tuple[int, float]]) -> TempoMap:
    """A click at ``bpm`` that changes to each (beat, bpm) of ``changes``."""
    beats = sorted({0, *(b for b, _ in changes)})
    qpm = {0: bpm, **dict(changes)}
    return TempoMap(TICKS, np.array(beats, np.int64) * TICKS, np.array([qpm[b] for b in beats], np.float64))


def play(seed: int, steps_per_beat: int, grid: TempoMap, latency_steps: float, wide: float) -> Played:
    """Events on every other step (so no two steps' notes can pass for one chord), 1–3 keys each.

    Most offsets are within ±0.1 step; a share ``wide`` of them anywhere in (−0.45, 0.45).
    """
    rng = np.random.default_rng(seed)
    events = np.sort(rng.choice(np.arange(0, 640, 2), size=int(rng.integers(150, 260)), replace=False))
    sizes = rng.integers(1, 4, size=len(events))
    steps = np.repeat(events, sizes)
    keys = np.concatenate([rng.choice(NUM_KEYS, size=k, replace=False) for k in sizes])
    offsets = np.where(rng.random(len(steps)) < wide, rng.uniform(-0.45, 0.45, len(steps)),
                       rng.uniform(-0.1, 0.1, len(steps)))
    velocities = rng.integers(1, 128, size=len(steps))
    beats = (steps + offsets + latency_steps) / steps_per_beat
    onsets = grid.beats_to_seconds(beats)
    ends = grid.beats_to_seconds(beats + 0.8 / steps_per_beat)
    order = np.lexsort((keys, onsets))
    performance = Performance(
        path="synthetic", onsets=onsets[order], durations=(ends - onsets)[order],
        pitches=(keys + LOWEST_MIDI_PITCH)[order].astype(np.int16), velocities=velocities[order].astype(np.int16),
        pedal_times=np.zeros(0), pedal_values=np.zeros(0, np.uint8), tempo_map=grid)
    cell = np.lexsort((keys, steps))
    return Played(steps[cell], keys[cell], offsets[cell], velocities[cell], performance)


INFO = {spb: RecordingInfo(recording_id="t/x", subset="t", split="train", steps_per_beat=spb) for spb in (2, 4)}
#: The bar line is where the grid says (no shift search), so steps can be compared one to one.
EXACT = AlignOptions(latency="none", detect_shift=False)
ROBUST = AlignOptions(detect_shift=False)

grids = st.builds(
    tempo_map,
    st.floats(60, 160),
    st.lists(st.tuples(st.integers(8, 300), st.floats(60, 160)), max_size=3, unique_by=lambda c: c[0]),
)


@FEW
@given(seed=st.integers(0, 2**32 - 1), spb=st.sampled_from([2, 4]), grid=grids, wide=st.floats(0, 0.2))
def test_quantization_recovers_steps_and_offsets(seed: int, spb: int, grid: TempoMap, wide: float) -> None:
    played = play(seed, spb, grid, 0.0, wide)
    aligned = align(played.performance, INFO[spb], EXACT)
    notes, report = aligned.notes, aligned.report
    assert np.array_equal(notes.step, played.steps)
    assert np.array_equal(notes.key, played.keys)
    np.testing.assert_allclose(notes.offset, played.offsets, atol=1e-3)
    assert np.array_equal(notes.velocity, played.velocities)
    assert report.notes_input == report.notes_placed + report.notes_dropped == len(played.steps)
    assert report.grid_source == "tempo_map"
    _windows_hold_every_note(aligned, played)


@FEW
@given(seed=st.integers(0, 2**32 - 1), spb=st.sampled_from([2, 4]), bpm=st.floats(60, 160),
       latency=st.floats(-0.3, 0.3), wide=st.floats(0, 0.1))
def test_latency_is_removed_and_reported(seed: int, spb: int, bpm: float, latency: float, wide: float) -> None:
    played = play(seed, spb, tempo_map(bpm, []), latency, wide)
    aligned = align(played.performance, INFO[spb], ROBUST)
    notes, report = aligned.notes, aligned.report
    assert np.array_equal(notes.step, played.steps)
    step_ms = 60000.0 / bpm / spb
    removed = report.latency_ms / step_ms  # what the engine took off every note, in steps
    np.testing.assert_allclose(notes.offset, played.offsets + latency - removed, atol=1e-3)
    assert abs(removed - latency) < 0.12
    assert np.all((notes.offset >= -0.5) & (notes.offset < 0.5))
    assert report.notes_input == report.notes_placed + report.notes_dropped


def _windows_hold_every_note(aligned, played: Played) -> None:
    """The Arrow windows obey the published invariants and decode densely to the played notes."""
    options = EXACT
    table = windows_table(aligned, options)
    assert window_invariants(table) == {}
    dense = dense_arrays(table)
    window = np.searchsorted(aligned.window_starts, played.steps, side="right") - 1
    local = played.steps - aligned.window_starts[window]
    assert dense["H"].sum() == len(played.steps)
    assert np.all(dense["H"][window, local, played.keys] == 1)
    np.testing.assert_allclose(dense["O"][window, local, played.keys], played.offsets, atol=1e-3)
    np.testing.assert_allclose(dense["V"][window, local, played.keys] * 127, played.velocities, atol=1e-3)


# --- sparse ↔ dense ---------------------------------------------------------------------------------

NOTE_COLUMNS = ("note_step", "note_key", "note_offset", "note_velocity", "key_signature", "tempo_norm", "num_steps")


def random_windows(seed: int, windows: int, steps: int) -> pa.Table:
    """Windows with random distinct cells, sorted by (step, key), in the declared column types."""
    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {name: [] for name in NOTE_COLUMNS}
    for _ in range(windows):
        cells = np.sort(rng.choice(steps * NUM_KEYS, size=int(rng.integers(0, 60)), replace=False))
        columns["note_step"].append((cells // NUM_KEYS).tolist())
        columns["note_key"].append((cells % NUM_KEYS).tolist())
        columns["note_offset"].append(rng.uniform(-0.5, 0.5, len(cells)).astype(np.float32).tolist())
        columns["note_velocity"].append(rng.integers(1, 128, len(cells)).tolist())
        columns["key_signature"].append(int(rng.integers(0, 12)))
        columns["tempo_norm"].append(float(np.float32(rng.uniform(-0.4, 0.8))))
        columns["num_steps"].append(steps)
    schema = arrow_schema()
    return pa.table({name: pa.array(values, schema.field(name).type) for name, values in columns.items()})


def to_sparse(dense: dict[str, np.ndarray]) -> dict[str, list]:
    """Dense H/O/V back to the sparse columns: cells where H is 1, in (step, key) order."""
    out: dict[str, list] = {name: [] for name in NOTE_COLUMNS}
    for w in range(dense["H"].shape[0]):
        step, key = np.nonzero(dense["H"][w])
        out["note_step"].append(step.tolist())
        out["note_key"].append(key.tolist())
        out["note_offset"].append(dense["O"][w, step, key].tolist())
        out["note_velocity"].append(np.rint(dense["V"][w, step, key] * 127).astype(int).tolist())
        out["key_signature"].append(int(np.argmax(dense["key"][w])))
        out["tempo_norm"].append(float(dense["tempo"][w]))
        out["num_steps"].append(dense["H"].shape[1])
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), windows=st.integers(1, 24), steps=st.sampled_from([16, 64, 127]),
       batch=st.integers(1, 9))
def test_sparse_dense_round_trip(seed: int, windows: int, steps: int, batch: int) -> None:
    table = random_windows(seed, windows, steps)
    dense = dense_arrays(table)
    assert dense["H"].shape == (windows, steps, NUM_KEYS) and dense["H"].dtype == np.float32
    assert to_sparse(dense) == table.to_pydict()
    assert np.all(dense["key"].sum(axis=1) == 1)
    batches = [{k: v.copy() for k, v in b.items()} for b in iter_dense(table, batch_size=batch)]
    for name in ("H", "O", "V", "key", "tempo"):
        assert np.array_equal(np.concatenate([b[name] for b in batches]), dense[name])
