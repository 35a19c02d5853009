"""Probe how the corpus author's published velocity MSEs (0.0053 d1, 0.0029 d2) were measured.

His best runs (``experiments/`` of aleathwick/781-piano-autoencoder, copied to
``../shared/author_runs``): d1 run_415 (best validation loss 0.005303 at epoch 349, stopped by
early stopping at 469), d2 run_495 (0.002899 at epoch 232 of 352); run_532 (d1, 100-note
sequences) reached 0.005345 at epoch 352 and stopped at 472 (none ran the 1500 epochs its
history file is named after). All three: sequences of notes at velocity >= 6, inputs pitch class,
pitch height, beat and sub-beat (plus a left/right-hand flag in run_495), 24 units. His model
function's defaults give 3 bidirectional then 2 forward LSTM layers (the layer counts in his
config are swallowed by ``**kwargs``), and his validation data is built with ``t_force=True``
(his ``run_experiment_ntc.py``; the ``*_ar`` input is the target shifted by one in
``src/ml_classes.py``): the previous note's TRUE velocity enters the first forward LSTM, so every
logged validation loss is teacher-forced. This script trains a model of that shape on a built
dataset twice, with the same seed and data:

- ``score``: the score features only (what a humanizer can know);
- ``teacher-forced``: the same plus the previous note's true velocity, into the first forward
  LSTM only (a bidirectional layer would see the note's own velocity through its successor).

and prints the validation MSE of velocity/127 per epoch for both, beside his logged curve (read
from ``--author-runs`` when given). If only the teacher-forced model follows that curve, the
published numbers measure a one-step-ahead prediction, not a humanization from the score; his
released free-running predictions (``benchmarks/author_runs.py``) say the same.

Usage: ``python benchmarks/author_protocol_probe.py dataset d1 [--minutes 5] [--author-runs ../shared/author_runs]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SEQ_NOTES = 50  # notes per training sequence (seq_length of run_415 and run_495)
HOP_BARS = 4  # a sequence starts every this many bars (their example_bars_skip)
MIN_VELOCITY = 6  # softer notes dropped everywhere (vel_cutoff)
HIDDEN = 24  # hidden_state
BI_LAYERS, FORWARD_LAYERS = 3, 2  # his model function's defaults (the config's counts never reach it)
AUTHOR_RUN = {"d1": "run_415", "d2": "run_495"}  # his best run per subset


def author_curve(runs: Path | None, config: str) -> dict[int, float]:
    """His logged validation loss per epoch (1-based) for the subset's best run, if the folder is given."""
    if runs is None:
        return {}
    from piano_metronome.model.author import read_run

    return {i + 1: v for i, v in enumerate(read_run(runs / AUTHOR_RUN[config]).val_loss)}


def recording_notes(w) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per recording: (features, velocity/127) of its notes at velocity >= 6 in (step, key) order.

    Features: pitch class one-hot (12), pitch height (key / 87), beat in bar one-hot (4),
    sub-beat one-hot (4), previous note's velocity (1; zero unless teacher-forced).
    """
    win = w.note_window
    abs_step = (w.start_step[win] + w.note_step).astype(np.int64)
    rec = w.recording[win].astype(str)
    out = []
    for r in sorted(set(rec)):
        sel = np.flatnonzero((rec == r) & (np.rint(w.note_velocity * 127) >= MIN_VELOCITY))
        sel = sel[np.lexsort((w.note_key[sel], abs_step[sel]))]
        step, key, spb = abs_step[sel], w.note_key[sel].astype(np.int64), int(w.steps_per_beat[win[sel[0]]])
        f = np.zeros((len(sel), 22), np.float32)
        f[np.arange(len(sel)), (key + 21) % 12] = 1
        f[:, 12] = key / 87
        f[np.arange(len(sel)), 13 + (step // spb) % 4] = 1
        f[np.arange(len(sel)), 17 + np.minimum(step % spb, 3)] = 1
        v = w.note_velocity[sel].astype(np.float32)
        f[1:, 21] = v[:-1]
        out.append((f, v, step, spb))
    return out


def sequences(recs, torch):
    """Sequences of SEQ_NOTES notes from each HOP_BARS bar line; the first note sees no predecessor."""
    xs, ys = [], []
    for f, v, step, spb in recs:
        for bar in range(0, int(step.max()) + 1, HOP_BARS * 4 * spb):
            i = int(np.searchsorted(step, bar))
            if i + SEQ_NOTES > len(step):
                break
            x = f[i:i + SEQ_NOTES].copy()
            x[0, 21] = 0.0
            xs.append(x)
            ys.append(v[i:i + SEQ_NOTES])
    return torch.tensor(np.stack(xs)), torch.tensor(np.stack(ys))


def make_model(torch, teacher_forced: bool):
    """3 bi-LSTM(24) over the score features -> 2 forward LSTM(24), the first also given the
    previous velocity (zero unless teacher-forced) -> sigmoid: his model function's defaults."""
    nn = torch.nn

    class AuthorShaped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bi = nn.LSTM(21, HIDDEN, num_layers=BI_LAYERS, batch_first=True, bidirectional=True, dropout=0.2)
            self.fwd1 = nn.LSTM(2 * HIDDEN + 1, HIDDEN, batch_first=True)
            self.fwd2 = nn.LSTM(HIDDEN, HIDDEN, batch_first=True)
            self.drop = nn.Dropout(0.2)
            self.out = nn.Linear(HIDDEN, 1)

        def forward(self, x):
            a, _ = self.bi(x[..., :21])
            prev = x[..., 21:] if teacher_forced else torch.zeros_like(x[..., 21:])
            b, _ = self.fwd1(torch.cat([self.drop(a), prev], -1))
            c, _ = self.fwd2(self.drop(b))
            return torch.sigmoid(self.out(self.drop(c))).squeeze(-1)

    return AuthorShaped()


def run(torch, train, val, teacher_forced: bool, minutes: float, seed: int) -> dict[int, float]:
    """Train for ``minutes``; validation MSE after every epoch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = make_model(torch, teacher_forced)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    (xt, yt), (xv, yv) = train, val
    curve, start, epoch = {}, time.monotonic(), 0
    while time.monotonic() - start < minutes * 60:
        epoch += 1
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            loss = ((model(xt[idx]) - yt[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)
            opt.step()
        model.eval()
        with torch.no_grad():
            curve[epoch] = float(((model(xv) - yv) ** 2).mean())
    return curve


def main(argv: list[str] | None = None) -> int:
    """Train both variants, print their curves and best values."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="built dataset folder")
    p.add_argument("config", choices=["d1", "d2"])
    p.add_argument("--minutes", type=float, default=5.0, help="training time per variant (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--author-runs", type=Path, default=None, help="../shared/author_runs: print his logged curve")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    import torch

    from piano_metronome.model.pipeline import load_windows

    torch.set_num_threads(args.threads)
    train = sequences(recording_notes(load_windows(args.data, args.config, "train")), torch)
    val = sequences(recording_notes(load_windows(args.data, args.config, "validation")), torch)
    print(f"{args.config}: {len(train[0])} training / {len(val[0])} validation sequences of {SEQ_NOTES} notes")
    curves = {name: run(torch, train, val, name == "teacher-forced", args.minutes, args.seed)
              for name in ("score", "teacher-forced")}
    author = author_curve(args.author_runs, args.config)
    label = f"author ({AUTHOR_RUN[args.config]})"
    print(f"\n{'epoch':>6}  {'score only':>10}  {'teacher-forced':>14}  {label:>16}")
    shown = {1, 5, 10, 25, 50, 75, 100, 150, 200, 300, max(curves["score"])}
    if author:
        shown.add(min(author, key=author.get))
    for ep in sorted(set(curves["score"]) | set(author)):
        cells = [curves[n].get(ep) for n in ("score", "teacher-forced")] + [author.get(ep)]
        if ep in shown:
            print(f"{ep:>6}  " + "  ".join(f"{'—' if c is None else f'{c:.5f}':>{w}}"
                                           for c, w in zip(cells, (10, 14, 16), strict=True)))
    for name, curve in curves.items():
        print(f"best {name}: {min(curve.values()):.5f} after {len(curve)} epochs")
    if author:
        best = min(author, key=author.get)
        print(f"author {AUTHOR_RUN[args.config]} (teacher-forced validation): best {author[best]:.5f} at epoch {best} "
              f"of {len(author)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
