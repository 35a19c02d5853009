"""`build --out` replaces only a folder a build wrote; a user's file or folder survives with a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from piano_metronome.cli import app
from piano_metronome.outputs.layout import check_replaceable
from piano_metronome.paths import PROJECT_ROOT
from piano_metronome.safety import OverwriteError

RAW = PROJECT_ROOT / "raw_midi"


def run_build(out: Path, *args: str):
    """`piano-metronome build --config demo` into ``out``, never registered by name."""
    return CliRunner().invoke(app, ["build", "--config", "demo", "--raw", str(RAW), "--out", str(out),
                                    "--name", "", *args])


def leftovers(out: Path) -> list[str]:
    """Staging folders a build left beside ``out``."""
    return sorted(p.name for p in out.parent.glob(f".{out.name}.building-*"))


def one_line_error(result) -> str:
    """The error a refused build printed: exactly one line, no traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


def test_a_users_folder_survives(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "important.txt").write_text("keep me", encoding="utf-8")
    result = run_build(out)
    assert result.exit_code == 2
    assert "not written by `piano-metronome build`" in one_line_error(result)
    assert [p.name for p in out.iterdir()] == ["important.txt"]
    assert (out / "important.txt").read_text(encoding="utf-8") == "keep me"
    assert leftovers(out) == []


def test_a_file_survives(tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("keep me", encoding="utf-8")
    result = run_build(out)
    assert result.exit_code == 2
    assert "is not a folder" in one_line_error(result)
    assert out.read_text(encoding="utf-8") == "keep me"
    assert leftovers(out) == []


def test_a_previous_build_is_replaced_and_an_empty_folder_is_used(tmp_path: Path, demo_dataset: Path) -> None:
    import shutil

    out = tmp_path / "dataset"
    shutil.copytree(demo_dataset, out)
    (out / "data" / "demo" / "train-00000-of-00001.arrow").write_bytes(b"stale")
    assert run_build(out).exit_code == 0
    assert (out / "data" / "demo" / "train-00000-of-00001.arrow").read_bytes() == \
        (demo_dataset / "data" / "demo" / "train-00000-of-00001.arrow").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_build(empty).exit_code == 0 and (empty / "README.md").is_file()


def test_a_users_file_inside_a_previous_build_is_not_deleted_with_it(tmp_path: Path, demo_dataset: Path) -> None:
    import shutil

    out = tmp_path / "dataset"
    shutil.copytree(demo_dataset, out)
    (out / "my_notes.md").write_text("mine", encoding="utf-8")
    result = run_build(out)
    assert result.exit_code == 2
    assert "my_notes.md" in one_line_error(result)
    assert (out / "my_notes.md").read_text(encoding="utf-8") == "mine"


def test_check_replaceable_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OverwriteError):
        check_replaceable(tmp_path / "link")


def test_a_missing_raw_folder_is_the_only_thing_said(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--raw", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "does not exist" in one_line_error(result)
    assert not (tmp_path / "o").exists() and leftovers(tmp_path / "o") == []


def test_an_unknown_config_names_what_the_folder_gives(tmp_path: Path) -> None:
    result = run_build(tmp_path / "o", "--config", "d9")
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "d9" in line and "demo" in line
