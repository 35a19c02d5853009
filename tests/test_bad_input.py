"""Bad input never stops a build: each bad file or manifest row gets its one-line reason, the rest builds.

One raw folder holds the four demo takes and every kind of bad input at once; it is built
once (``run_build``, config ``demo``) and each test looks for its case in the build report,
on the console and in the dataset.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pyarrow as pa
import pytest
import symusic
from rich.console import Console
from typer.testing import CliRunner

from piano_metronome.cli import app
from piano_metronome.commands.build import ConsoleProgress, print_summary
from piano_metronome.inputs.manifest import ManifestRow, parse_file_name, write_manifest
from piano_metronome.inputs.midi import MAX_EVENTS, RecordingError, parse_midi_bytes
from piano_metronome.kinds import RejectionKind, WarningKind
from piano_metronome.outputs.build import run_build
from piano_metronome.outputs.validate import validate_dataset
from piano_metronome.paths import PROJECT_ROOT
from piano_metronome.processing import recording
from piano_metronome.processing.align import AlignOptions

DEMO = PROJECT_ROOT / "raw_midi" / "demo"
GOOD = ("demo/da", "demo/db", "demo/dc", "demo/dd")


def take(name: str = "da_100_C.mid") -> symusic.Score:
    """A demo take, to be changed into a bad one."""
    return symusic.Score.from_midi((DEMO / name).read_bytes())


def without_tempo() -> bytes:
    """The take's notes (in ticks) with no tempo event: at the implied 120 qpm it is a 120 BPM take."""
    score = take()
    score.tempos.clear()
    return score.dumps_midi()


def with_tempo_change() -> bytes:
    """The take with the click speeding up from 100 to 110 qpm after 4 bars (notes follow it, in ticks)."""
    score = take()
    score.tempos.append(symusic.Tempo(4 * 4 * score.tpq, 110.0))
    return score.dumps_midi()


def with_meter_change() -> bytes:
    """The take with a 3/4 bar signature after 8 bars."""
    score = take()
    score.time_signatures.append(symusic.TimeSignature(8 * 4 * score.tpq, 3, 4))
    return score.dumps_midi()


def with_extra_notes(pitches: list[int], drum: bool = False, keep: bool = True) -> bytes:
    """The take plus notes at ``pitches`` (on a drum track if ``drum``); ``keep=False`` drops the piano."""
    score = take()
    track = symusic.Track("drums" if drum else "extra", 0, drum)
    for i, pitch in enumerate(pitches):
        track.notes.append(symusic.Note(i * score.tpq, score.tpq // 2, pitch, 90))
    if not keep:
        score.tracks.clear()
    score.tracks.append(track)
    return score.dumps_midi()


def no_notes() -> bytes:
    """A valid MIDI file with a tempo and nothing played."""
    score = symusic.Score(960)
    score.tempos.append(symusic.Tempo(0, 100.0))
    return score.dumps_midi()


def huge(notes: int = MAX_EVENTS) -> bytes:
    """One track of ``notes`` short notes, written directly (running status, 6 bytes a note)."""
    body = b"\x00\xff\x51\x03\x09\x27\xc0" + b"\x00\x90" + bytes([60, 64, 1, 60, 0, 0]) * notes + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body


@dataclass(frozen=True)
class Case:
    """A file put in the raw folder, and what the build must say about it."""

    file_name: str
    make: Callable[[], bytes]
    outcome: str  # "rejected" or "warning"
    reason: str
    kind: str = ""  # the RejectionKind or WarningKind stored beside the reason


CASES = {
    "not MIDI": Case("notmidi_100_C.mid", lambda: b"this is a text file, not MIDI\n", "rejected",
                     "not a MIDI file", RejectionKind.MIDI_UNUSABLE),
    "truncated": Case("trunc_100_C.mid", lambda: (DEMO / "da_100_C.mid").read_bytes()[:1000], "rejected",
                      "truncated: track 1 declares", RejectionKind.MIDI_UNUSABLE),
    "empty": Case("empty_100_C.mid", lambda: b"", "rejected", "empty file", RejectionKind.MIDI_UNUSABLE),
    "no notes": Case("silent_100_C.mid", no_notes, "rejected", "no notes", RejectionKind.MIDI_UNUSABLE),
    "all outside the keys": Case("organ_100_C.mid", lambda: with_extra_notes([12, 14, 115, 120], keep=False),
                                 "rejected", "no notes on the 88 piano keys (4 excluded)", RejectionKind.MIDI_UNUSABLE),
    "too many events": Case("huge_100_C.mid", huge, "rejected", "too many events (1,000,000 ≥ 1,000,000)",
                           RejectionKind.MIDI_UNUSABLE),
    "no tempo": Case("notempo_120_C.mid", without_tempo, "warning", "no tempo event", WarningKind.NO_TEMPO_EVENT),
    "several tempi": Case("tempi_100_C.mid", with_tempo_change, "warning", "1 tempo change(s), 100.00–110.00 qpm",
                          WarningKind.TEMPO_CHANGES),
    "several meters": Case("meters_100_C.mid", with_meter_change, "warning", "meter change(s): 1 ignored",
                           WarningKind.METER_CHANGES_IGNORED),
    "outside the keys": Case("range_100_C.mid", lambda: with_extra_notes([15, 115]), "warning",
                             "2 note(s) outside the 88 piano keys (MIDI 21–108) excluded", WarningKind.NOTES_EXCLUDED),
    "drum channel": Case("drums_100_C.mid", lambda: with_extra_notes([36, 38, 42], drum=True), "warning",
                         "3 note(s) on a drum channel (MIDI channel 10) excluded", WarningKind.NOTES_EXCLUDED),
    "odd file name": Case("my take é_90_G.mid", lambda: (DEMO / "dd_90_G.mid").read_bytes(), "ok", ""),
}


def row_for(path: Path, split: str = "train") -> ManifestRow:
    """A manifest row for a file in the raw folder, with its labels from its name."""
    from piano_metronome.inputs.manifest import sha256_file

    file_id, bpm, key = parse_file_name(path.name)
    return ManifestRow(f"demo/{file_id}", "demo", path.name, path.stat().st_size, sha256_file(path), bpm, key,
                       4, split, "")


#: Manifest lines written by hand, as a broken manifest would be (line numbers follow the good rows).
BROKEN_ROWS = {
    "missing file": ("demo/ghost,demo,ghost_100_C.mid,100,{zero},100,C,4,train,", "rejected", "file missing"),
    "repeated id": ("demo/da,demo,db_84_Am.mid,100,{zero},84,Am,2,train,", "manifest",
                    "recording id 'demo/da' repeats (first on line"),
    "escaping path": ("demo/evil,demo,../../../etc/passwd,100,{zero},100,C,4,train,", "manifest",
                      "demo/evil: manifest path escapes the raw folder"),
    "unreadable row": ("demo/bad,demo,bad_100_C.mid,big,{zero},100,C,4,train,", "manifest", "unreadable row"),
}


@dataclass(frozen=True)
class Built:
    """What one build of the bad raw folder produced."""

    out: Path
    report: dict
    console: str
    windows: pa.Table
    recordings: dict[str, dict]


def _read(path: Path) -> pa.Table:
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The demo takes plus every bad case, built once."""
    root = tmp_path_factory.mktemp("bad-input")
    folder = root / "raw" / "demo"
    shutil.copytree(DEMO, folder)
    for case in CASES.values():
        (folder / case.file_name).write_bytes(case.make())
    rows = [row_for(folder / c.file_name) for c in CASES.values()]
    demo_manifest = (folder / "manifest.csv").read_text(encoding="utf-8").splitlines()[1:]
    write_manifest(rows, folder / "manifest.csv")
    lines = (folder / "manifest.csv").read_text(encoding="utf-8").splitlines()
    lines += demo_manifest + [text.format(zero="0" * 64) for text, _, _ in BROKEN_ROWS.values()]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    buffer = StringIO()
    out = root / "dataset"
    err = Console(file=buffer, width=400)
    print_summary(run_build(root / "raw", out, ["demo"], None, AlignOptions(), progress=ConsoleProgress(err)), err)
    windows = pa.concat_tables(_read(p) for p in sorted((out / "data" / "demo").glob("*.arrow")))
    recordings = {r["recording_id"]: r for r in _read(next((out / "data" / "recordings").glob("*.arrow"))).to_pylist()}
    report = json.loads((out / "build_report.json").read_text(encoding="utf-8"))
    return Built(out, report, buffer.getvalue(), windows, recordings)


def _console_line(built: Built, start: str, *parts: str) -> str:
    """The console line starting with ``start`` that holds every part."""
    lines = [line for line in built.console.splitlines() if line.startswith(start) and all(p in line for p in parts)]
    assert lines, f"no console line {start!r} with {parts} in:\n{built.console}"
    return lines[0]


def test_every_excluded_kind_reaches_the_report(tmp_path: Path) -> None:
    """Drum notes and notes outside the keys in one file: both lines are warnings of the stored report."""
    from piano_metronome.processing.align import AlignOptions
    from piano_metronome.processing.recording import process_row

    score = take()
    for name, drum, pitches in (("drums", True, [36, 38]), ("extra", False, [15])):
        track = symusic.Track(name, 0, drum)
        for i, pitch in enumerate(pitches):
            track.notes.append(symusic.Note(i * score.tpq, score.tpq // 2, pitch, 90))
        score.tracks.append(track)
    path = tmp_path / "demo" / "both_100_C.mid"
    path.parent.mkdir()
    path.write_bytes(score.dumps_midi())
    result = process_row(row_for(path), [tmp_path], AlignOptions())
    assert result.ok and len(result.input_warnings) == 2
    for warning in result.input_warnings:
        assert warning.text in result.report.warnings
    assert result.report.warning_kinds.count(WarningKind.NOTES_EXCLUDED.value) == 2


@pytest.mark.parametrize("name", list(CASES))
def test_each_bad_file_gets_its_reason(built: Built, name: str) -> None:
    case = CASES[name]
    recording_id = f"demo/{parse_file_name(case.file_name)[0]}"
    row = built.recordings[recording_id]
    if case.outcome == "rejected":
        assert row["status"] == "rejected"
        reported = built.report["rejected"][recording_id]
        assert case.reason in reported["reason"] and reported["kind"] == case.kind
        assert case.reason in row["reason"] and row["reason_kind"] == case.kind
        _console_line(built, "rejected", f"({case.kind})", case.file_name, case.reason)
    else:
        assert row["status"] == "ok", row["reason"]
        assert row["windows"] > 0
        assert recording_id in built.windows["recording_id"].to_pylist()
    if case.outcome == "warning":
        assert any(case.reason in w["text"] and w["kind"] == case.kind
                   for w in built.report["input_warnings"][recording_id])
        assert case.kind in row["warning_kinds"]
        _console_line(built, "warning", f"({case.kind})", case.file_name, case.reason)


@pytest.mark.parametrize("name", list(BROKEN_ROWS))
def test_each_bad_manifest_row_gets_its_reason(built: Built, name: str) -> None:
    _, outcome, reason = BROKEN_ROWS[name]
    if outcome == "rejected":
        assert reason in built.report["rejected"]["demo/ghost"]["reason"]
        assert built.report["rejected"]["demo/ghost"]["kind"] == RejectionKind.FILE_MISSING
        assert built.recordings["demo/ghost"]["reason_kind"] == RejectionKind.FILE_MISSING
        _console_line(built, "rejected", "ghost_100_C.mid", reason)
    else:
        problems = [p for p in built.report["manifest_problems"] if reason in p]
        assert len(problems) == 1 and "manifest.csv line " in problems[0]
        _console_line(built, "manifest row skipped", reason)


def test_good_recordings_build_exactly_as_alone(built: Built, demo_dataset: Path) -> None:
    alone = pa.concat_tables(_read(p) for p in sorted((demo_dataset / "data" / "demo").glob("*.arrow")))
    alone = alone.sort_by("window_id")
    ids = built.windows["recording_id"].to_pylist()
    mine = built.windows.filter(pa.array([r in GOOD for r in ids])).sort_by("window_id")
    assert mine.equals(alone)
    assert built.recordings["demo/da"]["file_name"] == "da_100_C.mid"  # the first of the repeated id won


def test_the_dataset_with_bad_input_validates(built: Built) -> None:
    report = validate_dataset(built.out)
    assert report.ok, [(c.name, c.problems[:3]) for c in report.checks if c.status == "fail"]


def test_tempo_changes_are_followed(built: Built) -> None:
    steady, changing = built.recordings["demo/da"], built.recordings["demo/tempi"]
    assert changing["grid_source"].startswith("tempo_map")
    assert changing["notes_placed"] == steady["notes_placed"]
    assert abs(changing["mean_abs_offset"] - steady["mean_abs_offset"]) < 0.02
    assert built.recordings["demo/notempo"]["grid_source"].startswith("label_bpm")


def test_excluded_notes_are_counted(built: Built) -> None:
    for recording_id, reason, count in (("demo/range", "outside_piano_range", 2), ("demo/drums", "drum_channel", 3)):
        row = built.recordings[recording_id]
        assert json.loads(row["dropped_json"])[reason] == count
        assert row["notes_input"] == row["notes_placed"] + row["notes_dropped"]


def test_strict_build_exits_1_and_names_the_files(built: Built, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--config", "demo", "--raw", str(built.out.parent / "raw"),
                                      "--out", str(tmp_path / "out"), "--strict"])
    assert result.exit_code == 1
    assert "notmidi_100_C.mid" in result.output and (tmp_path / "out" / "README.md").is_file()


def test_many_events_are_refused_before_the_notes_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked by what runs, not by a clock: the count refuses the file before the slow part (our
    own event walk and the conversion of every note) is reached."""
    from piano_metronome.inputs import midi

    def never(*_: object) -> None:
        raise AssertionError("the notes of a refused file were read")

    monkeypatch.setattr(midi, "_scan_if_odd", never)
    monkeypatch.setattr(midi, "_performance_from_score", never)
    with pytest.raises(RecordingError, match="too many events"):
        parse_midi_bytes(huge(), "huge.mid")
    with pytest.raises(AssertionError, match="were read"):  # the patched steps are the path of a file
        parse_midi_bytes(huge(1000), "small.mid")           # under the limit, so the check above can fail


def test_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    shutil.copy(DEMO / "da_100_C.mid", folder)
    monkeypatch.setattr(recording, "MAX_FILE_BYTES", 1000)
    result = recording.process_row(row_for(folder / "da_100_C.mid"), [tmp_path], AlignOptions())
    assert not result.ok and result.report.reason.startswith("file too large (2,168 bytes > 1,000)")
    assert result.report.reason_kind == RejectionKind.FILE_TOO_LARGE
