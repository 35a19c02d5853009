"""``piano-metronome plot``: every figure is written, every axis says what it measures and in what unit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("matplotlib")

from piano_metronome.commands.plot import FIGURES, register  # noqa: E402
from piano_metronome.outputs import plots  # noqa: E402
from piano_metronome.outputs.layout import every_window, read_recordings  # noqa: E402
from tests.conftest import command_app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def app() -> typer.Typer:
    """A typer app with just ``plot`` (and a no-op so it stays a named sub-command)."""
    return command_app(register)


def assert_pngs(folder: Path, names: list[str]) -> None:
    """Each file is a real, non-trivial PNG."""
    for name in names:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 20_000, (name, len(data))


def labels(figure) -> str:
    """Every axis label and title of a figure, colour bars included, as one string."""
    parts = []
    for ax in figure.axes:
        parts += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
    return " | ".join(parts)


def test_plot_command_writes_every_figure(demo_dataset: Path, tmp_path: Path, app: typer.Typer) -> None:
    """The four overview PNGs and one piano roll per --window."""
    runner = CliRunner()
    out = tmp_path / "plots"
    result = runner.invoke(app, ["plot", str(demo_dataset), "--out", str(out), "--window", "demo/dd/003",
                                 "--window", "demo/db/000"])
    assert result.exit_code == 0, result.output
    assert_pngs(out, [*FIGURES, "pianoroll_demo_dd_003.png", "pianoroll_demo_db_000.png"])


def test_every_axis_has_a_labelled_unit(demo_dataset: Path) -> None:
    """Axes say what they show and in which unit; every panel with data has a y label."""
    windows, recordings = every_window(demo_dataset), read_recordings(demo_dataset)
    row = windows.slice(0, 1).to_pylist()[0]
    expected_units = {
        "offset_histogram": (plots.offset_histogram(windows), ("ms", "steps", "density")),
        "latency_plot": (plots.latency_plot(recordings), ("ms", "negative = early")),
        "velocity_by_position": (plots.velocity_by_position(windows),
                                 ("MIDI velocity", "notes", "position in the bar")),
        "grid_fit_plot": (plots.grid_fit_plot(recordings), ("concentration", "ms")),
        "piano_roll": (plots.piano_roll(row), ("beats", " s;", "MIDI velocity", "CC64", "pitch")),
    }
    for name, (figure, units) in expected_units.items():
        text = labels(figure)
        for unit in units:
            assert unit in text, (name, unit, text)
        for ax in figure.axes:
            assert ax.get_ylabel(), (name, ax)
        assert any(ax.get_xlabel() for ax in figure.axes), name


def test_offsets_in_ms() -> None:
    """Half a 16th at 120 BPM is 62.5 ms; a quarter of an 8th at 60 BPM is 125 ms."""
    table = pa.table({"note_step": [[0, 1], [3]], "note_offset": [[0.5, -0.25], [0.25]], "bpm": [120.0, 60.0],
                      "steps_per_beat": [4, 2]})
    np.testing.assert_allclose(plots.offsets_ms(table), [62.5, -31.25, 125.0])


def test_position_labels() -> None:
    """Counting syllables: 1 e & a for 16ths, 1 & for 8ths."""
    assert plots.position_labels(4, 2) == ["1", "e", "&", "a", "2", "e", "&", "a"]
    assert plots.position_labels(2, 4) == ["1", "&", "2", "&", "3", "&", "4", "&"]


def test_errors(demo_dataset: Path, tmp_path: Path, app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown window, a folder that is no build, or no matplotlib: exit 2 with one line."""
    runner = CliRunner()
    for args in ([str(demo_dataset), "--out", str(tmp_path / "a"), "--window", "demo/zz/000"],
                 [str(tmp_path / "nowhere"), "--out", str(tmp_path / "b")]):
        result = runner.invoke(app, ["plot", *args])
        assert result.exit_code == 2 and "error:" in result.output, result.output
    import piano_metronome.outputs

    for name in ("matplotlib", "matplotlib.figure"):  # as if the `plot` extra were not installed
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "piano_metronome.outputs.plots")
    monkeypatch.delattr(piano_metronome.outputs, "plots")
    result = runner.invoke(app, ["plot", str(demo_dataset), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "piano_metronome[plot]" in result.output, result.output


@pytest.mark.corpus
def test_corpus_plots(corpus_build: Path, tmp_path: Path, app: typer.Typer) -> None:
    """The corpus build: every figure, and piano rolls of a 16th and an 8th window."""
    runner = CliRunner()
    out = tmp_path / "plots"
    result = runner.invoke(app, ["plot", str(corpus_build), "--out", str(out), "-w", "d1/aa/003", "-w", "d2/iv/002"])
    assert result.exit_code == 0, result.output
    assert_pngs(out, [*FIGURES, "pianoroll_d1_aa_003.png", "pianoroll_d2_iv_002.png"])
