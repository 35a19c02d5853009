"""Aligned performances → Arrow tables (windows and recordings), vectorised per recording.

Windows hold their notes as parallel list columns (the non-zero cells of H with their O, V
and duration), built from one gather per recording rather than per-note Python objects.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from piano_metronome.notes import Notes
from piano_metronome.outputs.schema import (
    RECORDING_COLUMNS,
    TAKE_COLUMNS,
    WINDOW_COLUMNS,
    arrow_schema,
    plain_arrow_schema,
)
from piano_metronome.processing.align import AlignedPerformance, AlignmentReport, AlignOptions, WindowFrame
from piano_metronome.processing.grid import Grid
from piano_metronome.processing.keys import KEY_NAMES, NO_KEY, key_signature, parse_key


@cache
def window_schema() -> pa.Schema:
    """The windows' Arrow types (features are attached by the ``datasets`` writer), built once."""
    return plain_arrow_schema(WINDOW_COLUMNS)


@cache
def take_schema() -> pa.Schema:
    """The ``takes`` rows' Arrow types (features are attached by the ``datasets`` writer), built once."""
    return plain_arrow_schema(TAKE_COLUMNS)


@cache
def recording_schema() -> pa.Schema:
    """The recordings table's Arrow schema, features embedded (this table is written without ``datasets``)."""
    return arrow_schema(RECORDING_COLUMNS)


def _list_column(values: np.ndarray, gather: np.ndarray, offsets: np.ndarray) -> pa.ListArray:
    """A list column whose row i holds ``values[gather[offsets[i]:offsets[i+1]]]``."""
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values[gather]))


@dataclass(frozen=True)
class Take:
    """One recording's aligned performance in the terms the tables store: what its windows and its
    ``takes`` row are made from, whether it comes from the aligner or back from a ``takes`` row."""

    recording_id: str
    subset: str
    split: str
    steps_per_beat: int
    beats_per_bar: int
    latency_ms: float
    key_label: int  # ClassLabel index of the file name's key
    key_estimated: int
    key_confidence: float
    grid: Grid
    notes: Notes
    pedal: np.ndarray
    total_steps: int


def take_of(aligned: AlignedPerformance) -> Take:
    """The stored view of an aligned recording."""
    info, report = aligned.info, aligned.report
    return Take(
        recording_id=info.recording_id, subset=info.subset, split=info.split, steps_per_beat=info.steps_per_beat,
        beats_per_bar=report.beats_per_bar, latency_ms=report.latency_ms,
        key_label=parse_key(info.labelled_key) if report.key_label else NO_KEY,
        key_estimated=KEY_NAMES.index(report.key_estimated) if report.key_estimated else 0,
        key_confidence=report.key_confidence, grid=aligned.grid, notes=aligned.notes, pedal=aligned.pedal,
        total_steps=aligned.total_steps,
    )


def windows_table(aligned: AlignedPerformance, options: AlignOptions) -> pa.Table:
    """One row per window of one recording, in the declared schema."""
    return take_windows(take_of(aligned), aligned.frame, options.window_steps)


def take_windows(take: Take, frame: WindowFrame, width: int) -> pa.Table:
    """The windows of a take, cut where ``frame`` says (the aligner's frame, or one recomputed from a
    stored take): one place builds every window row, so both give the same bytes."""
    notes = take.notes
    begin = np.searchsorted(notes.step, frame.starts, side="left")
    end = np.searchsorted(notes.step, frame.starts + width, side="left")
    n = len(begin)
    counts = end - begin
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    gather = np.repeat(begin - offsets[:-1], counts) + np.arange(offsets[-1])
    window_of_note = np.repeat(np.arange(n), counts)
    local_step = (notes.step[gather] - frame.starts[window_of_note]).astype(np.int8)
    pedal_idx = frame.starts[:, None] + np.arange(width)[None, :]
    pedal = np.where(pedal_idx < take.total_steps, take.pedal[np.clip(pedal_idx, 0, max(
        take.total_steps - 1, 0))], 0).astype(np.uint8) if n else np.zeros((0, width), np.uint8)
    columns = {
        "window_id": pa.array([f"{take.recording_id}/{i:03d}" for i in range(n)], pa.string()),
        "recording_id": pa.array([take.recording_id] * n, pa.string()),
        "subset": pa.array([take.subset] * n, pa.string()),
        "split": pa.array([take.split] * n, pa.string()),
        "window_index": pa.array(np.arange(n, dtype=np.int32)),
        "start_step": pa.array(frame.starts.astype(np.int32)),
        "start_time_s": pa.array(frame.start_s.astype(np.float64)),
        "num_steps": pa.array(np.full(n, width, np.int16)),
        "valid_steps": pa.array(np.minimum(width, take.total_steps - frame.starts).astype(np.int16)),
        "steps_per_beat": pa.array(np.full(n, take.steps_per_beat, np.int8)),
        "beats_per_bar": pa.array(np.full(n, take.beats_per_bar, np.int8)),
        "bpm": pa.array(frame.bpm.astype(np.float32)),
        "tempo_norm": pa.array((frame.bpm / 100.0 - 1.0).astype(np.float32)),
        "latency_ms": pa.array(np.full(n, take.latency_ms, np.float32)),
        "key_label": pa.array(np.full(n, take.key_label, np.int64)),
        "key_signature": pa.array(np.full(n, key_signature(take.key_label), np.int8)),
        "key_estimated": pa.array(np.full(n, take.key_estimated, np.int64)),
        "key_confidence": pa.array(np.full(n, take.key_confidence, np.float32)),
        "note_step": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(local_step)),
        "note_key": _list_column(notes.key, gather, offsets),
        "note_offset": _list_column(notes.offset, gather, offsets),
        "note_velocity": _list_column(notes.velocity, gather, offsets),
        "note_duration": _list_column(notes.duration, gather, offsets),
        "pedal": pa.FixedSizeListArray.from_arrays(pa.array(pedal.reshape(-1)), width).cast(pa.list_(pa.uint8())),
    }
    return pa.Table.from_pydict(columns, schema=window_schema())


def take_table(aligned: AlignedPerformance, midi_bytes: bytes, midi_path: str) -> pa.Table:
    """The ``takes`` row of one recording: its MIDI file as it is, and its whole aligned performance."""
    take, report = take_of(aligned), aligned.report

    def one(values: np.ndarray, column: str) -> pa.ListArray:
        value_type = take_schema().field(column).type.value_type
        return pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), pa.array(values, value_type))

    notes, bpm_used = take.notes, _nan_if_none(report.bpm_used)
    columns = {
        "recording_id": [take.recording_id], "subset": [take.subset], "split": [take.split],
        "midi": [{"bytes": midi_bytes, "path": midi_path}], "duration_s": [report.duration_s],
        "steps_per_beat": [take.steps_per_beat], "beats_per_bar": [take.beats_per_bar],
        "total_steps": [take.total_steps], "bpm_used": [bpm_used], "tempo_norm": [bpm_used / 100.0 - 1.0],
        "latency_ms": [take.latency_ms], "key_label": [take.key_label],
        "key_signature": [key_signature(take.key_label)], "key_estimated": [take.key_estimated],
        "key_confidence": [take.key_confidence],
        "grid_knot_beats": one(take.grid.knot_beats, "grid_knot_beats"),
        "grid_knot_seconds": one(take.grid.knot_seconds, "grid_knot_seconds"),
        "note_step": one(notes.step, "note_step"), "note_key": one(notes.key, "note_key"),
        "note_offset": one(notes.offset, "note_offset"), "note_velocity": one(notes.velocity, "note_velocity"),
        "note_duration": one(notes.duration, "note_duration"), "note_onset_s": one(aligned.onset_s, "note_onset_s"),
        "note_release_s": one(aligned.release_s, "note_release_s"), "pedal": one(take.pedal, "pedal"),
    }
    return pa.Table.from_pydict(columns, schema=take_schema())


def _nan_if_none(value: float | None) -> float:
    """Missing numbers are NaN in float columns (Arrow nulls would need null-aware readers)."""
    return math.nan if value is None else float(value)


def recording_row(report: AlignmentReport, file_name: str, sha256: str) -> dict[str, Any]:
    """One row of the recordings table from an alignment report (findings checked to carry their kinds)."""
    report.check_findings()
    return {
        "recording_id": report.recording_id, "subset": report.subset, "split": report.split,
        "file_name": file_name, "sha256": sha256, "status": report.status, "reason": report.reason,
        "reason_kind": report.reason_kind,
        "grid_source": report.grid_source, "candidates_json": json.dumps(report.candidates, sort_keys=True),
        "bpm_labelled": _nan_if_none(report.bpm_labelled), "bpm_tempo_map": _nan_if_none(report.bpm_tempo_map),
        "bpm_fitted": _nan_if_none(report.bpm_fitted), "bpm_used": _nan_if_none(report.bpm_used),
        "drift_ms": report.drift_ms, "grid_shift_steps": report.grid_shift_steps,
        "steps_per_beat": report.steps_per_beat, "latency_ms": report.latency_ms,
        "fit_concentration": report.fit_concentration, "timing_sd_ms": report.timing_sd_ms,
        "mean_abs_offset": report.mean_abs_offset, "share_beyond_035": report.share_beyond_035,
        "duration_s": report.duration_s, "notes_input": report.notes_input, "notes_placed": report.notes_placed,
        "notes_dropped": report.notes_dropped, "dropped_json": json.dumps(report.dropped, sort_keys=True),
        "windows": report.windows, "windows_empty": report.windows_empty, "key_label": report.key_label,
        "key_estimated": report.key_estimated, "key_confidence": report.key_confidence,
        "conflicts": list(report.conflicts), "conflict_kinds": list(report.conflict_kinds),
        "conflict_bpms": list(report.conflict_bpms),
        "warnings": list(report.warnings), "warning_kinds": list(report.warning_kinds),
        **{c.name: None for c in RECORDING_COLUMNS if c.name.startswith("cert_")},  # filled by `certify`
    }


def recordings_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The recordings table (one row per recording, rejected ones included)."""
    schema = recording_schema()
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()

