"""Certify every take of a built dataset: the stored grid against a beat tracker that never saw it.

For each recording of a built folder (its ``recordings`` table) this reads the raw file (found as the
build finds it, and checked against the stored sha256), rebuilds the grid the dataset stores from the
file's tempo map and the row's numbers, proves that grid is the stored one against the windows' own
``start_time_s``, and hands the onsets alone to :func:`~piano_metronome.processing.certify.certify_onsets`.

The tracker is pure Python and costs seconds per take, so takes run in forked worker processes (the
approach of :mod:`piano_metronome.outputs.workers`: no pickling, one byte down a pipe per take done,
results as JSON); a worker that fails is redone in the parent, so workers change speed, never results.
The library prints nothing: progress goes to a callback.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from piano_metronome.inputs.manifest import relative_name, sha256_file
from piano_metronome.inputs.midi import Performance
from piano_metronome.outputs.check_report import Report
from piano_metronome.outputs.schema import RECORDINGS_CONFIG, RECORDINGS_SPLIT
from piano_metronome.outputs.workers import DEFAULT_JOBS
from piano_metronome.processing.certify import Certificate, certify_onsets, fraction_text
from piano_metronome.processing.grid import Grid, beat_times_grid, constant_grid, tempo_map_grid

#: One row of the recordings table (column name → value) or a certificate as JSON.
Row = dict[str, Any]
#: Per recording: stored window start steps and their click times.
Starts = dict[str, tuple[np.ndarray, np.ndarray]]

#: The stored window start times are float64 click times; a reconstruction this far off is not the same grid.
GRID_MATCH_S = 1e-3


class CertifyError(Exception):
    """The dataset cannot be certified (not a built folder, a raw file missing or changed): one line."""


@dataclass(frozen=True)
class TakeCertificate:
    """One recording's certificate, or why it has none (a rejected recording has no grid)."""

    recording_id: str
    file: str
    certificate: Certificate | None
    skipped: str = ""


def recordings_path(dataset: Path) -> Path:
    """The recordings shard of a built folder."""
    from piano_metronome.outputs.layout import shard_name

    return dataset / "data" / RECORDINGS_CONFIG / shard_name(RECORDINGS_SPLIT)


def read_recordings(dataset: Path) -> list[Row]:
    """The recordings table as rows (:func:`~piano_metronome.outputs.layout.read_recordings`), or
    :class:`CertifyError` naming the folder."""
    from piano_metronome.outputs import layout

    try:
        rows: list[Row] = layout.read_recordings(dataset).to_pylist()
        return rows
    except (OSError, pa.ArrowInvalid) as exc:
        raise CertifyError(f"cannot read the recordings table ({exc}): is {dataset} a built dataset?") from None


def stored_window_starts(dataset: Path) -> Starts:
    """Per recording, the stored window start steps and their click times (from every windows shard).

    These are what the dataset itself says its grid is; the reconstructed grid must reproduce them.
    """
    from piano_metronome.outputs.layout import read_table, window_shards

    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for path in (p for splits in window_shards(dataset).values() for paths in splits.values() for p in paths):
        try:
            table = read_table(path, ["recording_id", "start_step", "start_time_s"])
        except (OSError, pa.ArrowInvalid, KeyError) as exc:
            raise CertifyError(f"cannot read window shard {path} ({exc})") from None
        ids, inverse = np.unique(np.asarray(table["recording_id"].to_pylist(), dtype=object), return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # each recording's windows together, in stored order
        cuts = np.cumsum(np.bincount(inverse, minlength=len(ids)))[:-1]
        steps = np.split(table["start_step"].to_numpy()[order], cuts)
        times = np.split(table["start_time_s"].to_numpy()[order], cuts)
        for rid, step, time in zip(ids.tolist(), steps, times, strict=True):
            found.setdefault(rid, []).append((step, time))
    return {rid: (np.concatenate([s for s, _ in parts]), np.concatenate([t for _, t in parts]))
            for rid, parts in found.items()}


def stored_grid(performance: Performance, row: Row) -> Grid:
    """The click grid the dataset stores for a take, rebuilt from the raw file and its recordings row.

    Why rebuild rather than re-align: the certificate must be about the grid the dataset *stores*,
    not about what today's aligner would choose. The row keeps the aligner's decisions (grid source,
    fitted BPM, bar-line shift); the raw file keeps the tempo map they apply to. The result is checked
    against the stored window start times by :func:`check_grid`.
    """
    source = str(row["grid_source"])
    base, fitted = source.removesuffix("+fit"), source.endswith("+fit")
    bpm_fitted = float(row["bpm_fitted"])
    if base == "tempo_map":
        grid = tempo_map_grid(performance)
    elif base == "click_track" and performance.click_times is not None:
        grid = beat_times_grid(performance.click_times, "click_track", performance.beats_per_bar)
    elif base == "label_bpm":
        grid = constant_grid(bpm_fitted, "label_bpm", performance.beats_per_bar)
        fitted = False  # the fitted label grid is a constant click at the fitted BPM from t = 0
    else:
        raise CertifyError(f"{row['recording_id']}: grid source {source!r} cannot be rebuilt from the raw file")
    if fitted:
        grid = grid.rescaled(grid.median_bpm() / bpm_fitted)
    steps_per_beat = int(row["steps_per_beat"])
    return grid.shifted_beats(int(row["grid_shift_steps"]) / steps_per_beat)


def check_grid(grid: Grid, row: Row, starts: tuple[np.ndarray, np.ndarray] | None) -> None:
    """The rebuilt grid must put every stored window start where the dataset says it is (±1 ms)."""
    if starts is None or len(starts[0]) == 0:
        return
    steps, times = starts
    rebuilt = grid.beats_to_seconds(steps / int(row["steps_per_beat"]))
    worst = float(np.max(np.abs(rebuilt - times)))
    if worst > GRID_MATCH_S:
        raise CertifyError(f"{row['recording_id']}: the grid rebuilt from the raw file and the recordings row "
                           f"misses the stored window starts by up to {worst * 1000:.1f} ms; the dataset and "
                           "this version of piano_metronome disagree about its grid")


def find_raw(row: Row, sources: list[Path]) -> Path:
    """The raw file of a row in the first source that has it, verified against the stored sha256."""
    name = relative_name(str(row["subset"]), str(row["file_name"]))
    for source in sources:
        path = source / name
        if path.is_file():
            if sha256_file(path) != row["sha256"]:
                raise CertifyError(f"{path}: sha256 differs from the dataset's; it is not the recording that was built")
            return path
    raise CertifyError(f"{name}: raw recording not found in {', '.join(str(s) for s in sources)}; pass --raw or "
                       "--corpus (or set $PIANO_METRONOME_CORPUS)")


def certify_row(row: Row, sources: list[Path], starts: tuple[np.ndarray, np.ndarray] | None) -> TakeCertificate:
    """One recording's certificate (a rejected recording is skipped: it has no grid to certify)."""
    from piano_metronome.inputs.midi import RecordingError, read_midi

    rid = row["recording_id"]
    name = relative_name(str(row["subset"]), str(row["file_name"]))
    if row["status"] != "ok":
        return TakeCertificate(rid, name, None, f"rejected by the build: {row['reason']}")
    path = find_raw(row, sources)
    try:
        performance = read_midi(path)
    except RecordingError as exc:
        raise CertifyError(str(exc)) from None
    grid = stored_grid(performance, row)
    check_grid(grid, row, starts)
    labelled = _number(row["bpm_labelled"])
    certificate = certify_onsets(performance.onsets, grid, labelled_bpm=labelled,
                                 tempo_map_bpm=_number(row["bpm_tempo_map"]))
    return TakeCertificate(rid, name, certificate)


def _number(value: float | None) -> float | None:
    """A stored float as a number, None for NaN or null."""
    return None if value is None or math.isnan(value) else float(value)


def certify_rows(rows: list[Row], sources: list[Path], starts: Starts, on_done: Callable[[], object]) -> list[Row]:
    """Certify rows in this process, calling ``on_done`` after each; results as JSON-ready dicts."""
    out = []
    for row in rows:
        out.append(_to_json(certify_row(row, sources, starts.get(row["recording_id"]))))
        on_done()
    return out


def _to_json(take: TakeCertificate) -> Row:
    """A take's certificate as plain JSON (NaN written as null, read back as NaN)."""
    cert = None if take.certificate is None else {k: (None if isinstance(v, float) and math.isnan(v) else v)
                                                  for k, v in take.certificate.as_dict().items()}
    return {"recording_id": take.recording_id, "file": take.file, "certificate": cert, "skipped": take.skipped}


def _from_json(data: Row) -> TakeCertificate:
    """Inverse of :func:`_to_json`."""
    cert = data["certificate"]
    if cert is not None:
        floats = {"tracked_bpm", "grid_bpm", "tempo_ratio", "multiple", "f_measure", "f_measure_at_multiple",
                  "phase_ms", "label_f_measure"}
        values: dict[str, Any] = {k: (math.nan if k in floats and v is None else v) for k, v in cert.items()}
        return TakeCertificate(data["recording_id"], data["file"], Certificate(**values), data["skipped"])
    return TakeCertificate(data["recording_id"], data["file"], None, data["skipped"])


def balance(rows: list[Row], jobs: int) -> list[list[Row]]:
    """Rows in at most ``jobs`` groups of about equal tracker cost (longest first to the lightest group).

    The tracker's cost grows faster than the note count, so the heaviest takes are placed first.
    """
    groups: list[list[Row]] = [[] for _ in range(max(1, jobs))]
    loads = [0.0] * len(groups)
    for row in sorted(rows, key=lambda r: (-int(r["notes_input"] or 0), r["recording_id"])):
        lightest = loads.index(min(loads))
        groups[lightest].append(row)
        loads[lightest] += float(row["notes_input"] or 0) ** 1.5
    return [g for g in groups if g]


def certify_dataset(dataset: Path, sources: list[Path], jobs: int = 1,
                    progress: Callable[[int, int], None] | None = None,
                    recording_ids: set[str] | None = None,
                    recordings: list[Row] | None = None) -> list[TakeCertificate]:
    """Every recording's certificate (or those in ``recording_ids``), sorted by id, the same whatever ``jobs`` is.

    ``progress(done, total)`` is called as takes finish. Raises :class:`CertifyError` for a folder
    that is not a build, a raw file missing or changed, or a grid that cannot be rebuilt;
    :class:`~piano_metronome.processing.certify.VerifyExtraMissing` without the ``verify`` extra.
    """
    from piano_metronome.processing.certify import library_versions

    library_versions()  # fail before any work without the extra; also imports the tracker before forking
    recordings = read_recordings(dataset) if recordings is None else recordings  # given by a caller that read it
    rows = [r for r in recordings if recording_ids is None or r["recording_id"] in recording_ids]
    starts = stored_window_starts(dataset)
    done = [0]

    def advance(count: int = 1) -> None:
        done[0] += count
        if progress and count:
            progress(done[0], len(rows))

    if progress:
        progress(0, len(rows))
    from piano_metronome.outputs import workers

    if jobs <= 1 or not workers.can_fork() or len(rows) < 2:
        results = certify_rows(rows, sources, starts, advance)
    else:
        results = _in_workers(balance(rows, jobs), sources, starts, advance)
    return sorted((_from_json(r) for r in results), key=lambda t: t.recording_id)


def _in_workers(groups: list[list[Row]], sources: list[Path], starts: Starts,
                advance: Callable[[int], None]) -> list[Row]:
    """One forked worker per group (:mod:`~piano_metronome.outputs.workers`, as the build aligns);
    any group whose worker failed is redone in this process, where its error, if any, names the file."""
    from piano_metronome.outputs import workers

    def run(rows: list[Row], done: Callable[..., None], report: Path) -> None:
        report.write_text(json.dumps(certify_rows(rows, sources, starts, done)), encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="piano-metronome-certify-") as tmp:
        children = [workers.start(group, run, Path(tmp) / f"worker-{i}.json") for i, group in enumerate(groups)]
        results: list[Row] = []
        for child, report in zip(children, workers.collect(children, TRACKER_STALL_S, advance), strict=True):
            if report is None:  # its takes were counted as the worker finished them: not again
                results.extend(certify_rows(child.items, sources, starts, lambda: None))
            else:
                results.extend(json.loads(report.read_text(encoding="utf-8")))
    return results


#: A tracker worker that certifies no take for this long is taken for hung (killed, its takes redone here).
TRACKER_STALL_S = 900.0


def sources_for(raw: Path | None, corpus: Path | None) -> list[Path]:
    """Where raw recordings are looked for, exactly as the build looks: raw folder, --corpus, the variable."""
    from piano_metronome.outputs.build import plan_sources
    from piano_metronome.paths import raw_dir

    return plan_sources(raw_dir(raw), corpus)


def digest(takes: list[TakeCertificate]) -> str:
    """sha256 of the certificates as JSON: two runs on the same inputs must give the same one."""
    text = json.dumps([_to_json(t) for t in takes], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# --- storing certificates in the folder ---------------------------------------------------------

#: Recordings-table column → Certificate field. The columns are declared (type, doc) in
#: :mod:`piano_metronome.outputs.schema`; null in every one of them means "not certified".
CERT_FIELDS = {
    "cert_verdict": "verdict", "cert_tracked_bpm": "tracked_bpm", "cert_tempo_ratio": "tempo_ratio",
    "cert_multiple": "multiple", "cert_f_measure": "f_measure", "cert_f_measure_at_multiple": "f_measure_at_multiple",
    "cert_phase_ms": "phase_ms", "cert_tracked_beats": "tracked_beats", "cert_label_f_measure": "label_f_measure",
    "cert_label_disagrees": "label_disagrees",
}
#: The key of ``build_report.json`` that says certify ran, with which libraries (``rebuild`` reads it).
REPORT_KEY = "certificates"


def certificate_columns(certificate: Certificate | None) -> Row:
    """The certificate columns of one recordings row: all null when there is no certificate."""
    if certificate is None:
        return {column: None for column in CERT_FIELDS}
    values = certificate.as_dict()
    return {column: values[name] for column, name in CERT_FIELDS.items()}


def certified_table(table: pa.Table, takes: list[TakeCertificate]) -> pa.Table:
    """The recordings table with its certificate columns filled from ``takes`` (others left null)."""
    by_id = {t.recording_id: t.certificate for t in takes}
    rows = table.to_pylist()
    for row in rows:
        row.update(certificate_columns(by_id.get(row["recording_id"])))
    return pa.Table.from_pylist(rows, schema=table.schema)


def write_certificates(dataset: Path, takes: list[TakeCertificate]) -> None:
    """Store certificates in a built folder, atomically: recordings shard, build report, card, checksums.

    The folder is copied beside itself, changed there and swapped in (the build's own staging and
    swap), so an interrupted run leaves the folder as it was. Same takes in → same bytes out.
    """
    import shutil

    from piano_metronome.outputs.build import write_checksums
    from piano_metronome.outputs.layout import check_replaceable
    from piano_metronome.outputs.staging import staging_dir, swap_in

    check_replaceable(dataset)  # only a folder a build wrote, holding only its files, is rewritten
    staging = staging_dir(dataset)
    try:
        shutil.copytree(dataset, staging, dirs_exist_ok=True)
        path = recordings_path(staging)
        with pa.OSFile(str(path), "rb") as source:
            table = pa.ipc.open_stream(source).read_all()
        write_recordings_shard(certified_table(table, takes), path)
        report = _record_run(staging, takes)
        _rewrite_card(staging, report)
        write_checksums(staging)
        swap_in(staging, dataset)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_recordings_shard(table: pa.Table, path: Path) -> None:
    """One Arrow stream, as the build writes the recordings shard (same writer, so the same bytes)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _record_run(dataset: Path, takes: list[TakeCertificate]) -> Row:
    """Say in build_report.json that certify ran, with which libraries, and its counts (no timestamps)."""
    from collections import Counter

    from piano_metronome.outputs.layout import BUILD_REPORT
    from piano_metronome.processing.certify import VERDICTS, library_versions

    path = dataset / BUILD_REPORT
    report: Row = json.loads(path.read_text(encoding="utf-8"))
    counts = Counter(t.certificate.verdict for t in takes if t.certificate is not None)
    report[REPORT_KEY] = {"libraries": library_versions(), "verdicts": {v: counts[v] for v in VERDICTS},
                          "label_disagrees": sorted(t.recording_id for t in takes
                                                    if t.certificate is not None and t.certificate.label_disagrees)}
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report


def _rewrite_card(dataset: Path, report: Row) -> None:
    """The card again, from the folder's tables (its certificate section now has numbers)."""
    from piano_metronome.outputs.card import write_card
    from piano_metronome.outputs.stats_markdown import folder_markdown

    write_card(dataset, report["configs"], int(report["recordings"]), folder_markdown(dataset))


def certificates_markdown(table: pa.Table, libraries: dict[str, str] | None = None) -> str:
    """The card's certificate section, generated from the recordings table's certificate columns."""
    from piano_metronome.processing.certify import AGREES, AGREES_AT_MULTIPLE, DISAGREES, VERIFY_EXTRA

    if "cert_verdict" not in table.column_names:
        return ""
    # only the columns read here, as Python rows: all of them would cost ~2 kB a recording (100× the corpus: +90 MB)
    wanted = ["status", "subset", "file_name", "latency_ms", "bpm_labelled", "bpm_tempo_map",
              *(c for c in table.column_names if c.startswith("cert_"))]
    rows = [r for r in table.select(wanted).to_pylist() if r["status"] == "ok"]
    done = [r for r in rows if r["cert_verdict"] is not None]
    if not done:
        return (f"Not certified: the `cert_*` columns are null. `piano-metronome certify DIR` fills them "
                f"(needs `{VERIFY_EXTRA}`) and keeps the folder byte-reproducible.\n")
    counts = {v: sum(r["cert_verdict"] == v for r in done) for v in (AGREES, AGREES_AT_MULTIPLE, DISAGREES)}
    f = np.array([r["cert_f_measure_at_multiple"] for r in done], dtype=np.float64)
    q = np.nanpercentile(f, [0, 10, 50, 90, 100]) if np.isfinite(f).any() else [math.nan] * 5
    share = 100.0 * (counts[AGREES] + counts[AGREES_AT_MULTIPLE]) / len(done)
    used = ", ".join(f"{k} {v}" for k, v in sorted((libraries or {}).items())) or "partitura, mir_eval"
    multiples = _multiples_text(done)
    same_sign = sum(1 for r in done if np.isfinite(r["cert_phase_ms"]) and np.sign(r["cert_phase_ms"]) ==
                    np.sign(r["latency_ms"]))
    lines = [
        f"{len(done)} of {len(rows)} takes certified ({used}): **{share:.1f} % agree** with their stored grid "
        f"({counts[AGREES]} at the beat, {counts[AGREES_AT_MULTIPLE]} at a multiple: {multiples}); "
        f"{counts[DISAGREES]} disagree.",
        "",
        f"F-measure at the tracker's level (±70 ms): min {q[0]:.2f}, 10th percentile {q[1]:.2f}, median {q[2]:.2f}, "
        f"90th percentile {q[3]:.2f}, max {q[4]:.2f}. The tracked beats' median phase has the sign of the measured "
        f"latency in {same_sign} of {len(done)} takes.",
        "",
    ]
    lines += _takes_table("Takes whose certificate disagrees", [r for r in done if r["cert_verdict"] == DISAGREES])
    lines += _takes_table("Takes whose file-name BPM disagrees with both the tempo map and the tracker",
                          [r for r in done if r["cert_label_disagrees"]])
    return "\n".join(lines).rstrip("\n") + "\n"


def _multiples_text(rows: list[Row]) -> str:
    """How often the tracker chose each metrical level, e.g. ``×2 300, ×1 40``."""
    from collections import Counter

    counts = Counter(r["cert_multiple"] for r in rows if r["cert_multiple"] is not None and
                     np.isfinite(r["cert_multiple"]))
    return ", ".join(f"×{fraction_text(m)} {n}" for m, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _takes_table(title: str, rows: list[Row]) -> list[str]:
    """A markdown table of takes with the numbers behind their verdict (nothing when there are none)."""
    if not rows:
        return [f"{title}: none.", ""]
    lines = [f"{title} ({len(rows)}):", "",
             "| take | verdict | BPM label / map / tracked | ratio | F beat | F multiple | phase ms | F label |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{relative_name(r['subset'], r['file_name'])}` | {r['cert_verdict']} | "
                     f"{r['bpm_labelled']:g} / "
                     f"{r['bpm_tempo_map']:.2f} / {r['cert_tracked_bpm']:.2f} | {r['cert_tempo_ratio']:.3f} | "
                     f"{r['cert_f_measure']:.2f} | {r['cert_f_measure_at_multiple']:.2f} | {r['cert_phase_ms']:+.0f} | "
                     f"{r['cert_label_f_measure']:.2f} |")
    return [*lines, ""]


# --- checking stored certificates (validate) ----------------------------------------------------

def _missing(value: object) -> bool:
    """Null, or a NaN float."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def certificate_problems(row: Row) -> list[str]:
    """What is inconsistent in one recordings row's certificate; empty when it holds together.

    Nulls are all-or-none (``cert_label_disagrees`` is also null when the file name has no BPM);
    a rejected recording has none; a stored verdict must be the one its stored numbers give.
    """
    if "cert_verdict" not in row:
        return []
    numbers = [c for c in CERT_FIELDS if c != "cert_label_disagrees"]
    nulls = [c for c in numbers if row[c] is None]
    if len(nulls) == len(numbers):
        return [] if row["cert_label_disagrees"] is None else ["cert_label_disagrees set on an uncertified row"]
    if nulls:
        return [f"certificate half stored: {', '.join(nulls)} null, the other cert_* columns set"]
    if row["status"] != "ok":
        return [f"a {row['status']} recording has a certificate (it has no grid to certify)"]
    return _verdict_problems(row) + _label_problems(row)


def _verdict_problems(row: Row) -> list[str]:
    """The verdict, its multiple and its F-measures against the rule of :func:`verdict_of`."""
    from piano_metronome.processing.certify import VERDICTS, nearest_multiple, verdict_of

    problems = []
    ratio, multiple, f1, f_level = (row[c] for c in ("cert_tempo_ratio", "cert_multiple", "cert_f_measure",
                                                      "cert_f_measure_at_multiple"))
    if row["cert_verdict"] not in VERDICTS:
        problems.append(f"cert_verdict {row['cert_verdict']!r} is not one of {', '.join(VERDICTS)}")
    nearest = nearest_multiple(ratio)
    if not (nearest == multiple or (_missing(nearest) and _missing(multiple))):
        problems.append(f"cert_multiple {multiple} but the tempo ratio {ratio:.4f} gives {nearest}")
    if multiple == 1.0 and f1 != f_level:
        problems.append(f"at multiple 1 the two F-measures must be one: {f1} and {f_level}")
    for name in ("cert_f_measure", "cert_f_measure_at_multiple"):
        if not 0.0 <= row[name] <= 1.0:
            problems.append(f"{name} {row[name]} is outside [0, 1]")
    expected = verdict_of(ratio, multiple, f_level, int(row["cert_tracked_beats"]))
    if row["cert_verdict"] != expected:
        problems.append(f"cert_verdict {row['cert_verdict']!r} but its numbers say {expected!r} (ratio {ratio:.4f}, "
                        f"multiple {multiple}, F {f_level:.3f}, {row['cert_tracked_beats']} beats)")
    bpm_used = row["bpm_used"]
    known = not _missing(bpm_used) and not _missing(ratio)
    if known and abs(row["cert_tracked_bpm"] / bpm_used - ratio) > 1e-3 * ratio:
        problems.append(f"cert_tempo_ratio {ratio:.4f} ≠ cert_tracked_bpm {row['cert_tracked_bpm']:.3f} / bpm_used "
                        f"{bpm_used:.3f}")
    return problems


def _label_problems(row: Row) -> list[str]:
    """``cert_label_disagrees`` is null exactly without a BPM label, and follows its rule otherwise."""
    from piano_metronome.processing.certify import label_disagrees

    labelled = _number(row["bpm_labelled"])
    stored = row["cert_label_disagrees"]
    if labelled is None:
        return [] if stored is None else ["cert_label_disagrees set, but the file name has no BPM"]
    expected = label_disagrees(labelled, _number(row["bpm_tempo_map"]), row["cert_label_f_measure"])
    if stored != expected:
        return [f"cert_label_disagrees {stored} but the label {labelled:g}, tempo map {row['bpm_tempo_map']} and "
                f"label F {row['cert_label_f_measure']} say {expected}"]
    return []


def independent_problems(table_rows: list[Row], takes: list[TakeCertificate]) -> list[tuple[str, str, bool]]:
    """``validate --independent``: (where, what, fails) for each fresh certificate worth a line.

    A stored certificate that differs from the fresh one fails (same inputs and libraries must give
    the same numbers); a fresh ``disagrees`` or a wrong BPM label is reported as a warning, since it is
    a finding about the take, not damage to the folder.
    """
    from piano_metronome.processing.certify import DISAGREES

    stored = {r["recording_id"]: r for r in table_rows}
    found = []
    for take in takes:
        cert = take.certificate
        if cert is None:
            continue
        row = stored.get(take.recording_id, {})
        if row.get("cert_verdict") is not None:
            fresh = certificate_columns(cert)
            differ = [c for c in CERT_FIELDS if not _same(row[c], fresh[c])]
            if differ:
                found.append((take.file, f"stored certificate differs from a fresh one in {', '.join(differ)}", True))
        if cert.verdict == DISAGREES or cert.label_disagrees:
            found.append((take.file, cert.note, False))
    return found


def _same(stored: object, fresh: object) -> bool:
    """A stored value (float32 in the table) equals a fresh one: NaN = NaN, floats to float32."""
    if _missing(stored) and _missing(fresh):
        return True
    if isinstance(stored, float) and isinstance(fresh, float):
        return bool(np.float32(stored) == np.float32(fresh))
    return stored == fresh


def card_section(dataset: Path) -> str:
    """The card's certificate subsection for a folder, from its recordings table and build report."""
    from piano_metronome.outputs.layout import BUILD_REPORT, read_table

    path = recordings_path(dataset)
    if not path.is_file():
        return ""
    table = read_table(path)  # memory-mapped: only the columns the section reads are decoded
    try:
        libraries = json.loads((dataset / BUILD_REPORT).read_text(encoding="utf-8"))[REPORT_KEY]["libraries"]
    except (OSError, ValueError, KeyError, TypeError):
        libraries = None
    text = certificates_markdown(table, libraries)
    return f"\n### Grid certificates: an independent beat tracker against the stored grid\n\n{text}" if text else ""


def recertify(source: Path, rebuilt: Path, raw: Path | None, corpus: Path | None) -> list[str]:
    """For ``rebuild``: certify ``rebuilt`` when ``source`` was certified; notes on library versions.

    ``rebuild`` compares bytes, and a build alone leaves the cert_* columns null, so a certified folder
    rebuilds byte for byte only when its rebuild is certified too. Raises :class:`CertifyError` when
    that needs the ``verify`` extra and it is missing.
    """
    from piano_metronome.outputs.layout import read_build_report
    from piano_metronome.processing.certify import VERIFY_EXTRA, VerifyExtraMissingError, library_versions

    try:
        recorded = read_build_report(source).get(REPORT_KEY)
    except (OSError, ValueError):
        return []
    if not recorded:
        return []
    try:
        versions = library_versions()
    except VerifyExtraMissingError:
        raise CertifyError(f"{source} was certified ({_libraries_text(recorded.get('libraries'))}); rebuilding it "
                           f"certifies the rebuild too, which needs the verify extra: {VERIFY_EXTRA}") from None
    write_certificates(rebuilt, certify_dataset(rebuilt, sources_for(raw, corpus), jobs=DEFAULT_JOBS))
    if versions != recorded.get("libraries"):
        return [f"{source} was certified with {_libraries_text(recorded.get('libraries'))}, the rebuild with "
                f"{_libraries_text(versions)}: cert_* differences may come from the libraries"]
    return []


def _libraries_text(libraries: object) -> str:
    """``partitura 1.9.0, mir_eval 0.8.2``."""
    if not isinstance(libraries, dict):
        return "unknown library versions"
    return ", ".join(f"{name} {version}" for name, version in sorted(libraries.items()))


def independent_check(report: Report, dataset: Path, corpus: Path | None,
                      progress: Callable[[int, int], None] | None = None) -> None:
    """``validate --independent``: certify every take afresh and add the outcome as one check.

    It fails when certificates cannot be made (no extra, a raw file missing) or a stored one differs
    from the fresh one; a take the tracker disagrees with is a warning (a finding, not damage).
    """
    from collections import Counter

    from piano_metronome.outputs.check_report import FAIL, WARN
    from piano_metronome.processing.certify import VERDICTS, VerifyExtraMissingError

    check = report.check("independent", "a beat tracker run now on the onsets alone agrees with each stored grid; "
                                        "stored certificates equal fresh ones")
    try:  # the raw recordings are found as a build of the project's own raw folder finds them
        recordings = read_recordings(dataset)
        takes = certify_dataset(dataset, sources_for(None, corpus), DEFAULT_JOBS, progress, recordings=recordings)
    except (CertifyError, VerifyExtraMissingError) as exc:
        check.add(str(dataset), str(exc))
        return
    for where, what, fails in independent_problems(recordings, takes):
        check.add(where, what, FAIL if fails else WARN)
    counts = Counter(t.certificate.verdict for t in takes if t.certificate is not None)
    check.summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
