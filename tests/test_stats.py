"""``piano-metronome stats``: numbers read from a built folder alone, checked against an independent count."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from piano_metronome.commands.stats import register
from piano_metronome.outputs.stats import folder_split_stats, folder_stats
from piano_metronome.outputs.stats_markdown import stats_markdown
from tests.conftest import command_app


def arrow(path: Path) -> pa.Table:
    """An Arrow stream shard, read with nothing but pyarrow."""
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_stream(source).read_all()


def recount(folder: Path) -> dict[tuple[str, str], dict]:
    """(config, split) → every number ``stats`` reports, counted here from the files directly.

    A config's subsets are the ones its own shards hold, so this does not lean on the builder.
    """
    recordings = arrow(next((folder / "data" / "recordings").glob("*.arrow"))).to_pylist()
    out = {}
    for config_dir in sorted(p for p in (folder / "data").iterdir() if p.name != "recordings"):
        shards = {p.name.split("-")[0]: arrow(p) for p in sorted(config_dir.glob("*.arrow"))}
        if any("midi" in t.column_names for t in shards.values()):
            continue  # whole takes: one row per recording, not windows
        subsets = {s for t in shards.values() for s in t["subset"].to_pylist()}
        for split, table in shards.items():
            ok = [r for r in recordings if r["subset"] in subsets and r["split"] == split and r["status"] == "ok"]
            dropped: Counter = Counter()
            for r in ok:
                dropped.update(json.loads(r["dropped_json"]))
            out[(config_dir.name, split)] = {
                "recordings": len(ok), "windows": table.num_rows,
                "notes": sum(len(steps) for steps in table["note_step"].to_pylist()),
                "hours": sum(r["duration_s"] for r in ok) / 3600, "dropped": dict(sorted(dropped.items())),
                "warnings": sum(len(r["warnings"]) for r in ok), "placed": sum(r["notes_placed"] for r in ok),
                "windows_in_reports": sum(r["windows"] for r in ok),
            }
    return out


def assert_stats_match(folder: Path) -> None:
    """What ``folder_split_stats`` says equals the independent count, the reports and build_report.json."""
    expected = recount(folder)
    got = {(s.config, s.split): s for s in folder_split_stats(folder)}
    assert set(got) == set(expected)
    report = json.loads((folder / "build_report.json").read_text(encoding="utf-8"))
    for key, e in expected.items():
        s = got[key]
        assert (s.recordings, s.windows, s.notes, s.dropped, s.warnings, s.rejected) == (
            e["recordings"], e["windows"], e["notes"], e["dropped"], e["warnings"], 0), key
        assert s.hours == pytest.approx(e["hours"], rel=1e-6)
        assert s.notes == e["placed"] and s.windows == e["windows_in_reports"], key  # shards agree with reports
        assert s.windows == report["configs"][key[0]][key[1]]["num_examples"], key


def test_demo_stats_match_the_files(demo_dataset: Path) -> None:
    """The demo build: per split counts from the folder equal an independent count."""
    assert_stats_match(demo_dataset)


@pytest.mark.corpus
def test_corpus_stats_match_the_files(corpus_build: Path) -> None:
    """The corpus build: every config and split, and ``all`` is the sum of ``d1`` and ``d2``."""
    assert_stats_match(corpus_build)
    got = {(s.config, s.split): s for s in folder_split_stats(corpus_build)}
    for split in ("train", "validation", "test"):
        for field in ("recordings", "windows", "notes", "warnings"):
            assert getattr(got[("all", split)], field) == (getattr(got[("d1", split)], field)
                                                          + getattr(got[("d2", split)], field))
    assert sum(got[("all", s)].recordings for s in ("train", "validation", "test")) == 361


@pytest.fixture()
def app() -> typer.Typer:
    """A typer app with just ``stats`` (and a no-op so it stays a named sub-command)."""
    return command_app(register)


def test_cli_formats(demo_dataset: Path, app: typer.Typer) -> None:
    """table, markdown and json print the same numbers; json round-trips."""
    runner = CliRunner()
    table = runner.invoke(app, ["stats", str(demo_dataset)])
    assert table.exit_code == 0, table.output
    for word in ("demo", "train", "validation", "test", "same_cell_collision"):
        assert word in table.output
    markdown = runner.invoke(app, ["stats", str(demo_dataset), "--format", "markdown"])
    assert markdown.exit_code == 0 and markdown.output.strip() == stats_markdown(folder_stats(demo_dataset)).strip()
    as_json = runner.invoke(app, ["stats", str(demo_dataset), "-f", "json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.output)
    assert data == json.loads(json.dumps(folder_stats(demo_dataset).as_json()))
    assert {(s["config"], s["split"]) for s in data["splits"]} == {("demo", s) for s in ("train", "validation", "test")}


def test_cli_errors(tmp_path: Path, demo_dataset: Path, app: typer.Typer) -> None:
    """A folder that is not a build, or a bad format, exits 2 with one line."""
    runner = CliRunner()
    for args in ([str(tmp_path)], [str(demo_dataset), "--format", "xml"]):
        result = runner.invoke(app, ["stats", *args])
        assert result.exit_code == 2 and "error:" in result.output, result.output
