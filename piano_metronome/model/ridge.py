"""The strong non-neural baseline: ridge regression on the model's own per-note score features.

Why ridge and not gradient-boosted trees: it needs nothing beyond numpy (the project's ``model``
extra is torch + safetensors; no scikit-learn), it is fitted in closed form in about a second,
it is deterministic, and on these features it is what a careful engineer would try before a
network. To give it the interactions a tree would find, the metrical position (sub-beat and
beat one-hots) is crossed with the note's role (register, chord size, top/bottom of the chord,
local melody, written duration) and the window's density. It sees exactly the score-only
inputs the VAE sees (written durations, the context of the window and its neighbours), never a performance value.

The penalty is chosen on the validation split from a short grid; the test split is never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ModelConfig
from .features import MAX_RANK, Windows, make_batch

LAMBDAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
#: Columns of the note features crossed with the metre: register, black key, chord size, top of the
#: chord, bottom of the chord, distance to the local highest key, "is the local highest key".
ROLE = (0, 13, 14, 15, 15 + MAX_RANK, 29, 31)


def features(w: Windows, cfg: ModelConfig) -> np.ndarray:
    """Per note (in ``w``'s note order): [score features, metre × role crosses, 1]."""
    out = None
    for start in range(0, len(w), 256):
        batch = make_batch(w, np.arange(start, min(start + 256, len(w))), cfg.steps, cfg.max_sub_beats,
                           cfg.max_beats, duration_input=cfg.duration_input)
        note, bi = batch.note_features.numpy(), batch.batch_index.numpy()
        step = batch.step_features.numpy()[bi, batch.step.numpy()]
        context = batch.context.numpy()[bi]
        metre = step[:, :cfg.max_sub_beats + cfg.max_beats]
        role = np.concatenate([note[:, list(ROLE)], note[:, -1:], context[:, :1]], axis=1)
        cross = (metre[:, :, None] * role[:, None, :]).reshape(len(note), -1)
        x = np.concatenate([note, step, context, cross,
                            np.ones((len(note), 1), np.float32)], axis=1)
        if out is None:
            out = np.zeros((w.num_notes, x.shape[1]), np.float64)
        out[batch.notes] = x
    return out if out is not None else np.zeros((0, 1))


@dataclass
class Ridge:
    """Weights for velocity and offset, and the penalty each was given."""

    velocity: np.ndarray
    offset: np.ndarray
    lambdas: tuple[float, float]

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Velocity (0..1) and offset (steps) per row of ``x``, clipped to their ranges."""
        return np.clip(x @ self.velocity, 0.0, 1.0), np.clip(x @ self.offset, -0.5, 0.5)


def _solve(gram: np.ndarray, xty: np.ndarray, lam: float) -> np.ndarray:
    """Ridge weights from X'X and X'y (the intercept, last column, is not penalised)."""
    penalty = np.full(len(gram), lam)
    penalty[-1] = 0.0
    return np.linalg.solve(gram + np.diag(penalty), xty)


def fit_ridge(train_w: Windows, val_w: Windows, cfg: ModelConfig) -> Ridge:
    """Fit on train; pick each target's penalty by validation velocity MSE / offset MAE."""
    x, xv = features(train_w, cfg), features(val_w, cfg)
    mean, sd = x[:, :-1].mean(0), x[:, :-1].std(0) + 1e-6
    x[:, :-1], xv[:, :-1] = (x[:, :-1] - mean) / sd, (xv[:, :-1] - mean) / sd
    gram = x.T @ x
    picks = []
    for y, yv, err in ((train_w.note_velocity, val_w.note_velocity, np.square),
                       (train_w.note_offset, val_w.note_offset, np.abs)):
        fits = {lam: _solve(gram, x.T @ y, lam) for lam in LAMBDAS}
        lam = min(fits, key=lambda k: float(np.mean(err(xv @ fits[k] - yv))))
        picks.append((lam, fits[lam]))
    (lv, wv), (lo, wo) = picks
    # fold the standardisation into the weights, so predict() takes raw features
    return Ridge(_unscale(wv, mean, sd), _unscale(wo, mean, sd), (lv, lo))


def _unscale(weights: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Weights on standardised features → weights on raw features (last entry: intercept)."""
    out = weights.copy()
    out[:-1] = weights[:-1] / sd
    out[-1] = weights[-1] - float(np.sum(weights[:-1] * mean / sd))
    return out


def ridge_predictions(train_w: Windows, val_w: Windows, cfg: ModelConfig,
                      splits: dict[str, Windows]) -> tuple[Ridge, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Fit once (penalty from validation) and predict each named split."""
    model = fit_ridge(train_w, val_w, cfg)
    return model, {name: model.predict(features(w, cfg)) for name, w in splits.items()}
