"""``piano-metronome baseline``: train, evaluate and apply the reference humanizing VAE.

torch is imported inside the command bodies, so ``piano-metronome --help`` stays instant and
the rest of the tool works without the ``model`` extra installed.
"""

from __future__ import annotations

from pathlib import Path

import typer

from piano_metronome.commands.common import fail
from piano_metronome.safety import OverwriteError, check_file, refused_exit, write_text_atomic

CONFIGS = ("d1", "d2", "all", "demo")

app = typer.Typer(
    help="The reference model: a GrooVAE-style VAE that adds velocities and timing to a score. "
         "Needs the `model` extra (torch, safetensors).",
    no_args_is_help=True,
)

OPTION_DATA = typer.Option(..., "--data", help="Built dataset folder (what `piano-metronome build` wrote).",
                           show_default=False, metavar="DIR")
OPTION_CHECKPOINT = typer.Option(..., "--checkpoint", help="Checkpoint folder written by `baseline train`.",
                                 show_default=False, metavar="DIR")


def _require_torch() -> None:
    """Fail with an installation hint instead of a traceback when torch is missing."""
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise fail("the baseline needs torch and safetensors: pip install -e '.[model]'") from None


def _overrides(values: list[str]):
    """``--set name=value`` pairs applied to ModelConfig or TrainConfig, values parsed as JSON;
    a bare word is taken as a string where the field is one (``--set select_on=teacher_forced``)."""
    import json
    from dataclasses import fields

    from piano_metronome.model.config import ModelConfig, TrainConfig

    mcfg, tcfg = ModelConfig(), TrainConfig()
    for value in values:
        name, _, raw = value.partition("=")
        target = next((c for c in (mcfg, tcfg) if name in {f.name for f in fields(c)}), None)
        if target is None or not raw:
            raise fail(f"--set {value!r}: expected NAME=VALUE, NAME a field of ModelConfig or TrainConfig")
        try:
            setattr(target, name, json.loads(raw))
        except json.JSONDecodeError:
            if not isinstance(getattr(target, name), str):
                raise fail(f"--set {value!r}: value is not a number, boolean or JSON string") from None
            setattr(target, name, raw)
    return mcfg, tcfg


@app.command("train")
def train(
    data: Path = OPTION_DATA,
    config: str = typer.Option("d1", "--config", "-c", help="Dataset config: d1, d2, all or demo."),
    epochs: int = typer.Option(None, "--epochs", help="Most epochs (default: TrainConfig.epochs)."),
    out: Path = typer.Option(None, "--out", "-o", help="Checkpoint folder (default: checkpoints/<config>)."),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation, shuffling and z noise."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Stop after the epoch that passes this "
                                      "(default: TrainConfig.max_minutes)."),
    threads: int = typer.Option(None, "--threads", help="torch threads (default: TrainConfig.threads)."),
    set_: list[str] = typer.Option([], "--set", help="Override a hyper-parameter, e.g. --set head_hidden=256 "
                                   "(any field of ModelConfig or TrainConfig, see model/config.py).",
                                   metavar="NAME=VALUE"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars (epoch lines are still printed)."),
) -> None:
    """Train from scratch with early stopping on the validation split; save model.safetensors,
    config.json and metrics.json, then print the validation table."""
    if config not in CONFIGS:
        raise fail(f"--config must be one of {', '.join(CONFIGS)}, not {config!r}")
    _require_torch()
    from piano_metronome.model.evaluate import format_tables
    from piano_metronome.model.pipeline import fit

    mcfg, tcfg = _overrides(set_)
    tcfg.seed = seed
    tcfg.max_minutes = max_minutes if max_minutes is not None else tcfg.max_minutes
    tcfg.epochs = epochs if epochs is not None else tcfg.epochs
    tcfg.threads = threads if threads is not None else tcfg.threads
    out = out if out is not None else Path("checkpoints") / config
    try:
        _, tables, metrics = fit(data, config, mcfg, tcfg, out, log=lambda s: typer.echo(s, err=True),
                                 progress=not quiet)
    except OverwriteError as exc:
        raise refused_exit(exc) from None
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(format_tables(tables, f"validation, best epoch {metrics['best_epoch']} "
                                     f"({metrics['total_minutes']:.1f} min)"))
    typer.echo(f"\nsaved {out}/model.safetensors, config.json, metrics.json")


@app.command("evaluate")
def evaluate(
    data: Path = OPTION_DATA,
    checkpoint: Path = OPTION_CHECKPOINT,
    split: str = typer.Option("validation", "--split", help="Split to score: validation or test."),
    config: str = typer.Option(None, "--config", help="Dataset config (default: the one it was trained on)."),
    posterior: bool = typer.Option(False, "--posterior", help="Add the posterior-z reconstruction row "
                                   "(the encoder sees the target: a diagnostic, not a prediction)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the tables as JSON here.", metavar="FILE"),
    force: bool = typer.Option(False, "--force", help="Replace an existing --json file."),
) -> None:
    """Per subset: velocity MSE (velocity/127), velocity MAE (MIDI), timing MAE (ms) of the model
    honest (z = the prior's mean), beside trivial baselines fitted on train."""
    _require_torch()
    import json

    from piano_metronome.model.evaluate import format_tables, tables_to_json
    from piano_metronome.model.pipeline import evaluate_checkpoint

    if json_out is not None:
        try:
            check_file(json_out, force)
        except OverwriteError as exc:
            raise refused_exit(exc) from None
    try:
        tables = evaluate_checkpoint(data, checkpoint, split, config, posterior)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(format_tables(tables, f"{split} split, checkpoint {checkpoint}"))
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(tables_to_json(tables), indent=2) + "\n")


@app.command("humanize")
def humanize(
    in_mid: Path = typer.Argument(..., help="Quantized MIDI file (its tempo map sets the grid).",
                                  metavar="IN.mid", show_default=False),
    out_mid: Path = typer.Argument(..., help="Humanized MIDI file to write.", metavar="OUT.mid",
                                   show_default=False),
    checkpoint: Path = OPTION_CHECKPOINT,
    steps_per_beat: int = typer.Option(None, "--steps-per-beat", help="Grid: 4 = 16ths, 2 = 8ths "
                                       "(default: the grid the model was trained on; 4 for `all`)."),
    key: str = typer.Option(None, "--key", help="Key label such as C, Bb or F#m (default: estimated)."),
    samples: int = typer.Option(0, "--samples", min=0, help="Write N different performances OUT-1.mid … "
                                "OUT-N.mid, each from its own z drawn from p(z | score), instead of the "
                                "most typical one (z = the prior's mean) in OUT.mid."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first sample (the k-th uses seed + k - 1)."),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
) -> None:
    """Give a quantized MIDI file human velocities and timing, written through the same MIDI writer
    as `render` (the input's whole tempo map, its pedal)."""
    _require_torch()
    from piano_metronome.inputs.midi import RecordingError
    from piano_metronome.model.checkpoint import load_checkpoint
    from piano_metronome.model.humanize import humanize_file

    try:
        model, _, _, data = load_checkpoint(checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    grids = set(data.get("train", {}).get("steps_per_beat", {}).values())
    spb = steps_per_beat or (grids.pop() if len(grids) == 1 else 4)
    try:
        rep = humanize_file(model, in_mid, out_mid, spb, key=key, samples=samples, seed=seed, force=force)
    except OverwriteError as exc:
        raise refused_exit(exc) from None
    except (RecordingError, ValueError) as exc:
        raise fail(str(exc)) from None
    low, high = rep.velocity_range
    typer.echo(f"wrote {', '.join(rep.paths)}: {rep.notes} notes in {rep.windows} windows, "
               f"grid {rep.steps_per_beat}/beat, "
               f"key signature {rep.key_signature}, velocities {low}–{high}, "
               f"mean shift {rep.mean_abs_shift_ms:.1f} ms")


def register(root: typer.Typer) -> None:
    """Add the ``baseline`` sub-app (train, evaluate, humanize) to the root app."""
    root.add_typer(app, name="baseline")
