"""No command destroys a file it did not write: a user's file survives, one ``error:`` line, exit 2.

Each command that writes is run against a file of the user's in the way; the file must be
byte-identical afterwards, the command must leave nothing behind, and where the command has
``--force`` the file is replaced only then. ``fetch`` has its own in tests/test_fetch.py
(``test_present_but_wrong_file_is_kept_unless_forced``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from piano_metronome import safety
from piano_metronome.commands import demo as demo_command
from piano_metronome.commands import manifest as manifest_command
from piano_metronome.commands import render as render_command
from piano_metronome.inputs import manifest as m
from piano_metronome.inputs.demo import TAKES
from tests.conftest import command_app

COMMITTED = Path(__file__).resolve().parent.parent / "raw_midi" / "manifest.csv"
USER_BYTES = b"my own notes, not yours to overwrite\n"


def invoke(register, *args: str | Path):
    """Run one command module's command in-process, stdout and stderr kept apart."""
    return CliRunner().invoke(command_app(register), list(map(str, args)))


def assert_refused(result, path: Path, forceable: bool = True) -> None:
    """Exit 2 and exactly one stderr line: ``error: <path>: …`` (with the --force hint when it applies)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
    assert lines[0].endswith(safety.FORCE_HINT) == forceable, lines[0]
    assert "Traceback" not in result.output


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes, so strays and changes both show."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def takes(root: Path, names: dict[str, list[str]]) -> Path:
    """Files named like recordings (the manifest only hashes them)."""
    for subset, files in names.items():
        (root / subset).mkdir(parents=True, exist_ok=True)
        for name in files:
            (root / subset / name).write_bytes(f"take {subset}/{name}".encode())
    return root


# --- the helper ------------------------------------------------------------------------------------

def test_check_file_rules(tmp_path: Path) -> None:
    target = tmp_path / "out.mid"
    safety.check_file(target)  # absent: fine
    target.write_bytes(USER_BYTES)
    with pytest.raises(safety.OverwriteError, match="already exists; pass --force to replace it"):
        safety.check_file(target)
    safety.check_file(target, force=True)
    safety.check_file(target, why_not_ours=lambda _p: None)  # recognised as ours
    with pytest.raises(safety.OverwriteError, match="is a folder") as caught:
        safety.check_file(tmp_path, force=True)
    assert not caught.value.forceable and "--force" not in str(caught.value)
    assert target.read_bytes() == USER_BYTES


def test_check_folder_names_the_first_stranger(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    safety.check_folder(folder, lambda _p: "never")  # absent
    folder.mkdir()
    safety.check_folder(folder, lambda _p: "never")  # empty
    (folder / "ours.txt").write_text("x")
    (folder / "theirs.txt").write_text("y")
    why = (lambda p: None if p.name == "ours.txt" else "not ours")  # noqa: E731
    with pytest.raises(safety.OverwriteError, match=r"out: holds theirs.txt, not ours; pass --force"):
        safety.check_folder(folder, why)
    safety.check_folder(folder, why, force=True)
    with pytest.raises(safety.OverwriteError) as caught:
        safety.check_folder(folder / "ours.txt", why, force=True)
    assert "is not a folder" in str(caught.value)


def test_check_replaceable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "dataset"
    folder.mkdir()
    safety.check_replaceable_folder(folder, lambda _p: "not a build")  # empty
    (folder / "x").write_text("mine")
    with pytest.raises(safety.OverwriteError, match="not a build; pass --force"):
        safety.check_replaceable_folder(folder, lambda _p: "not a build")
    safety.check_replaceable_folder(folder, lambda p: None if (p / "x").is_file() else "no x")
    with pytest.raises(safety.OverwriteError, match="not a folder"):
        safety.check_replaceable_folder(folder / "x", lambda _p: None, force=True)


def test_write_atomic_leaves_the_old_file_and_no_temp_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(USER_BYTES)

    def half_then_fail(temp: Path) -> None:
        temp.write_bytes(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        safety.write_atomic(target, half_then_fail)
    assert files_under(tmp_path) == {"out.csv": USER_BYTES}
    safety.write_atomic(target, lambda temp: temp.write_bytes(b"new"))
    assert files_under(tmp_path) == {"out.csv": b"new"}


# --- manifest ----------------------------------------------------------------------------------------

def test_manifest_keeps_a_file_that_is_not_a_manifest(tmp_path: Path) -> None:
    src = takes(tmp_path / "src", {"mine": ["xx_100_C.mid"]})
    (src / "manifest.csv").write_bytes(USER_BYTES)
    result = invoke(manifest_command.register, "manifest", src, "--steps-per-beat", "mine=4")
    assert_refused(result, src / "manifest.csv")
    assert "is not a manifest" in result.stderr
    assert (src / "manifest.csv").read_bytes() == USER_BYTES
    assert sorted(p.name for p in src.iterdir()) == ["manifest.csv", "mine"]  # no temp file left
    forced = invoke(manifest_command.register, "manifest", src, "--steps-per-beat", "mine=4", "--force")
    assert forced.exit_code == 0, forced.output
    assert [r.recording_id for r in m.read_manifest(src / "manifest.csv")] == ["mine/xx"]


def test_manifest_keeps_the_manifest_of_other_recordings(tmp_path: Path) -> None:
    """The issue's case: two takes must not replace the corpus's 361-row manifest."""
    src = takes(tmp_path / "src", {"d1": ["xx_100_C.mid", "xy_90_G.mid"]})
    corpus_manifest = tmp_path / "raw_midi" / "manifest.csv"
    corpus_manifest.parent.mkdir()
    shutil.copyfile(COMMITTED, corpus_manifest)
    result = invoke(manifest_command.register, "manifest", src, "--out", corpus_manifest)
    assert_refused(result, corpus_manifest)
    assert "manifest of other recordings: 361 of the 361" in result.stderr
    assert corpus_manifest.read_bytes() == COMMITTED.read_bytes()


def test_manifest_regenerates_its_own_folder(tmp_path: Path) -> None:
    """Same folder again, or with a take added: replaced; a take removed: refused (it was listed)."""
    src = takes(tmp_path / "src", {"mine": ["xx_100_C.mid"]})
    args = ("manifest", src, "--steps-per-beat", "mine=4")
    assert invoke(manifest_command.register, *args).exit_code == 0
    assert invoke(manifest_command.register, *args).exit_code == 0
    takes(src, {"mine": ["xy_90_G.mid"]})
    assert invoke(manifest_command.register, *args).exit_code == 0
    assert len(m.read_manifest(src / "manifest.csv")) == 2
    (src / "mine" / "xx_100_C.mid").unlink()
    before = (src / "manifest.csv").read_bytes()
    result = invoke(manifest_command.register, *args)
    assert_refused(result, src / "manifest.csv")
    assert "e.g. mine/xx_100_C.mid" in result.stderr and (src / "manifest.csv").read_bytes() == before


# --- demo --------------------------------------------------------------------------------------------

def test_demo_keeps_a_folder_of_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(USER_BYTES)
    result = invoke(demo_command.register, "demo", "--out", folder)
    assert_refused(result, folder, forceable=False)
    assert "holds notes.txt" in result.stderr
    assert files_under(folder) == {"notes.txt": USER_BYTES}


def test_demo_keeps_a_users_take_of_the_same_name(tmp_path: Path) -> None:
    """A real take that happens to be called like a demo take is not one: no synthetic track name."""
    folder = tmp_path / "demo"
    folder.mkdir()
    user_take = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0 my take"
    (folder / TAKES[0].file_name).write_bytes(user_take)
    assert_refused(invoke(demo_command.register, "demo", "--out", folder), folder, forceable=False)
    assert files_under(folder) == {TAKES[0].file_name: user_take}


def test_demo_keeps_the_corpus_manifest(tmp_path: Path) -> None:
    """A manifest with our header but corpus rows is not the demo manifest."""
    folder = tmp_path / "raw"
    folder.mkdir()
    shutil.copyfile(COMMITTED, folder / "manifest.csv")
    assert_refused(invoke(demo_command.register, "demo", "--out", folder), folder, forceable=False)
    assert files_under(folder) == {"manifest.csv": COMMITTED.read_bytes()}


def test_demo_regenerates_its_own_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    assert invoke(demo_command.register, "demo", "--out", folder).exit_code == 0
    first = files_under(folder)
    again = invoke(demo_command.register, "demo", "--out", folder)
    assert again.exit_code == 0, again.output
    assert files_under(folder) == first


# --- render --------------------------------------------------------------------------------------------

def test_render_keeps_an_existing_file_unless_forced(demo_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.mid"
    out.write_bytes(USER_BYTES)
    args = ("render", "demo/da/000", out, "--data", demo_dataset)
    assert_refused(invoke(render_command.register, *args), out)
    assert files_under(tmp_path) == {"mine.mid": USER_BYTES}
    forced = invoke(render_command.register, *args, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes().startswith(b"MThd") and files_under(tmp_path).keys() == {"mine.mid"}


def test_render_refuses_a_folder_even_with_force(demo_dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "takes").mkdir()
    (tmp_path / "takes" / "a.mid").write_bytes(USER_BYTES)
    result = invoke(render_command.register, "render", "demo/da/000", tmp_path / "takes", "--data", demo_dataset,
                    "--force")
    assert_refused(result, tmp_path / "takes", forceable=False)
    assert files_under(tmp_path) == {"takes/a.mid": USER_BYTES}


# --- plot ----------------------------------------------------------------------------------------------

def test_plot_keeps_a_users_png_unless_forced(demo_dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from piano_metronome.commands import plot as plot_command

    out = tmp_path / "figures"
    out.mkdir()
    (out / "latency.png").write_bytes(USER_BYTES)
    (out / "holiday.jpg").write_bytes(USER_BYTES)
    args = ("plot", demo_dataset, "--out", out)
    assert_refused(invoke(plot_command.register, *args), out / "latency.png")
    assert files_under(out) == {"latency.png": USER_BYTES, "holiday.jpg": USER_BYTES}  # nothing drawn
    forced = invoke(plot_command.register, *args, "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "latency.png").read_bytes() != USER_BYTES
    assert (out / "holiday.jpg").read_bytes() == USER_BYTES  # never touched
    again = invoke(plot_command.register, *args)  # its own PNGs: replaced without --force
    assert again.exit_code == 0, again.output
