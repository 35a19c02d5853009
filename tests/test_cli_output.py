"""What the CLI prints: help that shows its literal text, no ``<bool>`` beside flags, results on stdout.

Help is checked on the real ``piano-metronome`` app (its markup mode is part of what is tested),
walking every command and sub-command, so a new command is covered without editing this file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from piano_metronome.cli import app
from piano_metronome.paths import PROJECT_ROOT


def commands(command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every leaf command under ``command`` with the words that reach it, e.g. (("baseline", "train"), cmd).

    Duck-typed (``.commands``): typer ships its own copy of click, so ``click.Group`` would not match.
    """
    if hasattr(command, "commands"):
        found = []
        for name, sub in sorted(command.commands.items()):
            found += commands(sub, (*path, name))
        return found
    return [(path, command)]


ROOT = typer.main.get_command(app)
COMMANDS = commands(ROOT)
IDS = [" ".join(path) for path, _ in COMMANDS]


def flat(text: str) -> str:
    """Text with the help formatter's wrapping undone: a hyphen at a line end joins, whitespace collapses."""
    return " ".join(re.sub(r"-\n\s*", "-", text).split())


def help_of(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_walked() -> None:
    assert {"manifest", "align", "plot", "validate", "fetch", "demo", "render"} <= {p[0] for p, _ in COMMANDS}
    assert any(p[0] == "baseline" and len(p) == 2 for p, _ in COMMANDS)


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_help_shows_every_option_text_literally(path: tuple[str, ...], command) -> None:
    """Each option's help, brackets and braces included, appears as written (no markup eaten)."""
    shown = flat(help_of(path))
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            assert flat(text) in shown, (param.name, text)


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_no_flag_shows_a_type(path: tuple[str, ...], command) -> None:
    """A flag takes no value, so its help line must not show ``<bool>`` (or any metavar)."""
    text = help_of(path)
    assert "<bool>" not in text
    for param in command.params:
        if param.param_type_name == "option" and getattr(param, "is_flag", False):
            line = next(line for line in text.splitlines() if param.opts[-1] in line)
            assert "<" not in line.split(param.opts[-1])[1].split("  ")[0], line


@pytest.mark.parametrize("args, literal", [
    (["plot"], "pip install 'piano_metronome[plot]'"),
    (["align"], "JSON {'beats': [s…], 'downbeats': [bool…]}"),
    (["manifest"], "{subset} and {file_name}"),
])
def test_known_eaten_texts_survive(args: list[str], literal: str) -> None:
    assert literal in flat(help_of(tuple(args)))


# --- results on stdout, logs and progress on stderr ---------------------------------------------------

def test_validate_report_goes_to_stdout(demo_dataset: Path, tmp_path: Path) -> None:
    """``validate DIR > report.txt`` keeps the report (a real process and a real redirection)."""
    report = tmp_path / "report.txt"
    with open(report, "w", encoding="utf-8") as handle:
        done = subprocess.run([sys.executable, "-m", "piano_metronome", "validate", str(demo_dataset)],
                              stdout=handle, stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    text = report.read_text(encoding="utf-8")
    assert "checksums" in text and "accounting" in text and "all checks passed" in text
    assert done.stderr == ""


def test_validate_of_no_dataset_is_one_error_line_on_stderr(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: cannot validate")


def test_align_report_on_stdout_grid_source_on_stderr() -> None:
    take = PROJECT_ROOT / "raw_midi" / "demo" / "db_84_Am.mid"
    result = CliRunner().invoke(app, ["align", str(take)])
    assert result.exit_code == 0, result.output
    assert "latency" in result.stdout and "timing SD" in result.stdout
    assert result.stderr.startswith("grid: 2 steps per beat, from ")  # db is an 8th-note take
    assert "grid:" not in result.stdout


def test_stats_tables_on_stdout(demo_dataset: Path) -> None:
    result = CliRunner().invoke(app, ["stats", str(demo_dataset)])
    assert result.exit_code == 0, result.output
    assert "windows per config and split" in result.stdout and result.stderr == ""


def test_render_and_plot_say_what_they_wrote_on_stdout(demo_dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["render", "demo/da/000", str(tmp_path / "a.mid"), "--data", str(demo_dataset)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {tmp_path / 'a.mid'}") and result.stderr == ""
