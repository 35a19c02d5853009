"""Tables a reviewer can trust: every predictor over several seeds, with a bootstrap by recording.

A row holds one prediction per seed (per distinct note of the evaluated split). Its numbers
are the mean over seeds ± their standard deviation, and a 95 % percentile interval from
resampling the split's *recordings* with replacement (notes of one recording are not
independent: d1 validation is only 8 recordings, so the interval is wide and says so). Each
bootstrap draw scores every seed on the same resampled recordings and averages them, so the
interval is that of the seed-averaged number. Deterministic rows (baselines) have one "seed".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluate import Notes

BOOTSTRAP = 2000


@dataclass
class SeedRow:
    """A predictor over seeds: per seed, velocity (0..1) and offset (steps) per distinct note, or None."""

    name: str
    velocity: list[np.ndarray] | None
    offset: list[np.ndarray] | None


@dataclass
class Stat:
    """Mean over seeds, their SD (0 for one seed) and the 95 % bootstrap interval."""

    mean: float
    sd: float
    low: float
    high: float


def _per_recording(rec: np.ndarray, err: np.ndarray, n_rec: int) -> np.ndarray:
    """Sum of a per-note error for each recording."""
    return np.bincount(rec, weights=err, minlength=n_rec)


def _stat(errors: list[np.ndarray], rec: np.ndarray, n_rec: int, draws: np.ndarray) -> Stat:
    """Mean error per note, per seed, and its bootstrap over recordings (``draws``: counts per recording)."""
    counts = np.bincount(rec, minlength=n_rec).astype(np.float64)
    sums = np.stack([_per_recording(rec, e, n_rec) for e in errors])  # (seeds, recordings)
    per_seed = sums.sum(1) / counts.sum()
    boot = (draws @ sums.T) / (draws @ counts)[:, None]  # (draws, seeds)
    low, high = np.percentile(boot.mean(1), [2.5, 97.5])
    return Stat(float(per_seed.mean()), float(per_seed.std(ddof=1)) if len(errors) > 1 else 0.0,
                float(low), float(high))


def summarize(rows: list[SeedRow], ev: Notes, mask: np.ndarray,
              seed: int = 0) -> list[tuple[str, int, Stat | None, Stat | None]]:
    """(name, seeds, velocity MSE, timing MAE in ms) per row on the notes in ``mask``."""
    _, rec = np.unique(ev.recording[mask], return_inverse=True)
    n_rec = int(rec.max(initial=-1)) + 1
    draws = np.random.default_rng(seed).multinomial(n_rec, np.full(n_rec, 1.0 / max(n_rec, 1)), size=BOOTSTRAP)
    draws = draws.astype(np.float64)
    out = []
    for row in rows:
        vel = off = None
        if row.velocity is not None:
            vel = _stat([(v[mask] - ev.velocity[mask]) ** 2 for v in row.velocity], rec, n_rec, draws)
        if row.offset is not None:
            off = _stat([np.abs(o[mask] - ev.offset[mask]) * ev.ms_per_step[mask] for o in row.offset],
                        rec, n_rec, draws)
        seeds = len(row.velocity if row.velocity is not None else row.offset or [])
        out.append((row.name, seeds, vel, off))
    return out


def paired_difference(a: list[np.ndarray], b: list[np.ndarray], target: np.ndarray, rec_of: np.ndarray,
                      squared: bool, weight: np.ndarray | None = None, seed: int = 0) -> Stat:
    """Seed-averaged error of ``a`` minus that of ``b`` on the same notes, with its recording bootstrap:
    an interval wholly below zero says ``a`` beats ``b`` on these recordings."""
    _, rec = np.unique(rec_of, return_inverse=True)
    n_rec = int(rec.max(initial=-1)) + 1
    w = np.ones(len(target)) if weight is None else weight

    def err(p: np.ndarray) -> np.ndarray:
        return (p - target) ** 2 if squared else np.abs(p - target) * w

    diff = [np.mean([err(p) for p in a], axis=0) - np.mean([err(p) for p in b], axis=0)]
    draws = np.random.default_rng(seed).multinomial(n_rec, np.full(n_rec, 1.0 / max(n_rec, 1)), size=BOOTSTRAP)
    return _stat(diff, rec, n_rec, draws.astype(np.float64))


def format_summary(title: str, summary: list[tuple[str, int, Stat | None, Stat | None]]) -> str:
    """A plain-text table: velocity MSE and timing MAE, each as mean ± sd [95 % interval]."""
    def cell(s: Stat | None, digits: int, width: int) -> str:
        if s is None:
            return f"{'—':>{width}}"
        return f"{s.mean:.{digits}f} ± {s.sd:.{digits}f} [{s.low:.{digits}f}, {s.high:.{digits}f}]".rjust(width)

    width = max((len(name) for name, *_ in summary), default=10)
    lines = [title, f"  {'predictor':<{width}}  {'seeds':>5}  {'velocity MSE ± sd [95% CI]':>38}  "
                    f"{'timing MAE ms ± sd [95% CI]':>30}"]
    for name, seeds, vel, off in summary:
        lines.append(f"  {name:<{width}}  {seeds:>5}  {cell(vel, 5, 38)}  {cell(off, 2, 30)}")
    return "\n".join(lines)
