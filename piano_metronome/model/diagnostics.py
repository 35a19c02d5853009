"""What ``benchmarks/reproduce_baseline.py`` prints beyond training: the seed tables and the latent.

Kept out of the benchmark so it can be read (and tested) as library code: :func:`split_tables`
turns per-seed predictions into the validation or test table with intervals and paired
differences against the best baselines; :func:`latent_report` says how much the latent carries
(KL per window, posterior against honest) and how varied sampled performances are, beside how
much the pianist himself varies between repeats of the same bar in a take.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .evaluate import Notes, author_table_name, selected, trivial_predictions
from .features import Windows
from .report import SeedRow, Stat, format_summary, paired_difference, summarize

Merged = dict[str, list[tuple[np.ndarray, np.ndarray]]]
Pairs = list[tuple[np.ndarray | None, np.ndarray | None]]
HONEST = "VAE, honest (score only, z = prior mean)"
RIDGE = "ridge regression on the same score features"


def _seed_rows(merged: Merged) -> list[SeedRow]:
    """Model rows (several seeds) from (velocity, offset) pairs per seed."""
    return [SeedRow(name, [v for v, _ in preds], [o for _, o in preds]) for name, preds in merged.items()]


def _interval(s: Stat, digits: int) -> str:
    """``mean [low, high]``."""
    return f"{s.mean:+.{digits}f} [{s.low:+.{digits}f}, {s.high:+.{digits}f}]"


def _differences(ev: Notes, mask: np.ndarray, merged: Merged, trivial: dict[str, Any]) -> list[str]:
    """The honest VAE minus ridge and minus the best trivial baseline, per metric, with intervals."""
    if HONEST not in merged:
        return []
    honest = merged[HONEST]
    rec, ms = ev.recording[mask], ev.ms_per_step[mask]
    lines = ["  honest VAE minus baseline, paired over seeds and recordings (below 0 = VAE better):"]
    others: dict[str, Pairs | None] = {RIDGE: list(merged.get(RIDGE, [])), "mean velocity by position and register":
              [(trivial["mean velocity by position and register"][0], None)] if trivial else None,
              "mean offset by position": [(None, trivial["mean offset by position"][1])] if trivial else None}
    for name, preds in others.items():
        if not preds:
            continue
        parts = []
        vs = [v[mask] for v, _ in preds if v is not None]
        os_ = [o[mask] for _, o in preds if o is not None]
        if vs:
            d = paired_difference([v[mask] for v, _ in honest], vs, ev.velocity[mask], rec, squared=True)
            parts.append(f"velocity MSE {_interval(d, 5)}")
        if os_:
            d = paired_difference([o[mask] for _, o in honest], os_, ev.offset[mask], rec, squared=False, weight=ms)
            parts.append(f"timing MAE {_interval(d, 2)} ms")
        lines.append(f"    vs {name}: " + "; ".join(parts))
    return lines


def split_tables(split: str, ev: Notes, train: Notes, merged: Merged, seeds: list[int], floor: int) -> str:
    """The table of one split per subset: model rows over seeds, ridge, trivial baselines, differences."""
    out = []
    for subset in sorted(set(ev.subset)):
        mask = selected(ev, subset, floor)
        trivial = trivial_predictions(train, ev, subset, floor)
        rows = _seed_rows(merged) + [SeedRow(name, None if v is None else [v], None if o is None else [o])
                                     for name, (v, o) in trivial.items()]
        n_rec = len(set(ev.recording[mask]))
        title = (f"\n{split} split, {author_table_name(subset)}: {int(mask.sum())} notes, {n_rec} recordings, "
                 f"seeds {' '.join(map(str, seeds))} (mean ± sd over seeds, 95% bootstrap CI over recordings)")
        out.append(format_summary(title, summarize(rows, ev, mask)))
        out.extend(_differences(ev, mask, merged, trivial))
    return "\n".join(out)


def kl_per_window(model: Any, w: Windows) -> np.ndarray:
    """KL(q(z | performance) || p(z | score)) of every window, nats."""
    import torch

    from .train import batch_for, batch_indices
    from .vae import kl_per_window as kl

    model.eval()
    out = []
    with torch.no_grad():
        for idx in batch_indices(len(w), 128, None):
            batch = batch_for(w, idx, model.cfg)
            tokens = model.tokens(batch)
            mu, logvar = model.encode(batch, tokens)
            pmu, plogvar = model.prior_params(batch, tokens)
            out.append(kl({"mu": mu, "logvar": logvar, "prior_mu": pmu, "prior_logvar": plogvar}).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def sample_spread(model: Any, w: Windows, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Per note, the SD over ``samples`` sampled performances of velocity (MIDI) and offset (ms)."""
    from .train import predict

    draws = [predict(model, w, "sample", seed=k) for k in range(samples)]
    ms = 60000.0 / w.bpm[w.note_window] / w.steps_per_beat[w.note_window]
    v = np.stack([d[0] for d in draws]) * 127
    o = np.stack([d[1] for d in draws]) * ms
    return v.std(0, ddof=1), o.std(0, ddof=1)


def repeated_bars(w: Windows) -> np.ndarray:
    """Group id per note for cells (recording, position in bar, key) of bars played twice or more
    with the very same notes in one take; -1 for notes of bars that are not repeated."""
    win = w.note_window
    bar_len = (w.steps_per_beat * w.beats_per_bar)[win]
    abs_step = w.start_step[win] + w.note_step
    bar, pos = abs_step // bar_len, abs_step % bar_len
    rec = np.unique(w.recording.astype(str), return_inverse=True)[1][win]
    bars: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(zip(rec.tolist(), bar.tolist(), strict=True)):
        bars.setdefault(key, []).append(i)
    signature: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
    for (r, b), notes in bars.items():
        sig = (r, tuple(sorted(zip(pos[notes].tolist(), w.note_key[notes].tolist(), strict=True))))
        if len(notes) >= 3:
            signature.setdefault(sig, []).append((r, b))
    group = np.full(len(win), -1, dtype=np.int64)
    gid = 0
    for sig, members in signature.items():
        if len(members) < 2:
            continue
        for cell in range(len(sig[1])):
            for key in members:
                notes = sorted(bars[key], key=lambda i: (pos[i], w.note_key[i]))
                group[notes[cell]] = gid
            gid += 1
    return group


def _group_sd(values: np.ndarray, group: np.ndarray) -> float:
    """Mean over groups of the SD (ddof 1) of ``values`` within each group."""
    ok = group >= 0
    g, v = group[ok], values[ok]
    n = np.bincount(g).astype(np.float64)
    mean = np.bincount(g, weights=v) / np.maximum(n, 1)
    var = np.bincount(g, weights=(v - mean[g]) ** 2) / np.maximum(n - 1, 1)
    return float(np.sqrt(var[n >= 2]).mean()) if (n >= 2).any() else float("nan")


def latent_report(runs: list[tuple[Any, Any, dict]], w: Windows, samples: int) -> str:
    """KL per window and the spread of sampled performances (validation split), per run."""
    ms = 60000.0 / w.bpm[w.note_window] / w.steps_per_beat[w.note_window]
    group = repeated_bars(w)
    n_groups = int(group.max(initial=-1)) + 1
    lines = [f"\nlatent, validation split ({len(w)} windows; {samples} sampled performances of each):"]
    if n_groups:
        lines.append(f"  pianist: between repeats of the same bar in a take ({n_groups} repeated notes, "
                     f"{int((group >= 0).sum())} plays): velocity SD {_group_sd(w.note_velocity * 127, group):.2f} "
                     f"MIDI, offset SD {_group_sd(w.note_offset * ms, group):.2f} ms")
    for seed, model, _ in runs:
        kl = kl_per_window(model, w)
        v_sd, o_sd = sample_spread(model, w, samples)
        rep = group >= 0
        on_repeats = (f"; on the repeated bars {v_sd[rep].mean():.2f} MIDI, {o_sd[rep].mean():.2f} ms"
                      if rep.any() else "")
        lines.append(f"  seed {seed}: KL per window mean {kl.mean():.2f} nats (median {np.median(kl):.2f}); "
                     f"sample spread per note: velocity SD {v_sd.mean():.2f} MIDI, offset SD {o_sd.mean():.2f} ms"
                     + on_repeats)
    return "\n".join(lines)


def _minus_group_level(error: np.ndarray, group: np.ndarray, squared: bool) -> np.ndarray:
    """``error`` with each group's own level taken out: its mean (for a squared error, the best
    constant) or its median (for an absolute error)."""
    _, inv = np.unique(group, return_inverse=True)
    if squared:
        level = np.bincount(inv, weights=error) / np.bincount(inv)
    else:
        level = np.array([np.median(error[inv == g]) for g in range(int(inv.max(initial=-1)) + 1)])
    return error - level[inv]


def headroom_report(ev: Notes, window: np.ndarray, merged: Merged, floor: int) -> str:
    """How much of the honest error is a take's or a window's overall level, per subset.

    Each row READS THE TARGET (it is not a predictor): the honest predictions of every seed, with
    each recording's (then each window's) mean velocity error and median offset error taken
    out. A score-only model can at best learn those levels from the score, so the rows bound
    what conditioning on the take or on the passage could gain, and say whether the rest of the
    error lies inside the windows, note by note. ``window`` is each distinct note's window.
    """
    if HONEST not in merged:
        return ""
    lines = ["\nheadroom (reads the target, not a predictor): the honest predictions with each recording's or "
             "each window's own level of error removed"]
    for subset in sorted(set(ev.subset)):
        mask = selected(ev, subset, floor)
        v_true, o_true = ev.velocity[mask], ev.offset[mask]
        ms = ev.ms_per_step[mask]
        lines.append(f"  {author_table_name(subset)}     velocity MSE   timing MAE ms")
        for label, group in (("as predicted", None), ("minus each recording's level", ev.recording[mask]),
                             ("minus each window's level", window[mask])):
            v_mse, o_mae = [], []
            for v, o in merged[HONEST]:
                dv, do = v_true - v[mask], (o_true - o[mask]) * ms
                if group is not None:
                    dv, do = _minus_group_level(dv, group, True), _minus_group_level(do, group, False)
                v_mse.append(float(np.mean(dv**2)))
                o_mae.append(float(np.mean(np.abs(do))))
            lines.append(f"    {label:<40} {np.mean(v_mse):.5f}   {np.mean(o_mae):6.2f}")
    return "\n".join(lines)
