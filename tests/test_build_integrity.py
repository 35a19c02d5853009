"""The build is deterministic (same inputs, same bytes) and atomic (a killed build leaves the old dataset).

Builds run as separate processes (``python -m piano_metronome build``), as a user runs them:
that is what a SIGKILL interrupts, and it shares no cache with the in-process session build.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from piano_metronome.outputs.rebuild import IDENTICAL, compare_folders
from piano_metronome.outputs.validate import validate_dataset
from piano_metronome.paths import PROJECT_ROOT

RAW = PROJECT_ROOT / "raw_midi"


def build_process(out: Path) -> subprocess.Popen:
    """Start ``piano-metronome build --config demo --out OUT`` in its own process.

    A different hash seed than this process: set or dict order leaking into a file would show.
    """
    env = {**os.environ, "PYTHONHASHSEED": "1234"}
    command = [sys.executable, "-m", "piano_metronome", "build", "--config", "demo", "--config", "demo_takes",
               "--raw", str(RAW),
               "--out", str(out), "--name", ""]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def differences(a: Path, b: Path) -> list[str]:
    """Files that are not byte-identical between two folders, with why."""
    return [f"{f.path}: {f.status} {f.details[:3]}" for f in compare_folders(a, b) if f.status != IDENTICAL]


def test_two_builds_are_byte_identical(tmp_path: Path, demo_dataset: Path) -> None:
    process = build_process(tmp_path / "again")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode(errors="replace")
    assert differences(demo_dataset, tmp_path / "again") == []


def test_sigkill_leaves_the_previous_dataset_intact(tmp_path: Path, demo_dataset: Path) -> None:
    out = tmp_path / "dataset"
    shutil.copytree(demo_dataset, out)
    started = time.perf_counter()  # one whole build first, to spread the kills over its length
    finished = build_process(out)
    assert finished.wait(timeout=120) == 0
    length = time.perf_counter() - started
    rng = random.Random(20240605)
    for _ in range(5):
        process = build_process(out)
        try:
            process.wait(timeout=rng.uniform(0.2, max(1.5, length)))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert differences(demo_dataset, out) == [], "the dataset at OUT changed"
    report = validate_dataset(out)
    assert report.ok, [(c.name, c.problems[:2]) for c in report.checks if c.status == "fail"]
    debris = [p.name for p in tmp_path.iterdir() if p.name != "dataset"]
    assert all(name.startswith(".dataset.building-") for name in debris), debris  # hidden, beside OUT
    _loads(out, tmp_path / "cache")
    assert build_process(out).wait(timeout=120) == 0  # the next build clears a killed build's leftovers
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("dataset", "cache")] == []


def _loads(out: Path, cache: Path) -> None:
    """``load_dataset`` reads the folder offline with the declared counts."""
    import datasets

    loaded = datasets.load_dataset(str(out), "demo", cache_dir=str(cache))
    assert {name: len(split) for name, split in loaded.items()} == {"train": 6, "validation": 2, "test": 4}
