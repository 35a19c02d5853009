"""The reproduction tables' arithmetic: seeds, recording bootstrap, paired differences, ridge, repeats."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")  # the ridge features come from the model's batch builder

from piano_metronome.model.config import ModelConfig  # noqa: E402
from piano_metronome.model.diagnostics import _group_sd, repeated_bars  # noqa: E402
from piano_metronome.model.evaluate import distinct_notes  # noqa: E402
from piano_metronome.model.features import windows_from_table  # noqa: E402
from piano_metronome.model.report import SeedRow, paired_difference, summarize  # noqa: E402
from piano_metronome.model.ridge import LAMBDAS, fit_ridge, ridge_predictions  # noqa: E402
from tests.test_model import fake_table  # noqa: E402


@pytest.fixture(scope="module")
def split():
    """Distinct notes of a few fake recordings."""
    return distinct_notes(windows_from_table(fake_table(12, "validation", 2)))


def test_seed_mean_sd_and_interval(split):
    """Mean and SD are those of the per-seed MSEs; the interval holds the mean; a perfect
    predictor scores 0 with a zero-width interval."""
    ev = split
    mask = np.ones(len(ev.velocity), bool)
    rng = np.random.default_rng(0)
    seeds = [ev.velocity + rng.normal(0, s, len(ev.velocity)) for s in (0.05, 0.1, 0.15)]
    (_, n, vel, off), (_, _, perfect, _) = summarize([SeedRow("noisy", seeds, None),
                                                      SeedRow("perfect", [ev.velocity], None)], ev, mask)
    per_seed = [float(np.mean((v - ev.velocity) ** 2)) for v in seeds]
    assert n == 3 and off is None
    assert vel.mean == pytest.approx(np.mean(per_seed)) and vel.sd == pytest.approx(np.std(per_seed, ddof=1))
    assert vel.low < vel.mean < vel.high
    assert perfect.mean == perfect.low == perfect.high == 0.0 and perfect.sd == 0.0


def test_bootstrap_is_by_recording(split):
    """With every error in one recording, a resample without it scores 0: the interval reaches 0."""
    ev = split
    first = ev.recording == sorted(set(ev.recording))[0]
    pred = np.where(first, ev.velocity + 0.1, ev.velocity)
    (_, _, vel, _), = summarize([SeedRow("one bad take", [pred], None)], ev, np.ones(len(pred), bool))
    assert vel.low == 0.0 and vel.high > vel.mean


def test_paired_difference_sign(split):
    """A predictor closer to the target than another has a difference interval below zero."""
    ev = split
    good, bad = ev.velocity + 0.01, ev.velocity + 0.1
    d = paired_difference([good], [bad], ev.velocity, ev.recording, squared=True)
    assert d.high < 0 and d.mean == pytest.approx(0.01**2 - 0.1**2)


def test_ridge_learns_the_rule_and_picks_its_penalty_on_validation():
    """On the fake rule (top note and downbeat louder) ridge beats the training mean by far."""
    tr = windows_from_table(fake_table(24, "train", 0))
    va = windows_from_table(fake_table(8, "validation", 1))
    cfg = ModelConfig()
    model = fit_ridge(tr, va, cfg)
    assert set(model.lambdas) <= set(LAMBDAS)
    _, preds = ridge_predictions(tr, va, cfg, {"validation": va})
    v, o = preds["validation"]
    assert np.mean((v - va.note_velocity) ** 2) < 0.3 * np.var(va.note_velocity)
    assert np.all((o >= -0.5) & (o <= 0.5))


def test_repeated_bars_and_their_spread():
    """Two windows of one take with identical notes: every note is in a group of two, and the
    spread is the SD of the two plays."""
    table = fake_table(1, "validation", 5)
    row = table.to_pylist()[0]
    second = {**row, "window_id": row["window_id"][:-3] + "001", "start_step": 64,
              "note_velocity": [min(v + 10, 127) for v in row["note_velocity"]]}
    w = windows_from_table(type(table).from_pylist([row, second], schema=table.schema))
    group = repeated_bars(w)
    assert (group >= 0).all() and np.bincount(group).max() == np.bincount(group).min() > 1
    assert _group_sd(w.note_velocity * 127, group) == pytest.approx(np.std([0, 10], ddof=1), rel=1e-4)


def test_headroom_takes_out_each_recordings_and_windows_level():
    """Errors made of a level per recording, a level per window and per-note noise: removing the
    recording's level leaves the window's and the noise, removing the window's leaves the noise."""
    from piano_metronome.model.diagnostics import HONEST, headroom_report

    w = windows_from_table(fake_table(12, "validation", 2))
    ev = distinct_notes(w)
    window = w.note_window[ev.first]
    rng = np.random.default_rng(1)
    rec_level = {r: rng.normal(0, 0.2) for r in set(ev.recording)}
    win_level = rng.normal(0, 0.05, len(w))
    noise = rng.normal(0, 0.01, len(ev.velocity))
    error = np.array([rec_level[r] for r in ev.recording]) + win_level[window] + noise
    report = headroom_report(ev, window, {HONEST: [(ev.velocity - error, ev.offset)]}, 6)
    rows = {line[:44].strip(): float(line.split()[-2]) for line in report.splitlines()[3:]}
    keep = np.rint(ev.velocity * 127) >= 6
    assert rows["as predicted"] == pytest.approx(np.mean(error[keep] ** 2), rel=1e-3)
    assert np.var(win_level) * 0.5 < rows["minus each recording's level"] < rows["as predicted"] / 4
    assert rows["minus each window's level"] < 2 * 0.01**2
    assert "reads the target" in report
