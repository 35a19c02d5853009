"""Humanize a quantized MIDI file: put it on the grid of its tempo map, predict, write it back.

The input's notes are snapped to the nearest step of its own tempo map (so a score exported
from any notation program works), cut into 64-step windows from the first bar line, and
given a velocity and an offset by the model. The output is written by the same writer as
``render`` (:func:`piano_metronome.outputs.render.render_hits`): the input's whole tempo map, each
note at its grid step's real time plus its offset, the input's pedal per step; an onset pushed
before time zero is clamped to zero. ``samples`` = N writes N performances, each from its own z.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import LOWEST_MIDI_PITCH
from ..inputs.midi import Performance, read_midi
from ..notes import Notes
from ..outputs.render import RenderSpec, render_hits
from ..processing.keys import estimate_key, key_signature, parse_key
from ..safety import check_file, write_atomic


@dataclass
class HumanizeReport:
    """What was done to a file, for the command's closing line."""

    notes: int
    windows: int
    key_signature: int
    steps_per_beat: int
    mean_abs_shift_ms: float
    velocity_range: tuple[int, int]
    paths: list[str]


def score_table(perf: Performance, steps_per_beat: int, key_sig: int, steps: int = 64):
    """A table in the dataset's layout (the columns the model reads) for a quantized performance."""
    import pyarrow as pa

    tm = perf.tempo_map
    beats = tm.seconds_to_beats(perf.onsets)
    grid = np.maximum(np.round(beats * steps_per_beat).astype(np.int64), 0)
    end_beats = tm.seconds_to_beats(perf.onsets + perf.durations)
    duration = (end_beats - beats) * steps_per_beat
    keys = perf.pitches.astype(np.int64) - LOWEST_MIDI_PITCH
    order = np.lexsort((keys, grid))
    grid, keys, duration = grid[order], keys[order], duration[order]
    n_windows = int(grid.max() // steps + 1) if len(grid) else 0
    rows = []
    for w in range(n_windows):
        sel = (grid >= w * steps) & (grid < (w + 1) * steps)
        start_beat = w * steps / steps_per_beat
        segment = int(np.searchsorted(tm.change_ticks / tm.ticks_per_beat, start_beat, "right")) - 1
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


def tempo_segments(perf: Performance, steps_per_beat: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The input's whole tempo map as (step where each tempo starts, BPM), for the render writer."""
    tm = perf.tempo_map
    steps = np.rint(tm.change_ticks / tm.ticks_per_beat * steps_per_beat).astype(np.int64)
    segments: dict[int, float] = {0: float(tm.qpm[0])}
    for step, qpm in zip(steps, tm.qpm, strict=True):
        segments[max(int(step), 0)] = float(qpm)  # a later change on the same step wins
    keys = sorted(segments)
    return tuple(keys), tuple(segments[k] for k in keys)


def pedal_per_step(perf: Performance, grid_seconds: np.ndarray) -> np.ndarray:
    """The input's sustain pedal value in force at each step (0 before its first event)."""
    if len(perf.pedal_times) == 0:
        return np.zeros(len(grid_seconds), np.int64)
    i = np.searchsorted(perf.pedal_times, grid_seconds, side="right") - 1
    values = np.asarray(perf.pedal_values, dtype=np.int64)
    return np.where(i >= 0, values[np.clip(i, 0, None)], 0)


def _write_midi(path: Path, perf: Performance, steps_per_beat: int, hits: Notes) -> None:
    """Write through the same writer as ``render``: the whole tempo map, real grid times, the pedal."""
    tempo_steps, tempo_bpm = tempo_segments(perf, steps_per_beat)
    n_steps = int(hits.step.max(initial=0)) + 1
    grid_seconds = perf.tempo_map.beats_to_seconds(np.arange(n_steps) / steps_per_beat)
    spec = RenderSpec(steps_per_beat=steps_per_beat, tempo_steps=tempo_steps, tempo_bpm=tempo_bpm,
                      beats_per_bar=perf.beats_per_bar, lead_in_beats=0, meta={"source": "baseline humanize"})
    score = render_hits(hits, spec, pedal_per_step(perf, grid_seconds))
    write_atomic(path, lambda temp: score.dump_midi(str(temp)))


def sample_paths(out_path: Path, samples: int) -> list[Path]:
    """``OUT.mid`` for the honest prediction, else ``OUT-1.mid`` … ``OUT-N.mid``, one per sample."""
    if samples <= 0:
        return [out_path]
    return [out_path.with_name(f"{out_path.stem}-{k}{out_path.suffix}") for k in range(1, samples + 1)]


def humanize_file(model, in_path: str | Path, out_path: str | Path, steps_per_beat: int,
                  key: str | None = None, samples: int = 0, seed: int = 0, force: bool = False) -> HumanizeReport:
    """Humanize ``in_path`` into ``out_path`` (z = prior mean: the most typical performance), or,
    with ``samples`` = N > 0, into N files, each from its own z drawn from p(z | score).

    Every output is checked before any work: an existing file is replaced only with ``force``
    (:class:`~piano_metronome.safety.OverwriteError` otherwise), and each is written atomically.
    """
    from .features import windows_from_table
    from .train import predict

    paths = sample_paths(Path(out_path), samples)
    for path in paths:
        check_file(path, force)

    if model.cfg.ar_hidden and model.cfg.ar_hide <= 0.0:
        raise ValueError("this checkpoint was trained teacher-forced only (ar_hide = 0): it needs the "
                         "true velocities it is asked to predict, so it cannot humanize a score; "
                         "use one trained with the default ar_hide")
    perf = read_midi(in_path)
    ks = _key_signature(perf, key)
    table, order, grid = score_table(perf, steps_per_beat, ks, model.cfg.steps)
    w = windows_from_table(table)
    written = table.column("note_duration").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    shifts, velocities = [], []
    for k, path in enumerate(paths):
        mode = "sample" if samples > 0 else "prior"
        v_sorted, o_sorted = predict(model, w, mode, seed=seed + k)
        velocity, offset = np.empty_like(v_sorted), np.empty_like(o_sorted)
        velocity[w.note_source], offset[w.note_source] = v_sorted, o_sorted  # back to table order
        offset = np.maximum(offset, -grid)  # an onset pushed before time zero is clamped to zero
        vel_midi = np.clip(np.round(velocity * 127), 1, 127).astype(np.int64)
        keys = perf.pitches[order].astype(np.int64) - LOWEST_MIDI_PITCH
        hits = Notes(step=grid, key=keys, offset=offset.astype(np.float64), velocity=vel_midi,
                     duration=np.maximum(written, 0.05))
        _write_midi(path, perf, steps_per_beat, hits)
        onsets = perf.tempo_map.beats_to_seconds((grid + offset) / steps_per_beat)
        shifts.append(np.abs(onsets - perf.onsets[order]) * 1000)
        velocities.append(vel_midi)
    shift_ms = np.concatenate(shifts)
    vel_all = np.concatenate(velocities)
    return HumanizeReport(len(grid), len(w), ks, steps_per_beat, float(shift_ms.mean()) if len(shift_ms) else 0.0,
                          (int(vel_all.min(initial=127)), int(vel_all.max(initial=1))), [str(p) for p in paths])
