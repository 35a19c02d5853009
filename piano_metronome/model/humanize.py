"""Humanize a quantized MIDI file: put it on the grid of its tempo map, predict, write it back.

The input's notes are snapped to the nearest step of its own tempo map (so a score exported
from any notation program works), cut into 64-step windows from the first bar line, and
given a velocity and an offset by the model. The output keeps the input's tempo map, so it
plays at the real tempo; an onset pushed before time zero is clamped to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..inputs.midi import Performance, read_midi
from ..processing.keys import estimate_key, key_signature, parse_key


@dataclass
class HumanizeReport:
    """What was done to a file, for the command's closing line."""

    notes: int
    windows: int
    key_signature: int
    steps_per_beat: int
    mean_abs_shift_ms: float
    velocity_range: tuple[int, int]


def score_table(perf: Performance, steps_per_beat: int, key_sig: int, steps: int = 64):
    """A table in the dataset's layout (the columns the model reads) for a quantized performance."""
    import pyarrow as pa

    tm = perf.tempo_map
    beats = tm.seconds_to_beats(perf.onsets)
    grid = np.maximum(np.round(beats * steps_per_beat).astype(np.int64), 0)
    end_beats = tm.seconds_to_beats(perf.onsets + perf.durations)
    duration = (end_beats - beats) * steps_per_beat
    keys = perf.pitches.astype(np.int64) - 21
    order = np.lexsort((keys, grid))
    grid, keys, duration = grid[order], keys[order], duration[order]
    n_windows = int(grid.max() // steps + 1) if len(grid) else 0
    rows = []
    for w in range(n_windows):
        sel = (grid >= w * steps) & (grid < (w + 1) * steps)
        start_beat = w * steps / steps_per_beat
        segment = np.searchsorted(tm.change_ticks / tm.ticks_per_beat, start_beat, "right") - 1
        qpm = float(tm.qpm[max(segment, 0)])  # the tempo in force where the window starts
        rows.append({
            "window_id": f"in/{w:03d}", "recording_id": "in", "subset": "in", "start_step": w * steps,
            "valid_steps": int(min(steps, grid.max() + 1 - w * steps)), "steps_per_beat": steps_per_beat,
            "beats_per_bar": perf.beats_per_bar, "bpm": qpm, "tempo_norm": qpm / 100 - 1,
            "key_signature": key_sig, "note_step": (grid[sel] - w * steps).tolist(),
            "note_key": keys[sel].tolist(), "note_offset": [0.0] * int(sel.sum()),
            "note_velocity": [64] * int(sel.sum()), "note_duration": duration[sel].tolist(),
        })
    return pa.Table.from_pylist(rows), order, grid


def _key_signature(perf: Performance, key: str | None) -> int:
    """The key signature from a label, else estimated from the notes (duration-weighted)."""
    if key:
        return key_signature(parse_key(key))
    return key_signature(estimate_key(perf.pitches, perf.durations).key)


def _write_midi(path: Path, perf: Performance, onsets, durations, pitches, velocities) -> None:
    """Write a one-track piano file with the input's first tempo and its sustain pedal."""
    import pretty_midi

    tm = perf.tempo_map
    pm = pretty_midi.PrettyMIDI(resolution=tm.ticks_per_beat, initial_tempo=float(tm.qpm[0]))
    piano = pretty_midi.Instrument(program=0, name="humanized piano")
    for t, d, p, v in zip(onsets, durations, pitches, velocities, strict=True):
        piano.notes.append(pretty_midi.Note(velocity=int(v), pitch=int(p), start=float(t), end=float(t + d)))
    for t, v in zip(perf.pedal_times, perf.pedal_values, strict=True):
        piano.control_changes.append(pretty_midi.ControlChange(number=64, value=int(v), time=float(t)))
    pm.instruments.append(piano)
    pm.write(str(path))


def humanize_file(model, in_path: str | Path, out_path: str | Path, steps_per_beat: int,
                  key: str | None = None, sample: bool = False, seed: int = 0) -> HumanizeReport:
    """Humanize ``in_path`` into ``out_path``; ``sample`` draws z from the prior instead of z = 0."""
    from .features import windows_from_table
    from .train import predict

    if model.cfg.ar_hidden and model.cfg.ar_hide <= 0.0:
        raise ValueError("this checkpoint was trained teacher-forced only (ar_hide = 0): it needs the "
                         "true velocities it is asked to predict, so it cannot humanize a score; "
                         "use one trained with the default ar_hide")
    perf = read_midi(in_path)
    ks = _key_signature(perf, key)
    table, order, grid = score_table(perf, steps_per_beat, ks, model.cfg.steps)
    w = windows_from_table(table)
    v_sorted, o_sorted = predict(model, w, "sample" if sample else "prior", seed=seed)
    velocity, offset = np.empty_like(v_sorted), np.empty_like(o_sorted)
    velocity[w.note_source], offset[w.note_source] = v_sorted, o_sorted  # back to table order
    onsets = perf.tempo_map.beats_to_seconds((grid + offset) / steps_per_beat)
    onsets = np.maximum(onsets, 0.0)
    vel_midi = np.clip(np.round(velocity * 127), 1, 127).astype(int)
    durations = np.maximum(perf.durations[order], 0.01)
    _write_midi(Path(out_path), perf, onsets, durations, perf.pitches[order], vel_midi)
    shift_ms = np.abs(onsets - perf.onsets[order]) * 1000
    mean_shift = float(shift_ms.mean()) if len(onsets) else 0.0
    return HumanizeReport(len(onsets), len(w), ks, steps_per_beat, mean_shift,
                          (int(vel_midi.min(initial=127)), int(vel_midi.max(initial=1))))
