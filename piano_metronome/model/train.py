"""Training: seeded mini-batch AdamW, an EMA of the weights, a learning-rate schedule, early stopping.

The schedule is either cosine over the run's wall-time budget (the runs are compute-bound: the
best epoch is near the last, so the step size should shrink as the budget runs out, whatever the
machine's load; the learning rate then follows the clock, so such a run does not repeat bit for
bit) or halving on plateaus of the validation loss (repeats bit for bit when the budget is not hit).

The validation loss that drives both the schedule and early stopping is the honest one:
the decoder with z = the prior's mean, the encoder never seeing the validation performance
(the test split is never read here). It is measured
on an exponential moving average of the weights, which on ~3k windows is both better and far
less noisy from epoch to epoch than the raw weights. The best averaged weights are restored.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .features import Batch, Windows, make_batch, transposition
from .vae import HumanizerVAE


def seed_everything(seed: int, threads: int) -> None:
    """Seed python, numpy and torch and fix the thread count, so a run repeats bit for bit.

    On CPU the ops used here are deterministic for a fixed thread count (the test checks it),
    so the process-wide ``torch.use_deterministic_algorithms`` switch is left to the caller.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))


BUCKET = 8  # batches whose windows are sorted by length together (see batch_indices)


def batch_indices(n: int, size: int, rng: np.random.Generator | None,
                  lengths: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Window indices in batches of ``size``: shuffled by ``rng``, or in order when it is None.

    With ``lengths`` (notes per window), each run of BUCKET shuffled batches is re-cut by length
    and the batches are shuffled again: attention costs the square of a batch's longest window,
    so similar lengths together save about a third of the time and the batches stay random.
    """
    order = rng.permutation(n) if rng is not None else np.arange(n)
    batches: list[np.ndarray] = []
    for start in range(0, n, size * BUCKET):
        chunk = order[start:start + size * BUCKET]
        if lengths is not None and rng is not None:
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
    if lengths is not None and rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    yield from batches


def batch_for(w: Windows, idx: np.ndarray, cfg: ModelConfig, shift: np.ndarray | None = None) -> Batch:
    """A batch with the model's grid sizes and duration input."""
    return make_batch(w, idx, cfg.steps, cfg.max_sub_beats, cfg.max_beats, shift, cfg.duration_input)


@torch.no_grad()
def predict(model: HumanizerVAE, w: Windows, z_mode: str = "prior", batch_size: int = 128,
            seed: int = 0, teacher_forced: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Velocity (0..1) and offset (steps) for every note of ``w``, in ``w``'s note order.

    ``z_mode="prior"`` is the honest prediction (z = mean of p(z | score)); ``posterior`` reads
    the targets through the encoder (a reconstruction); ``sample`` draws z from p(z | score)
    (a new performance: ``seed`` picks which).
    ``teacher_forced`` shows each note the previous note's true velocity (the corpus author's
    way of measuring; a diagnostic, not a humanization).
    """
    model.eval()
    velocity = np.zeros(w.num_notes, dtype=np.float32)
    offset = np.zeros(w.num_notes, dtype=np.float32)
    gen = torch.Generator().manual_seed(seed)
    for idx in batch_indices(len(w), batch_size, None):
        batch = batch_for(w, idx, model.cfg)
        if z_mode == "sample":
            tokens = model.tokens(batch)
            mu, logvar = model.prior_params(batch, tokens)
            z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar)
            v, o = model.decode(batch, z, tokens)
        else:
            out = model(batch, z_mode=z_mode, teacher_forced=teacher_forced)
            v, o = out["velocity"], out["offset"]
        velocity[batch.notes] = v.numpy()
        offset[batch.notes] = o.numpy()
    return velocity, offset


def validation_loss(model: HumanizerVAE, w: Windows) -> dict[str, float]:
    """The training objective's two terms on the honest prediction (z = prior mean, no velocity
    seen) and their weighted sum, which stops training; the teacher-forced velocity MSE when the
    model has the ar layer (logged; it stops training instead when ``select_on="teacher_forced"``)."""
    def mse(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean((a - b) ** 2)) if w.num_notes else 0.0

    v, o = predict(model, w, "prior")
    ms = 60000.0 / w.bpm[w.note_window] / w.steps_per_beat[w.note_window]
    o_mae = float(np.mean(np.abs(o - w.note_offset) * ms)) / 100.0 if w.num_notes else 0.0
    out = {"velocity_mse": mse(v, w.note_velocity), "offset_mae": o_mae}
    out["loss"] = out["velocity_mse"] + model.cfg.offset_weight * out["offset_mae"]
    if model.cfg.ar_hidden:
        out["velocity_mse_teacher_forced"] = mse(predict(model, w, "prior", teacher_forced=True)[0],
                                                 w.note_velocity)
    return out


def check_choices(mcfg: ModelConfig, tcfg: TrainConfig) -> None:
    """Refuse, before any training, an unknown ``schedule`` or a ``select_on`` this model cannot be selected on."""
    if tcfg.schedule not in ("plateau", "cosine"):
        raise ValueError(f"schedule={tcfg.schedule!r}: use 'plateau' or 'cosine'")
    if tcfg.select_on not in ("honest", "teacher_forced"):
        raise ValueError(f"select_on={tcfg.select_on!r}: use 'honest' or 'teacher_forced'")
    if tcfg.select_on == "teacher_forced" and not mcfg.ar_hidden:
        raise ValueError("select_on='teacher_forced' needs the ar layer (ar_hidden > 0)")


def selection_loss(va: dict[str, float], tcfg: TrainConfig) -> float:
    """The validation number that early stopping and weight selection minimise (``select_on``)."""
    return va["velocity_mse_teacher_forced"] if tcfg.select_on == "teacher_forced" else va["loss"]


def _forced(va: dict[str, float]) -> str:
    """The teacher-forced velocity MSE for the epoch log line, when the model has one."""
    tf = va.get("velocity_mse_teacher_forced")
    return "" if tf is None else f" (teacher-forced {tf:.5f})"


def _honest(tr: dict[str, float]) -> str:
    """The training honest path's velocity MSE for the epoch log line, when it is trained."""
    v = tr.get("velocity_mse_honest")
    return "" if v is None else f", honest {v:.5f}"


class EMA:
    """An exponential moving average of a model's weights (``.model`` is the averaged copy)."""

    def __init__(self, model: HumanizerVAE, decay: float) -> None:
        self.model = copy.deepcopy(model)
        self.decay = decay
        self.steps = 0

    @torch.no_grad()
    def update(self, model: HumanizerVAE) -> None:
        """Move the average towards ``model``; the decay ramps up over the first steps
        (1/10, 2/11, ...) so the average is not dragged back to the random initialisation."""
        self.steps += 1
        d = min(self.decay, self.steps / (self.steps + 9))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            e.lerp_(p, 1.0 - d) if e.dtype.is_floating_point else e.copy_(p)


@dataclass
class History:
    """What happened in a run: one dict per epoch, the best epoch, and why it stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_loss: float = float("inf")
    stop_reason: str = ""
    seconds: float = 0.0


def cosine_lr(tcfg: TrainConfig, elapsed_s: float) -> float:
    """The learning rate after ``elapsed_s`` seconds of a run whose schedule is ``cosine``: from
    ``lr`` down to ``lr_min`` over the time budget. The runs are compute-bound (the best epoch is
    the last), so the step size should shrink as the budget runs out, whatever the machine's load."""
    frac = min(1.0, elapsed_s / (60.0 * tcfg.max_minutes))
    return tcfg.lr_min + (tcfg.lr - tcfg.lr_min) * 0.5 * (1.0 + math.cos(math.pi * frac))


def _train_epoch(model, ema: EMA, opt, w: Windows, tcfg: TrainConfig, rng, progress: bool,
                 epoch: int, start: float) -> dict[str, float]:
    """One pass over the training windows; returns the mean of each loss term."""
    from tqdm.auto import tqdm

    model.train()
    sums: dict[str, float] = {}
    n_batches = (len(w) + tcfg.batch_size - 1) // tcfg.batch_size
    batches = batch_indices(len(w), tcfg.batch_size, rng, np.diff(w.note_start))
    bar = tqdm(batches, total=n_batches, desc=f"epoch {epoch}", leave=False, disable=not progress, unit="batch")
    for idx in bar:
        if tcfg.schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = cosine_lr(tcfg, time.monotonic() - start)
        shift = transposition(w, idx, tcfg.transpose, rng) if tcfg.transpose else None
        batch = batch_for(w, idx, model.cfg, shift)
        losses = model.loss(batch, model(batch, z_mode="sample"))
        opt.zero_grad()
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        ema.update(model)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        bar.set_postfix(loss=f"{float(losses['loss'].detach()):.4f}")
    return {k: v / max(n_batches, 1) for k, v in sums.items()}


def train(mcfg: ModelConfig, tcfg: TrainConfig, train_w: Windows, val_w: Windows,
          log: Callable[[str], None] = print, progress: bool = True) -> tuple[HumanizerVAE, History]:
    """Train a fresh model; stop early on the validation loss; return the best weights."""
    check_choices(mcfg, tcfg)
    seed_everything(tcfg.seed, tcfg.threads)
    rng = np.random.default_rng(tcfg.seed)
    model = HumanizerVAE(mcfg)
    ema = EMA(model, tcfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, min_lr=tcfg.lr_min)
    hist, best_state, start = History(), None, time.monotonic()
    for epoch in range(1, tcfg.epochs + 1):
        t0 = time.monotonic()
        tr = _train_epoch(model, ema, opt, train_w, tcfg, rng, progress, epoch, start)
        va = validation_loss(ema.model, val_w)
        selected = selection_loss(va, tcfg)
        if tcfg.schedule != "cosine":
            sched.step(selected)
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in tr.items()},
               **{f"val_{k}": v for k, v in va.items()},
               "lr": opt.param_groups[0]["lr"], "seconds": time.monotonic() - t0}
        hist.epochs.append(row)
        better = selected < hist.best_loss
        if better:
            hist.best_loss, hist.best_epoch = selected, epoch
            best_state = {k: v.detach().clone() for k, v in ema.model.state_dict().items()}
        log(f"epoch {epoch:3d}  train loss {tr['loss']:.5f} (vel {tr['velocity_mse']:.5f}{_honest(tr)}, "
            f"off {100 * tr['offset_mae']:.2f} ms, kl {tr['kl']:.1f})  "
            f"val vel MSE {va['velocity_mse']:.5f}{_forced(va)}  val timing MAE {100 * va['offset_mae']:.2f} ms  "
            f"lr {row['lr']:.1e}  {row['seconds']:.0f}s{'  *best' if better else ''}")
        elapsed = (time.monotonic() - start) / 60
        if epoch - hist.best_epoch >= tcfg.patience:
            hist.stop_reason = f"no better validation loss for {tcfg.patience} epochs"
            break
        if elapsed + row["seconds"] / 60 > tcfg.max_minutes:
            hist.stop_reason = f"time budget of {tcfg.max_minutes:g} min reached"
            break
    else:
        hist.stop_reason = f"all {tcfg.epochs} epochs run"
    if best_state is not None:
        model.load_state_dict(best_state)
    hist.seconds = time.monotonic() - start
    log(f"stopped after epoch {len(hist.epochs)}: {hist.stop_reason}; best epoch {hist.best_epoch} "
        f"(validation {tcfg.select_on} loss {hist.best_loss:.5f}), {hist.seconds / 60:.1f} min")
    model.eval()
    return model, hist
