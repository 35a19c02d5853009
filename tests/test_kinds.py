"""Kinds, not prose: every finding carries a kind declared once, and counts never read the wording.

And bugs are not bad input: a broken invariant or an unexpected exception while aligning a
file raises :class:`AlignmentBugError` naming the file, instead of passing for a rejected row.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from piano_metronome.inputs.manifest import ManifestRow, read_manifest
from piano_metronome.kinds import WARNING_LABELS, ConflictKind, DropReason, Kind, RejectionKind, WarningKind
from piano_metronome.outputs import stats
from piano_metronome.outputs.rebuild import missing_note
from piano_metronome.outputs.schema import RECORDING_COLUMNS
from piano_metronome.outputs.tables import recording_row, recordings_table
from piano_metronome.paths import PROJECT_ROOT
from piano_metronome.processing import align as align_module
from piano_metronome.processing import recording
from piano_metronome.processing.align import AlignmentReport, AlignOptions

DEMO = PROJECT_ROOT / "raw_midi" / "demo"
PACKAGE = PROJECT_ROOT / "piano_metronome"


def demo_rows():
    """The demo takes' manifest rows."""
    return read_manifest(DEMO / "manifest.csv")


def test_every_kind_value_is_declared_once() -> None:
    values = [k.value for enum in (WarningKind, ConflictKind, RejectionKind, DropReason) for k in enum]
    assert len(values) == len(set(values))  # no value means two things
    assert set(WARNING_LABELS) == set(WarningKind)
    assert str(WarningKind.BAR_LINE_MOVED) == "bar_line_moved"  # stored as its value on every Python


def _kind_classes(tree: ast.Module) -> list[str]:
    """Names of classes deriving from ``Kind`` (or an Enum) defined in a module."""
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any(getattr(base, "id", "") in ("Kind", "Enum", "StrEnum") for base in node.bases)]


def test_kinds_are_declared_in_one_module_only() -> None:
    elsewhere = {str(path.relative_to(PACKAGE)): _kind_classes(ast.parse(path.read_text(encoding="utf-8")))
                 for path in PACKAGE.rglob("*.py") if path.name != "kinds.py"}
    assert not {p: names for p, names in elsewhere.items() if names}


def test_findings_are_only_added_with_their_kind() -> None:
    """No code outside AlignmentReport appends to the text lists directly (a text without a kind)."""
    for path in [*(PACKAGE / "processing").glob("*.py"), *(PACKAGE / "outputs").glob("*.py")]:
        source = path.read_text(encoding="utf-8")
        for needle in ("warnings.append(", "conflicts.append(", "warnings.extend(", "conflicts.extend("):
            allowed = 1 if path.name == "align.py" and needle.endswith("append(") else 0
            assert source.count(needle) == allowed, f"{path.name}: {needle}"


def test_out_of_step_findings_fail_loudly() -> None:
    report = AlignmentReport("demo/x", "demo", "train", "x.mid")
    report.warn(WarningKind.BAR_LINE_MOVED, "moved")
    report.check_findings()
    report.warnings.append("a warning without a kind")
    with pytest.raises(AssertionError, match="out of step"):
        recording_row(report, "x.mid", "0" * 64)
    with pytest.raises(ValueError):
        report.warn("not a kind", "text")  # type: ignore[arg-type]


def test_every_demo_finding_has_a_known_kind() -> None:
    for row in demo_rows():
        result = recording.process_row(row, [DEMO.parent], AlignOptions())
        report = result.report
        report.check_findings()
        assert all(WarningKind(k) for k in [*report.warning_kinds, *(w.kind for w in result.input_warnings)])
        assert all(ConflictKind(k) for k in report.conflict_kinds)
        assert all(DropReason(k) for k in report.dropped)


def _table(warnings: list[tuple[WarningKind, str]], conflicts: list[tuple[ConflictKind, float, str]]) -> pa.Table:
    """A one-recording table whose findings have the given kinds and (any) wording."""
    report = AlignmentReport("d1/x", "d1", "train", "x.mid", grid_source="tempo_map", bpm_used=100.0)
    for kind, text in warnings:
        report.warn(kind, text)
    for conflict_kind, bpm, text in conflicts:
        report.conflict(conflict_kind, bpm, text)
    return recordings_table([recording_row(report, "x.mid", "0" * 64)])


def test_counts_come_from_kinds_not_wording() -> None:
    worded = _table([(WarningKind.KEY_LABEL_DISAGREES, "key label C (signature 0) disagrees with the notes"),
                     (WarningKind.BAR_LINE_MOVED, "grid shifted by 2 sub-beat(s)")],
                    [(ConflictKind.LABEL_BPM, 95.0, "label_bpm says 95.00 BPM (score 0.1) but …")])
    reworded = _table([(WarningKind.KEY_LABEL_DISAGREES, "the notes say another key"),
                       (WarningKind.BAR_LINE_MOVED, "beats were on the 'and'")],
                      [(ConflictKind.LABEL_BPM, 95.0, "the typed tempo is wrong")])
    for table in (worded, reworded):
        assert stats.warning_kinds(table) == {WarningKind.KEY_LABEL_DISAGREES.label: {"d1": 1},
                                              WarningKind.BAR_LINE_MOVED.label: {"d1": 1}}
        (alignment,) = stats.subset_alignment(table)
        assert (alignment.key_disagreements, alignment.grid_conflicts) == (1, 1)
        (group,) = stats.conflict_groups(table)
        assert group.contradicted == "label_bpm 95"


def test_recordings_table_declares_every_kind_column() -> None:
    names = [c.name for c in RECORDING_COLUMNS]
    for text, kind in (("reason", "reason_kind"), ("conflicts", "conflict_kinds"), ("warnings", "warning_kinds")):
        assert names.index(kind) > names.index(text)
    docs = {c.name: c.doc for c in RECORDING_COLUMNS}
    assert all(k.value in docs["warning_kinds"] for k in WarningKind)
    assert all(k.value in docs["reason_kind"] for k in RejectionKind)


def test_rebuild_names_missing_files_by_kind_not_wording() -> None:
    report = AlignmentReport("d1/x", "d1", "train", "d1/x.mid")
    report.reject(RejectionKind.FILE_MISSING, "the file went for a walk")
    row = ManifestRow("d1/x", "d1", "x_100_C.mid", 1, "0" * 64, "100", "C", 4, "train", "")
    summary = SimpleNamespace(rejected=[recording.RecordingResult(row, None, report)])
    assert "1 recording(s) were not found (e.g. d1/x_100_C.mid)" in missing_note(summary)[0]
    report.reason_kind = RejectionKind.SHA256_DIFFERS.value
    assert missing_note(summary) == []


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A raw folder holding the demo takes (tests may break its alignment without touching the project)."""
    shutil.copytree(DEMO, tmp_path / "demo")
    return tmp_path


def test_broken_accounting_is_a_bug_naming_the_file(demo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    row = demo_rows()[0]

    def broken_accounting(report: AlignmentReport, path: str) -> None:
        raise AssertionError(f"{path}: accounting broken: 1 input ≠ 0 placed + 0 dropped")

    monkeypatch.setattr(align_module, "_check_accounting", broken_accounting)
    with pytest.raises(recording.AlignmentBugError) as caught:
        recording.process_row(row, [demo_copy], AlignOptions())
    bug = caught.value
    assert bug.row == row and bug.path.endswith(f"demo/{row.file_name}") and row.file_name in str(bug)
    assert isinstance(bug.__cause__, AssertionError) and "accounting broken" in str(bug)


def test_unexpected_exception_is_a_bug_and_can_be_recorded_when_skipped(
        demo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    row = demo_rows()[1]

    def explode(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(recording, "align", explode)
    with pytest.raises(recording.AlignmentBugError, match="ZeroDivisionError: float division by zero") as caught:
        recording.process_row(row, [demo_copy], AlignOptions())
    skipped = recording.broken(caught.value)
    assert not skipped.ok and skipped.report.reason_kind == RejectionKind.INTERNAL_ERROR
    assert skipped.report.reason.startswith("internal error while aligning (ZeroDivisionError")
    skipped.report.check_findings()


def test_bad_input_is_still_a_rejection_with_its_kind(demo_copy: Path) -> None:
    rows = demo_rows()
    (demo_copy / "demo" / rows[0].file_name).write_bytes(b"not midi")
    (demo_copy / "demo" / rows[1].file_name).unlink()
    results = [recording.process_row(r, [demo_copy], AlignOptions()) for r in rows[:2]]
    assert [r.report.reason_kind for r in results] == [RejectionKind.SIZE_DIFFERS, RejectionKind.FILE_MISSING]


def test_kind_enum_base_is_shared() -> None:
    assert all(issubclass(enum, Kind) for enum in (WarningKind, ConflictKind, RejectionKind, DropReason))


def test_build_fails_naming_the_file_on_a_bug(demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken invariant fails the whole build (non-zero exit, nothing written), the file named."""
    from typer.testing import CliRunner

    from piano_metronome.cli import app

    broken_file = demo_rows()[2].file_name

    def broken_accounting(report: AlignmentReport, path: str) -> None:
        if path.endswith(broken_file):
            raise AssertionError(f"{path}: accounting broken")

    monkeypatch.setattr(align_module, "_check_accounting", broken_accounting)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--config", "demo", "--raw", str(demo_copy), "--out", str(out),
                                      "--jobs", "1", "--name", ""])
    assert result.exit_code == 3  # the documented code of a bug
    assert broken_file in result.output + str(result.exception)
    assert not out.exists()
