"""Shared fixtures. Keep this file to fixtures several test modules need; nothing autouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

from piano_metronome.paths import CORPUS_ENV

#: Values of ``$CI`` that do not mean "running in CI".
_NOT_CI = {"", "0", "false", "no", "off"}


def in_ci() -> bool:
    """True when ``$CI`` says we run in CI, where a skipped corpus test would hide a failure."""
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real recordings (``d1/``, ``d2/``) named by ``$PIANO_METRONOME_CORPUS``.

    Unset: skip locally, so a fresh clone's tests pass offline — but fail in CI, where a skip
    would silently drop every corpus check. Set to a folder that is not there: always fail,
    since that is a mistake, not a choice.
    """
    value = os.environ.get(CORPUS_ENV, "")
    if not value:
        message = f"${CORPUS_ENV} is not set; point it at the corpus folder (e.g. ../shared/corpus)"
        if in_ci():
            pytest.fail(f"{message} — in CI (CI={os.environ['CI']}) corpus tests must run, not skip")
        pytest.skip(message)
    path = Path(value).resolve()
    missing = [name for name in ("d1", "d2") if not (path / name).is_dir()]
    if missing:
        pytest.fail(f"${CORPUS_ENV}={value} has no {' or '.join(f'{m}/' for m in missing)} folder "
                    f"(looked in {path})")
    return path


def build_dataset(out: Path, configs: list[str], corpus_path: Path | None = None) -> Path:
    """Build configs into ``out`` with the project's own build (what `piano-metronome build` runs)."""
    from piano_metronome.outputs.build import run_build
    from piano_metronome.processing.align import AlignOptions

    run_build(None, out, configs, corpus_path, AlignOptions())
    return out


@pytest.fixture(scope="session")
def corpus_build(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full corpus dataset (d1, d2, all, demo), built once per test session."""
    return build_dataset(tmp_path_factory.mktemp("corpus_build") / "dataset",
                         ["d1", "d2", "all", "takes", "demo", "demo_takes"], corpus)


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``demo`` and ``demo_takes`` configs built once per session, in process, from the committed demo takes.

    Read-only: tests that damage a dataset copy it first (``shutil.copytree``). The configs are named
    explicitly so ``$PIANO_METRONOME_CORPUS`` does not change what is built.
    """
    from piano_metronome.outputs.build import run_build
    from piano_metronome.paths import PROJECT_ROOT
    from piano_metronome.processing.align import AlignOptions

    out = tmp_path_factory.mktemp("demo-build") / "dataset"
    run_build(PROJECT_ROOT / "raw_midi", out, ["demo", "demo_takes"], None, AlignOptions())
    return out


def command_app(register) -> typer.Typer:
    """A typer app with one command module's commands (plus a no-op, so each stays a named sub-command)."""
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    return app


#: Python of a virtual environment with datasets 3.x and this package (.ci/run makes one).
DATASETS3_ENV = "PIANO_METRONOME_DATASETS3_PYTHON"


@pytest.fixture(scope="session")
def datasets3_python() -> str:
    """The datasets-3.x Python: skip locally when unset, fail in CI (where .ci/run always makes it)."""
    python = os.environ.get(DATASETS3_ENV)
    if not python:
        message = f"${DATASETS3_ENV} is not set (a venv with datasets 3.x and this package; .ci/run makes one)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return python
