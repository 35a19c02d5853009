"""``validate --raw``: the raw recordings against their manifest, before anything is built.

Presence, size, sha256, that each file parses and aligns, and the hand-typed labels against
what the notes say (a contradicted label is a warning, never a failure: labels are claims).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from piano_metronome.inputs.manifest import ManifestProblem, ManifestRow
from piano_metronome.outputs.check_report import WARN, Check, Report
from piano_metronome.processing.align import AlignmentReport, AlignOptions


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


def validate_raw(raw: Path, sources: list[Path], options: AlignOptions | None = None) -> Report:
    """Check the manifests of ``raw`` against the recordings found in ``sources``; see ``validate --raw``.

    Labels are hand-typed claims, so a label the notes contradict is a warning, never a failure.
    """
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


def _manifest_rows(raw: Path, manifest: Path, check: Check) -> list[ManifestRow]:
    """Rows of one manifest; bad rows become problems naming the manifest line."""
    from piano_metronome.inputs.manifest import read_manifest
    from piano_metronome.inputs.midi import RecordingError

    problems: list[ManifestProblem] = []
    try:
        rows = read_manifest(manifest, problems)
    except (RecordingError, OSError, UnicodeDecodeError) as exc:
        check.add(manifest.relative_to(raw).as_posix(), str(getattr(exc, "reason", exc)))
        return []
    for problem in problems:
        check.add(f"{manifest.relative_to(raw).as_posix()} line {problem.line}", problem.reason)
    check.summary = (check.summary + "; " if check.summary else "") + f"{manifest.relative_to(raw)}: {len(rows)} rows"
    return rows


def _check_recording(row: ManifestRow, sources: list[Path], options: AlignOptions,
                     checks: _RawChecks) -> None:
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


def _check_labels(name: str, report: AlignmentReport, options: AlignOptions, checks: _RawChecks) -> None:
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
