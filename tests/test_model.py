"""Smoke tests of the reference VAE: it learns, repeats itself, round-trips, evaluates, humanizes.

Everything runs on a small synthetic table with the dataset's columns (built here, so these
tests depend only on the data contract), with a tiny model: the whole module takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the `model` extra (torch + safetensors); CI installs it

import pyarrow as pa  # noqa: E402
import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from piano_metronome.model.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from piano_metronome.model.config import ModelConfig, TrainConfig  # noqa: E402
from piano_metronome.model.evaluate import distinct_notes, evaluate_predictions  # noqa: E402
from piano_metronome.model.features import CONTEXT_DIM, make_batch, windows_from_table  # noqa: E402
from piano_metronome.model.pipeline import HONEST_ROW, POSTERIOR_ROW, evaluate_model  # noqa: E402
from piano_metronome.model.train import predict, train  # noqa: E402
from piano_metronome.model.vae import HumanizerVAE, piano_roll  # noqa: E402

TINY = {"d_model": 16, "heads": 2, "layers": 1, "latent": 4, "key_embed": 4, "head_hidden": 32,
        "ar_hidden": 8, "dropout": 0.0}
SCHEMA = pa.schema([
    ("window_id", pa.string()), ("recording_id", pa.string()), ("subset", pa.string()),
    ("split", pa.string()),
    ("window_index", pa.int32()), ("start_step", pa.int32()), ("start_time_s", pa.float64()),
    ("num_steps", pa.int16()), ("valid_steps", pa.int16()), ("steps_per_beat", pa.int8()),
    ("beats_per_bar", pa.int8()), ("bpm", pa.float32()), ("tempo_norm", pa.float32()),
    ("latency_ms", pa.float32()), ("key_label", pa.int64()), ("key_signature", pa.int8()),
    ("key_estimated", pa.int64()), ("key_confidence", pa.float32()),
    ("note_step", pa.list_(pa.int8())), ("note_key", pa.list_(pa.int8())),
    ("note_offset", pa.list_(pa.float32())), ("note_velocity", pa.list_(pa.uint8())),
    ("note_duration", pa.list_(pa.float32())), ("pedal", pa.list_(pa.uint8())),
])


def _window_notes(rng: np.random.Generator, spb: int) -> dict[str, list]:
    """A bass note and a 2–3 note chord on every beat, with a learnable rule for V and O.

    Velocity: loud top note, louder on beat 1, soft inner notes. Offset: late off the beat.
    """
    steps, keys, vels, offs = [], [], [], []
    for step in range(0, 64, spb):
        root = int(rng.integers(20, 32))
        chord = sorted({root, root + 12 + int(rng.integers(0, 5)), root + 19 + int(rng.integers(0, 5))})
        for rank, key in enumerate(chord):
            top = rank == len(chord) - 1
            downbeat = step % (4 * spb) == 0
            vel = 50 + 35 * top + 15 * downbeat + rng.normal(0, 3)
            steps.append(step)
            keys.append(key)
            vels.append(int(np.clip(vel, 1, 127)))
            offs.append(float(np.clip(0.15 * (not downbeat) + rng.normal(0, 0.03), -0.49, 0.49)))
    return {"note_step": steps, "note_key": keys, "note_velocity": vels, "note_offset": offs,
            "note_duration": [float(spb)] * len(steps)}


def fake_table(n_windows: int, split: str, seed: int, subset: str = "demo", spb: int = 4,
               hop: int = 64) -> pa.Table:
    """Windows of a few fake recordings with the dataset's columns (``hop`` < 64 makes overlap)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_windows):
        rec = f"{subset}/{split[:2]}{i // 4}"
        notes = _window_notes(rng, spb)
        rows.append({
            "window_id": f"{rec}/{i % 4:03d}", "recording_id": rec, "subset": subset, "split": split,
            "window_index": i % 4, "start_step": (i % 4) * hop, "start_time_s": (i % 4) * hop * 0.125,
            "num_steps": 64, "valid_steps": 64, "steps_per_beat": spb, "beats_per_bar": 4, "bpm": 120.0,
            "tempo_norm": 0.2, "latency_ms": -10.0, "key_label": 0, "key_signature": 0, "key_estimated": 0,
            "key_confidence": 1.0, **notes, "pedal": [0] * 64,
        })
    return pa.Table.from_pylist(rows, schema=SCHEMA)


@pytest.fixture(scope="module")
def data():
    """Train and validation windows (module-scoped: built once)."""
    return windows_from_table(fake_table(24, "train", 0)), windows_from_table(fake_table(8, "validation", 1))


def _tiny(epochs: int = 4, **train) -> tuple[ModelConfig, TrainConfig]:
    """A tiny model and a short, fast schedule (the plateau schedule: the cosine one follows the
    clock, so only the plateau one repeats bit for bit)."""
    train.setdefault("schedule", "plateau")
    tcfg = TrainConfig(epochs=epochs, batch_size=8, lr=1e-2, threads=1, patience=50, **train)
    return ModelConfig(**TINY), tcfg


def test_features_have_declared_widths(data):
    """Batch tensors have the widths the model was built for, one row per note."""
    w, _ = data
    batch = make_batch(w, np.arange(3))
    model = HumanizerVAE(ModelConfig(**TINY))
    n = int(w.note_start[3])
    assert batch.note_features.shape[0] == n and batch.step_features.shape[:2] == (3, 64)
    assert batch.context.shape == (3, CONTEXT_DIM)
    out = model(batch, z_mode="prior")
    assert out["velocity"].shape == (n,) and torch.all((out["offset"] > -0.5) & (out["offset"] < 0.5))


def test_piano_roll_marks_onsets_and_the_written_hold(data):
    """The step texture's roll: each note's onset at its step, and its key held from that step for
    its written duration (whole steps), cut at the window's end; nothing anywhere else."""
    w, _ = data
    idx = np.arange(3)
    batch = make_batch(w, idx)
    roll = piano_roll(batch, 64, 88).numpy()
    onsets, held = np.zeros((3, 64, 88)), np.zeros((3, 64, 88))
    for b, step, key, dur in zip(batch.batch_index.tolist(), batch.step.tolist(), batch.key.tolist(),
                                 w.note_written[batch.notes].tolist(), strict=True):
        onsets[b, step, key] = 1.0
        held[b, step:min(step + int(dur), 64), key] = 1.0
    assert held.sum() > onsets.sum() > 0  # the fake score has notes longer than a step
    np.testing.assert_array_equal(roll, np.concatenate([onsets, held], axis=-1))


def test_training_lowers_the_loss_and_is_seeded(data):
    """A few epochs lower the training loss; the same seed gives the same weights bit for bit."""
    w, val = data
    mcfg, tcfg = _tiny()
    model_a, hist = train(mcfg, tcfg, w, val, log=lambda _: None, progress=False)
    losses = [e["train_loss"] for e in hist.epochs]
    assert losses[-1] < losses[0] * 0.8
    assert hist.epochs[-1]["val_velocity_mse"] < np.var(val.note_velocity)
    model_b, _ = train(mcfg, tcfg, w, val, log=lambda _: None, progress=False)
    for name, tensor in model_a.state_dict().items():
        assert torch.equal(tensor, model_b.state_dict()[name]), name


def test_training_decodes_both_paths(data):
    """In training every window is decoded from z ~ q AND from the prior's mean, and the honest
    path's error reaches the prior (it is trained for the prediction that is evaluated)."""
    w, _ = data
    model = HumanizerVAE(ModelConfig(**TINY)).train()
    batch = make_batch(w, np.arange(4))
    losses = model.loss(batch, model(batch))
    assert {"velocity_mse", "velocity_mse_honest", "offset_mae_honest", "kl"} <= set(losses)
    losses["velocity_mse_honest"].backward()
    assert model.prior[0].weight.grad is not None and model.prior[0].weight.grad.abs().sum() > 0
    grad = model.encoder[0].weight.grad  # the honest path never reads the performance
    assert grad is None or not grad.any()


def test_z_shift_moves_a_whole_window_alike(data):
    """With ``z_shift`` and the head blind to z, changing z moves every note of a window by the
    same amount in the logits, and that amount is the shift layer's (z is a window-wide
    loudness and push); windows given the same z do not move."""
    w, _ = data
    model = HumanizerVAE(ModelConfig(**TINY, z_shift=True)).eval()
    assert model.z_shift is not None
    batch = make_batch(w, np.arange(3))
    with torch.no_grad():
        model.head[0].weight[:, -model.cfg.latent:] = 0.0
        z1 = torch.zeros(3, model.cfg.latent)
        z2 = z1.clone()
        z2[:2] = torch.randn(2, model.cfg.latent, generator=torch.Generator().manual_seed(0))
        (v1, o1), (v2, o2) = model.decode(batch, z1), model.decode(batch, z2)
        logit = torch.logit(v2.double()) - torch.logit(v1.double())
        push = torch.atanh(2 * o2.double()) - torch.atanh(2 * o1.double())
        want = (model.z_shift(z2) - model.z_shift(z1)).double()[batch.batch_index]
    torch.testing.assert_close(logit, want[:, 0], atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(push, want[:, 1], atol=1e-4, rtol=1e-3)
    third = batch.batch_index == 2
    assert third.any() and not logit[third].any() and logit[~third].abs().min() > 0


def test_posterior_dropout_weakens_only_the_posterior_path(data):
    """``posterior_dropout`` drops note states on the posterior path alone: at 1.0 that path's
    loss sends no gradient into the transformer, while the honest path's still does."""
    w, _ = data
    model = HumanizerVAE(ModelConfig(**TINY, posterior_dropout=1.0)).train()
    batch = make_batch(w, np.arange(4))
    qkv = model.blocks[0].qkv.weight
    for name, trained in (("velocity_mse", False), ("velocity_mse_honest", True)):
        model.zero_grad()
        model.loss(batch, model(batch))[name].backward()
        assert (qkv.grad is not None and bool(qkv.grad.any())) == trained, name


def test_cosine_schedule_spans_the_time_budget():
    """The cosine learning rate starts at lr, ends at lr_min when the budget is spent, and falls between."""
    from piano_metronome.model.train import cosine_lr

    tcfg = TrainConfig(lr=2e-3, lr_min=5e-5, max_minutes=10.0)
    rates = [cosine_lr(tcfg, s) for s in (0.0, 150.0, 300.0, 450.0, 600.0, 900.0)]
    assert rates[0] == pytest.approx(2e-3) and rates[-2] == rates[-1] == pytest.approx(5e-5)
    assert all(a > b for a, b in zip(rates[:-2], rates[1:-1], strict=True))


def test_checkpoint_round_trips_without_pickle(data, tmp_path: Path):
    """safetensors + JSON reload to a model with identical predictions."""
    w, val = data
    mcfg, tcfg = _tiny(epochs=1)
    model, _ = train(mcfg, tcfg, w, val, log=lambda _: None, progress=False)
    folder = save_checkpoint(tmp_path / "ckpt", model, tcfg, {"config": "demo"}, {"x": 1})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    header_len = int.from_bytes((folder / "model.safetensors").read_bytes()[:8], "little")
    json.loads((folder / "model.safetensors").read_bytes()[8:8 + header_len])  # a JSON header, no pickle
    loaded, mcfg2, tcfg2, info = load_checkpoint(folder)
    assert mcfg2 == mcfg and tcfg2.epochs == 1 and info == {"config": "demo"}
    for mode in ("prior", "posterior"):
        for a, b in zip(predict(model, val, mode), predict(loaded, val, mode), strict=True):
            np.testing.assert_array_equal(a, b)


def test_evaluation_counts_overlapping_notes_once():
    """With hop 32 each inner note is in two windows; the evaluation still sees it once."""
    w = windows_from_table(fake_table(4, "validation", 3, hop=32))
    notes = distinct_notes(w)
    assert w.num_notes > len(notes.first)
    abs_step = w.start_step[w.note_window] + w.note_step
    rec = w.recording[w.note_window]
    assert len(notes.first) == len({(r, s, k) for r, s, k in zip(rec, abs_step, w.note_key, strict=True)})


def test_evaluate_table_has_model_and_trivial_rows(data):
    """One table per subset: the model row, then the four trivial baselines with their numbers."""
    w, val = data
    v = np.full(val.num_notes, w.note_velocity.mean(), dtype=np.float32)
    tables = evaluate_predictions(w, val, {"constant": (v, np.zeros(val.num_notes, np.float32))})
    rows = {r.name: r for r in tables["demo"]}
    assert set(tables) == {"demo", "demo, velocity >= 6 (author's protocol)"}
    assert set(rows) == {"constant", "training-mean velocity", "mean velocity by position and register",
                         "zero offset", "mean offset by position"}
    mean_row = rows["training-mean velocity"]
    assert rows["constant"].velocity_mse == pytest.approx(mean_row.velocity_mse, rel=1e-5)
    assert rows["constant"].timing_mae_ms == pytest.approx(rows["zero offset"].timing_mae_ms)
    assert rows["mean offset by position"].timing_mae_ms < rows["zero offset"].timing_mae_ms
    assert rows["training-mean velocity"].timing_mae_ms is None


def test_author_protocol_table_drops_soft_notes(data):
    """The second table per subset scores and fits only notes with velocity >= 6, like the author."""
    from piano_metronome.model.evaluate import AUTHOR_MIN_VELOCITY, author_table_name

    w, _ = data
    table = fake_table(8, "validation", 1)
    soft = pa.array([[3] + v[1:] for v in table.column("note_velocity").to_pylist()], pa.list_(pa.uint8()))
    val = windows_from_table(table.set_column(table.schema.get_field_index("note_velocity"), "note_velocity", soft))
    v = np.full(val.num_notes, 0.5, dtype=np.float32)
    tables = evaluate_predictions(w, val, {"half": (v, np.zeros(val.num_notes, np.float32))})
    full, author = tables["demo"], tables[author_table_name("demo")]
    loud = np.rint(val.note_velocity * 127) >= AUTHOR_MIN_VELOCITY
    assert full[0].notes == val.num_notes and author[0].notes == int(loud.sum()) < val.num_notes
    assert author[0].velocity_mse == pytest.approx(float(np.mean((0.5 - val.note_velocity[loud]) ** 2)))
    mean_row = next(r for r in author if r.name == "training-mean velocity")
    expected = np.mean((w.note_velocity[np.rint(w.note_velocity * 127) >= 6].mean() - val.note_velocity[loud]) ** 2)
    assert mean_row.velocity_mse == pytest.approx(float(expected), rel=1e-5)


def test_teacher_forcing_sees_only_the_previous_velocity(data):
    """Honest predictions ignore every velocity; teacher-forced ones read the previous note's
    velocity and never the note's own or a later one."""
    w, _ = data
    model = HumanizerVAE(ModelConfig(**TINY)).eval()
    batch = make_batch(w, np.arange(2))
    i = 5  # a note inside the first window
    velocity = batch.velocity.clone()
    velocity[i:] = 1.0 - velocity[i:]  # the note itself and everything after it
    with torch.no_grad():
        for teacher in (False, True):
            a = model(batch, z_mode="prior", teacher_forced=teacher)["velocity"]
            b = model(batch.with_targets(velocity, batch.offset), z_mode="prior", teacher_forced=teacher)["velocity"]
            assert torch.equal(a[:i + 1], b[:i + 1]), teacher
        velocity[i - 1] = 1.0 - velocity[i - 1]
        changed = batch.with_targets(velocity, batch.offset)
        honest = model(batch, z_mode="prior")["velocity"]
        assert torch.equal(honest, model(changed, z_mode="prior")["velocity"])
        forced = model(changed, z_mode="prior", teacher_forced=True)["velocity"]
        assert not torch.equal(forced[i], model(batch, z_mode="prior", teacher_forced=True)["velocity"][i])


def _with_random_targets(table: pa.Table, seed: int) -> pa.Table:
    """The same score with every velocity and offset replaced by random values."""
    rng = np.random.default_rng(seed)
    vel = [rng.integers(1, 128, len(v)).tolist() for v in table.column("note_velocity").to_pylist()]
    off = [rng.uniform(-0.5, 0.5, len(v)).tolist() for v in table.column("note_offset").to_pylist()]
    table = table.set_column(table.schema.get_field_index("note_velocity"), "note_velocity",
                             pa.array(vel, pa.list_(pa.uint8())))
    return table.set_column(table.schema.get_field_index("note_offset"), "note_offset",
                            pa.array(off, pa.list_(pa.float32())))


def test_honest_evaluation_never_reads_the_targets(data):
    """Through the evaluation function itself: replacing every target velocity and offset of the
    evaluated windows by random values leaves the honest prediction bit for bit unchanged (while
    the posterior row, which may read them, and the scores do change)."""
    w, val = data
    mcfg, tcfg = _tiny(epochs=2)
    model, _ = train(mcfg, tcfg, w, val, log=lambda _: None, progress=False)
    table = fake_table(8, "validation", 7)
    real, noise = windows_from_table(table), windows_from_table(_with_random_targets(table, 3))
    tables_a, preds_a = evaluate_model(model, w, real, posterior=True)
    tables_b, preds_b = evaluate_model(model, w, noise, posterior=True)
    for a, b in zip(preds_a[HONEST_ROW], preds_b[HONEST_ROW], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(preds_a[POSTERIOR_ROW][0], preds_b[POSTERIOR_ROW][0])
    assert tables_a["demo"][0].velocity_mse != tables_b["demo"][0].velocity_mse


def test_written_duration_is_what_the_model_reads():
    """The default input is the written duration (whole steps): performed durations that round
    to the same steps give the same features; the ablation reads the performed ones."""
    table = fake_table(2, "train", 4)
    durs = [[d + 0.3 for d in ds] for ds in table.column("note_duration").to_pylist()]
    other = table.set_column(table.schema.get_field_index("note_duration"), "note_duration",
                             pa.array(durs, pa.list_(pa.float32())))
    a, b = windows_from_table(table), windows_from_table(other)
    idx = np.arange(2)
    assert torch.equal(make_batch(a, idx).note_features, make_batch(b, idx).note_features)
    assert np.array_equal(a.context, b.context)
    assert not torch.equal(make_batch(a, idx, duration_input="performed").note_features,
                           make_batch(b, idx, duration_input="performed").note_features)


def _write_dataset(folder: Path) -> None:
    """Arrow shards in the built layout: data/<config>/<split>-00000-of-00001.arrow."""
    shard_dir = folder / "data" / "demo"
    shard_dir.mkdir(parents=True)
    for split, n, seed in (("train", 16, 0), ("validation", 4, 1)):
        table = fake_table(n, split, seed)
        with pa.OSFile(str(shard_dir / f"{split}-00000-of-00001.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)


def _write_score(path: Path) -> None:
    """A quantized two-bar score at 90 qpm: a chord on every beat and a melody in 8ths."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=90.0)
    piano = pretty_midi.Instrument(program=0)
    beat = 60 / 90
    for i in range(8):
        for pitch in (48, 55, 64):
            piano.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=i * beat, end=(i + 1) * beat))
        for half in range(2):
            t = (i + half / 2) * beat
            piano.notes.append(pretty_midi.Note(velocity=80, pitch=72 + 2 * half, start=t, end=t + beat / 2))
    pm.instruments.append(piano)
    pm.write(str(path))


def test_commands_train_evaluate_humanize(tmp_path: Path):
    """The typer sub-app end to end on a tiny dataset folder and a tiny MIDI score."""
    import pretty_midi

    from piano_metronome.commands.baseline import register

    app = typer.Typer()
    app.command("noop")(lambda: None)  # a root with one command keeps `baseline` a sub-command
    register(app)
    _write_dataset(tmp_path / "ds")
    ckpt = tmp_path / "ckpt"
    sets = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]
    runner = CliRunner()
    res = runner.invoke(app, ["baseline", "train", "--data", str(tmp_path / "ds"), "--config", "demo",
                              "--epochs", "2", "--out", str(ckpt), "--threads", "1", "--quiet", *sets])
    assert res.exit_code == 0, res.output
    assert "training-mean velocity" in res.output and (ckpt / "metrics.json").is_file()
    res = runner.invoke(app, ["baseline", "evaluate", "--data", str(tmp_path / "ds"),
                              "--checkpoint", str(ckpt), "--posterior"])
    assert res.exit_code == 0, res.output
    assert "z = prior mean" in res.output and "posterior" in res.output
    _write_score(tmp_path / "in.mid")
    res = runner.invoke(app, ["baseline", "humanize", str(tmp_path / "in.mid"), str(tmp_path / "out.mid"),
                              "--checkpoint", str(ckpt), "--key", "C"])
    assert res.exit_code == 0, res.output
    src = pretty_midi.PrettyMIDI(str(tmp_path / "in.mid"))
    out = pretty_midi.PrettyMIDI(str(tmp_path / "out.mid"))
    src_notes, out_notes = (sorted(m.instruments[0].notes, key=lambda n: (n.pitch, n.start))
                            for m in (src, out))
    assert len(out_notes) == len(src_notes)
    assert min(n.start for n in out_notes) >= 0.0
    assert abs(out.get_tempo_changes()[1][0] - 90.0) < 1e-3  # MIDI stores whole µs per beat
    moved = [abs(a.start - b.start) for a, b in zip(src_notes, out_notes, strict=True)]
    assert max(moved) < 0.5 * (60 / 90) / 4 + 1e-6  # never more than half a 16th
    res = runner.invoke(app, ["baseline", "humanize", str(tmp_path / "in.mid"), str(tmp_path / "s.mid"),
                              "--checkpoint", str(ckpt), "--key", "C", "--samples", "3"])
    assert res.exit_code == 0, res.output
    takes = [pretty_midi.PrettyMIDI(str(tmp_path / f"s-{k}.mid")).instruments[0].notes for k in (1, 2, 3)]
    assert all(len(t) == len(src_notes) for t in takes)
    assert len({tuple((n.velocity, round(n.start, 4)) for n in t) for t in takes}) == 3  # three performances
    _commands_refuse_what_they_did_not_write(runner, app, tmp_path, ckpt, sets)


def _commands_refuse_what_they_did_not_write(runner: CliRunner, app: typer.Typer, tmp_path: Path,
                                             ckpt: Path, sets: list[str]) -> None:
    """Training into a folder with a user's file, humanizing or writing --json over an existing
    file: each refused with one line and exit 2, the file untouched; --force replaces the file;
    training again into our own checkpoint folder is allowed."""
    data = ["--data", str(tmp_path / "ds")]
    train_args = ["baseline", "train", *data, "--config", "demo", "--epochs", "1", "--threads", "1", "--quiet", *sets]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    res = runner.invoke(app, [*train_args, "--out", str(mine)])
    assert res.exit_code == 2 and "notes.txt" in res.output and "Traceback" not in res.output
    assert (mine / "notes.txt").read_text() == "my notes" and not (mine / "model.safetensors").exists()
    (ckpt / "config.json").write_text('{"a user\'s": "config"}')
    res = runner.invoke(app, [*train_args, "--out", str(ckpt)])
    assert res.exit_code == 2 and "config.json" in res.output
    (ckpt / "config.json").unlink()
    assert runner.invoke(app, [*train_args, "--out", str(ckpt)]).exit_code == 0  # only our own files left
    before = (tmp_path / "out.mid").read_bytes()
    humanize = ["baseline", "humanize", str(tmp_path / "in.mid"), str(tmp_path / "out.mid"),
                "--checkpoint", str(ckpt), "--key", "C"]
    res = runner.invoke(app, humanize)
    assert res.exit_code == 2 and "--force" in res.output and (tmp_path / "out.mid").read_bytes() == before
    assert runner.invoke(app, [*humanize, "--force"]).exit_code == 0
    (tmp_path / "t.json").write_text("mine")
    evaluate = ["baseline", "evaluate", *data, "--checkpoint", str(ckpt), "--json", str(tmp_path / "t.json")]
    res = runner.invoke(app, evaluate)
    assert res.exit_code == 2 and (tmp_path / "t.json").read_text() == "mine"
    assert runner.invoke(app, [*evaluate, "--force"]).exit_code == 0
    assert "z = prior mean" in (tmp_path / "t.json").read_text()


def test_humanize_keeps_the_whole_tempo_map(tmp_path: Path):
    """A score that changes tempo comes back with both tempos and every note on its real grid time."""
    import pretty_midi

    from piano_metronome.model.humanize import humanize_file

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    beat_times = [i * 0.5 for i in range(5)] + [2.0 + i * 1.0 for i in range(1, 5)]  # 120 qpm, then 60 qpm
    for t in beat_times:
        piano.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=t, end=t + 0.25))
    pm.instruments.append(piano)
    tick = pm.time_to_tick(2.0)
    pm._tick_scales.append((tick, 60.0 / (60.0 * pm.resolution)))  # a second tempo event at beat 4
    pm._update_tick_to_time(tick + 10 * pm.resolution)
    pm.write(str(tmp_path / "in.mid"))
    src = pretty_midi.PrettyMIDI(str(tmp_path / "in.mid"))
    assert len(src.get_tempo_changes()[0]) == 2
    model = HumanizerVAE(ModelConfig(**TINY)).eval()
    humanize_file(model, tmp_path / "in.mid", tmp_path / "out.mid", 4, key="C")
    out = pretty_midi.PrettyMIDI(str(tmp_path / "out.mid"))
    np.testing.assert_allclose(out.get_tempo_changes()[1], [120.0, 60.0], atol=1e-3)
    starts = sorted(n.start for n in out.instruments[0].notes)
    step = np.array([0.125] * 4 + [0.25] * 5)  # a 16th at each note's tempo
    assert np.all(np.abs(np.array(starts) - np.array(sorted(src.instruments[0].notes[i].start
                                                              for i in range(9)))) < 0.5 * step + 1e-6)


def test_bad_override_is_a_clean_error(tmp_path: Path):
    """An unknown --set name exits 2 with a message, not a traceback."""
    from piano_metronome.commands.baseline import register

    app = typer.Typer()
    app.command("noop")(lambda: None)
    register(app)
    res = CliRunner().invoke(app, ["baseline", "train", "--data", str(tmp_path), "--set", "nope=1"])
    assert res.exit_code == 2 and "nope=1" in res.output


def test_select_on_teacher_forced_picks_the_best_teacher_forced_epoch(data):
    """select_on=teacher_forced keeps the epoch with the lowest teacher-forced velocity MSE;
    an unknown choice fails before any training."""
    w, val = data
    mcfg, tcfg = _tiny(epochs=3, select_on="teacher_forced")
    _, hist = train(mcfg, tcfg, w, val, log=lambda _: None, progress=False)
    forced = [e["val_velocity_mse_teacher_forced"] for e in hist.epochs]
    assert hist.best_loss == min(forced) and hist.best_epoch == 1 + int(np.argmin(forced))
    with pytest.raises(ValueError, match="select_on"):
        train(mcfg, TrainConfig(epochs=1, select_on="bogus"), w, val, log=lambda _: None, progress=False)
    with pytest.raises(ValueError, match="ar_hidden"):
        train(ModelConfig(**{**TINY, "ar_hidden": 0}), tcfg, w, val, log=lambda _: None, progress=False)


def test_teacher_forced_only_checkpoint_refuses_to_humanize(tmp_path: Path):
    """A model trained with ar_hide = 0 never learnt the score-only prediction: humanize says so."""
    from piano_metronome.model.humanize import humanize_file

    model = HumanizerVAE(ModelConfig(**TINY, ar_hide=0.0)).eval()
    with pytest.raises(ValueError, match="teacher-forced only"):
        humanize_file(model, tmp_path / "missing.mid", tmp_path / "out.mid", 4)


def test_set_takes_a_bare_word_for_a_string_field(capsys):
    """--set select_on=teacher_forced needs no JSON quotes; a bare word for a number is refused."""
    from piano_metronome.commands.baseline import _overrides

    _, tcfg = _overrides(["select_on=teacher_forced", "lr=0.001"])
    assert tcfg.select_on == "teacher_forced" and tcfg.lr == 0.001
    with pytest.raises(typer.Exit):
        _overrides(["lr=fast"])
    assert "lr=fast" in capsys.readouterr().err
