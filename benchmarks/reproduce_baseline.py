"""Reproduce the reference model from scratch: seeds, validation AND test tables, intervals, wall time.

Usage (from the repository root, after ``piano-metronome build``)::

    python benchmarks/reproduce_baseline.py dataset d1                 # 3 seeds + the ablation
    python benchmarks/reproduce_baseline.py dataset d2 --seeds 0 1 2 --out checkpoints/d2

Each seed trains the documented configuration (``piano_metronome/model/config.py``) on train,
with early stopping and weight selection on the *validation* split (so validation numbers are
slightly optimistic); the *test* split is read only after every run has finished, and no choice
of any kind is made on it. Under the corpus author's protocol (notes below velocity 6 dropped),
each table gives every predictor's velocity MSE (velocity/127) and timing MAE (ms) as mean ± SD
over seeds and a 95 % bootstrap interval over recordings:

- the VAE, honest: score only, z = mean of p(z | score); the encoder never sees the target;
- the VAE, teacher-forced: each note is shown the previous note's TRUE velocity (how the corpus
  author measured; comparable with his published numbers, not a humanization);
- the VAE, posterior mean: the encoder reads the target (a diagnostic of the latent);
- the honest predictions of the seeds averaged (an ensemble: one predictor, so no SD);
- the ablation (seed 0 only): the same model given each note's PERFORMED duration;
- ridge regression on the same score features (the strong non-neural baseline), and the trivial
  baselines, all fitted on train.

Then the latent: KL per window, and the spread of velocities and offsets over 10 sampled
performances of each validation window, beside the pianist's own spread between repeats of the
same bar within a take. Results on stdout, training logs on stderr.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

#: The corpus author's published best (teacher-forced) validation velocity MSE and the trivial mean.
PUBLISHED = {"d1": (0.0053, 0.0265), "d2": (0.0029, 0.0184)}
ABLATION_ROW = "VAE, honest, PERFORMED durations (ablation, not score-only)"
ENSEMBLE_ROW = "VAE, honest, mean of the {n} seeds' predictions (one ensemble)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments: dataset folder, config, seeds and the few knobs worth changing."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("data", type=Path, help="built dataset folder")
    p.add_argument("config", choices=["d1", "d2", "all", "demo"], help="dataset config")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    p.add_argument("--out", type=Path, default=None, help="save each seed's checkpoint under OUT/seed<k>")
    p.add_argument("--max-minutes", type=float, default=None, help="training budget per run")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-ablation", action="store_true", help="skip the performed-duration ablation run")
    p.add_argument("--samples", type=int, default=10, help="sampled performances per window for the spread")
    return p.parse_args(argv)


def log(message: str) -> None:
    """Progress and training logs go to stderr; stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


def train_seed(args: argparse.Namespace, seed: int, duration_input: str = "written"):
    """Train one run; return the model and its history (checkpoint saved when --out is given)."""
    from piano_metronome.model.config import ModelConfig, TrainConfig
    from piano_metronome.model.pipeline import fit

    tcfg = TrainConfig(seed=seed, threads=args.threads)
    if args.max_minutes is not None:
        tcfg.max_minutes = args.max_minutes
    mcfg = ModelConfig(duration_input=duration_input)
    tag = f"seed{seed}" if duration_input == "written" else f"ablation-performed-seed{seed}"
    out = args.out / tag if args.out is not None else None
    model, _, metrics = fit(args.data, args.config, mcfg, tcfg, out, log=log, progress=False)
    return model, metrics


def main(argv: list[str] | None = None) -> int:
    """Train every seed, then score validation and test; print the tables and wall times."""
    args = parse_args(argv)
    import torch

    from piano_metronome.model import diagnostics
    from piano_metronome.model.config import ModelConfig
    from piano_metronome.model.evaluate import AUTHOR_MIN_VELOCITY, distinct_notes, merge
    from piano_metronome.model.pipeline import HONEST_ROW, load_windows, model_predictions
    from piano_metronome.model.ridge import ridge_predictions

    start = time.monotonic()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {args.threads}, "
          f"python {platform.python_version()}, config {args.config}, seeds {args.seeds}", flush=True)
    splits = {s: load_windows(args.data, args.config, s) for s in ("train", "validation", "test")}
    rows: dict[str, dict[str, list]] = {"validation": {}, "test": {}}
    runs = []
    for seed in args.seeds:
        model, metrics = train_seed(args, seed)
        runs.append((seed, model, metrics))
        for split in rows:
            for name, pred in model_predictions(model, splits[split], posterior=True).items():
                rows[split].setdefault(name, []).append(pred)
    if len(args.seeds) > 1:  # one more predictor: the average of the seeds' honest predictions
        for split in rows:
            preds = rows[split][HONEST_ROW]
            rows[split][ENSEMBLE_ROW.format(n=len(preds))] = [(np.mean([v for v, _ in preds], axis=0),
                                                               np.mean([o for _, o in preds], axis=0))]
    if not args.no_ablation:
        model, metrics = train_seed(args, args.seeds[0], "performed")
        runs.append((f"{args.seeds[0]} (ablation)", model, metrics))
        for split in rows:
            rows[split][ABLATION_ROW] = [model_predictions(model, splits[split], posterior=False)[HONEST_ROW]]
    t0 = time.monotonic()
    _, ridge = ridge_predictions(splits["train"], splits["validation"], ModelConfig(),
                                 {s: splits[s] for s in rows})
    ridge_s = time.monotonic() - t0
    train_notes = distinct_notes(splits["train"])
    for split, named in rows.items():
        ev = distinct_notes(splits[split])
        merged = {name: [(merge(ev, v), merge(ev, o)) for v, o in preds] for name, preds in named.items()}
        merged[diagnostics.RIDGE] = [(merge(ev, ridge[split][0]), merge(ev, ridge[split][1]))]
        print(diagnostics.split_tables(split, ev, train_notes, merged, args.seeds, AUTHOR_MIN_VELOCITY))
    print(diagnostics.latent_report(runs, splits["validation"], args.samples))
    for subset, (best, mean) in PUBLISHED.items():
        if subset == args.config:
            print(f"\npublished ({subset}, validation, velocity >= 6): author's best velocity MSE {best} "
                  f"(teacher-forced), trivial mean ≈ {mean}; his free-running numbers: benchmarks/author_runs.py")
    print("\nruns:")
    for seed, _, metrics in runs:
        print(f"  seed {seed}: best epoch {metrics['best_epoch']} of {len(metrics['history'])} "
              f"({metrics['stop_reason']}), {metrics['train_minutes']:.1f} min training")
    print(f"  ridge: {ridge_s:.0f} s")
    print(f"\nwall time {(time.monotonic() - start) / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
