"""``validate``: passes on a fresh build, and fails naming the place after each kind of damage."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from piano_metronome.cli import app
from piano_metronome.outputs.build import write_checksums
from piano_metronome.outputs.check_report import FAIL, Report
from piano_metronome.outputs.invariants import window_invariants
from piano_metronome.outputs.validate import validate_dataset
from piano_metronome.outputs.validate_raw import validate_raw
from piano_metronome.paths import PROJECT_ROOT

TRAIN = "data/demo/train-00000-of-00001.arrow"
TEST = "data/demo/test-00000-of-00001.arrow"
VALIDATION = "data/demo/validation-00000-of-00001.arrow"
RECORDINGS = "data/recordings/recordings-00000-of-00001.arrow"


def copy_of(dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the session's demo build, safe to damage."""
    return Path(shutil.copytree(dataset, tmp_path / "dataset"))


def read(path: Path) -> pa.Table:
    """A shard as written (schema with its features metadata)."""
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def write(path: Path, table: pa.Table) -> None:
    """Rewrite a shard the way ``datasets`` writes it: one Arrow IPC stream."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def failures(report: Report) -> dict[str, list[str]]:
    """Check name → ``where: what`` of each failing problem."""
    found: dict[str, list[str]] = {}
    for check in report.checks:
        for problem in check.problems:
            if problem.status == FAIL:
                found.setdefault(check.name, []).append(f"{problem.where}: {problem.what}")
    return found


def cli(*args: str | Path):
    """Run ``piano-metronome ARGS`` in process."""
    return CliRunner().invoke(app, [str(a) for a in args])


# --- a fresh build --------------------------------------------------------------------------------

def test_fresh_build_passes(demo_dataset: Path) -> None:
    report = validate_dataset(demo_dataset)
    assert report.ok, failures(report)
    assert {c.name for c in report.checks} >= {"checksums", "card", "shards", "schema", "counts", "invariants",
                                                 "window ids", "splits", "accounting"}
    result = cli("validate", demo_dataset, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["exit_code"] == 0
    assert all(c["status"] == "pass" for c in data["checks"])


def test_table_output_and_unreadable_folder(tmp_path: Path, demo_dataset: Path) -> None:
    result = cli("validate", demo_dataset)
    assert result.exit_code == 0
    assert "all checks passed" in result.output
    assert cli("validate", tmp_path / "nowhere").exit_code == 2
    (tmp_path / "empty").mkdir()
    missing_card = cli("validate", tmp_path / "empty", "--json")
    assert missing_card.exit_code == 2
    assert "README.md" in json.loads(missing_card.stdout)["unreadable"]


# --- each kind of damage is found, and named -------------------------------------------------------

def test_flipped_byte_in_a_shard(tmp_path: Path, demo_dataset: Path) -> None:
    root = copy_of(demo_dataset, tmp_path)
    shard = root / TRAIN
    data = bytearray(shard.read_bytes())
    data[len(data) * 2 // 3] ^= 0x01
    shard.write_bytes(bytes(data))
    report = validate_dataset(root)
    assert report.exit_code == 1
    assert any(TRAIN in line and "sha256 differs" in line for line in failures(report)["checksums"])
    result = cli("validate", root)
    assert result.exit_code == 1
    assert "FAILED" in result.output and "checksums" in result.output


def test_deleted_shard(tmp_path: Path, demo_dataset: Path) -> None:
    root = copy_of(demo_dataset, tmp_path)
    (root / VALIDATION).unlink()
    found = failures(validate_dataset(root))
    assert any(VALIDATION in line and "missing" in line for line in found["checksums"])
    assert any(line.startswith("demo/validation") for line in found["shards"])
    assert any("demo/validation" in line and "num_examples 2" in line for line in found["counts"])


@pytest.mark.parametrize("how", ["split column rewritten", "row moved to another shard"])
def test_window_moved_to_another_split(tmp_path: Path, demo_dataset: Path, how: str) -> None:
    root = copy_of(demo_dataset, tmp_path)
    train = read(root / TRAIN)
    moved = train["window_id"][0].as_py()
    if how == "split column rewritten":
        first = pa.array(np.arange(train.num_rows) == 0)
        split = pc.if_else(first, "test", train["split"])
        write(root / TRAIN, train.set_column(train.schema.get_field_index("split"), train.schema.field("split"),
                                             split))
        shard = TRAIN
    else:
        write(root / TEST, pa.concat_tables([read(root / TEST), train.slice(0, 1)]))
        write(root / TRAIN, train.slice(1))
        shard = TEST
    write_checksums(root)  # so the content checks, not the checksums, must find it
    report = validate_dataset(root)
    assert report.exit_code == 1
    found = failures(report)
    assert any(line.startswith(f"{shard} window {moved}") for line in found["splits"]), found
    if how == "row moved to another shard":
        recording = moved.rsplit("/", 1)[0]
        assert any(f"recording {recording}" in line and "2 splits" in line for line in found["splits"])
        assert any("demo/train" in line for line in found["counts"])


def test_count_edited_in_the_yaml(tmp_path: Path, demo_dataset: Path) -> None:
    root = copy_of(demo_dataset, tmp_path)
    card = root / "README.md"
    pattern = re.compile(r"(- name: train\n\s+num_bytes: \d+\n\s+num_examples: )(\d+)")
    text, edits = pattern.subn(lambda m: m[1] + str(int(m[2]) + 1), card.read_text(encoding="utf-8"), count=1)
    assert edits == 1
    card.write_text(text, encoding="utf-8")
    assert any(line.startswith("README.md") for line in failures(validate_dataset(root))["checksums"])
    write_checksums(root)
    found = failures(validate_dataset(root))
    assert list(found) == ["counts"]
    assert "dataset_info demo/train" in found["counts"][0] and "num_examples 7" in found["counts"][0]


def test_bad_note_is_named_by_window(tmp_path: Path, demo_dataset: Path) -> None:
    root = copy_of(demo_dataset, tmp_path)
    rows = read(root / TEST).to_pylist()
    rows[1]["note_velocity"][0] = 0
    write(root / TEST, pa.Table.from_pylist(rows, schema=read(root / TEST).schema))
    write_checksums(root)
    found = failures(validate_dataset(root))
    assert list(found) == ["invariants", "takes"]  # the window no longer holds its take's note either
    assert found["invariants"][0].startswith(f"{TEST} window {rows[1]['window_id']}: note_velocity outside")
    assert found["takes"] == [f"data/demo_takes/test-00000-of-00001.arrow {rows[1]['recording_id']}: its notes "
                              "differ from those of its windows in demo"]


def test_accounting_against_the_windows(tmp_path: Path, demo_dataset: Path) -> None:
    root = copy_of(demo_dataset, tmp_path)
    rows = read(root / RECORDINGS).to_pylist()
    rows[0]["notes_placed"] += 1
    rows[0]["notes_input"] += 1
    rows[1]["notes_dropped"] += 1
    write(root / RECORDINGS, pa.Table.from_pylist(rows, schema=read(root / RECORDINGS).schema))
    write_checksums(root)
    found = failures(validate_dataset(root))
    assert list(found) == ["accounting"]
    first, second = rows[0]["recording_id"], rows[1]["recording_id"]
    assert any(line.startswith(f"demo recording {first}") and "notes placed" in line for line in found["accounting"])
    assert any(line.startswith(f"recording {second}") and "notes_input" in line for line in found["accounting"])


def test_kinds_out_of_their_enums_or_out_of_step(tmp_path: Path, demo_dataset: Path) -> None:
    root = copy_of(demo_dataset, tmp_path)
    rows = read(root / RECORDINGS).to_pylist()
    rows[0]["warning_kinds"] = [*rows[0]["warning_kinds"], "made_up_kind"]
    rows[1]["reason_kind"] = "file_missing"  # an accepted recording with a rejection kind
    write(root / RECORDINGS, pa.Table.from_pylist(rows, schema=read(root / RECORDINGS).schema))
    write_checksums(root)
    found = failures(validate_dataset(root))
    assert list(found) == ["accounting"]
    first, second = rows[0]["recording_id"], rows[1]["recording_id"]
    assert f"recording {first}: warning_kinds: 'made_up_kind' is not a WarningKind" in found["accounting"]
    assert any(line.startswith(f"recording {first}") and "warning_kinds" in line and "warnings but" in line
               for line in found["accounting"])
    assert any(line.startswith(f"recording {second}: reason_kind 'file_missing' does not match status 'ok'")
               for line in found["accounting"])


def test_changed_schema_metadata(tmp_path: Path, demo_dataset: Path) -> None:
    root = copy_of(demo_dataset, tmp_path)
    table = read(root / TRAIN)
    write(root / TRAIN, table.replace_schema_metadata({}))
    write_checksums(root)
    found = failures(validate_dataset(root))
    assert found == {"schema": [f"{TRAIN}: embedded features metadata differs from the schema's"]}


# --- the invariants, one at a time -----------------------------------------------------------------

def _alone_and_shared(row: dict) -> tuple[int, int]:
    """Index of a note alone on its step and of one sharing its step with another note."""
    steps = row["note_step"]
    alone = next(i for i, s in enumerate(steps) if steps.count(s) == 1)
    shared = next(i for i, s in enumerate(steps) if steps.count(s) > 1)
    return alone, shared


def _set(column: str, value_of: Callable[[dict], object]) -> Callable[[dict], None]:
    """A mutation setting ``column`` of a row to ``value_of(row)``."""
    return lambda row: row.__setitem__(column, value_of(row))


def _set_note(column: str, index_of: Callable[[dict], int], value: object) -> Callable[[dict], None]:
    """A mutation setting one note's value in a list column."""
    def mutate(row: dict) -> None:
        row[column][index_of(row)] = value
    return mutate


def _swap_first_last(row: dict) -> None:
    for name in ("note_step", "note_key", "note_offset", "note_velocity", "note_duration"):
        row[name][0], row[name][-1] = row[name][-1], row[name][0]


def _duplicate_first(row: dict) -> None:
    row["note_step"][1], row["note_key"][1] = row["note_step"][0], row["note_key"][0]


def _empty(row: dict) -> None:
    for name in ("note_step", "note_key", "note_offset", "note_velocity", "note_duration"):
        row[name] = []


OFFSET = "note_offset outside [−0.5, 0.5)"
MUTATIONS = [  # (id, the message window_invariants must give, the mutation of one window)
    ("lone offset", OFFSET, _set_note("note_offset", lambda r: _alone_and_shared(r)[0], 0.55)),
    ("chord offset", OFFSET, _set_note("note_offset", lambda r: _alone_and_shared(r)[1], -0.71)),
    ("unsorted", "notes not sorted", _swap_first_last),
    ("cell", "two notes in one (step, key) cell", _duplicate_first),
    ("step", "note_step outside 0…num_steps−1", _set_note("note_step", lambda r: -1, 64)),
    ("key", "note_key outside 0…87", _set_note("note_key", lambda r: -1, 88)),
    ("velocity", "note_velocity outside 1…127", _set_note("note_velocity", lambda r: 0, 0)),
    ("duration", "note_duration not > 0", _set_note("note_duration", lambda r: 0, 0.0)),
    ("lengths", "note_velocity has another length", _set("note_velocity", lambda r: r["note_velocity"][:-1])),
    ("empty", "window holds no note", _empty),
    ("pedal length", "pedal does not have num_steps values", _set("pedal", lambda r: r["pedal"][:-1])),
    ("pedal value", "pedal value outside 0…127", _set_note("pedal", lambda r: 0, 128)),
    ("valid steps", "valid_steps outside 1…num_steps", _set("valid_steps", lambda r: r["num_steps"] + 1)),
    ("tempo", "tempo_norm ≠ bpm/100 − 1", _set("tempo_norm", lambda r: r["tempo_norm"] + 0.01)),
    ("key label", "key_label outside", _set("key_label", lambda r: 24)),
    ("signature", "key_signature is not the signature of key_label",
     _set("key_signature", lambda r: (r["key_signature"] + 1) % 12)),
    ("confidence", "key_confidence outside [0, 1]", _set("key_confidence", lambda r: 1.5)),
    ("window id", "window_id is not <recording_id>/<window_index:03d>",
     _set("window_index", lambda r: r["window_index"] + 1)),
    ("subset", "recording_id does not start with <subset>/", _set("subset", lambda r: "d9")),
]


@pytest.fixture(scope="module")
def windows(demo_dataset: Path) -> pa.Table:
    """The demo's train windows."""
    return read(demo_dataset / TRAIN)


def test_clean_windows_break_no_invariant(windows: pa.Table) -> None:
    assert window_invariants(windows) == {}


@pytest.mark.parametrize("message, mutate", [pytest.param(m, f, id=i) for i, m, f in MUTATIONS])
def test_each_invariant_flags_exactly_the_broken_window(windows: pa.Table, message: str,
                                                        mutate: Callable[[dict], None]) -> None:
    rows = windows.to_pylist()
    mutate(rows[2])
    flagged = window_invariants(pa.Table.from_pylist(rows, schema=windows.schema))
    hits = [m for m in flagged if m.startswith(message)]
    assert hits, flagged
    assert np.flatnonzero(flagged[hits[0]]).tolist() == [2]


def test_chord_member_may_pass_half_a_step(windows: pa.Table) -> None:
    rows = windows.to_pylist()
    _set_note("note_offset", lambda r: _alone_and_shared(r)[1], 0.65)(rows[0])
    assert window_invariants(pa.Table.from_pylist(rows, schema=windows.schema)) == {}


# --- raw recordings against the manifest ----------------------------------------------------------

@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A raw folder holding only the demo takes and their manifest."""
    raw = tmp_path / "raw"
    shutil.copytree(PROJECT_ROOT / "raw_midi" / "demo", raw / "demo")
    return raw


def test_raw_demo_passes_with_label_warnings(raw_copy: Path) -> None:
    result = cli("validate", "--raw", raw_copy, "--json")
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["files present"]["summary"] == "4 of 4 present"
    assert checks["bpm label"]["status"] == "warn"  # dc is labelled 95 BPM but played at 100
    assert checks["bpm label"]["problems"][0]["where"] == "demo/dc_95_F.mid"


def test_raw_damage_is_named(raw_copy: Path) -> None:
    take = raw_copy / "demo" / "da_100_C.mid"
    data = bytearray(take.read_bytes())
    data[-40] ^= 0x01
    take.write_bytes(bytes(data))
    (raw_copy / "demo" / "db_84_Am.mid").unlink()
    shutil.copy(raw_copy / "demo" / "dd_90_G.mid", raw_copy / "demo" / "zz_90_G.mid")
    manifest = raw_copy / "demo" / "manifest.csv"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    manifest.write_text("\n".join([*lines, lines[-1]]) + "\n", encoding="utf-8")  # repeats dd's row
    report = validate_raw(raw_copy, [raw_copy])
    assert report.exit_code == 1
    found = failures(report)
    assert found["sha256"] == [f"demo/da_100_C.mid: {report.checks[3].problems[0].what}"]
    assert found["files present"][0].startswith("demo/db_84_Am.mid: file missing")
    assert found["manifest"][0].startswith("demo/manifest.csv line 6: recording id 'demo/dd' repeats")
    unlisted = next(c for c in report.checks if c.name == "unlisted files")
    assert [p.where for p in unlisted.problems] == ["demo/zz_90_G.mid"] and unlisted.status == "warn"
    assert cli("validate", "--raw", raw_copy / "nothing").exit_code == 2


@pytest.mark.corpus
def test_raw_corpus_matches_the_committed_manifest(corpus: Path) -> None:
    report = validate_raw(PROJECT_ROOT / "raw_midi", [PROJECT_ROOT / "raw_midi", corpus])
    assert report.ok, failures(report)
    present = next(c for c in report.checks if c.name == "files present")
    assert present.summary == "365 of 365 present"
