"""Rebuild a dataset from its raw recordings and compare it, byte for byte, with the published one.

This is how a user verifies a dataset against the recordings: the build is deterministic
(sorted rows, no timestamps), so the same recordings and options must give the same bytes.
The options and configs come from the folder's own ``build_report.json``. Where files differ,
the comparison says how: rows (windows, recordings) only on one side and, for rows on both
sides, which columns differ; changed keys of JSON files; changed lines of text files.
"""

from __future__ import annotations

import difflib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from piano_metronome.outputs.build import BuildSummary
    from piano_metronome.outputs.progress import BuildProgress
    from piano_metronome.processing.align import AlignOptions
import pyarrow.compute as pc

from piano_metronome.kinds import RejectionKind
from piano_metronome.outputs.layout import BUILD_REPORT, read_table

IDENTICAL, DIFFERS, MISSING, EXTRA = "identical", "differs", "missing from rebuild", "only in rebuild"
#: Differences listed per file (the counts are always exact).
MAX_DETAILS = 30


class RebuildError(Exception):
    """The dataset cannot be rebuilt (no or unreadable build report, unknown options)."""


@dataclass
class FileResult:
    """One file of either folder: identical, different (with details), or on one side only."""

    path: str
    status: str
    details: list[str] = field(default_factory=list)


@dataclass
class RebuildReport:
    """The file-by-file comparison of a dataset with its rebuild."""

    dataset: str
    rebuilt: str
    configs: list[str]
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when every file is byte-identical and no file is on one side only."""
        return all(f.status == IDENTICAL for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {"dataset": self.dataset, "rebuilt": self.rebuilt, "configs": self.configs,
                "identical": self.identical, "seconds": round(self.seconds, 3), "notes": self.notes,
                "files": [vars(f) for f in self.files]}


def read_build_options(dataset: Path) -> tuple[list[str], AlignOptions, bool]:
    """The configs, AlignOptions and skip-broken choice a dataset was built with, from its ``build_report.json``."""
    from piano_metronome.processing.align import AlignOptions

    path = dataset / BUILD_REPORT
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        configs = list(report["configs"])
        options = AlignOptions(**report["align_options"])
        skip_broken = bool(report.get("skip_broken", False))
    except OSError as exc:
        raise RebuildError(f"cannot read {path} ({exc.strerror or exc}): is {dataset} a built dataset?") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RebuildError(f"{path} does not say how the dataset was built ({type(exc).__name__}: {exc})") from None
    if not configs:
        raise RebuildError(f"{path} lists no configs")
    return configs, options, skip_broken


def rebuild(dataset: Path, raw: Path | None, corpus: Path | None, progress: BuildProgress | None = None,
            keep: Path | None = None) -> RebuildReport:
    """Build the configs of ``dataset`` again from ``raw`` and compare every file."""
    from piano_metronome.outputs.build import BuildError, run_build
    from piano_metronome.safety import OverwriteError

    configs, options, skip_broken = read_build_options(dataset)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="piano-metronome-rebuild-"))
    try:
        out = keep if keep is not None else work / "dataset"
        try:
            summary = run_build(raw, out, configs, corpus, options, progress=progress, skip_broken=skip_broken)
        except (BuildError, OverwriteError) as exc:
            raise RebuildError(str(exc)) from None
        certified = _recertify(dataset, out, raw, corpus)
        result = RebuildReport(str(dataset), str(out), configs, compare_folders(dataset, out))
        result.notes = missing_note(summary) + certified
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.seconds = time.perf_counter() - started
    return result


def _recertify(dataset: Path, out: Path, raw: Path | None, corpus: Path | None) -> list[str]:
    """Certify the rebuild too when ``dataset`` was certified (a build alone leaves cert_* null)."""
    from piano_metronome.outputs.certify import CertifyError, recertify

    try:
        return recertify(dataset, out, raw, corpus)
    except CertifyError as exc:
        raise RebuildError(str(exc)) from None


def missing_note(summary: BuildSummary) -> list[str]:
    """A hint when recordings were not found: then the difference is the raw folder, not the dataset."""
    missing = [r.row for r in summary.rejected if r.report.reason_kind == RejectionKind.FILE_MISSING.value]
    if not missing:
        return []
    return [f"{len(missing)} recording(s) were not found (e.g. {missing[0].relative_name}): bring "
            "them with `piano-metronome fetch`, or pass --raw / --corpus"]


def _files(root: Path) -> dict[str, Path]:
    """Every file under ``root`` by its relative POSIX path."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def compare_folders(a: Path, b: Path) -> list[FileResult]:
    """File-by-file comparison of a dataset ``a`` with a rebuild ``b``."""
    left, right = _files(a), _files(b)
    results = []
    for rel in sorted(set(left) | set(right)):
        if rel not in right:
            results.append(FileResult(rel, MISSING))
        elif rel not in left:
            results.append(FileResult(rel, EXTRA))
        else:
            old, new = left[rel].read_bytes(), right[rel].read_bytes()
            if old == new:
                results.append(FileResult(rel, IDENTICAL))
            else:
                results.append(FileResult(rel, DIFFERS, explain(rel, old, new)))
    return results


def explain(rel: str, old: bytes, new: bytes) -> list[str]:
    """How two versions of a file differ, in a few lines a person can act on."""
    try:
        if rel.endswith(".arrow"):
            details = diff_tables(read_table(old, full_check=True), read_table(new, full_check=True))
        elif rel.endswith(".json"):
            details = diff_json(json.loads(old), json.loads(new))
        else:
            details = diff_text(old.decode("utf-8"), new.decode("utf-8"))
    except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
        details = [f"cannot compare contents ({type(exc).__name__}: {exc})"]
    sizes = f"{len(old):,} → {len(new):,} bytes"
    return [sizes, *details] if details else [sizes, "contents equal as data; bytes differ (encoding)"]


# --- tables -------------------------------------------------------------------------------------

def _key_column(table: pa.Table) -> str:
    """Rows are named by window id in window shards, by recording id in the recordings table."""
    return "window_id" if "window_id" in table.column_names else "recording_id"


def diff_tables(old: pa.Table, new: pa.Table) -> list[str]:
    """Rows on one side only, and for common rows the columns that differ, grouped by recording."""
    details = []
    if not old.schema.equals(new.schema, check_metadata=True):
        details.append("schema differs" + ("" if old.schema.equals(new.schema) else
                                           f": {old.schema.names} → {new.schema.names}"))
        if not old.schema.equals(new.schema):
            return details
    key = _key_column(old)
    old_ids, new_ids = old[key].to_pylist(), new[key].to_pylist()
    new_index = {k: i for i, k in enumerate(new_ids)}
    gone = [k for k in old_ids if k not in new_index]
    added = [k for k in new_ids if k not in set(old_ids)]
    if gone:
        details.append(_listing(f"{len(gone)} row(s) only in the dataset", gone))
    if added:
        details.append(_listing(f"{len(added)} row(s) only in the rebuild", added))
    common = [(i, new_index[k]) for i, k in enumerate(old_ids) if k in new_index]
    if common:
        left, right = (np.array(ix, dtype=np.int64) for ix in zip(*common, strict=True))
        details += _changed_rows(old.take(left), new.take(right), key)
        if not gone and not added and not np.array_equal(left, right):
            details.append("row order differs")
    return details


def _listing(title: str, items: list[str]) -> str:
    """``title: a, b, c … (+N more)``."""
    shown = ", ".join(items[:MAX_DETAILS])
    return f"{title}: {shown}" + (f" … (+{len(items) - MAX_DETAILS} more)" if len(items) > MAX_DETAILS else "")


def _changed_rows(old: pa.Table, new: pa.Table, key: str) -> list[str]:
    """For aligned rows: one line per changed row naming its columns, then the recordings affected."""
    changed = {name: column_differs(old[name], new[name]) for name in old.column_names}
    any_change = np.logical_or.reduce(list(changed.values())) if changed else np.zeros(old.num_rows, bool)
    rows = np.flatnonzero(any_change)
    if not len(rows):
        return []
    ids = old[key].to_pylist()
    lines = [f"{key} {ids[i]}: {', '.join(n for n, m in changed.items() if m[i])} differ" for i in rows[:MAX_DETAILS]]
    if len(rows) > MAX_DETAILS:
        lines.append(f"… and {len(rows) - MAX_DETAILS} more changed row(s)")
    if key == "window_id":
        recordings = old["recording_id"].to_pylist()
        per: dict[str, int] = {}
        for i in rows:
            per[recordings[i]] = per.get(recordings[i], 0) + 1
        lines.append(_listing(f"{len(rows)} changed window(s) in {len(per)} recording(s)",
                              [f"{r} ({n})" for r, n in per.items()]))
    return lines


def column_differs(old: pa.ChunkedArray | pa.Array, new: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per row, whether two equally long columns differ (lists compared element by element; NaN = NaN)."""
    a = old.combine_chunks() if isinstance(old, pa.ChunkedArray) else old
    b = new.combine_chunks() if isinstance(new, pa.ChunkedArray) else new
    if pa.types.is_list(a.type) or pa.types.is_large_list(a.type) or pa.types.is_fixed_size_list(a.type):
        return _list_differs(a, b)
    equal = pc.equal(a, b)
    if pa.types.is_floating(a.type):
        equal = pc.or_kleene(equal, pc.and_(pc.is_nan(a), pc.is_nan(b)))
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    same = pc.or_kleene(pc.fill_null(equal, False), both_null)
    differs: np.ndarray = ~same.to_numpy(zero_copy_only=False)
    return differs


def _list_differs(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Rows whose lists differ in length or in any element."""
    la = pc.list_value_length(a).fill_null(-1).to_numpy(zero_copy_only=False)
    lb = pc.list_value_length(b).fill_null(-1).to_numpy(zero_copy_only=False)
    differs: np.ndarray = la != lb
    same_length = np.flatnonzero(~differs & (la > 0))
    if len(same_length):
        idx = pa.array(same_length)
        elements = column_differs(pc.list_flatten(a.take(idx)), pc.list_flatten(b.take(idx)))
        row = np.repeat(np.arange(len(same_length)), la[same_length])
        differs[same_length] |= np.bincount(row[elements], minlength=len(same_length)) > 0
    return differs


# --- JSON and text ------------------------------------------------------------------------------

def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    """Nested JSON → {"a.b.c": leaf}."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out if value else {prefix: {}}
    return {prefix: value}


def diff_json(old: object, new: object) -> list[str]:
    """Changed, removed and added keys, with their values."""
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"{key}: {json.dumps(a[key])} → (absent)")
        elif key not in a:
            lines.append(f"{key}: (absent) → {json.dumps(b[key])}")
        elif a[key] != b[key]:
            lines.append(f"{key}: {json.dumps(a[key])} → {json.dumps(b[key])}")
    return lines[:MAX_DETAILS] + ([f"… and {len(lines) - MAX_DETAILS} more"] if len(lines) > MAX_DETAILS else [])


def diff_text(old: str, new: str) -> list[str]:
    """The changed lines (unified diff without context), shortened."""
    lines = [line.rstrip("\n")[:200] for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), "dataset", "rebuild", n=0, lineterm="")]
    body = [line for line in lines if not line.startswith(("---", "+++"))]
    return body[:MAX_DETAILS] + ([f"… and {len(body) - MAX_DETAILS} more lines"] if len(body) > MAX_DETAILS else [])
