"""Aligned performances → Arrow tables (windows and recordings), vectorised per recording.

Windows hold their notes as parallel list columns (the non-zero cells of H with their O, V
and duration), built from one gather per recording rather than per-note Python objects.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa

from piano_metronome.outputs.schema import RECORDING_COLUMNS, WINDOW_COLUMNS, arrow_schema, plain_arrow_schema
from piano_metronome.processing.align import AlignedPerformance, AlignmentReport, AlignOptions
from piano_metronome.processing.keys import KEY_NAMES, key_signature, parse_key

_WINDOW_SCHEMA = None
_RECORDING_SCHEMA = None


def window_schema() -> pa.Schema:
    """The windows' Arrow types (features are attached by the ``datasets`` writer), built once."""
    global _WINDOW_SCHEMA
    if _WINDOW_SCHEMA is None:
        _WINDOW_SCHEMA = plain_arrow_schema(WINDOW_COLUMNS)
    return _WINDOW_SCHEMA


def recording_schema() -> pa.Schema:
    """The recordings table's Arrow schema."""
    global _RECORDING_SCHEMA
    if _RECORDING_SCHEMA is None:
        _RECORDING_SCHEMA = arrow_schema(RECORDING_COLUMNS)
    return _RECORDING_SCHEMA


def _list_column(values: np.ndarray, gather: np.ndarray, offsets: np.ndarray) -> pa.ListArray:
    """A list column whose row i holds ``values[gather[offsets[i]:offsets[i+1]]]``."""
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values[gather]))


def windows_table(aligned: AlignedPerformance, options: AlignOptions) -> pa.Table:
    """One row per window of one recording, in the declared schema."""
    notes, info, report = aligned.notes, aligned.info, aligned.report
    width = options.window_steps
    begin, end = aligned.window_slices(width)
    n = len(begin)
    counts = end - begin
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    gather = np.repeat(begin - offsets[:-1], counts) + np.arange(offsets[-1])
    window_of_note = np.repeat(np.arange(n), counts)
    local_step = (notes.step[gather] - aligned.window_starts[window_of_note]).astype(np.int8)
    pedal_idx = aligned.window_starts[:, None] + np.arange(width)[None, :]
    pedal = np.where(pedal_idx < aligned.total_steps, aligned.pedal[np.clip(pedal_idx, 0, max(
        aligned.total_steps - 1, 0))], 0).astype(np.uint8) if n else np.zeros((0, width), np.uint8)
    label = parse_key(info.labelled_key) if report.key_label else -1
    estimated = KEY_NAMES.index(report.key_estimated) if report.key_estimated else 0
    columns = {
        "window_id": pa.array([f"{info.recording_id}/{i:03d}" for i in range(n)], pa.string()),
        "recording_id": pa.array([info.recording_id] * n, pa.string()),
        "subset": pa.array([info.subset] * n, pa.string()),
        "split": pa.array([info.split] * n, pa.string()),
        "window_index": pa.array(np.arange(n, dtype=np.int32)),
        "start_step": pa.array(aligned.window_starts.astype(np.int32)),
        "start_time_s": pa.array(aligned.window_start_s.astype(np.float64)),
        "num_steps": pa.array(np.full(n, width, np.int16)),
        "valid_steps": pa.array(np.minimum(width, aligned.total_steps - aligned.window_starts).astype(np.int16)),
        "steps_per_beat": pa.array(np.full(n, info.steps_per_beat, np.int8)),
        "beats_per_bar": pa.array(np.full(n, report.beats_per_bar, np.int8)),
        "bpm": pa.array(aligned.window_bpm.astype(np.float32)),
        "tempo_norm": pa.array((aligned.window_bpm / 100.0 - 1.0).astype(np.float32)),
        "latency_ms": pa.array(np.full(n, report.latency_ms, np.float32)),
        "key_label": pa.array(np.full(n, label, np.int64)),
        "key_signature": pa.array(np.full(n, key_signature(label), np.int8)),
        "key_estimated": pa.array(np.full(n, estimated, np.int64)),
        "key_confidence": pa.array(np.full(n, report.key_confidence, np.float32)),
        "note_step": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(local_step)),
        "note_key": _list_column(notes.key, gather, offsets),
        "note_offset": _list_column(notes.offset, gather, offsets),
        "note_velocity": _list_column(notes.velocity, gather, offsets),
        "note_duration": _list_column(notes.duration, gather, offsets),
        "pedal": pa.FixedSizeListArray.from_arrays(pa.array(pedal.reshape(-1)), width).cast(pa.list_(pa.uint8())),
    }
    return pa.Table.from_pydict(columns, schema=window_schema())


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
    }


def recordings_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The recordings table (one row per recording, rejected ones included)."""
    schema = recording_schema()
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()

