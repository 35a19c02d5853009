"""``rebuild``: a fresh build rebuilds byte-identical; an edited recording is named in the difference."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import symusic
from typer.testing import CliRunner

from piano_metronome.cli import app
from piano_metronome.inputs.manifest import read_manifest, sha256_file, write_manifest
from piano_metronome.outputs.rebuild import DIFFERS, IDENTICAL, RebuildReport, rebuild
from piano_metronome.paths import PROJECT_ROOT

DEMO = PROJECT_ROOT / "raw_midi" / "demo"
EDITED = "dc_95_F.mid"  # the demo's validation take
SHARD = "data/demo/validation-00000-of-00001.arrow"
RECORDINGS = "data/recordings/recordings-00000-of-00001.arrow"


def raw_copy(tmp_path: Path) -> Path:
    """A raw folder with a copy of the demo takes."""
    raw = tmp_path / "raw"
    shutil.copytree(DEMO, raw / "demo")
    return raw


def louder_note(path: Path, index: int) -> tuple[int, int]:
    """Raise one note's velocity in place; returns (its onset tick, the new velocity)."""
    score = symusic.Score.from_midi(path.read_bytes())
    note = score.tracks[0].notes[index]
    note.velocity = min(note.velocity + 9, 127)
    path.write_bytes(score.dumps_midi())
    return note.time, note.velocity


def by_path(report: RebuildReport) -> dict[str, tuple[str, list[str]]]:
    """File → (status, details)."""
    return {f.path: (f.status, f.details) for f in report.files}


def test_fresh_build_rebuilds_identical(demo_dataset: Path) -> None:
    result = CliRunner().invoke(app, ["rebuild", str(demo_dataset), "--raw", str(PROJECT_ROOT / "raw_midi"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["identical"] and data["configs"] == ["demo", "demo_takes"]
    assert {f["status"] for f in data["files"]} == {IDENTICAL}
    assert {f["path"] for f in data["files"]} >= {"README.md", "build_report.json", "checksums.sha256", SHARD}


def test_edited_recording_is_named(tmp_path: Path, demo_dataset: Path) -> None:
    raw = raw_copy(tmp_path)
    louder_note(raw / "demo" / EDITED, 40)
    path = raw / "demo" / EDITED
    rows = [r if r.file_name != EDITED else replace(r, size=path.stat().st_size, sha256=sha256_file(path))
            for r in read_manifest(raw / "demo" / "manifest.csv")]
    write_manifest(rows, raw / "demo" / "manifest.csv")  # a contributor re-recorded the take
    report = rebuild(demo_dataset, raw, None)
    assert not report.identical
    files = by_path(report)
    status, details = files[SHARD]
    assert status == DIFFERS
    changed = [line for line in details if line.startswith("window_id demo/dc/")]
    assert len(changed) == 1 and changed[0].endswith(": note_velocity differ"), details
    assert any(line.startswith("1 changed window(s) in 1 recording(s): demo/dc (1)") for line in details)
    assert files[RECORDINGS][0] == DIFFERS
    assert "recording_id demo/dc: sha256 differ" in files[RECORDINGS][1]
    unchanged = [p for p, (s, _) in files.items() if s == IDENTICAL]
    assert "data/demo/train-00000-of-00001.arrow" in unchanged and "build_report.json" in unchanged


def test_recording_edited_behind_the_manifest(tmp_path: Path, demo_dataset: Path) -> None:
    raw = raw_copy(tmp_path)
    louder_note(raw / "demo" / EDITED, 40)
    result = CliRunner().invoke(app, ["rebuild", str(demo_dataset), "--raw", str(raw)])
    assert result.exit_code == 1
    report = rebuild(demo_dataset, raw, None)
    files = by_path(report)
    assert any(line.startswith("2 row(s) only in the dataset: demo/dc/000, demo/dc/001")
               for line in files[SHARD][1]), files[SHARD]
    report_lines = files["build_report.json"][1]
    assert 'rejected.demo/dc.kind: (absent) → "sha256_differs"' in report_lines, report_lines
    assert any(line.startswith('rejected.demo/dc.reason: (absent) → "sha256') for line in report_lines), report_lines


def test_not_a_built_dataset(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    result = CliRunner().invoke(app, ["rebuild", str(tmp_path / "ds")])
    assert result.exit_code == 2
    assert "build_report.json" in result.output


def test_missing_recording_is_named_with_a_hint(tmp_path: Path, demo_dataset: Path) -> None:
    raw = raw_copy(tmp_path)
    (raw / "demo" / EDITED).unlink()
    report = rebuild(demo_dataset, raw, None)
    assert report.notes == [f"1 recording(s) were not found (e.g. demo/{EDITED}): bring them with "
                            "`piano-metronome fetch`, or pass --raw / --corpus"]
    assert by_path(report)[SHARD][0] == DIFFERS
