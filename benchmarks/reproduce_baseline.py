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

Then, per split, the headroom: the honest error with each recording's and each window's own
level removed (these rows read the target), which bounds what a model of the take's or the
passage's loudness could gain. Then the latent: KL per window, and the spread of velocities and
offsets over 10 sampled performances of each validation window, beside the pianist's own spread
between repeats of the same bar within a take. Results on stdout, training logs on stderr
(``--jobs N``: N runs at a time in child processes, their log lines marked with the run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process with "
                   "--threads threads (default 1: one after another in this process)")
    p.add_argument("--no-ablation", action="store_true", help="skip the performed-duration ablation run")
    p.add_argument("--samples", type=int, default=10, help="sampled performances per window for the spread")
    return p.parse_args(argv)


def log(message: str) -> None:
    """Progress and training logs go to stderr; stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


def run_tag(seed: int, duration_input: str) -> str:
    """The checkpoint folder name of a run under --out."""
    return f"seed{seed}" if duration_input == "written" else f"ablation-{duration_input}-seed{seed}"


def train_seed(args: argparse.Namespace, seed: int, duration_input: str = "written"):
    """Train one run in this process; return the model and its metrics (checkpoint saved with --out)."""
    from piano_metronome.model.config import ModelConfig, TrainConfig
    from piano_metronome.model.pipeline import fit

    tcfg = TrainConfig(seed=seed, threads=args.threads)
    if args.max_minutes is not None:
        tcfg.max_minutes = args.max_minutes
    mcfg = ModelConfig(duration_input=duration_input)
    out = args.out / run_tag(seed, duration_input) if args.out is not None else None
    model, _, metrics = fit(args.data, args.config, mcfg, tcfg, out, log=log, progress=False)
    return model, metrics


def _relay(stream: Any, prefix: str) -> None:
    """Copy a child's log lines to our stderr, each marked with its run."""
    for line in stream:
        log(prefix + line.rstrip("\n"))


def train_in_processes(args: argparse.Namespace, runs: list[tuple[int, str]], folder: Path) -> list[tuple[Any, dict]]:
    """Train ``runs`` (seed, duration input) with ``piano-metronome baseline train``, ``--jobs`` at a
    time, each in its own process with ``--threads`` threads: on a machine with as many cores as
    jobs × threads, each run gets that many times the minutes of the one-process order in the same
    wall time. Models come back through their checkpoints (safetensors + JSON: no pickle)."""
    from piano_metronome.model.checkpoint import METRICS, load_checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    pending, running, failed = list(runs), [], []
    while pending or running:
        while pending and len(running) < args.jobs:
            seed, duration_input = pending.pop(0)
            cmd = [sys.executable, "-m", "piano_metronome", "baseline", "train", "--data", str(args.data),
                   "--config", args.config, "--out", str(folder / run_tag(seed, duration_input)),
                   "--seed", str(seed), "--threads", str(args.threads), "--quiet",
                   "--set", f"duration_input={duration_input}"]
            if args.max_minutes is not None:
                cmd += ["--max-minutes", str(args.max_minutes)]
            child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            relay = threading.Thread(target=_relay, args=(child.stderr, f"[{run_tag(seed, duration_input)}] "))
            relay.start()
            running.append((child, relay, seed, duration_input))
        time.sleep(1.0)
        for item in [r for r in running if r[0].poll() is not None]:
            running.remove(item)
            child, relay, seed, duration_input = item
            relay.join()
            if child.returncode != 0:
                failed.append(f"{run_tag(seed, duration_input)} (exit {child.returncode})")
    if failed:
        sys.exit(f"training failed: {', '.join(failed)}; its log is above")
    out = []
    for seed, duration_input in runs:
        path = folder / run_tag(seed, duration_input)
        out.append((load_checkpoint(path)[0], json.loads((path / METRICS).read_text())))
    return out


def train_all(args: argparse.Namespace, runs: list[tuple[int, str]]) -> list[tuple[Any, dict]]:
    """Every run's model and metrics, in the order of ``runs``: here, or in ``--jobs`` processes."""
    if args.jobs <= 1:
        return [train_seed(args, seed, duration_input) for seed, duration_input in runs]
    if args.out is not None:
        return train_in_processes(args, runs, args.out)
    with tempfile.TemporaryDirectory(prefix="reproduce_baseline.") as folder:
        return train_in_processes(args, runs, Path(folder))


def check_targets(args: argparse.Namespace, plan: list[tuple[int, str]]) -> None:
    """Refuse, before any training, an --out whose run folders hold anything but our checkpoints."""
    if args.out is None:
        return
    from piano_metronome.model.checkpoint import check_checkpoint_target
    from piano_metronome.safety import OverwriteError

    try:
        for seed, duration_input in plan:
            check_checkpoint_target(args.out / run_tag(seed, duration_input))
    except OverwriteError as exc:
        sys.exit(f"error: {exc}")


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
    plan = [(seed, "written") for seed in args.seeds]
    if not args.no_ablation:
        plan.append((args.seeds[0], "performed"))
    check_targets(args, plan)
    trained = train_all(args, plan)
    runs = []
    for seed, (model, metrics) in zip(args.seeds, trained[:len(args.seeds)], strict=True):
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
        model, metrics = trained[-1]
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
        print(diagnostics.headroom_report(ev, splits[split].note_window[ev.first], merged, AUTHOR_MIN_VELOCITY))
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
