"""Your own recordings, end to end: manifest → align → build → validate → load_dataset, in a temp folder.

The takes are the demo generator's (so their truth is exact) written under a musician's own
subset names and ids, two on a 16th grid (``lessons``) and two on an 8th grid (``grooves``).
Everything runs through the real ``piano-metronome`` app, as a user would type it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from piano_metronome.cli import app
from piano_metronome.inputs.demo import TAKES, generate_take, truth, write_midi
from piano_metronome.inputs.manifest import read_manifest
from piano_metronome.paths import PROJECT_ROOT

COMMITTED = PROJECT_ROOT / "raw_midi" / "manifest.csv"
#: subset → (new take id, the demo take it is generated from); grids come from the demo specs.
PLAN = {"lessons": (("la", "da"), ("lb", "dd")), "grooves": (("ga", "db"), ("gb", "dc"))}
GRIDS = {"lessons": 4, "grooves": 2}


def cli(*args: str | Path):
    """``piano-metronome ARGS`` in process, stdout and stderr apart."""
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def mytakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """A folder of click-recorded takes ``<subset>/<id>_<bpm>_<key>.mid`` and each take's truth by id."""
    root = tmp_path_factory.mktemp("own") / "mytakes"
    specs = {spec.take_id: spec for spec in TAKES}
    truths = {}
    for subset, pairs in PLAN.items():
        for new_id, demo_id in pairs:
            spec = replace(specs[demo_id], take_id=new_id)
            take = generate_take(spec)
            write_midi(take, root / subset / spec.file_name)
            truths[f"{subset}/{new_id}"] = truth(take)
    return root, truths


def test_manifest_goes_beside_the_takes_with_their_grids(mytakes) -> None:
    root, truths = mytakes
    before = COMMITTED.read_bytes()
    (root.parent / "held_out.txt").write_text("grooves/gb\n")
    result = cli("manifest", root, "--steps-per-beat", "lessons=4", "--steps-per-beat", "grooves=2",
                 "--validation-list", root.parent / "held_out.txt")
    assert result.exit_code == 0, result.output
    rows = {r.recording_id: r for r in read_manifest(root / "manifest.csv")}
    assert set(rows) == set(truths)
    assert all(r.steps_per_beat == GRIDS[r.subset] and r.source_url == "" for r in rows.values())
    assert rows["grooves/gb"].split == "validation"
    assert COMMITTED.read_bytes() == before


def test_align_takes_the_grid_from_the_manifest_row(mytakes) -> None:
    root, _ = mytakes
    take = root / "grooves" / "ga_84_Am.mid"
    result = cli("align", take, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == f"grid: 2 steps per beat, from {root / 'manifest.csv'} (grooves/ga)\n"
    assert json.loads(result.stdout)["steps_per_beat"] == 2


def test_align_without_a_known_grid_says_how_to_give_it(mytakes, tmp_path: Path) -> None:
    root, _ = mytakes
    alone = tmp_path / "inbox" / "ga_84_Am.mid"
    alone.parent.mkdir()
    shutil.copyfile(root / "grooves" / "ga_84_Am.mid", alone)
    result = cli("align", alone)
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {alone}: grid unknown") and "--steps-per-beat N" in result.stderr
    given = cli("align", alone, "--steps-per-beat", "2", "--json")
    assert given.exit_code == 0, given.output
    assert json.loads(given.stdout)["steps_per_beat"] == 2


def test_build_validate_and_load(mytakes, tmp_path: Path) -> None:
    """The whole path of the README's "Your own recordings" section."""
    root, truths = mytakes
    if not (root / "manifest.csv").is_file():
        assert cli("manifest", root, "--steps-per-beat", "lessons=4", "--steps-per-beat", "grooves=2").exit_code == 0
    dataset = tmp_path / "mydataset"
    built = cli("build", "--raw", root, "--out", dataset, "--jobs", "1")
    assert built.exit_code == 0, built.output
    checked = cli("validate", dataset)
    assert checked.exit_code == 0, checked.output
    assert "all checks passed" in checked.stdout

    from datasets import load_dataset

    for subset, grid in GRIDS.items():
        windows = [row for split in load_dataset(str(dataset), subset).values() for row in split]
        ids = {row["recording_id"] for row in windows}
        assert ids == {rid for rid in truths if rid.startswith(subset + "/")}
        assert {row["steps_per_beat"] for row in windows} == {grid}
        for rid in ids:
            placed = sum(len(row["note_step"]) for row in windows if row["recording_id"] == rid)
            assert 0.9 * len(truths[rid]["notes"]) <= placed <= len(truths[rid]["notes"]), rid
