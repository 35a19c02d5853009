"""From dataset rows to model inputs: flat note arrays per table, feature tensors per batch.

A table of windows is read once into :class:`Windows` (numpy, one entry per note, sorted by
window, step, key). A batch is then built on demand by :func:`make_batch`: the notes (window, step, key,
targets), per-step features (metrical position, tempo, key), per-note features and per-window
context; the model gathers what it needs per note. Per-note features carry most of what predicts
a velocity: register, pitch class in the key, chord size and the note's place in the chord
(the melody is usually the top note), metrical position and duration. Computing them per
batch, rather than once, is what lets training transpose windows at random.

Every input comes from the score, never from the performance: the duration a note is given is
its *written* one (the performed key-hold rounded to whole steps of the grid, at least one), as
a quantized score would show it; the performed duration is kept only for a labelled ablation
(``ModelConfig.duration_input = "performed"``). The window context summarises the score of the
window and of its neighbours (density, chord size, register, written durations): what a humanizer
given the whole score can know about how loud a passage will be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..constants import LOWEST_MIDI_PITCH

if TYPE_CHECKING:
    import torch

N_KEYS = 88
MAX_RANK = 5  # ranks within a chord are one-hot up to 4, then "5th or further"
BLACK_KEYS = np.array([0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0], dtype=np.float32)  # by MIDI pitch class


@dataclass
class Windows:
    """Windows of one table as flat arrays: per-window columns, then notes sorted within windows.

    ``note_start[w]:note_start[w + 1]`` are window ``w``'s notes; ``note_source`` maps each
    note back to its position in the table's flattened note lists (callers write predictions
    back in that order).
    """

    window_id: np.ndarray
    recording: np.ndarray
    subset: np.ndarray
    start_step: np.ndarray
    valid_steps: np.ndarray
    steps_per_beat: np.ndarray
    beats_per_bar: np.ndarray
    bpm: np.ndarray
    tempo_norm: np.ndarray
    key_signature: np.ndarray
    note_start: np.ndarray
    note_window: np.ndarray
    note_step: np.ndarray
    note_key: np.ndarray
    note_offset: np.ndarray
    note_velocity: np.ndarray
    note_duration: np.ndarray  # performed key-hold, steps (an ablation input only)
    note_written: np.ndarray  # written duration in whole steps: the score's, what the model reads
    note_source: np.ndarray
    context: np.ndarray  # (windows, CONTEXT_DIM) score summary of the window and its neighbours

    def __len__(self) -> int:
        """Number of windows."""
        return len(self.start_step)

    @property
    def num_notes(self) -> int:
        """Number of notes over all windows."""
        return len(self.note_step)

    def notes_of(self, windows: np.ndarray) -> np.ndarray:
        """Indices of the notes of ``windows``, in window order (a concatenation of ranges)."""
        starts, ends = self.note_start[windows], self.note_start[windows + 1]
        counts = ends - starts
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        return offsets + np.arange(counts.sum())


def _as_table(table: Any):
    """Accept a pyarrow Table or a ``datasets`` batch (dict of columns) and return a Table."""
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    if isinstance(table, dict):
        return pa.Table.from_pydict(table)
    raise TypeError(f"expected a pyarrow.Table or a dict of columns, got {type(table).__name__}")


def _list_column(table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Flattened values and per-row lengths of a list column (slices and chunks handled)."""
    col = table.column(name).combine_chunks()
    lengths = col.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    return col.flatten().to_numpy(zero_copy_only=False), lengths.astype(np.int64)


def _column(table, name: str, dtype) -> np.ndarray:
    """One scalar column as a numpy array of ``dtype``."""
    return table.column(name).to_numpy().astype(dtype)


def windows_from_table(table: Any) -> Windows:
    """Read a table of windows (the dataset's columns) into a :class:`Windows`."""
    table = _as_table(table)
    lists = {n: _list_column(table, n) for n in
             ("note_step", "note_key", "note_offset", "note_velocity", "note_duration")}
    lengths = lists["note_step"][1]
    window = np.repeat(np.arange(table.num_rows), lengths)
    step = lists["note_step"][0].astype(np.int64)
    key = lists["note_key"][0].astype(np.int64)
    order = np.lexsort((key, step, window))  # the contract sorts already; this makes sure
    performed = lists["note_duration"][0].astype(np.float32)[order]
    written = np.maximum(np.rint(performed), 1.0).astype(np.float32)
    recording = np.asarray(table.column("recording_id").to_pylist(), dtype=object)
    start_step = _column(table, "start_step", np.int64)
    note_start = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    valid = _column(table, "valid_steps", np.int64)
    return Windows(
        window_id=np.asarray(table.column("window_id").to_pylist(), dtype=object),
        recording=recording,
        subset=np.asarray(table.column("subset").to_pylist(), dtype=object),
        start_step=start_step,
        valid_steps=valid,
        steps_per_beat=_column(table, "steps_per_beat", np.int64),
        beats_per_bar=_column(table, "beats_per_bar", np.int64),
        bpm=_column(table, "bpm", np.float64),
        tempo_norm=_column(table, "tempo_norm", np.float32),
        key_signature=_column(table, "key_signature", np.int64),
        note_start=note_start,
        note_window=window[order],
        note_step=step[order],
        note_key=key[order],
        note_offset=lists["note_offset"][0].astype(np.float32)[order],
        note_velocity=(lists["note_velocity"][0].astype(np.float32) / 127.0)[order],
        note_duration=performed,
        note_written=written,
        note_source=order,
        context=window_context(recording, start_step, valid, window[order], step[order], key[order], written),
    )


CONTEXT_STATS = 6  # per window: density, chord size, mean key, key spread, occupied steps, durations
CONTEXT_DIM = 3 * CONTEXT_STATS  # the window, the one before, the one after. The take-wide mean was
#   dropped at feature version 5: beside the step texture it gained nothing (validation velocity MSE,
#   seed 0: d1 0.01115 with it, 0.01104 without; d2 0.00436 and 0.00434)


def _score_stats(valid: np.ndarray, note_window: np.ndarray, step: np.ndarray, key: np.ndarray,
                 written: np.ndarray, n_windows: int) -> np.ndarray:
    """Per window, from its score alone: notes per step, notes per onset, mean and spread of the
    keys, share of steps with an onset, mean log written duration (each scaled to about 0..1)."""
    count = np.bincount(note_window, minlength=n_windows).astype(np.float64)
    onsets = np.bincount(np.unique(note_window * 1024 + step) // 1024, minlength=n_windows).astype(np.float64)
    mean_key = np.bincount(note_window, weights=key, minlength=n_windows) / np.maximum(count, 1)
    sq = np.bincount(note_window, weights=key.astype(np.float64) ** 2, minlength=n_windows)
    spread = np.sqrt(np.maximum(sq / np.maximum(count, 1) - mean_key**2, 0.0))
    dur = np.bincount(note_window, weights=np.log1p(written), minlength=n_windows) / np.maximum(count, 1)
    steps = np.maximum(valid, 1).astype(np.float64)
    return np.column_stack([count / steps, count / np.maximum(onsets, 1) / 4, mean_key / 87, spread / 24,
                            onsets / steps, dur / 3]).astype(np.float32)


def window_context(recording: np.ndarray, start_step: np.ndarray, valid: np.ndarray,
                   note_window: np.ndarray, step: np.ndarray, key: np.ndarray,
                   written: np.ndarray) -> np.ndarray:
    """Score statistics of each window and of the windows just before and after it in its take (zeros
    at the ends): the score around a window hints at how loud and how busy the passage is, which one
    window alone does not show."""
    n = len(start_step)
    own = _score_stats(valid, note_window, step, key, written, n)
    rec_ids = np.unique(recording.astype(str), return_inverse=True)[1]
    order = np.lexsort((start_step, rec_ids))
    before, after = np.zeros_like(own), np.zeros_like(own)
    same = rec_ids[order][1:] == rec_ids[order][:-1]
    before[order[1:][same]] = own[order[:-1][same]]
    after[order[:-1][same]] = own[order[1:][same]]
    return np.concatenate([own, before, after], axis=1).astype(np.float32)


def metrical_position(abs_step: np.ndarray, steps_per_beat: np.ndarray, beats_per_bar: np.ndarray):
    """Sub-beat and beat-in-bar index of absolute steps (windows start on a bar line at step 0)."""
    return abs_step % steps_per_beat, (abs_step // steps_per_beat) % beats_per_bar


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    """One-hot rows, with indices at or past ``width`` folded into the last column; a negative index
    (unknown, e.g. a take with no key label) gives a row of zeros."""
    out = np.zeros((len(index), width), dtype=np.float32)
    known = np.flatnonzero(index >= 0)
    out[known, np.minimum(index[known], width - 1)] = 1.0
    return out


def _chord_features(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Per note, from its step's chord (``group`` = window·steps + step, notes sorted by key).

    Chord size, rank from the top and from the bottom, the gap to the neighbour above and
    below, and the distance to the chord's top and bottom: the melody is usually on top.
    """
    n = len(group)
    first = np.r_[True, group[1:] != group[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    size = np.bincount(np.cumsum(first) - 1)[np.cumsum(first) - 1]
    rank_bottom = np.arange(n) - start
    rank_top = size - 1 - rank_bottom
    top = key[start + size - 1]
    bottom = key[start]
    above = np.where(rank_top > 0, np.r_[key[1:], 0] - key, 24) / 24.0
    below = np.where(rank_bottom > 0, key - np.r_[0, key[:-1]], 24) / 24.0
    return np.column_stack([
        size / 8.0, _one_hot(rank_top, MAX_RANK), _one_hot(rank_bottom, MAX_RANK),
        np.minimum(above, 1.0), np.minimum(below, 1.0), (top - key) / 48.0, (key - bottom) / 48.0,
    ]).astype(np.float32)


def _local_extremes(batch_index, step, key, n_windows: int, steps: int, reach: np.ndarray):
    """Distance (semitones/24) from each note to the highest and lowest key sounding within ± reach steps.

    A note at the local maximum over about a beat is the likely melody note even when the
    chord at its own step is just that note.
    """
    high = np.full((n_windows, steps), -1, dtype=np.int64)
    low = np.full((n_windows, steps), N_KEYS, dtype=np.int64)
    np.maximum.at(high, (batch_index, step), key)
    np.minimum.at(low, (batch_index, step), key)
    loc_high, loc_low = high.copy(), low.copy()
    for shift in range(1, int(reach.max(initial=1)) + 1):
        ok = (reach >= shift)[:, None]
        for a, b in ((slice(shift, None), slice(None, -shift)), (slice(None, -shift), slice(shift, None))):
            loc_high[:, a] = np.where(ok, np.maximum(loc_high[:, a], high[:, b]), loc_high[:, a])
            loc_low[:, a] = np.where(ok, np.minimum(loc_low[:, a], low[:, b]), loc_low[:, a])
    hi, lo = loc_high[batch_index, step], loc_low[batch_index, step]
    return np.column_stack([(hi - key) / 24.0, (key - lo) / 24.0, (hi == key)]).astype(np.float32)


def step_feature_dim(max_sub_beats: int, max_beats: int) -> int:
    """Width of the per-step features built by :func:`make_batch`."""
    return max_sub_beats + max_beats + 1 + 1 + 1 + 12 + 1 + 1


def valid_column(max_sub_beats: int, max_beats: int) -> int:
    """Index of the per-step flag that is 1 inside the recording (0 past its end)."""
    return max_sub_beats + max_beats


def note_feature_dim(max_sub_beats: int, max_beats: int) -> int:
    """Width of the per-note features built by :func:`make_batch`."""
    return 1 + 12 + 1 + (1 + 2 * MAX_RANK + 4) + 3 + max_sub_beats + max_beats + 1


def _step_features(w: Windows, idx: np.ndarray, key_sig: np.ndarray, steps: int, counts: np.ndarray,
                   max_sub_beats: int, max_beats: int) -> np.ndarray:
    """Per window and step: sub-beat, beat, inside-the-recording flag, grid, tempo, key, note count, position.

    The grid (steps per beat) tells a model trained on ``all`` an 8th from a 16th sub-beat.
    """
    b = len(idx)
    abs_step = w.start_step[idx, None] + np.arange(steps)[None, :]
    sub, beat = metrical_position(abs_step, w.steps_per_beat[idx, None], w.beats_per_bar[idx, None])
    parts = [
        _one_hot(sub.ravel(), max_sub_beats),
        _one_hot(beat.ravel(), max_beats),
        (np.arange(steps)[None, :] < w.valid_steps[idx, None]).astype(np.float32).reshape(-1, 1),
        np.repeat(w.steps_per_beat[idx] / 4.0, steps).astype(np.float32)[:, None],
        np.repeat(w.tempo_norm[idx], steps)[:, None],
        np.repeat(_one_hot(key_sig, 12), steps, axis=0),
        (counts.reshape(-1, 1) / 8.0).astype(np.float32),
        np.tile(np.linspace(-1, 1, steps, dtype=np.float32), b)[:, None],
    ]
    return np.concatenate(parts, axis=1).reshape(b, steps, -1)


def _note_features(w: Windows, idx, notes, batch_index, key, key_sig, steps, max_sub_beats, max_beats,
                   duration: np.ndarray):
    """Per note: register, pitch class in the key, black key, chord, local melody, metre, duration."""
    step = w.note_step[notes]
    pitch_class = (key + LOWEST_MIDI_PITCH) % 12
    abs_step = w.start_step[idx][batch_index] + step
    spb, bpb = w.steps_per_beat[idx][batch_index], w.beats_per_bar[idx][batch_index]
    sub, beat = metrical_position(abs_step, spb, bpb)
    group = batch_index * steps + step
    reach = w.steps_per_beat[idx]
    return np.concatenate([
        (key / (N_KEYS - 1)).astype(np.float32)[:, None],
        _one_hot(np.where(key_sig[batch_index] < 0, -1, (pitch_class - key_sig[batch_index]) % 12), 12),
        BLACK_KEYS[pitch_class][:, None],
        _chord_features(group, key),
        _local_extremes(batch_index, step, key, len(idx), steps, reach),
        _one_hot(sub, max_sub_beats),
        _one_hot(beat, max_beats),
        (np.log1p(np.maximum(duration, 0.0)) / 3.0).astype(np.float32)[:, None],
    ], axis=1)


def transposition(w: Windows, idx: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """A random shift per window within ± limit that keeps all its notes on the keyboard."""
    shifts = rng.integers(-limit, limit + 1, size=len(idx))
    lo = np.full(len(idx), N_KEYS, dtype=np.int64)
    hi = np.full(len(idx), -1, dtype=np.int64)
    notes = w.notes_of(idx)
    bi = np.repeat(np.arange(len(idx)), w.note_start[idx + 1] - w.note_start[idx])
    np.minimum.at(lo, bi, w.note_key[notes])
    np.maximum.at(hi, bi, w.note_key[notes])
    return np.clip(shifts, -lo, N_KEYS - 1 - hi).astype(np.int64)


def _shifted_context(context: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The context of transposed windows: their mean-key columns move with the notes."""
    out = context.copy()
    out[:, 2::CONTEXT_STATS] += (shift[:, None] / 87.0).astype(np.float32)
    return out


@dataclass
class Batch:
    """Tensors of some windows: one row per note (sorted by window, step, key) and per-window parts.

    ``velocity`` and ``offset`` are the targets: only the loss, the encoder q(z | performance)
    and the labelled teacher-forced input may read them.
    """

    batch_index: torch.Tensor  # (notes,) window of each note within the batch
    step: torch.Tensor  # (notes,) step within the window
    key: torch.Tensor  # (notes,) key 0..87, transposed with the window
    velocity: torch.Tensor  # (notes,) target velocity / 127
    offset: torch.Tensor  # (notes,) target offset in steps
    ms_per_step: torch.Tensor  # (notes,) milliseconds per step at the window's tempo
    duration: torch.Tensor  # (notes,) the duration input in steps (written, or performed in the ablation)
    step_features: torch.Tensor  # (windows, steps, step_feature_dim)
    note_features: torch.Tensor  # (notes, note_feature_dim)
    context: torch.Tensor  # (windows, CONTEXT_DIM)
    notes: np.ndarray  # index of each note in the Windows note order (where predictions go back)

    @property
    def windows(self) -> int:
        """Number of windows in the batch."""
        return int(self.step_features.shape[0])

    def with_targets(self, velocity: torch.Tensor, offset: torch.Tensor) -> Batch:
        """The same score with other targets (tests use it to show the score-only path ignores them)."""
        from dataclasses import replace

        return replace(self, velocity=velocity, offset=offset)


def make_batch(w: Windows, idx: np.ndarray, steps: int = 64, max_sub_beats: int = 4, max_beats: int = 8,
               shift: np.ndarray | None = None, duration_input: str = "written") -> Batch:
    """Tensors for windows ``idx``: notes (batch index, step, key), features and targets.

    ``shift`` transposes each window by that many semitones (key signature moved along), which
    multiplies the training data without changing what the notes mean in their key.
    ``duration_input`` is ``written`` (the score's, the default) or ``performed`` (the ablation).
    """
    import torch

    if duration_input not in ("written", "performed"):
        raise ValueError(f"duration_input={duration_input!r}: use 'written' or 'performed'")
    idx = np.asarray(idx, dtype=np.int64)
    notes = w.notes_of(idx)
    batch_index = np.repeat(np.arange(len(idx)), w.note_start[idx + 1] - w.note_start[idx])
    shift = np.zeros(len(idx), dtype=np.int64) if shift is None else shift
    key = w.note_key[notes] + shift[batch_index]
    key_sig = np.where(w.key_signature[idx] < 0, -1, (w.key_signature[idx] + shift) % 12)  # −1: no key label
    step = w.note_step[notes]
    counts = np.zeros((len(idx), steps), dtype=np.float32)
    np.add.at(counts, (batch_index, step), 1.0)
    duration = (w.note_written if duration_input == "written" else w.note_duration)[notes]
    ms = (60000.0 / w.bpm[idx] / w.steps_per_beat[idx])[batch_index].astype(np.float32)
    return Batch(
        batch_index=torch.from_numpy(batch_index),
        step=torch.from_numpy(step),
        key=torch.from_numpy(key),
        velocity=torch.from_numpy(w.note_velocity[notes]),
        offset=torch.from_numpy(w.note_offset[notes]),
        ms_per_step=torch.from_numpy(ms),
        duration=torch.from_numpy(duration.astype(np.float32)),
        step_features=torch.from_numpy(
            _step_features(w, idx, key_sig, steps, counts, max_sub_beats, max_beats)),
        note_features=torch.from_numpy(
            _note_features(w, idx, notes, batch_index, key, key_sig, steps, max_sub_beats, max_beats, duration)),
        context=torch.from_numpy(_shifted_context(w.context[idx], shift)),
        notes=notes,
    )
