"""`publish --dry-run` lists exactly the built folder and sends nothing; bad input fails cleanly."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from piano_metronome.commands.publish import register
from tests.conftest import build_dataset, command_app


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return command_app(register)


def test_dry_run_lists_every_file(app, tmp_path, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("dry run must not talk to the Hub")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", no_network)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", no_network)
    out = build_dataset(tmp_path / "ds", ["demo"])
    result = CliRunner().invoke(app, ["publish", "--repo-id", "me/piano", "--dataset", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[-1] for line in result.stdout.splitlines() if line.strip()}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert listed == on_disk
    assert "data/demo/train-00000-of-00001.arrow" in listed


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "/x"])
def test_bad_repo_id(app, tmp_path, repo_id):
    out = build_dataset(tmp_path / "ds", ["demo"])
    result = CliRunner().invoke(app, ["publish", "--repo-id", repo_id, "--dataset", str(out), "--dry-run"])
    assert result.exit_code == 2
    assert "repo id" in result.output


def test_not_a_dataset_folder(app, tmp_path):
    result = CliRunner().invoke(app, ["publish", "--repo-id", "me/x", "--dataset", str(tmp_path), "--dry-run"])
    assert result.exit_code == 2
    assert "not a built dataset" in result.output
