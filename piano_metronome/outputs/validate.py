"""Prove a built dataset folder is intact, and that the raw recordings match their manifest.

A published dataset is only worth something if a user can check it without trusting us:
every check here reads the files as they are on disk (never the build's memory) and compares
them with what the folder itself declares (the card's YAML, the checksum file, the schema in
:mod:`piano_metronome.outputs.schema`). Checks are vectorised over Arrow buffers, so the full
corpus dataset (≈ 11k windows, 860k notes) validates in well under a second of numpy work.

Each check yields problems that say *where* (shard path, window id, manifest line, file) and
*what*; a report passes only when no check failed. Warnings (hand-typed labels that the notes
contradict) are reported but never fail.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from piano_metronome.inputs.manifest import sha256_file
from piano_metronome.outputs.schema import (
    NUM_KEYS,
    RECORDING_COLUMNS,
    RECORDINGS_CONFIG,
    WINDOW_COLUMNS,
)
from piano_metronome.processing.keys import KEY_NAMES, key_signature

PASS, WARN, FAIL = "pass", "warn", "fail"
#: Problems kept per check (the count is always exact); enough to find the pattern.
MAX_LISTED = 50
#: Offsets lie in [−0.5, 0.5), except members of a chord rolled across a half step, which keep
#: the chord's step: those stay below this bound and never sit alone on their step.
CHORD_OFFSET_LIMIT = 0.7
MAX_VELOCITY = 127
MAX_CC = 127
CHECKSUM_FILE = "checksums.sha256"
BUILD_REPORT = "build_report.json"
NOTE_COLUMNS = tuple(c.name for c in WINDOW_COLUMNS if c.name.startswith("note_"))
#: 12-class signature of each of the 24 keys, as a lookup table for vectorised checks.
SIGNATURE_OF_KEY = np.array([key_signature(k) for k in range(len(KEY_NAMES))])
_SHARD_NAME = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.arrow$")
_CHECKSUM_LINE = re.compile(r"^\\?(?P<digest>[0-9a-fA-F]{64}) [ *](?P<path>.+)$")


@dataclass
class Problem:
    """One thing wrong: where it is (shard, window id, file, manifest line) and what it is."""

    where: str
    what: str
    status: str = FAIL


@dataclass
class Check:
    """A named check with its outcome; problems beyond :data:`MAX_LISTED` are only counted."""

    name: str
    description: str
    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    summary: str = ""
    worst: str = PASS

    @property
    def status(self) -> str:
        """``fail`` if any problem failed, else ``warn`` if any warned, else ``pass``."""
        return self.worst

    def add(self, where: str, what: str, status: str = FAIL) -> None:
        """Record a problem (failing by default)."""
        self.count += 1
        if status == FAIL or self.worst == PASS:
            self.worst = status
        if len(self.problems) < MAX_LISTED:
            self.problems.append(Problem(where, what, status))

    def as_dict(self) -> dict:
        """For ``--json``."""
        return {"name": self.name, "description": self.description, "status": self.status, "count": self.count,
                "summary": self.summary, "problems": [vars(p) for p in self.problems]}


@dataclass
class Report:
    """Every check of one target; ``unreadable`` says why the target could not be checked at all."""

    target: str
    kind: str
    checks: list[Check] = field(default_factory=list)
    unreadable: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the target was readable and no check failed (warnings allowed)."""
        return not self.unreadable and all(c.status != FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 all checks pass, 1 a check failed, 2 the target could not be read at all."""
        return 2 if self.unreadable else (0 if self.ok else 1)

    def check(self, name: str, description: str) -> Check:
        """Start a new check and add it to the report."""
        made = Check(name, description)
        self.checks.append(made)
        return made

    def as_dict(self) -> dict:
        """For ``--json``: stable keys a script can rely on."""
        return {"target": self.target, "kind": self.kind, "ok": self.ok, "exit_code": self.exit_code,
                "unreadable": self.unreadable, "seconds": round(self.seconds, 3),
                "checks": [c.as_dict() for c in self.checks]}


# --- reading the folder ------------------------------------------------------------------------

@dataclass
class Shard:
    """One Arrow file of a config and split, as read from disk (``table`` None if unreadable)."""

    rel: str
    config: str
    split: str
    table: pa.Table | None = None
    schema: pa.Schema | None = None
    error: str = ""

    @property
    def is_windows(self) -> bool:
        """Window shards hold WINDOW_COLUMNS; the ``recordings`` config holds RECORDING_COLUMNS."""
        return self.config != RECORDINGS_CONFIG


@dataclass
class Card:
    """What README.md's YAML declares: data files per config and split, and the dataset_info."""

    data_files: dict[str, dict[str, list[str]]]
    infos: dict


def read_card(root: Path) -> Card:
    """Parse the card's YAML; raises ValueError saying why it cannot be used."""
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard

    path = root / "README.md"
    if not path.is_file():
        raise ValueError("no README.md (the card declares the configs and counts)")
    try:
        card = DatasetCard.load(path)
        data = card.data.to_dict()
        infos = DatasetInfosDict.from_dataset_card_data(card.data)
    except Exception as exc:  # yaml, huggingface_hub and datasets raise many types on a bad card
        raise ValueError(f"README.md YAML cannot be read ({type(exc).__name__}: {exc})") from None
    configs = data.get("configs")
    if not isinstance(configs, list) or not configs:
        raise ValueError("README.md YAML declares no `configs`")
    data_files: dict[str, dict[str, list[str]]] = {}
    for entry in configs:
        files = entry.get("data_files") or []
        splits: dict[str, list[str]] = defaultdict(list)
        for item in files if isinstance(files, list) else []:
            paths = item.get("path")
            splits[item.get("split", "train")] += paths if isinstance(paths, list) else [paths]
        data_files[str(entry.get("config_name"))] = dict(splits)
    return Card(data_files, dict(infos))


def _read_table(path: Path) -> tuple[pa.Table | None, pa.Schema | None, str]:
    """An Arrow IPC stream file, fully validated (a flipped byte must not crash a later read)."""
    try:
        with pa.OSFile(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            table = reader.read_all()
        table.validate(full=True)
        return table, reader.schema, ""
    except (pa.ArrowException, OSError, ValueError) as exc:
        return None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def read_shards(root: Path, card: Card) -> list[Shard]:
    """Every file the card's data_files patterns match, in config, split, name order."""
    shards = []
    for config, splits in card.data_files.items():
        for split, patterns in splits.items():
            matched = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
            for path in matched:
                table, schema, error = _read_table(path)
                shards.append(Shard(path.relative_to(root).as_posix(), config, split, table, schema, error))
    return shards


# --- dataset checks ----------------------------------------------------------------------------

def validate_dataset(root: Path) -> Report:
    """Run every dataset check on the folder ``root``; see the ``validate`` command."""
    started = time.perf_counter()
    report = Report(str(root), "dataset")
    if not root.is_dir():
        report.unreadable = f"{root} is not a folder"
        return report
    try:
        card = read_card(root)
    except ValueError as exc:
        report.unreadable = str(exc)
        return report
    check_checksums(root, report.check("checksums", f"every file matches {CHECKSUM_FILE}, and every file is in it"))
    check_card_features(card, report.check("card", "the card declares the schema's features for every config"))
    shards = read_shards(root, card)
    check_shards(root, card, shards, report.check("shards", "every declared shard exists and reads as Arrow"))
    check_schemas(shards, report.check("schema", "every shard's schema (with embedded features) is the declared one"))
    check_counts(root, card, shards, report.check("counts", "rows per split equal the card's num_examples"))
    check_invariants(shards, report.check("invariants", "every window satisfies the schema's invariants"))
    check_window_ids(shards, report.check("window ids", "window ids are unique in each config"))
    recordings = _recordings_table(shards)
    check_splits(shards, recordings, report.check("splits", "each window is in its split; no recording in two"))
    check_accounting(shards, recordings, report.check("accounting", "notes in = placed + dropped; placed notes "
                                                                    "are in the windows"))
    report.seconds = time.perf_counter() - started
    return report


def read_checksums(path: Path) -> dict[str, str]:
    """``sha256sum`` lines → {relative path: digest}; raises ValueError on a malformed line."""
    listed = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _CHECKSUM_LINE.match(line)
        if not match:
            raise ValueError(f"line {number} is not `<sha256>  <path>`")
        listed[match["path"]] = match["digest"].lower()
    return listed


def check_checksums(root: Path, check: Check) -> None:
    """Listed files exist and match; unlisted files are reported (they were not published)."""
    path = root / CHECKSUM_FILE
    if not path.is_file():
        check.add(CHECKSUM_FILE, "missing")
        return
    try:
        listed = read_checksums(path)
    except (ValueError, UnicodeDecodeError) as exc:
        check.add(CHECKSUM_FILE, str(exc))
        return
    for rel, digest in sorted(listed.items()):
        target = PurePosixPath(rel)
        if target.is_absolute() or ".." in target.parts:
            check.add(rel, "path escapes the dataset folder")
        elif not (root / rel).is_file():
            check.add(rel, "listed in the checksums but missing")
        elif sha256_file(root / rel) != digest:
            check.add(rel, f"sha256 differs from {CHECKSUM_FILE} (file changed or damaged)")
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {CHECKSUM_FILE}
    for rel in sorted(on_disk - set(listed)):
        check.add(rel, f"not listed in {CHECKSUM_FILE}")
    check.summary = f"{len(listed)} files listed"


def check_card_features(card: Card, check: Check) -> None:
    """The YAML's features must be the schema's, or the Hub would describe other columns."""
    from piano_metronome.outputs.schema import features

    expected = {True: features(RECORDING_COLUMNS), False: features(WINDOW_COLUMNS)}
    for config in card.data_files:
        info = card.infos.get(config)
        if info is None:
            check.add(f"README.md config {config}", "no dataset_info entry")
        elif info.features != expected[config == RECORDINGS_CONFIG]:
            check.add(f"README.md config {config}", "declared features differ from the schema")
    for config in card.infos:
        if config not in card.data_files:
            check.add(f"README.md config {config}", "dataset_info for a config that has no data_files")
    check.summary = f"configs {', '.join(card.data_files)}"


def check_shards(root: Path, card: Card, shards: list[Shard], check: Check) -> None:
    """Each declared split has shards, all readable, numbered 0…n−1 of n; no undeclared files."""
    by_split: dict[tuple[str, str], list[Shard]] = defaultdict(list)
    for shard in shards:
        by_split[(shard.config, shard.split)].append(shard)
        if shard.error:
            check.add(shard.rel, f"unreadable: {shard.error}")
    for config, splits in card.data_files.items():
        for split, patterns in splits.items():
            found = by_split.get((config, split), [])
            if not found:
                check.add(f"{config}/{split}", f"no file matches {', '.join(patterns)} (shard missing)")
            _check_numbering(found, check)
    declared = {s.rel for s in shards}
    data = root / "data"
    for path in sorted(data.rglob("*.arrow") if data.is_dir() else []):
        rel = path.relative_to(root).as_posix()
        if rel not in declared:
            check.add(rel, "not declared by any config of the card")
    check.summary = f"{len(shards)} shards"


def _check_numbering(found: list[Shard], check: Check) -> None:
    """``train-00000-of-00002`` … ``train-00001-of-00002``: a gap means a shard was lost."""
    numbered = [m for m in (_SHARD_NAME.match(PurePosixPath(s.rel).name) for s in found) if m]
    counts = {int(m["count"]) for m in numbered}
    indices = sorted(int(m["index"]) for m in numbered)
    if len(counts) == 1:
        (count,) = counts
        if indices != list(range(count)):
            missing = sorted(set(range(count)) - set(indices))
            where = PurePosixPath(found[0].rel).parent.as_posix()
            check.add(where, f"{found[0].config}/{found[0].split}: shard(s) {missing} of {count} missing")


def _expected_schema(shard: Shard) -> pa.Schema:
    """The schema a shard must have, features metadata included."""
    from piano_metronome.outputs.schema import arrow_schema

    return arrow_schema(WINDOW_COLUMNS if shard.is_windows else RECORDING_COLUMNS)


def check_schemas(shards: list[Shard], check: Check) -> None:
    """Field by field, then the embedded features (so ClassLabels survive any reader)."""
    for shard in shards:
        if shard.schema is None:
            continue
        expected = _expected_schema(shard)
        if shard.schema.equals(expected, check_metadata=True):
            continue
        if not shard.schema.equals(expected):
            got = {f.name: str(f.type) for f in shard.schema}
            want = {f.name: str(f.type) for f in expected}
            differ = [n for n in dict.fromkeys([*want, *got]) if got.get(n) != want.get(n)]
            check.add(shard.rel, "columns differ: " + ", ".join(
                f"{n} ({got.get(n, 'missing')} ≠ {want.get(n, 'not declared')})" for n in differ[:8]))
        else:
            check.add(shard.rel, "embedded features metadata differs from the schema's")
    check.summary = f"{sum(s.schema is not None for s in shards)} schemas compared"


def _usable(shard: Shard) -> bool:
    """Readable and with the declared columns (metadata aside): the data checks can run on it."""
    return shard.table is not None and shard.table.schema.equals(_expected_schema(shard))


def check_counts(root: Path, card: Card, shards: list[Shard], check: Check) -> None:
    """Rows per config/split against the YAML's num_examples (which ``load_dataset`` trusts)."""
    rows: dict[tuple[str, str], int] = defaultdict(int)
    for shard in shards:
        rows[(shard.config, shard.split)] += shard.table.num_rows if shard.table is not None else 0
    for config, info in card.infos.items():
        declared = info.splits or {}
        if config == RECORDINGS_CONFIG:
            continue
        for split, split_info in declared.items():
            where = f"README.md dataset_info {config}/{split}"
            if split_info.num_examples != rows.get((config, split), 0):
                check.add(where, f"num_examples {split_info.num_examples:,} but the shards hold "
                                 f"{rows.get((config, split), 0):,} rows")
            if not split_info.num_bytes:
                check.add(where, "no num_bytes: load_dataset would not check the count")
        for split in card.data_files.get(config, {}):
            if split not in declared:
                check.add(f"README.md dataset_info {config}", f"split {split} has no num_examples")
    _check_recording_count(root, rows.get((RECORDINGS_CONFIG, "recordings")), check)
    check.summary = f"{sum(v for (c, _), v in rows.items() if c != RECORDINGS_CONFIG):,} windows"


def _check_recording_count(root: Path, rows: int | None, check: Check) -> None:
    """The recordings table holds one row per recording the build report counted."""
    try:
        expected = json.loads((root / BUILD_REPORT).read_text(encoding="utf-8"))["recordings"]
    except (OSError, ValueError, KeyError, TypeError):
        check.add(BUILD_REPORT, "missing or unreadable (it records what was built and how)")
        return
    if rows is not None and rows != expected:
        check.add(f"data/{RECORDINGS_CONFIG}", f"{rows} rows but {BUILD_REPORT} counts {expected} recordings")


# --- per-window invariants (vectorised) -----------------------------------------------------------

def _np(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as numpy (one concatenation, then zero-copy where Arrow allows)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array.to_numpy(zero_copy_only=False)


def _list_parts(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(length of each row's list, all values flattened) of a list column."""
    array = column.combine_chunks()
    lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return lengths, pc.list_flatten(array).to_numpy(zero_copy_only=False)


def _rows_with(bad: np.ndarray, row: np.ndarray, n: int) -> np.ndarray:
    """Per-note flags → per-window flags."""
    return np.bincount(row[bad], minlength=n) > 0 if bad.any() else np.zeros(n, bool)


class _Flags(dict):
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
            flags.flag(f"{name} is null", _np(pc.is_null(table[name])))
    _scalar_invariants(table, flags)
    _note_invariants(table, flags, n)
    _pedal_invariants(table, flags, n)
    return dict(flags)


def _scalar_invariants(table: pa.Table, flags: _Flags) -> None:
    """One value per window: sizes, keys, tempo, identities."""
    num_steps = _np(table["num_steps"]).astype(np.int64)
    valid = _np(table["valid_steps"]).astype(np.int64)
    flags.flag("num_steps outside 1…127", (num_steps < 1) | (num_steps > 127))
    flags.flag("valid_steps outside 1…num_steps", (valid < 1) | (valid > num_steps))
    for name in ("key_label", "key_estimated"):
        value = _np(table[name])
        flags.flag(f"{name} outside 0…{len(KEY_NAMES) - 1}", (value < 0) | (value >= len(KEY_NAMES)))
    label = _np(table["key_label"]).astype(np.int64)
    signature = _np(table["key_signature"]).astype(np.int64)
    flags.flag("key_signature outside 0…11", (signature < 0) | (signature > 11))
    in_range = (label >= 0) & (label < len(KEY_NAMES))
    flags.flag("key_signature is not the signature of key_label",
               in_range & (signature != SIGNATURE_OF_KEY[np.clip(label, 0, len(KEY_NAMES) - 1)]))
    confidence = _np(table["key_confidence"])
    flags.flag("key_confidence outside [0, 1]", ~((confidence >= 0) & (confidence <= 1)))
    bpm = _np(table["bpm"]).astype(np.float64)
    flags.flag("bpm not a positive number", ~(np.isfinite(bpm) & (bpm > 0)))
    norm = _np(table["tempo_norm"]).astype(np.float64)
    flags.flag("tempo_norm ≠ bpm/100 − 1", ~(np.abs(norm - (bpm / 100.0 - 1.0)) <= 1e-4))
    for name in ("latency_ms", "start_time_s"):
        flags.flag(f"{name} not finite", ~np.isfinite(_np(table[name]).astype(np.float64)))
    for name, low in (("start_step", 0), ("window_index", 0), ("steps_per_beat", 1), ("beats_per_bar", 1)):
        flags.flag(f"{name} < {low}", _np(table[name]) < low)
    _identity_invariants(table, flags)


def _identity_invariants(table: pa.Table, flags: _Flags) -> None:
    """``window_id`` = ``<recording_id>/<window_index:03d>`` and ``recording_id`` = ``<subset>/…``."""
    index = pc.utf8_lpad(pc.cast(table["window_index"], pa.string()), 3, "0")
    expected = pc.binary_join_element_wise(table["recording_id"], index, "/")
    flags.flag("window_id is not <recording_id>/<window_index:03d>",
               ~_np(pc.fill_null(pc.equal(table["window_id"], expected), False)))
    subsets = table["subset"]
    for subset in pc.unique(subsets).to_pylist():
        if subset is None:
            continue
        mine = _np(pc.fill_null(pc.equal(subsets, subset), False))
        prefixed = _np(pc.fill_null(pc.starts_with(table["recording_id"], pattern=f"{subset}/"), False))
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
        (step < 0) | (step >= np.repeat(_np(table["num_steps"]).astype(np.int64), count)), row, n))
    flags.flag("note_step beyond valid_steps", _rows_with(
        step >= np.repeat(_np(table["valid_steps"]).astype(np.int64), count), row, n))
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
    flags.flag("pedal does not have num_steps values", lengths != _np(table["num_steps"]).astype(np.int64))
    row = np.repeat(np.arange(n), lengths)
    flags.flag(f"pedal value outside 0…{MAX_CC}", _rows_with(values.astype(np.int64) > MAX_CC, row, n))


def check_invariants(shards: list[Shard], check: Check) -> None:
    """Run :func:`window_invariants` on every usable window shard; name the windows that fail."""
    windows = 0
    for shard in shards:
        if not shard.is_windows or not _usable(shard):
            continue
        windows += shard.table.num_rows
        ids = shard.table["window_id"]
        for message, mask in window_invariants(shard.table).items():
            rows = np.flatnonzero(mask)
            for i in rows[:5]:
                check.add(f"{shard.rel} window {ids[int(i)].as_py()}", message)
            if len(rows) > 5:
                check.add(f"{shard.rel}", f"{message}: {len(rows) - 5} more window(s)")
    check.summary = f"{windows:,} windows checked"


def check_window_ids(shards: list[Shard], check: Check) -> None:
    """A window id names one window of a config: duplicates would make ids useless as keys."""
    by_config: dict[str, list[pa.Table]] = defaultdict(list)
    for shard in shards:
        if shard.is_windows and _usable(shard):
            by_config[shard.config].append(pa.table({"window_id": shard.table["window_id"],
                                                     "shard": pa.array([shard.rel] * shard.table.num_rows)}))
    for config, tables in by_config.items():
        ids = pa.concat_tables(tables)
        counts = pc.value_counts(ids["window_id"].combine_chunks())
        repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
        for item in repeated.to_pylist()[:MAX_LISTED]:
            where = pc.filter(ids["shard"], pc.equal(ids["window_id"], item["values"])).to_pylist()
            check.add(f"{config} window {item['values']}", f"appears {item['counts']}× (in {', '.join(where)})")
    check.summary = f"{len(by_config)} configs"


# --- splits and accounting -------------------------------------------------------------------------

def _recordings_table(shards: list[Shard]) -> pa.Table | None:
    """The recordings table, if its shard(s) are usable."""
    tables = [s.table for s in shards if not s.is_windows and _usable(s)]
    return pa.concat_tables(tables) if tables else None


def _recording_splits(shard: Shard) -> dict[str, int]:
    """Recording id → windows of it in this shard."""
    counts = pc.value_counts(shard.table["recording_id"].combine_chunks()).to_pylist()
    return {c["values"]: c["counts"] for c in counts}


def check_splits(shards: list[Shard], recordings: pa.Table | None, check: Check) -> None:
    """Each row's split is its shard's; a recording sits in one split, the one the recordings table says."""
    declared = dict(zip(recordings["recording_id"].to_pylist(), recordings["split"].to_pylist(), strict=True)) \
        if recordings is not None else {}
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)  # (config, recording) → splits
    for shard in shards:
        if not shard.is_windows or not _usable(shard):
            continue
        wrong = np.flatnonzero(~_np(pc.fill_null(pc.equal(shard.table["split"], shard.split), False)))
        for i in wrong[:MAX_LISTED]:
            row = shard.table.slice(int(i), 1).to_pylist()[0]
            check.add(f"{shard.rel} window {row['window_id']}",
                      f"split column says {row['split']!r} but the shard is the {shard.split!r} split")
        for recording in _recording_splits(shard):
            seen[(shard.config, recording)].add(shard.split)
    for (config, recording), splits in sorted(seen.items()):
        if len(splits) > 1:
            check.add(f"{config} recording {recording}", f"in {len(splits)} splits: {', '.join(sorted(splits))}")
        elif declared and declared.get(recording) not in splits | {None}:
            check.add(f"{config} recording {recording}", f"in split {next(iter(splits))} but the recordings "
                                                         f"table says {declared[recording]}")
    check.summary = f"{len({r for _, r in seen}):,} recordings"


def _placed_per_recording(shards: list[Shard]) -> dict[str, dict[str, tuple[int, int]]]:
    """Config → recording → (windows, notes) as found in the shards."""
    found: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for shard in shards:
        if not shard.is_windows or not _usable(shard):
            continue
        table = pa.table({"recording_id": shard.table["recording_id"],
                          "notes": pc.list_value_length(shard.table["note_step"])})
        grouped = table.group_by("recording_id").aggregate([("notes", "sum"), ("notes", "count")])
        for rid, notes, windows in zip(grouped["recording_id"].to_pylist(), grouped["notes_sum"].to_pylist(),
                                       grouped["notes_count"].to_pylist(), strict=True):
            before = found[shard.config].get(rid, (0, 0))
            found[shard.config][rid] = (before[0] + windows, before[1] + (notes or 0))
    return found


def check_accounting(shards: list[Shard], recordings: pa.Table | None, check: Check) -> None:
    """Per recording: input = placed + dropped, and the placed notes are exactly in its windows."""
    if recordings is None:
        check.add(f"data/{RECORDINGS_CONFIG}", "recordings table missing or unusable: cannot account for notes")
        return
    rows = recordings.to_pylist()
    _check_reports(rows, check)
    found = _placed_per_recording(shards)
    by_id = {r["recording_id"]: r for r in rows}
    from piano_metronome.outputs.configs import CONFIG_SUBSETS

    for config, placed in sorted(found.items()):
        for rid, (windows, notes) in sorted(placed.items()):
            row = by_id.get(rid)
            if row is None:
                check.add(f"{config} recording {rid}", "has windows but no row in the recordings table")
            elif (row["windows"], row["notes_placed"]) != (windows, notes):
                check.add(f"{config} recording {rid}", f"recordings table says {row['windows']} windows, "
                          f"{row['notes_placed']:,} notes placed; the shards hold {windows} windows, {notes:,} notes")
        subsets = CONFIG_SUBSETS.get(config, ())
        for rid, row in sorted(by_id.items()):
            if row["subset"] in subsets and row["status"] == "ok" and row["windows"] and rid not in placed:
                check.add(f"{config} recording {rid}", f"built ({row['windows']} windows) but missing from config")
    check.summary = f"{len(rows):,} recordings, {sum(r['notes_input'] for r in rows):,} notes in"


def _check_reports(rows: list[dict], check: Check) -> None:
    """Each recording's own numbers add up, and a rejected one placed nothing."""
    seen: set[str] = set()
    for row in rows:
        where = f"recording {row['recording_id']}"
        if row["recording_id"] in seen:
            check.add(where, "appears twice in the recordings table")
        seen.add(row["recording_id"])
        if row["notes_input"] != row["notes_placed"] + row["notes_dropped"]:
            check.add(where, f"notes_input {row['notes_input']:,} ≠ notes_placed {row['notes_placed']:,} + "
                             f"notes_dropped {row['notes_dropped']:,}")
        try:
            by_reason = json.loads(row["dropped_json"] or "{}")
            total = sum(by_reason.values())
        except (ValueError, TypeError, AttributeError):
            check.add(where, "dropped_json is not a JSON object of counts")
            continue
        if total != row["notes_dropped"]:
            check.add(where, f"dropped_json adds up to {total:,}, notes_dropped is {row['notes_dropped']:,}")
        if row["status"] not in ("ok", "rejected"):
            check.add(where, f"unknown status {row['status']!r}")
        elif row["status"] == "rejected" and (row["notes_placed"] or row["windows"] or not row["reason"]):
            check.add(where, "rejected, yet it placed notes or gives no reason")


# --- raw recordings against their manifest ------------------------------------------------------

def manifest_files(raw: Path) -> list[Path]:
    """The manifests of a raw folder: ``manifest.csv`` (the corpus) and ``<subset>/manifest.csv`` (demo)."""
    from piano_metronome.paths import MANIFEST_NAME

    return [p for p in [raw / MANIFEST_NAME, *sorted(raw.glob(f"*/{MANIFEST_NAME}"))] if p.is_file()]


@dataclass
class _RawChecks:
    """The checks of ``validate --raw``, in the order they are shown."""

    manifest: Check
    present: Check
    size: Check
    sha256: Check
    midi: Check
    aligns: Check
    oddities: Check
    bpm: Check
    key: Check
    unlisted: Check

    @classmethod
    def start(cls, report: Report) -> _RawChecks:
        """Create every check on the report."""
        return cls(
            report.check("manifest", "every manifest row is well-formed (unique id, known split, safe path)"),
            report.check("files present", "every listed recording is in the raw folder or the corpus"),
            report.check("size", "each file has the manifest's size"),
            report.check("sha256", "each file has the manifest's sha256"),
            report.check("midi", "each file parses as MIDI with notes on the 88 keys"),
            report.check("aligns", "each recording aligns to a grid (else the build rejects it)"),
            report.check("file oddities", "no tempo, tempo or meter changes, excluded notes (handled; reported)"),
            report.check("bpm label", "the BPM in the file name agrees with the BPM fitted from the notes"),
            report.check("key label", "the key in the file name has the signature estimated from the notes"),
            report.check("unlisted files", "every *.mid in a subset folder is in a manifest"),
        )


def validate_raw(raw: Path, sources: list[Path], options=None) -> Report:
    """Check the manifests of ``raw`` against the recordings found in ``sources``; see ``validate --raw``.

    Labels are hand-typed claims, so a label the notes contradict is a warning, never a failure.
    """
    from piano_metronome.processing.align import AlignOptions

    started = time.perf_counter()
    report = Report(str(raw), "raw")
    manifests = manifest_files(raw) if raw.is_dir() else []
    if not manifests:
        report.unreadable = f"{raw} holds no manifest.csv (nor <subset>/manifest.csv)"
        return report
    checks = _RawChecks.start(report)
    listed: set[tuple[str, str]] = set()
    for manifest in manifests:
        for row in _manifest_rows(raw, manifest, checks.manifest):
            listed.add((row.subset, row.file_name))
            _check_recording(row, sources, options or AlignOptions(), checks)
    _check_unlisted(raw, listed, checks.unlisted)
    total = len(listed)
    checks.present.summary = f"{total - checks.present.count} of {total} present" + (
        " (run `piano-metronome fetch`)" if checks.present.count else "")
    report.seconds = time.perf_counter() - started
    return report


def _manifest_rows(raw: Path, manifest: Path, check: Check) -> list:
    """Rows of one manifest; bad rows become problems naming the manifest line."""
    from piano_metronome.inputs.manifest import read_manifest
    from piano_metronome.inputs.midi import RecordingError

    problems: list = []
    try:
        rows = read_manifest(manifest, problems)
    except (RecordingError, OSError, UnicodeDecodeError) as exc:
        check.add(manifest.relative_to(raw).as_posix(), str(getattr(exc, "reason", exc)))
        return []
    for problem in problems:
        check.add(f"{manifest.relative_to(raw).as_posix()} line {problem.line}", problem.reason)
    check.summary = (check.summary + "; " if check.summary else "") + f"{manifest.relative_to(raw)}: {len(rows)} rows"
    return rows


def _check_recording(row, sources: list[Path], options, checks: _RawChecks) -> None:
    """Presence, size, hash, parse, alignment and labels of one manifest row."""
    from piano_metronome.inputs.midi import MAX_FILE_BYTES, RecordingError, parse_midi_bytes
    from piano_metronome.processing.align import align
    from piano_metronome.processing.pipeline import find_file, info_of, input_warnings

    name = f"{row.subset}/{row.file_name}"
    path = find_file(row, sources)
    if path is None:
        checks.present.add(name, f"missing (looked in {', '.join(str(s) for s in sources)})")
        return
    size = path.stat().st_size
    if size != row.size:
        checks.size.add(name, f"{size:,} bytes, the manifest says {row.size:,}")
    if size > MAX_FILE_BYTES:
        checks.midi.add(name, f"file too large ({size:,} bytes > {MAX_FILE_BYTES:,})")
        return
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.sha256:
        checks.sha256.add(name, f"sha256 {digest[:12]}…, the manifest says "
                                f"{row.sha256[:12]}… (file changed since the manifest was made)")
    try:
        performance = parse_midi_bytes(data, name)
    except RecordingError as exc:
        checks.midi.add(name, exc.reason)
        return
    try:
        aligned = align(performance, info_of(row), options)
    except RecordingError as exc:
        checks.aligns.add(name, exc.reason)
        return
    for note in input_warnings(performance, aligned.report):
        checks.oddities.add(name, note, WARN)
    _check_labels(name, aligned.report, options, checks)


def _check_labels(name: str, report, options, checks: _RawChecks) -> None:
    """Warn where the file name's BPM or key signature disagrees with what the notes say."""
    labelled, fitted = report.bpm_labelled, report.bpm_fitted
    if labelled is not None and fitted is not None and abs(labelled - fitted) > options.bpm_conflict:
        checks.bpm.add(name, f"label {labelled:g} BPM, fitted {fitted:.2f} BPM on the {report.grid_source} grid",
                       WARN)
    if report.key_signature_agrees is False:
        checks.key.add(name, f"label {report.key_label}, notes say {report.key_estimated} "
                             f"(confidence {report.key_confidence:.2f})", WARN)


def _check_unlisted(raw: Path, listed: set[tuple[str, str]], check: Check) -> None:
    """A recording on disk but in no manifest would silently never be built."""
    for folder in sorted(p for p in raw.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.glob("*.mid")):
            if (folder.name, path.name) not in listed:
                check.add(f"{folder.name}/{path.name}", "not in any manifest: it is never built", WARN)
