"""Whole takes → windows of any length, without the raw files or a new alignment.

A ``takes`` row holds everything a recording's windows are cut from: its notes on the grid,
the grid itself (as knots) and the pedal per step. :func:`windows_from_takes` cuts them the way
the build does, through the same code (:func:`~piano_metronome.processing.align.window_frame`
and :func:`~piano_metronome.outputs.tables.take_windows`), so 64-step windows from takes are
the ``d1`` / ``d2`` / ``all`` windows byte for byte, and 32- or 128-step windows are what a build
with ``--window-steps 32`` would give::

    from datasets import load_dataset
    from piano_metronome.outputs.takes import windows_from_takes

    takes = load_dataset("piano_metronome", "takes", split="train")
    two_bars = windows_from_takes(takes, window_steps=32)          # a pyarrow Table of windows
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from piano_metronome.notes import Notes
from piano_metronome.outputs.tables import Take, take_windows, window_schema
from piano_metronome.processing.align import AlignOptions, window_frame, window_starts
from piano_metronome.processing.grid import Grid

#: The ``takes`` columns a window is made from (the MIDI bytes and played times are not needed).
WINDOW_SOURCE_COLUMNS = (
    "recording_id", "subset", "split", "steps_per_beat", "beats_per_bar", "total_steps", "latency_ms", "key_label",
    "key_estimated", "key_confidence", "grid_knot_beats", "grid_knot_seconds", "note_step", "note_key",
    "note_offset", "note_velocity", "note_duration", "pedal",
)
_LIST_TYPES = {"grid_knot_beats": np.float64, "grid_knot_seconds": np.float64, "note_step": np.int64,
               "note_key": np.int8, "note_offset": np.float32, "note_velocity": np.uint8,
               "note_duration": np.float32, "pedal": np.uint8}


def _as_table(takes: Any, columns: tuple[str, ...]) -> pa.Table:
    """A pyarrow Table of the given columns from a Table or a ``datasets`` Dataset (order kept)."""
    if isinstance(takes, pa.Table):
        return takes.select(list(columns))
    if hasattr(takes, "select_columns") and hasattr(takes, "with_format"):  # datasets.Dataset
        table: pa.Table = takes.select_columns(list(columns)).with_format("arrow")[:]
        return table
    raise TypeError(f"cannot read takes from {type(takes).__name__} (give a datasets Dataset or a pyarrow Table)")


def iter_takes(takes: Any, columns: tuple[str, ...] = WINDOW_SOURCE_COLUMNS) -> Iterator[Take]:
    """Each row of a ``takes`` table as a :class:`~piano_metronome.outputs.tables.Take` (lists flattened once)."""
    table = _as_table(takes, columns).combine_chunks()
    flat = {name: np.asarray(pc.list_flatten(table[name]).to_numpy(zero_copy_only=False), dtype)
            for name, dtype in _LIST_TYPES.items() if name in table.column_names}
    ends = {name: np.concatenate([[0], np.cumsum(pc.list_value_length(table[name]).to_numpy())]).astype(np.int64)
            for name in flat}
    scalars = table.drop_columns(list(flat)).to_pylist()
    for i, row in enumerate(scalars):
        part = {name: values[ends[name][i]:ends[name][i + 1]] for name, values in flat.items()}
        yield Take(
            recording_id=row["recording_id"], subset=row["subset"], split=row["split"],
            steps_per_beat=int(row["steps_per_beat"]), beats_per_bar=int(row["beats_per_bar"]),
            latency_ms=float(row["latency_ms"]), key_label=int(row["key_label"]),
            key_estimated=int(row["key_estimated"]), key_confidence=float(row["key_confidence"]),
            grid=Grid("stored", part["grid_knot_beats"], part["grid_knot_seconds"], int(row["beats_per_bar"])),
            notes=Notes(step=part["note_step"], key=part["note_key"], offset=part["note_offset"],
                        velocity=part["note_velocity"], duration=part["note_duration"]),
            pedal=part["pedal"], total_steps=int(row["total_steps"]),
        )


def windows_from_takes(takes: Any, window_steps: int = 64, hop_steps: int | None = None) -> pa.Table:
    """Cut every take into bar-aligned windows of ``window_steps`` steps, one every ``hop_steps``
    (default: no overlap), empty windows skipped, in the order of the takes: the windows schema."""
    options = AlignOptions(window_steps=window_steps, hop_steps=hop_steps)
    tables = [take_windows(take, window_frame(take.grid, take.notes.step, take.total_steps, take.steps_per_beat,
                                              options), window_steps)
              for take in iter_takes(takes)]
    return pa.concat_tables(tables) if tables else window_schema().empty_table()


def window_counts(takes: Any, lengths: tuple[int, ...]) -> dict[int, int]:
    """How many windows :func:`windows_from_takes` would cut at each length, without building them:
    only their starts, which depend on the notes' steps and the take's length alone."""
    table = _as_table(takes, ("note_step", "total_steps")).combine_chunks()
    steps = np.asarray(pc.list_flatten(table["note_step"]).to_numpy(zero_copy_only=False), np.int64)
    ends = np.concatenate([[0], np.cumsum(pc.list_value_length(table["note_step"]).to_numpy())]).astype(np.int64)
    options = {n: AlignOptions(window_steps=n) for n in lengths}
    counts = dict.fromkeys(lengths, 0)
    for i, total_steps in enumerate(table["total_steps"].to_pylist()):
        for n in lengths:
            counts[n] += len(window_starts(steps[ends[i]:ends[i + 1]], int(total_steps), options[n])[0])
    return counts
