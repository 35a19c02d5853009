"""The dataset's schema, declared once: every column with its type, unit and meaning.

Everything else derives from these tables: the ``datasets`` Features (and so the Arrow
schema embedded in every shard), the YAML of the card, the field table in DATASET_CARD.md,
and the invariants that ``validate`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from piano_metronome.kinds import ConflictKind, DropReason, Kind, RejectionKind, WarningKind
from piano_metronome.processing.keys import KEY_NAMES

if TYPE_CHECKING:  # imported lazily at run time: workers build schemas without importing datasets
    import datasets
    import pyarrow as pa

RECORDINGS_CONFIG = "recordings"
RECORDINGS_SPLIT = "recordings"


def _values(kind: type[Kind]) -> str:
    """The values of a kind enum as the card's field table shows them: `a`, `b`, …."""
    return ", ".join(f"`{k.value}`" for k in kind)


@dataclass(frozen=True)
class Column:
    """One column: name, type (``int8``, ``string``, ``list<float32>``, ``key`` = 24-way ClassLabel,
    ``midi`` = struct of file bytes and path), doc."""

    name: str
    dtype: str
    doc: str


# Columns windows and takes share, declared once.
RECORDING_ID = Column("recording_id", "string", "Recording id `<subset>/<id>`, e.g. `d1/aa`.")
SUBSET = Column("subset", "string", "`d1` (improvisations, 16th grid), `d2` (chord melody + Alberti bass, 8th grid), "
                "`demo` (synthetic), or a subset of your own recordings.")
SPLIT = Column("split", "string", "`train`, `validation` (the corpus author's 20 held-out recordings) or `test`.")
STEPS_PER_BEAT = Column("steps_per_beat", "int8", "Sub-beats per beat: 4 (16ths) for d1, 2 (8ths) for d2.")
BEATS_PER_BAR = Column("beats_per_bar", "int8", "Beats per bar (4: every corpus recording is in 4/4).")
LATENCY_MS = Column("latency_ms", "float32", "The player's constant lag behind the click in ms (negative = early); "
                    "already removed from offsets.")
KEY_LABEL = Column("key_label", "key", "Key from the file name (24 keys; labels typed by hand); −1 when the name "
                   "gives none (datasets' ClassLabel \"no label\"; `key_signature` is then −1 and the dense key "
                   "one-hot all 0).")
KEY_SIGNATURE = Column("key_signature", "int8", "12-class key signature of the label, relative major/minor merged "
                       "(C ≡ Am = 0, Db ≡ Bbm = 1, …).")
KEY_ESTIMATED = Column("key_estimated", "key", "Key estimated from the recording's notes (Krumhansl–Schmuckler).")
KEY_CONFIDENCE = Column("key_confidence", "float32", "Confidence of `key_estimated` in [0, 1].")
NOTE_KEY = Column("note_key", "list<int8>", "Per note: piano key 0…87 (MIDI pitch − 21).")
NOTE_OFFSET = Column("note_offset", "list<float32>", "Per note: timing offset from its step in steps, in [−0.5, 0.5); "
                     "positive = late (GrooVAE: positive = early).")
NOTE_VELOCITY = Column("note_velocity", "list<uint8>", "Per note: MIDI velocity 1…127 (V = velocity / 127).")
NOTE_DURATION = Column("note_duration", "list<float32>", "Per note: how long the key is held, in steps (sustain "
                       "pedal not applied; see `pedal`).")

WINDOW_COLUMNS: tuple[Column, ...] = (
    Column("window_id", "string", "Stable id `<recording_id>/<window_index:03d>`, e.g. `d1/aa/003`."),
    RECORDING_ID, SUBSET, SPLIT,
    Column("window_index", "int32", "Index of the window in its recording (0-based, in time order)."),
    Column("start_step", "int32", "First step of the window, counted in sub-beats from the recording's first bar "
           "line."),
    Column("start_time_s", "float64", "Click time of the window's first step, in seconds from the file start."),
    Column("num_steps", "int16", "Steps per window (64 by default)."),
    Column("valid_steps", "int16", "Steps of the window inside the recording (< num_steps only for the last window)."),
    STEPS_PER_BEAT, BEATS_PER_BAR,
    Column("bpm", "float32", "Tempo of the grid over this window, in beats per minute."),
    Column("tempo_norm", "float32", "`bpm / 100 − 1`, the original data's tempo normalisation."),
    LATENCY_MS, KEY_LABEL, KEY_SIGNATURE, KEY_ESTIMATED, KEY_CONFIDENCE,
    Column("note_step", "list<int8>", "Per note: step in the window (0…num_steps−1); notes sorted by (step, key)."),
    NOTE_KEY, NOTE_OFFSET, NOTE_VELOCITY, NOTE_DURATION,
    Column("pedal", "list<uint8>", "Sustain pedal (CC64 value 0…127) at each step of the window."),
)

#: One row per recording: the file itself and its whole aligned performance (configs ``takes``, ``demo_takes``).
TAKE_COLUMNS: tuple[Column, ...] = (
    RECORDING_ID, SUBSET, SPLIT,
    Column("midi", "midi", "The recording's MIDI file, byte for byte as fetched (its sha256 is the manifest's): "
           "`bytes`, and `path` = `<subset>/<file name>`; the struct of `datasets`' Audio/Image (and of the "
           "proposed Midi feature). Read it with `symusic.Score.from_midi(row['midi']['bytes'])` or "
           "`pretty_midi.PrettyMIDI(io.BytesIO(row['midi']['bytes']))`."),
    Column("duration_s", "float32", "Length of the recording in seconds."),
    STEPS_PER_BEAT, BEATS_PER_BAR,
    Column("total_steps", "int32", "Steps from the first bar line to the last note's step (+1): the length of "
           "`pedal`."),
    Column("bpm_used", "float32", "Median BPM of the grid the notes were quantized to."),
    Column("tempo_norm", "float32", "`bpm_used / 100 − 1`."),
    LATENCY_MS, KEY_LABEL, KEY_SIGNATURE, KEY_ESTIMATED, KEY_CONFIDENCE,
    Column("grid_knot_beats", "list<float64>", "The grid as knots of a piecewise-linear map: beat positions (0 = "
           "the first bar line)…"),
    Column("grid_knot_seconds", "list<float64>", "…and their click times in seconds (latency not included); "
           "extrapolated linearly past the ends."),
    Column("note_step", "list<int32>", "Per note: step counted from the first bar line; notes sorted by (step, key)."),
    NOTE_KEY, NOTE_OFFSET, NOTE_VELOCITY, NOTE_DURATION,
    Column("note_onset_s", "list<float64>", "Per note: when it was played, in seconds from the file start (as in "
           "the file, latency included)."),
    Column("note_release_s", "list<float64>", "Per note: when its key was released, in seconds from the file start."),
    Column("pedal", "list<uint8>", "Sustain pedal (CC64 value 0…127) at each step of the take, sampled at the "
           "played time of the step."),
)

RECORDING_COLUMNS: tuple[Column, ...] = (
    Column("recording_id", "string", "Recording id `<subset>/<id>`."),
    Column("subset", "string", "Subset of the recording."),
    Column("split", "string", "Split of the recording (all its windows are in it)."),
    Column("file_name", "string", "File name of the raw recording (its labels are in it)."),
    Column("sha256", "string", "sha256 of the raw recording."),
    Column("status", "string", "`ok`, or `rejected` with `reason`."),
    Column("reason", "string", "Why the recording was rejected (empty when ok)."),
    Column("reason_kind", "string", "Kind of `reason` (empty when ok): " + _values(RejectionKind) + "."),
    Column("grid_source", "string", "Grid used: `tempo_map`, `label_bpm`, `click_track`, `beat_sidecar` "
           "(`+fit` when the fitted period replaced it)."),
    Column("candidates_json", "string", "Every grid candidate with its BPM and score (JSON)."),
    Column("bpm_labelled", "float32", "BPM in the file name (NaN if none)."),
    Column("bpm_tempo_map", "float32", "Median BPM of the MIDI tempo map."),
    Column("bpm_fitted", "float32", "BPM fitted from the notes."),
    Column("bpm_used", "float32", "BPM of the grid the notes were quantized to."),
    Column("drift_ms", "float32", "How far the fitted grid drifts from the chosen grid over the take, in ms."),
    Column("grid_shift_steps", "int8", "Sub-beats the bar line was moved by (0 = grid as given)."),
    Column("steps_per_beat", "int8", "Sub-beats per beat."),
    Column("latency_ms", "float32", "Constant lag behind the click in ms (negative = early)."),
    Column("fit_concentration", "float32", "Onset concentration on the sub-beat grid (0 = none, 1 = exact)."),
    Column("timing_sd_ms", "float32", "Robust SD of the timing offsets, in ms."),
    Column("mean_abs_offset", "float32", "Mean |offset| in steps."),
    Column("share_beyond_035", "float32", "Share of notes with |offset| > 0.35 step (ambiguous rounding)."),
    Column("duration_s", "float32", "Length of the recording in seconds."),
    Column("notes_input", "int32", "Notes in the file."),
    Column("notes_placed", "int32", "Notes placed in windows."),
    Column("notes_dropped", "int32", "Notes dropped (input = placed + dropped)."),
    Column("dropped_json", "string", "Dropped notes by reason (JSON), keyed by " + _values(DropReason) + "."),
    Column("windows", "int32", "Windows written."),
    Column("windows_empty", "int32", "Windows skipped because they hold no note."),
    Column("key_label", "string", "Key from the file name."),
    Column("key_estimated", "string", "Key estimated from the notes."),
    Column("key_confidence", "float32", "Confidence of the estimate."),
    Column("conflicts", "list<string>", "Disagreements between grid sources, with numbers."),
    Column("conflict_kinds", "list<string>", "Per conflict: the grid source the notes contradicted, "
           + _values(ConflictKind) + "."),
    Column("conflict_bpms", "list<float64>", "Per conflict: the BPM that source claimed (to 0.01)."),
    Column("warnings", "list<string>", "Everything else worth knowing about this recording."),
    Column("warning_kinds", "list<string>", "Per warning: its kind, " + _values(WarningKind) + "."),
    # The independent certificate of the grid (`piano-metronome certify`; README "Certificates"): null in
    # every cert_* column until certify runs, and for rejected recordings.
    Column("cert_verdict", "string", "Verdict of a beat tracker that never saw the grid (partitura's Dixon tracker "
           "on the onsets alone) on the stored grid: `agrees`, `agrees at a multiple` or `disagrees`; null until "
           "`piano-metronome certify` runs."),
    Column("cert_tracked_bpm", "float32", "The tracker's tempo (60 / its median inter-beat interval), in BPM."),
    Column("cert_tempo_ratio", "float32", "`cert_tracked_bpm / bpm_used`."),
    Column("cert_multiple", "float32", "Metrical level the tracker chose, in tracked beats per grid beat (1, 2, 1/2, "
           "4, …): the one within 4 % of the ratio; NaN when none is."),
    Column("cert_f_measure", "float32", "mir_eval beat F-measure (±70 ms; beats before 5 s trimmed) of the tracked "
           "beats against the grid's beats."),
    Column("cert_f_measure_at_multiple", "float32", "The same against the grid at `cert_multiple` (best phase); "
           "`agrees` needs ≥ 0.8."),
    Column("cert_phase_ms", "float32", "Median signed distance of tracked beats from the nearest grid beat at that "
           "level, in ms (positive = after the click; its sign should be `latency_ms`'s)."),
    Column("cert_tracked_beats", "int32", "Beats the tracker gave after 5 s (fewer than 8: `disagrees`)."),
    Column("cert_label_f_measure", "float32", "F-measure of the tracked beats against a click at the file name's "
           "BPM from t = 0, at the tracker's level (NaN without a BPM in the name)."),
    Column("cert_label_disagrees", "bool", "The file name's BPM disagrees with both the tempo map (> 0.5 BPM) and the "
           "tracker (`cert_label_f_measure` < 0.8); null without a BPM in the name."),
)


def _feature(dtype: str) -> Any:
    """A ``datasets`` feature for a column type string."""
    import datasets

    if dtype == "key":
        return datasets.ClassLabel(names=list(KEY_NAMES))
    if dtype == "midi":
        return {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    if dtype.startswith("list<"):
        inner = datasets.Value(dtype[5:-1])
        list_type = getattr(datasets, "List", None)  # datasets ≥ 4; Sequence on 3.x
        return list_type(inner) if list_type is not None else datasets.Sequence(inner)
    return datasets.Value(dtype)


def features(columns: tuple[Column, ...] = WINDOW_COLUMNS) -> datasets.Features:
    """The ``datasets.Features`` of a table (windows by default)."""
    import datasets

    return datasets.Features({c.name: _feature(c.dtype) for c in columns})


def arrow_schema(columns: tuple[Column, ...] = WINDOW_COLUMNS) -> pa.Schema:
    """The Arrow schema with the features embedded, so any reader gets ClassLabels back."""
    return features(columns).arrow_schema


def _plain_type(dtype: str) -> pa.DataType:
    """The Arrow type of a column type string (a ClassLabel is stored as int64)."""
    import pyarrow as pa

    if dtype == "key":
        return pa.int64()
    if dtype == "midi":
        return pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    if dtype.startswith("list<"):
        return pa.list_(_plain_type(dtype[5:-1]))
    return pa.type_for_alias(dtype)


def plain_arrow_schema(columns: tuple[Column, ...] = WINDOW_COLUMNS) -> pa.Schema:
    """The same Arrow types without the embedded ``datasets`` features, built without importing
    ``datasets`` (alignment workers use it; the shards ``datasets`` writes carry the features)."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, _plain_type(c.dtype)) for c in columns])
