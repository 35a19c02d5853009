"""The invariants every window must satisfy, checked vectorised over whole Arrow tables.

``validate`` runs them on every shard; the property and fuzz tests run them on what the
alignment produces. One flag array per invariant: which rows break it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from piano_metronome.constants import NUM_KEYS
from piano_metronome.outputs.schema import WINDOW_COLUMNS
from piano_metronome.processing.keys import KEY_NAMES, NO_KEY, key_signature

#: Offsets lie in [−0.5, 0.5), except members of a chord rolled across a half step, which keep
#: the chord's step: those stay below this bound and never sit alone on their step.
CHORD_OFFSET_LIMIT = 0.7
MAX_VELOCITY = 127
MAX_CC = 127
NOTE_COLUMNS = tuple(c.name for c in WINDOW_COLUMNS if c.name.startswith("note_"))
#: 12-class signature of each of the 24 keys, as a lookup table for vectorised checks.
SIGNATURE_OF_KEY = np.array([key_signature(k) for k in range(len(KEY_NAMES))])


def as_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as numpy (one concatenation, then zero-copy where Arrow allows)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values: np.ndarray = array.to_numpy(zero_copy_only=False)
    return values


def _list_parts(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(length of each row's list, all values flattened) of a list column."""
    array = column.combine_chunks()
    lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return lengths, pc.list_flatten(array).to_numpy(zero_copy_only=False)


def _rows_with(bad: np.ndarray, row: np.ndarray, n: int) -> np.ndarray:
    """Per-note flags → per-window flags."""
    return np.bincount(row[bad], minlength=n) > 0 if bad.any() else np.zeros(n, bool)


class _Flags(dict[str, np.ndarray]):
    """Message → boolean row mask; only messages that flag at least one window are kept."""

    def flag(self, message: str, mask: np.ndarray) -> None:
        """OR ``mask`` into the rows flagged with ``message``."""
        mask = np.asarray(mask, bool)
        if mask.any():
            self[message] = self[message] | mask if message in self else mask


def window_invariants(table: pa.Table) -> dict[str, np.ndarray]:
    """Every violated invariant of a windows table: message → mask of the windows violating it.

    Public so tests (and the fuzz test's mutated files) can hold any windows table to the
    same rules as a published shard.
    """
    n = table.num_rows
    flags = _Flags()
    for name in table.column_names:
        if table[name].null_count:
            flags.flag(f"{name} is null", as_numpy(pc.is_null(table[name])))
    _scalar_invariants(table, flags)
    _note_invariants(table, flags, n)
    _pedal_invariants(table, flags, n)
    return dict(flags)


def _scalar_invariants(table: pa.Table, flags: _Flags) -> None:
    """One value per window: sizes, keys, tempo, identities."""
    num_steps = as_numpy(table["num_steps"]).astype(np.int64)
    valid = as_numpy(table["valid_steps"]).astype(np.int64)
    flags.flag("num_steps outside 1…127", (num_steps < 1) | (num_steps > 127))
    flags.flag("valid_steps outside 1…num_steps", (valid < 1) | (valid > num_steps))
    estimated = as_numpy(table["key_estimated"])
    flags.flag(f"key_estimated outside 0…{len(KEY_NAMES) - 1}", (estimated < 0) | (estimated >= len(KEY_NAMES)))
    label = as_numpy(table["key_label"]).astype(np.int64)
    flags.flag(f"key_label outside −1…{len(KEY_NAMES) - 1} (−1: no label)",
               (label < NO_KEY) | (label >= len(KEY_NAMES)))
    signature = as_numpy(table["key_signature"]).astype(np.int64)
    flags.flag("key_signature outside −1…11", (signature < NO_KEY) | (signature > 11))
    in_range = (label >= 0) & (label < len(KEY_NAMES))
    flags.flag("key_signature is not the signature of key_label",
               in_range & (signature != SIGNATURE_OF_KEY[np.clip(label, 0, len(KEY_NAMES) - 1)]))
    flags.flag("key_signature is not −1 where key_label is −1 (no label)", (label == NO_KEY) & (signature != NO_KEY))
    confidence = as_numpy(table["key_confidence"])
    flags.flag("key_confidence outside [0, 1]", ~((confidence >= 0) & (confidence <= 1)))
    bpm = as_numpy(table["bpm"]).astype(np.float64)
    flags.flag("bpm not a positive number", ~(np.isfinite(bpm) & (bpm > 0)))
    norm = as_numpy(table["tempo_norm"]).astype(np.float64)
    flags.flag("tempo_norm ≠ bpm/100 − 1", ~(np.abs(norm - (bpm / 100.0 - 1.0)) <= 1e-4))
    for name in ("latency_ms", "start_time_s"):
        flags.flag(f"{name} not finite", ~np.isfinite(as_numpy(table[name]).astype(np.float64)))
    for name, low in (("start_step", 0), ("window_index", 0), ("steps_per_beat", 1), ("beats_per_bar", 1)):
        flags.flag(f"{name} < {low}", as_numpy(table[name]) < low)
    _bar_invariant(table, num_steps, flags)
    _identity_invariants(table, flags)


def _bar_invariant(table: pa.Table, num_steps: np.ndarray, flags: _Flags) -> None:
    """A window of a bar or more starts on a bar line of its own take (bars of beats_per_bar × steps_per_beat).

    The card promises bar-aligned windows: a 3/4 take cut every 64 steps would start mid-bar.
    """
    bar = as_numpy(table["beats_per_bar"]).astype(np.int64) * as_numpy(table["steps_per_beat"]).astype(np.int64)
    start = as_numpy(table["start_step"]).astype(np.int64)
    long_enough = (bar > 0) & (num_steps >= bar)
    flags.flag("window does not start on a bar line (start_step not a multiple of beats_per_bar × steps_per_beat)",
               long_enough & (start % np.maximum(bar, 1) != 0))


def _identity_invariants(table: pa.Table, flags: _Flags) -> None:
    """``window_id`` = ``<recording_id>/<window_index:03d>`` and ``recording_id`` = ``<subset>/…``."""
    index = pc.utf8_lpad(pc.cast(table["window_index"], pa.string()), 3, "0")
    expected = pc.binary_join_element_wise(table["recording_id"], index, "/")
    flags.flag("window_id is not <recording_id>/<window_index:03d>",
               ~as_numpy(pc.fill_null(pc.equal(table["window_id"], expected), False)))
    subsets = table["subset"]
    for subset in pc.unique(subsets).to_pylist():
        if subset is None:
            continue
        mine = as_numpy(pc.fill_null(pc.equal(subsets, subset), False))
        prefixed = as_numpy(pc.fill_null(pc.starts_with(table["recording_id"], pattern=f"{subset}/"), False))
        flags.flag("recording_id does not start with <subset>/", mine & ~prefixed)


def _note_invariants(table: pa.Table, flags: _Flags, n: int) -> None:
    """Per note: cell in range, sorted, one per cell, offset, velocity, duration."""
    parts = {name: _list_parts(table[name]) for name in NOTE_COLUMNS}
    count = parts["note_step"][0]
    for name, (lengths, _) in parts.items():
        flags.flag(f"{name} has another length than note_step", lengths != count)
    flags.flag("window holds no note", count == 0)
    if any(not np.array_equal(lengths, count) for lengths, _ in parts.values()):
        return  # notes cannot be matched up across columns; the length flag says why
    row = np.repeat(np.arange(n), count)
    step = parts["note_step"][1].astype(np.int64)
    key = parts["note_key"][1].astype(np.int64)
    flags.flag("note_step outside 0…num_steps−1", _rows_with(
        (step < 0) | (step >= np.repeat(as_numpy(table["num_steps"]).astype(np.int64), count)), row, n))
    flags.flag("note_step beyond valid_steps", _rows_with(
        step >= np.repeat(as_numpy(table["valid_steps"]).astype(np.int64), count), row, n))
    flags.flag(f"note_key outside 0…{NUM_KEYS - 1}", _rows_with((key < 0) | (key >= NUM_KEYS), row, n))
    same_row = row[1:] == row[:-1]
    order = np.diff(step * 256 + key)
    flags.flag("notes not sorted by (step, key)", _rows_with(same_row & (order < 0), row[1:], n))
    flags.flag("two notes in one (step, key) cell", _rows_with(same_row & (order == 0), row[1:], n))
    _offset_invariant(parts["note_offset"][1], step, row, same_row, flags, n)
    velocity = parts["note_velocity"][1].astype(np.int64)
    flags.flag(f"note_velocity outside 1…{MAX_VELOCITY} (V = velocity/127 outside (0, 1])",
               _rows_with((velocity < 1) | (velocity > MAX_VELOCITY), row, n))
    duration = parts["note_duration"][1].astype(np.float64)
    flags.flag("note_duration not > 0", _rows_with(~(np.isfinite(duration) & (duration > 0)), row, n))


def _offset_invariant(offset: np.ndarray, step: np.ndarray, row: np.ndarray, same_row: np.ndarray,
                      flags: _Flags, n: int) -> None:
    """Offsets in [−0.5, 0.5), or below 0.7 in size for a chord member that shares its step."""
    off = offset.astype(np.float64)
    shares_prev = np.concatenate([[False], same_row & (step[1:] == step[:-1])])
    shared = shares_prev | np.concatenate([shares_prev[1:], [False]])
    ok = ((off >= -0.5) & (off < 0.5)) | ((np.abs(off) < CHORD_OFFSET_LIMIT) & shared)
    flags.flag("note_offset outside [−0.5, 0.5) (a chord member sharing its step: |offset| < 0.7)",
               _rows_with(~ok, row, n))


def _pedal_invariants(table: pa.Table, flags: _Flags, n: int) -> None:
    """Exactly num_steps CC64 values per window, each 0…127."""
    lengths, values = _list_parts(table["pedal"])
    flags.flag("pedal does not have num_steps values", lengths != as_numpy(table["num_steps"]).astype(np.int64))
    row = np.repeat(np.arange(n), lengths)
    flags.flag(f"pedal value outside 0…{MAX_CC}", _rows_with(values.astype(np.int64) > MAX_CC, row, n))
