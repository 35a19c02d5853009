"""Checkpoints as a folder: ``model.safetensors`` (weights), ``config.json``, ``metrics.json``.

No pickle anywhere: safetensors holds only named tensors and JSON holds only data, so a
checkpoint from a stranger cannot run code when it is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..safety import write_atomic, write_text_atomic
from .config import FEATURE_VERSION, ModelConfig, TrainConfig, to_json_dict

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
MODEL_NAME = "HumanizerVAE"  # in the weights' metadata: how a checkpoint's weights are recognised as ours


def why_not_checkpoint_file(path: Path) -> str | None:
    """None when ``path`` is a file a checkpoint of ours holds (free to replace), else why not.

    Recognised by content, never by name alone: weights whose safetensors metadata names our
    model, a config with our three sections, metrics with a training history. Anything else in
    a checkpoint folder is the user's, and training into that folder is refused.
    """
    from safetensors import SafetensorError, safe_open

    try:
        if path.name == WEIGHTS and path.is_file():
            with safe_open(str(path), framework="pt") as f:
                if (f.metadata() or {}).get("model") == MODEL_NAME:
                    return None
        elif path.name in (CONFIG, METRICS) and path.is_file():
            data = json.loads(path.read_text())
            wanted = {"model", "train", "data"} if path.name == CONFIG else {"history", "best_epoch"}
            if isinstance(data, dict) and wanted <= data.keys():
                return None
    except (OSError, ValueError, SafetensorError):  # unreadable: not ours (JSON, UTF-8 errors are ValueErrors)
        pass
    return "which is not a file of a checkpoint this project wrote"


def check_checkpoint_target(folder: str | Path) -> None:
    """Refuse (:class:`~piano_metronome.safety.OverwriteError`) to train into a folder that holds
    anything but one of our checkpoints: checked before training, so a refusal costs nothing."""
    from ..safety import check_folder

    check_folder(Path(folder), why_not_checkpoint_file, forceable=False)


def save_checkpoint(folder: str | Path, model, tcfg: TrainConfig, data: dict[str, Any],
                    metrics: dict[str, Any] | None = None) -> Path:
    """Write weights, config and (optionally) metrics into ``folder``; return the folder. Each file is
    written whole or not at all (an interrupted save leaves the old file, never half a new one)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "model": MODEL_NAME}
    write_atomic(folder / WEIGHTS, lambda temp: save_file(state, str(temp), metadata=metadata))
    write_text_atomic(folder / CONFIG, json.dumps(to_json_dict(model.cfg, tcfg, data), indent=2) + "\n")
    if metrics is not None:
        write_metrics(folder, metrics)
    return folder


def write_metrics(folder: str | Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json`` (evaluation tables, training history)."""
    write_text_atomic(Path(folder) / METRICS, json.dumps(metrics, indent=2) + "\n")


def load_checkpoint(folder: str | Path):
    """Return (model in eval mode, ModelConfig, TrainConfig, data description) from ``folder``."""
    from safetensors.torch import load_file

    from .vae import HumanizerVAE

    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise FileNotFoundError(f"{folder}: not a checkpoint (needs {WEIGHTS} and {CONFIG})")
    raw = json.loads((folder / CONFIG).read_text())
    mcfg = ModelConfig.from_dict(raw["model"])
    if mcfg.feature_version != FEATURE_VERSION:
        raise ValueError(f"{folder}: feature version {mcfg.feature_version}, "
                         f"this code reads version {FEATURE_VERSION}")
    model = HumanizerVAE(mcfg)
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    model.eval()
    return model, mcfg, TrainConfig.from_dict(raw.get("train", {})), raw.get("data", {})
