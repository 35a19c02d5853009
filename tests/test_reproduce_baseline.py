"""benchmarks/reproduce_baseline.py end to end on a tiny dataset: runs in processes, every table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

pytest.importorskip("torch")  # the `model` extra; CI installs it

from tests.test_model import fake_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _script():
    """The benchmark script as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("reproduce_baseline", ROOT / "benchmarks" / "reproduce_baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dataset(folder: Path) -> Path:
    """Train, validation and test shards of fake recordings in the built layout."""
    shard_dir = folder / "data" / "demo"
    shard_dir.mkdir(parents=True)
    for split, n, seed in (("train", 12, 0), ("validation", 4, 1), ("test", 4, 2)):
        table = fake_table(n, split, seed)
        with pa.OSFile(str(shard_dir / f"{split}-00000-of-00001.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return folder


def test_runs_in_processes_and_prints_every_table(tmp_path: Path, capsys, monkeypatch):
    """Two seeds trained at once in child processes come back through their checkpoints; stdout
    has the validation and test tables, the headroom rows and both runs; an --out folder holding
    a user's file is refused before any training."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "ckpt"
    args = [str(data), "demo", "--seeds", "0", "1", "--no-ablation", "--jobs", "2", "--max-minutes", "0.01",
            "--samples", "2", "--out", str(out)]
    assert _script().main(args) == 0
    text = capsys.readouterr().out
    for needle in ("validation split, demo", "test split, demo", "headroom (reads the target",
                   "minus each window's level", "VAE, honest, mean of the 2 seeds' predictions",
                   "seed 0: best epoch", "seed 1: best epoch"):
        assert needle in text, needle
    assert all((out / f"seed{k}" / "model.safetensors").is_file() for k in (0, 1))
    (out / "seed1" / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="mine.txt"):
        _script().main(args)
    assert (out / "seed1" / "mine.txt").read_text() == "keep me"
