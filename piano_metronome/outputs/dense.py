"""Sparse windows → the dense 64×88 H, O, V matrices models want, vectorised over Arrow buffers.

``H`` is 1 where a key starts on a step, ``O`` its offset in steps (positive = late), ``V``
its velocity / 127; all three are 0 elsewhere, as in the original data. One scatter per
batch: the flat cell index of every hit is ``window · S · 88 + step · 88 + key``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from piano_metronome.constants import NUM_KEYS
from piano_metronome.outputs.schema import WINDOW_COLUMNS, plain_arrow_schema

NUM_SIGNATURES = 12


#: The window columns dense decoding reads (their types come from the schema).
_LIST_COLUMNS = ("note_step", "note_key", "note_offset", "note_velocity")
_SCALAR_COLUMNS = ("key_signature", "tempo_norm", "num_steps")
DENSE_COLUMNS = (*_LIST_COLUMNS, *_SCALAR_COLUMNS)
_STORED = plain_arrow_schema(WINDOW_COLUMNS)


def _rows_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as a torch ``DataLoader`` hands them to ``collate_fn`` → one Arrow table.

    Each row's lists may be Python lists, numpy arrays or torch tensors (``with_format("torch")``
    or ``"numpy"``): all go through ``np.asarray``, so the same collate works with any format.
    """
    columns: dict[str, pa.Array] = {}
    for name in _LIST_COLUMNS:
        value_type = _STORED.field(name).type.value_type
        parts = [np.asarray(row[name]).ravel() for row in rows]
        offsets = np.zeros(len(parts) + 1, np.int32)
        np.cumsum([len(part) for part in parts], out=offsets[1:])
        values = pa.array(np.concatenate(parts).astype(value_type.to_pandas_dtype()), type=value_type)
        columns[name] = pa.ListArray.from_arrays(pa.array(offsets), values)
    for name in _SCALAR_COLUMNS:
        if name in rows[0]:
            stored = _STORED.field(name).type
            columns[name] = pa.array(np.array([np.asarray(row[name]).item() for row in rows]).astype(
                stored.to_pandas_dtype()), type=stored)
    return pa.table(columns)


def _as_table(batch: Any) -> pa.Table:
    """Accept a pyarrow Table/RecordBatch, a ``datasets`` Dataset, a dict of columns (a batch), or a
    list of rows (what a torch ``DataLoader`` passes to ``collate_fn``)."""
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if hasattr(batch, "data") and hasattr(batch.data, "table"):  # datasets.Dataset
        if getattr(batch, "_indices", None) is not None:  # after shuffle/select: honour the order
            return batch.with_format("arrow")[:]
        return batch.data.table
    if isinstance(batch, dict):
        return pa.table({k: batch[k] for k in DENSE_COLUMNS if k in batch})
    if isinstance(batch, (list, tuple)) and batch and all(isinstance(row, Mapping) for row in batch):
        return _rows_table(batch)
    raise TypeError(f"cannot read windows from {type(batch).__name__}"
                    + (" (an empty list)" if isinstance(batch, (list, tuple)) and not batch else ""))


@dataclass(frozen=True)
class _Hits:
    """Every hit of a table as flat numpy arrays, with its window's cell index precomputed."""

    row_starts: np.ndarray  # hits of window i are row_starts[i]:row_starts[i+1]
    cell: np.ndarray  # (window · steps + step) · 88 + key, window counted from the table start
    offset: np.ndarray
    velocity: np.ndarray  # already / 127
    signature: np.ndarray
    tempo: np.ndarray


def _list_values(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(row lengths, flat values) of a list column: one concatenation in Arrow, then zero-copy."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = array.offsets.to_numpy()
    return np.diff(offsets), array.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]


def _hits(table: pa.Table, steps: int) -> _Hits:
    """Pull the list columns out of Arrow once, so per-batch work is numpy slicing only.

    In-place arithmetic: at ~80 hits a window, fresh temporaries, not arithmetic, are what this
    step costs. Cells stay ``intp``: numpy converts any other index type on every scatter.
    """
    lengths, step = _list_values(table["note_step"])
    row_starts = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=row_starts[1:])
    cell = np.repeat(np.arange(table.num_rows, dtype=np.intp) * (steps * NUM_KEYS), lengths)
    cell += step.astype(np.intp) * NUM_KEYS
    cell += _list_values(table["note_key"])[1]
    velocity = _list_values(table["note_velocity"])[1].astype(np.float32)
    velocity *= np.float32(1 / 127)
    return _Hits(row_starts, cell, np.asarray(_list_values(table["note_offset"])[1], dtype=np.float32), velocity,
                 table["key_signature"].to_numpy().astype(np.int64), table["tempo_norm"].to_numpy().astype(np.float32))


def _num_steps(table: pa.Table, num_steps: int | None) -> int:
    """Steps per window: given, else the table's ``num_steps`` column, else 64."""
    if num_steps:
        return num_steps
    if "num_steps" in table.column_names and table.num_rows:
        return int(pc.max(table["num_steps"]).as_py())
    return 64


class DenseDecoder:
    """Writes batches into buffers it keeps, clearing only the cells the last batch wrote.

    Zero-filling three 64×88 float32 matrices costs 67 kB of memory traffic per window, and
    a window has ~80 hits: clearing just those makes decoding cost O(hits), not O(cells).
    The arrays returned are overwritten by the next batch (copy what you keep).
    """

    def __init__(self, num_steps: int = 64) -> None:
        self.num_steps = num_steps
        self._capacity = 0
        self._last = np.zeros(0, np.int64)

    def _ensure(self, n: int) -> None:
        """Buffers for at least ``n`` windows (new buffers are zero)."""
        if n > self._capacity:
            size = n * self.num_steps * NUM_KEYS
            self.H, self.O, self.V = (np.zeros(size, np.float32) for _ in range(3))
            self._capacity, self._last = n, np.zeros(0, np.int64)

    def write(self, hits: _Hits, first: int, last: int) -> dict[str, np.ndarray]:
        """Dense arrays of windows ``first:last`` of ``hits``."""
        n = last - first
        self._ensure(n)
        a, b = hits.row_starts[first], hits.row_starts[last]
        cell = hits.cell[a:b] - first * self.num_steps * NUM_KEYS
        for buffer in (self.H, self.O, self.V):
            buffer[self._last] = 0.0
        self.H[cell] = 1.0
        self.O[cell] = hits.offset[a:b]
        self.V[cell] = hits.velocity[a:b]
        self._last = cell
        shape, used = (n, self.num_steps, NUM_KEYS), n * self.num_steps * NUM_KEYS
        key = np.zeros((n, NUM_SIGNATURES), np.float32)
        signature = hits.signature[first:last]
        labelled = signature >= 0  # −1: the file name gave no key, so the one-hot row stays all zero
        key[np.flatnonzero(labelled), signature[labelled]] = 1.0
        return {"H": self.H[:used].reshape(shape), "O": self.O[:used].reshape(shape),
                "V": self.V[:used].reshape(shape), "key": key, "tempo": hits.tempo[first:last]}

    def decode(self, batch: Any) -> dict[str, np.ndarray]:
        """Dense arrays of one batch (views into the decoder's buffers)."""
        table = _as_table(batch)
        return self.write(_hits(table, self.num_steps), 0, table.num_rows)


def dense_arrays(batch: Any, num_steps: int | None = None) -> dict[str, np.ndarray]:
    """``H``, ``O``, ``V`` (N, steps, 88) float32, ``key`` (N, 12) one-hot signature, ``tempo`` (N,).

    Fresh arrays the caller owns; for a pass over a whole dataset use :func:`iter_dense`.
    """
    table = _as_table(batch)
    return DenseDecoder(_num_steps(table, num_steps)).decode(table)


def iter_dense(dataset: Any, batch_size: int = 64, num_steps: int | None = None,
               decoder: DenseDecoder | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Dense batches over a whole ``datasets.Dataset`` (or Arrow table), in order.

    Small batches keep the reused buffers in cache (64 windows ≈ 4 MB); the arrays of each
    batch are overwritten by the next one (copy what you keep). Pass the same ``decoder`` to
    every pass of a training loop: fresh buffers cost a page fault per 4 kB on first touch,
    more than the decoding itself.
    """
    table = _as_table(dataset)
    steps = _num_steps(table, num_steps)
    if decoder is None or decoder.num_steps != steps:
        decoder = DenseDecoder(steps)
    hits = _hits(table, steps)
    for first in range(0, table.num_rows, batch_size):
        yield decoder.write(hits, first, min(first + batch_size, table.num_rows))


def torch_collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``torch.utils.data.DataLoader`` collate: rows of the dataset → dense torch tensors.

    ``DataLoader(ds["train"], batch_size=32, collate_fn=torch_collate)`` gives batches of ``H``,
    ``O``, ``V`` (32, 64, 88), ``key`` (32, 12) and ``tempo`` (32,), float32 tensors, whatever the
    dataset's format (plain, ``with_format("torch")`` or ``"numpy"``). The default collate cannot
    stack the ragged note lists, which is why a collate is needed at all.
    """
    import torch

    return {k: torch.from_numpy(v) for k, v in dense_arrays(rows).items()}
