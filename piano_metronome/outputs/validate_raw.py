"""``validate --raw``: the raw recordings against their manifest, before anything is built.

Presence, size, sha256, that each file parses and aligns, and the hand-typed labels against
what the notes say (a contradicted label is a warning, never a failure: labels are claims).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from piano_metronome.inputs.manifest import ManifestProblem, ManifestRow
from piano_metronome.kinds import RejectionKind, WarningKind
from piano_metronome.outputs.check_report import WARN, Check, Report
from piano_metronome.processing.align import AlignOptions


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
            report.check("unlisted files", "every *.mid/*.midi (any case) in a subset folder is in a manifest"),
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
    """Presence, size, hash, parse, alignment and labels of one manifest row.

    The row goes through the build's own :func:`~piano_metronome.processing.recording.process_row`,
    so this check can never disagree with what a build would do; its findings are sorted into
    checks by their stored kind.
    """
    from piano_metronome.processing.recording import AlignmentBugError, process_row

    name = row.relative_name
    try:
        result = process_row(row, sources, options)
    except AlignmentBugError as bug:
        checks.aligns.add(name, f"{bug.summary}: a bug in piano_metronome, not in the file; please report it")
        return
    report = result.report
    if not result.ok:
        check = _check_of_rejection(checks, RejectionKind(report.reason_kind))
        check.add(name, report.reason)
        return
    for kind, text in result.input_warnings:
        checks.oddities.add(name, f"{text} ({kind})", WARN)
    for kind, text in zip(report.warning_kinds, report.warnings, strict=True):
        if kind == WarningKind.BPM_LABEL_DISAGREES:
            checks.bpm.add(name, text, WARN)
        elif kind == WarningKind.KEY_LABEL_DISAGREES:
            checks.key.add(name, text, WARN)


def _check_of_rejection(checks: _RawChecks, kind: RejectionKind) -> Check:
    """The check a rejection of this kind fails."""
    by_kind = {
        RejectionKind.FILE_MISSING: checks.present, RejectionKind.PATH_OUTSIDE_RAW: checks.manifest,
        RejectionKind.SIZE_DIFFERS: checks.size, RejectionKind.SHA256_DIFFERS: checks.sha256,
        RejectionKind.FILE_UNREADABLE: checks.midi, RejectionKind.FILE_TOO_LARGE: checks.midi,
        RejectionKind.MIDI_UNUSABLE: checks.midi, RejectionKind.NOT_A_FILE: checks.present,
        RejectionKind.TAKE_TOO_LONG: checks.midi,
    }
    return by_kind.get(kind, checks.aligns)


def _check_unlisted(raw: Path, listed: set[tuple[str, str]], check: Check) -> None:
    """A recording on disk but in no manifest would silently never be built.

    Every name that looks like a recording counts (``.mid``, ``.MID``, ``.midi``, ``take.mid.``),
    and so does what stands under such a name without being a file (a FIFO, a dangling link):
    each is named with why it cannot be built as it is.
    """
    from piano_metronome.inputs.manifest import SkippedFile, printable, recording_files

    for folder in sorted(p for p in raw.iterdir() if p.is_dir() and not p.name.startswith(".")):
        skipped: list[SkippedFile] = []
        for path in recording_files(folder, skipped):
            if (folder.name, path.name) not in listed:
                check.add(f"{folder.name}/{printable(path.name)}", "not in any manifest: it is never built", WARN)
        for item in skipped:
            if (folder.name, item.path.split("/", 1)[1]) not in listed:
                check.add(item.path, f"not in any manifest: it is never built ({item.reason})", WARN)
