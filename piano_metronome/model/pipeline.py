"""The end-to-end steps shared by ``baseline train``/``evaluate`` and the reproduction script.

Load a split of a built dataset, train with early stopping, evaluate beside the trivial
baselines, save the checkpoint. The commands only parse options and print.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig, TrainConfig
from .evaluate import Row, evaluate_predictions, tables_to_json
from .features import Windows, windows_from_table


def load_table(data_dir: str | Path, config: str, split: str):
    """One split of one config as a pyarrow Table: the Arrow shards directly, else ``load_dataset``.

    Reading ``data/<config>/<split>-*.arrow`` avoids copying the dataset into the HF cache;
    ``load_dataset`` is the fallback for any other layout the dataset card declares.
    """
    import pyarrow as pa

    data_dir = Path(data_dir)
    shards = sorted((data_dir / "data" / config).glob(f"{split}-*.arrow"))
    if shards:
        import datasets

        return pa.concat_tables([datasets.Dataset.from_file(str(s)).with_format("arrow")[:] for s in shards])
    import datasets

    ds = datasets.load_dataset(str(data_dir), config, split=split)
    return ds.with_format("arrow")[:]


def load_windows(data_dir: str | Path, config: str, split: str) -> Windows:
    """One split as :class:`Windows`; a clear error when it is empty or missing."""
    try:
        table = load_table(data_dir, config, split)
    except (FileNotFoundError, ValueError) as exc:
        raise FileNotFoundError(f"{data_dir}: no split {split!r} in config {config!r} ({exc})") from None
    if table.num_rows == 0:
        raise ValueError(f"{data_dir}: split {split!r} of config {config!r} has no windows")
    return windows_from_table(table)


def describe(w: Windows) -> dict[str, Any]:
    """Counts and grids of a split, stored with the checkpoint so its provenance is readable."""
    grids = {str(s): int(w.steps_per_beat[w.subset == s][0]) for s in sorted(set(w.subset.astype(str)))}
    return {"windows": len(w), "notes": w.num_notes, "steps_per_beat": grids}


#: The honest row: the score only, z = mean of p(z | score), no target read anywhere.
HONEST_ROW = "VAE, honest (score only, z = prior mean)"
#: The row comparable with the corpus author's published MSEs (his LSTM saw the previous true velocity).
TEACHER_FORCED_ROW = "VAE, teacher-forced (previous true velocity)"
#: A diagnostic: the encoder reads the very performance it reconstructs.
POSTERIOR_ROW = "VAE, z = posterior mean (sees target)"

Predictions = dict[str, tuple[np.ndarray, np.ndarray]]


def model_predictions(model, w: Windows, posterior: bool) -> Predictions:
    """The honest prediction, the labelled teacher-forced one, and the labelled posterior
    reconstruction if asked."""
    from .train import predict

    preds = {HONEST_ROW: predict(model, w, "prior")}
    if model.cfg.ar_hidden:
        preds[TEACHER_FORCED_ROW] = predict(model, w, "prior", teacher_forced=True)
    if posterior:
        preds[POSTERIOR_ROW] = predict(model, w, "posterior")
    return preds


def evaluate_model(model, train_w: Windows, eval_w: Windows,
                   posterior: bool = False) -> tuple[dict[str, list[Row]], Predictions]:
    """Tables of ``model`` on ``eval_w`` beside the trivial baselines, and the predictions scored."""
    preds = model_predictions(model, eval_w, posterior)
    return evaluate_predictions(train_w, eval_w, preds), preds


def fit(data_dir: str | Path, config: str, mcfg: ModelConfig, tcfg: TrainConfig, out: str | Path | None,
        log: Callable[[str], None] = print, progress: bool = True) -> tuple[Any, dict[str, list[Row]], dict]:
    """Train on ``train``, stop early on ``validation``, evaluate there, save to ``out`` if given.

    ``out`` is checked first: a folder holding anything but our checkpoint files is refused
    (:class:`~piano_metronome.safety.OverwriteError`) before any training.
    """
    from .checkpoint import check_checkpoint_target, save_checkpoint
    from .train import train

    if out is not None:
        check_checkpoint_target(out)
    start = time.monotonic()
    train_w = load_windows(data_dir, config, "train")
    val_w = load_windows(data_dir, config, "validation")
    log(f"data {data_dir} config {config}: train {len(train_w)} windows / {train_w.num_notes} notes, "
        f"validation {len(val_w)} windows / {val_w.num_notes} notes")
    model, hist = train(mcfg, tcfg, train_w, val_w, log=log, progress=progress)
    tables, _ = evaluate_model(model, train_w, val_w, posterior=True)
    metrics = {"split": "validation", "tables": tables_to_json(tables), "best_epoch": hist.best_epoch,
               "stop_reason": hist.stop_reason, "train_minutes": hist.seconds / 60,
               "total_minutes": (time.monotonic() - start) / 60, "history": hist.epochs}
    data = {"data_dir": str(data_dir), "config": config,
            "train": describe(train_w), "validation": describe(val_w)}
    if out is not None:
        save_checkpoint(out, model, tcfg, data, metrics)
    return model, tables, metrics


def evaluate_checkpoint(data_dir: str | Path, checkpoint: str | Path, split: str = "validation",
                        config: str | None = None, posterior: bool = False) -> dict[str, list[Row]]:
    """Tables for a saved checkpoint on ``split`` (trivial baselines fitted on ``train``)."""
    from .checkpoint import load_checkpoint

    model, _, _, data = load_checkpoint(checkpoint)
    config = config or data.get("config")
    if not config:
        raise ValueError(f"{checkpoint}: config.json names no dataset config; pass one")
    train_w = load_windows(data_dir, config, "train")
    eval_w = load_windows(data_dir, config, split)
    return evaluate_model(model, train_w, eval_w, posterior)[0]
