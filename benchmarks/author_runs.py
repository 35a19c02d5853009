"""Score the corpus author's released runs with his protocol, then our model on the very same notes.

Usage (from the repository root)::

    python benchmarks/author_runs.py ../shared/author_runs
    python benchmarks/author_runs.py ../shared/author_runs --data /path/to/built/dataset \\
        --checkpoints d1=ckpt/d1/seed0,ckpt/d1/seed1 d2=ckpt/d2/seed0

The first table reads only his MIDI (``../shared/author_runs``, never copied into the project):
per run, his teacher-forced velocity MSE (previous true velocity given, what his published
0.0053 / 0.0029 measure) and his free-running one (his model fed its own predictions: the
score-only humanization) with both weight sets, on his validation windows, velocity/127, notes
below velocity 6 dropped as he did. With ``--data`` and ``--checkpoints``, his windows are
located among our validation notes and every predictor, his and ours, is scored on the notes
that could be matched: honest with honest, teacher-forced with teacher-forced, on identical notes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The runs folder, and optionally our dataset and checkpoints per subset."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("runs", type=Path, help="folder holding run_NNN/ (../shared/author_runs)")
    p.add_argument("--data", type=Path, default=None, help="our built dataset (validation split is used)")
    p.add_argument("--checkpoints", nargs="*", default=[], metavar="SUBSET=DIR[,DIR...]",
                   help="our checkpoints per subset, one per seed")
    return p.parse_args(argv)


def author_table(runs: list) -> str:
    """His numbers per run: his own windows, his own metric."""
    from piano_metronome.model.author import KINDS, author_mse

    lines = ["author's runs, his validation windows, velocity MSE (velocity/127, notes >= 6), his protocol:",
             f"  {'run':<8} {'seq':>4} {'windows':>7} {'notes':>6} {'best/last epoch':>15} "
             f"{'logged best':>11}  " + "  ".join(f"{k:>22}" for k in ("teacher-forced (val w)",
                                                                         "free-running (val w)",
                                                                         "free-running (train w)"))]
    for run in runs:
        cells = [author_mse(run, kind) for kind in KINDS]
        lines.append(f"  {run.name:<8} {run.config.get('seq_length', '?'):>4} {len(run.windows):>7} {cells[0][1]:>6} "
                     f"{f'{run.best_epoch}/{len(run.val_loss)}':>15} {min(run.val_loss, default=float('nan')):>11.5f}  "
                     + "  ".join(f"{m:>22.5f}" for m, _ in cells))
    return "\n".join(lines)


def _our_notes(w):
    """Our validation notes (distinct) as his matcher wants them, and the distinct-note table."""
    from piano_metronome.model.author import our_notes
    from piano_metronome.model.evaluate import distinct_notes

    ev = distinct_notes(w)
    first = ev.first
    abs_step = (w.start_step[w.note_window] + w.note_step)[first]
    return ev, our_notes(ev.recording, abs_step, w.note_key[first] + 21, np.rint(ev.velocity * 127).astype(np.int64))


def _best_subset(run, notes_by_subset: dict) -> tuple[str, list[np.ndarray]]:
    """The subset whose validation notes his windows match best, and the matches."""
    from piano_metronome.model.author import match_windows

    best = None
    for subset, (_, ours) in notes_by_subset.items():
        matches = match_windows(run, ours)
        found = sum(int((m >= 0).sum()) for m in matches)
        if best is None or found > best[0]:
            best = (found, subset, matches)
    assert best is not None
    return best[1], best[2]


def matched_table(runs: list, data: Path, checkpoints: dict[str, list[Path]]) -> str:
    """Every predictor, his and ours, on the notes of his windows that match ours."""
    from piano_metronome.model.author import KINDS
    from piano_metronome.model.checkpoint import load_checkpoint
    from piano_metronome.model.evaluate import merge
    from piano_metronome.model.pipeline import HONEST_ROW, TEACHER_FORCED_ROW, load_windows, model_predictions

    notes_by_subset, ours_pred = {}, {}
    for subset, dirs in checkpoints.items():
        w = load_windows(data, subset, "validation")
        ev, ours = _our_notes(w)
        notes_by_subset[subset] = (ev, ours)
        preds: dict[str, list[np.ndarray]] = {HONEST_ROW: [], TEACHER_FORCED_ROW: []}
        for d in dirs:
            model = load_checkpoint(d)[0]
            for name, (v, _) in model_predictions(model, w, posterior=False).items():
                preds.setdefault(name, []).append(merge(ev, v))
        ours_pred[subset] = preds
    lines = ["\non identical notes (his windows matched to our validation notes; each note counted as often as "
             "his windows hold it), velocity MSE:"]
    for run in runs:
        subset, matches = _best_subset(run, notes_by_subset)
        ev = notes_by_subset[subset][0]
        idx = np.concatenate(matches)
        ok = idx >= 0
        if not ok.any():
            lines.append(f"  {run.name}: none of its notes is among the validation notes of "
                         f"{', '.join(checkpoints)} (give --checkpoints for its subset)")
            continue
        truth = np.concatenate([w.velocity for w in run.windows])[ok] / 127.0
        assert np.allclose(ev.velocity[idx[ok]], truth), "matched notes must carry his recorded velocities"
        lines.append(f"  {run.name} ({subset}, {len(checkpoints[subset])} seed(s) of ours): "
                     f"{int(ok.sum())} of {len(idx)} notes matched ({ok.mean():.2%})")
        for kind, label in KINDS.items():
            pred = np.concatenate([w.predictions[kind] for w in run.windows])[ok] / 127.0
            lines.append(f"    author, {label:<58} {np.mean((pred - truth) ** 2):.5f}")
        for name, per_seed in ours_pred[subset].items():
            mses = [float(np.mean((p[idx[ok]] - truth) ** 2)) for p in per_seed]
            sd = f" ± {np.std(mses, ddof=1):.5f}" if len(mses) > 1 else ""
            lines.append(f"    ours,   {name:<58} {np.mean(mses):.5f}{sd}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print his table, then (with --data and --checkpoints) the identical-notes comparison."""
    args = parse_args(argv)
    from piano_metronome.model.author import read_run

    folders = sorted(p for p in args.runs.glob("run_*") if (p / "midi").is_dir())
    if not folders:
        print(f"{args.runs}: no run_*/midi folders", file=sys.stderr)
        return 2
    runs = [read_run(f) for f in folders]
    print(author_table(runs))
    checkpoints = {}
    for spec in args.checkpoints:
        subset, _, dirs = spec.partition("=")
        checkpoints[subset] = [Path(d) for d in dirs.split(",") if d]
    if args.data is not None and checkpoints:
        print(matched_table(runs, args.data, checkpoints))
    return 0


if __name__ == "__main__":
    sys.exit(main())
