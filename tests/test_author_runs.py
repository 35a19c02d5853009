"""The author's-runs reader and matcher, on a synthetic run folder written here (no corpus file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

symusic = pytest.importorskip("symusic")

from piano_metronome.model.author import KINDS, author_mse, match_windows, our_notes, read_run  # noqa: E402


def _write(path: Path, pitches: list[int], velocities: list[int], ticks: list[int]) -> None:
    """A one-track file in his layout: 960 ticks per quarter, one tempo."""
    score = symusic.Score(960)
    score.tempos.append(symusic.Tempo(0, 120.0))
    track = symusic.Track(name="piano", program=0)
    for p, v, t in zip(pitches, velocities, ticks, strict=True):
        track.notes.append(symusic.Note(t, 400, p, v))
    score.tracks.append(track)
    score.dump_midi(str(path))


@pytest.fixture()
def run_folder(tmp_path: Path):
    """Two windows cut from a fake recording, with predictions of each kind; and the recording."""
    rng = np.random.default_rng(0)
    n = 40
    pitch = rng.integers(40, 90, n)
    velocity = rng.integers(6, 110, n)
    step = np.sort(rng.choice(200, n, replace=False))
    folder = tmp_path / "run_001"
    (folder / "midi").mkdir(parents=True)
    (folder / "description.txt").write_text("seq_length = 10\nvel_cutoff = 6\n")
    (folder / "history-1500epochs.json").write_text(json.dumps(str({"val_loss": [0.03, 0.01, 0.02]})))
    for k, start in enumerate((3, 20)):
        sel = slice(start, start + 10)
        ticks = ((step[sel] - step[start]) * 240).tolist()
        _write(folder / "midi" / f"ex{k}original.mid", pitch[sel].tolist(), velocity[sel].tolist(), ticks)
        for j, kind in enumerate(KINDS):
            _write(folder / "midi" / f"ex{k}{kind}.mid", pitch[sel].tolist(),
                   np.clip(velocity[sel] + 5 * (j + 1), 1, 127).tolist(), ticks)
    return folder, pitch, velocity, step


def test_reads_his_run_and_scores_his_metric(run_folder):
    """Windows, config, history (a dict literal inside JSON) and his per-note MSE of velocity/127."""
    folder, *_ = run_folder
    run = read_run(folder)
    assert [w.name for w in run.windows] == ["ex0", "ex1"] and run.best_epoch == 2
    assert run.config["seq_length"] == "10"
    for j, kind in enumerate(KINDS):
        mse, notes = author_mse(run, kind)
        assert notes == 20 and mse == pytest.approx((5 * (j + 1) / 127) ** 2)


def test_matches_his_windows_to_our_notes(run_folder):
    """Each of his notes finds our note with its pitch and velocity, despite an extra soft note of
    ours (dropped by his velocity floor) and another recording that shares no n-gram."""
    folder, pitch, velocity, step = run_folder
    run = read_run(folder)
    soft = 25  # a soft note of ours inside the second window: below his floor, so not in his file
    rec = np.array(["a"] * len(pitch) + ["b"] * 5 + ["a"])
    p = np.concatenate([pitch, np.full(5, 30), [60]])
    v = np.concatenate([velocity, np.full(5, 50), [3]])
    s = np.concatenate([step, np.arange(5), [step[soft]]])
    matches = match_windows(run, our_notes(rec, s, p, v))
    np.testing.assert_array_equal(matches[0], np.arange(3, 13))
    np.testing.assert_array_equal(matches[1], np.arange(20, 30))
