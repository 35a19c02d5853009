"""The corpus author's released runs: score his MIDI with his protocol, match his notes to ours.

His runs (``experiments/run_NNN`` of aleathwick/781-piano-autoencoder) hold, per validation
window ``exK``: the recorded window (``exKoriginal.mid``), his model's velocities when fed the
previous note's TRUE velocity (``..._teacher_forced_val_weights.mid``) and when fed its own
previous prediction (``exKprediction_val_weights.mid`` and ``..._train_weights.mid``: free
running, what a humanizer given only the score produces). All four files of a window hold the
same notes in the same order; only velocities differ. His metric is the MSE of velocity/127 per
note over all windows (notes below velocity 6 were dropped before windowing).

To compare our model on identical notes, each window is located in our recordings by its
(pitch, velocity) sequence, which is specific enough that one recording and one start position
win the vote; every note of his window is then paired with the note of ours that has the same
pitch and velocity within a few places of where it should be. Timing is not compared: his files
are written on his grid, so they carry no offsets.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: File name suffix of each prediction kind, and the label the tables give it.
KINDS = {
    "prediction_teacher_forced_val_weights": "teacher-forced (previous true velocity), val weights",
    "prediction_val_weights": "free-running (score only), val weights",
    "prediction_train_weights": "free-running (score only), train weights",
}
ANCHOR = 4  # notes per (pitch, velocity) n-gram used to vote for a window's position
REACH = 3  # a note of his is paired with one of ours at most this many places from where expected


@dataclass
class AuthorWindow:
    """One of his windows: the recorded pitches and velocities, and each kind's predicted velocities."""

    name: str
    pitch: np.ndarray
    velocity: np.ndarray
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class AuthorRun:
    """A run folder: its windows, configuration lines and validation-loss history."""

    name: str
    windows: list[AuthorWindow]
    config: dict[str, str]
    val_loss: list[float]

    @property
    def best_epoch(self) -> int:
        """1-based epoch of the lowest logged validation loss (what his checkpointing kept)."""
        return int(np.argmin(self.val_loss)) + 1 if self.val_loss else 0


def _notes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pitches and velocities of a one-track MIDI file, in (time, pitch) order."""
    import symusic

    score: Any = symusic.Score(str(path))
    notes = score.tracks[0].notes
    rows = sorted((n.time, n.pitch, n.velocity) for n in notes)
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return arr[:, 1], arr[:, 2]


def _history(path: Path) -> list[float]:
    """``val_loss`` from his history file: JSON holding a Python dict literal (read with literal_eval)."""
    if not path.is_file():
        return []
    raw = json.loads(path.read_text())
    data = ast.literal_eval(raw) if isinstance(raw, str) else raw
    return [float(x) for x in data.get("val_loss", [])]


def _config(path: Path) -> dict[str, str]:
    """``name = value`` lines of his description.txt."""
    out = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        name, sep, value = line.partition(" = ")
        if sep:
            out[name.strip()] = value.strip()
    return out


def read_run(folder: str | Path) -> AuthorRun:
    """Read a run folder: every ``exK`` window with its originals and predictions."""
    folder = Path(folder)
    midi = folder / "midi"
    windows = []
    numbers = sorted({int(m.group(1)) for p in midi.glob("ex*original.mid")
                      if (m := re.match(r"ex(\d+)original\.mid$", p.name))})
    for k in numbers:
        pitch, velocity = _notes(midi / f"ex{k}original.mid")
        win = AuthorWindow(f"ex{k}", pitch, velocity)
        for kind in KINDS:
            path = midi / f"ex{k}{kind}.mid"
            if path.is_file():
                p, v = _notes(path)
                if not np.array_equal(p, pitch):
                    raise ValueError(f"{path}: not the notes of ex{k}original.mid")
                win.predictions[kind] = v
        windows.append(win)
    return AuthorRun(folder.name, windows, _config(folder / "description.txt"),
                     _history(folder / "history-1500epochs.json"))


def author_mse(run: AuthorRun, kind: str) -> tuple[float, int]:
    """His metric for one prediction kind: MSE of velocity/127 over every note of every window."""
    errs = [(w.predictions[kind] - w.velocity) / 127.0 for w in run.windows if kind in w.predictions]
    if not errs:
        return float("nan"), 0
    err = np.concatenate(errs)
    return float(np.mean(err**2)), len(err)


@dataclass
class OurNotes:
    """Our notes of one subset and split, per recording, in his order: velocity >= 6, by (step, pitch)."""

    pitch: dict[str, np.ndarray]
    velocity: dict[str, np.ndarray]
    index: dict[str, np.ndarray]  # the note's index in whatever per-note arrays the caller holds


def our_notes(recording: np.ndarray, abs_step: np.ndarray, pitch: np.ndarray, velocity: np.ndarray,
              min_velocity: int = 6) -> OurNotes:
    """Group per-note arrays by recording in his order; ``velocity`` in MIDI units."""
    out = OurNotes({}, {}, {})
    for rec in sorted(set(recording.tolist())):
        sel = np.flatnonzero((recording == rec) & (velocity >= min_velocity))
        sel = sel[np.lexsort((pitch[sel], abs_step[sel]))]
        out.pitch[rec], out.velocity[rec], out.index[rec] = pitch[sel], velocity[sel], sel
    return out


def _grams(p: np.ndarray, v: np.ndarray) -> list[tuple[int, ...]]:
    """(pitch, velocity) n-grams of length ANCHOR starting at every position."""
    return [tuple(p[i:i + ANCHOR].tolist() + v[i:i + ANCHOR].tolist()) for i in range(len(p) - ANCHOR + 1)]


def match_windows(run: AuthorRun, ours: OurNotes) -> list[np.ndarray]:
    """For each of his windows, the index (into the caller's arrays) of our matching note, -1 if none.

    A window's position is the (recording, start) most of its n-grams vote for; each of his
    notes then takes the first unused note of ours with the same pitch and velocity within REACH
    places of start + its rank.
    """
    table: dict[tuple[int, ...], list[tuple[str, int]]] = defaultdict(list)
    for rec in ours.pitch:
        for i, g in enumerate(_grams(ours.pitch[rec], ours.velocity[rec])):
            table[g].append((rec, i))
    matches = []
    for w in run.windows:
        votes = Counter((rec, i - j) for j, g in enumerate(_grams(w.pitch, w.velocity)) for rec, i in table.get(g, []))
        found = np.full(len(w.pitch), -1, dtype=np.int64)
        if votes:
            (rec, start), _ = votes.most_common(1)[0]
            found = _pair(w, ours, rec, start)
        matches.append(found)
    return matches


def _pair(w: AuthorWindow, ours: OurNotes, rec: str, start: int) -> np.ndarray:
    """Pair each note of ``w`` with an unused note of recording ``rec`` near ``start`` + its rank."""
    p, v, idx = ours.pitch[rec], ours.velocity[rec], ours.index[rec]
    used: set[int] = set()
    found = np.full(len(w.pitch), -1, dtype=np.int64)
    for k in range(len(w.pitch)):
        near = np.arange(max(start + k - REACH, 0), min(start + k + REACH + 1, len(p)))
        for i in near[np.argsort(np.abs(near - start - k), kind="stable")].tolist():
            if i not in used and p[i] == w.pitch[k] and v[i] == w.velocity[k]:
                used.add(i)
                found[k] = idx[i]
                break
    return found
