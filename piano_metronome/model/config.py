"""Hyper-parameters of the humanizing VAE and of its training, in two dataclasses saved as JSON.

Every number that changes what is learned lives here with a comment saying why it has
its value, so a checkpoint's ``config.json`` is the whole recipe (no pickles, no code
objects): ``ModelConfig`` fixes the architecture, ``TrainConfig`` the optimisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Bumped whenever the meaning of an input feature changes, so an old checkpoint is refused.
FEATURE_VERSION = 2  # 2: the autoregressive note layer (ar_hidden) joined the architecture


@dataclass
class ModelConfig:
    """Architecture of :class:`~piano_metronome.model.vae.HumanizerVAE`."""

    steps: int = 64  # steps per window (the dataset's num_steps)
    n_keys: int = 88  # piano keys, A0..C8
    max_sub_beats: int = 4  # one-hot width of the sub-beat index (d1 has 4 steps per beat, d2 has 2)
    max_beats: int = 8  # one-hot width of the beat-in-bar index (4/4 uses 4; room for 7/4, 8/8)
    roll_dim: int = 128  # the 88-key row of the score projected to this width (a learned chord code)
    enc_hidden: int = 128  # encoder bi-LSTM width per direction
    dec_hidden: int = 128  # decoder bi-LSTM width per direction: the context a note's head sees
    dec_layers: int = 2  # stacked decoder layers
    latent: int = 32  # z: a summary of how a window was played (its loudness, its push or drag)
    key_embed: int = 16  # learned embedding of each of the 88 keys (timbre/register quirks)
    note_layers: int = 1  # bi-LSTM layers over the window's notes in (step, key) order; 0 = none.
    #                        It links a note to its neighbours in the melody and the chord, which
    #                        a per-step context cannot tell apart (the author's best was note-level)
    note_hidden: int = 96  # its width per direction
    head_hidden: int = 128  # width of the per-note MLP that turns context + note features into V, O
    dropout: float = 0.3  # on LSTM outputs and in the head; the corpus is small (~2.5k windows/subset);
    #                       0.2 overfit d1 by epoch 10 (train 0.009 vs validation 0.014 velocity MSE)
    beta: float = 0.2  # KL weight as in the released GrooVAE config, with the KL spread over the notes
    free_bits: float = 8.0  # KL below this many bits (per window) is free, so z is used at all
    prior_dropout: float = 0.5  # share of training windows decoded from z = 0, the honest evaluation
    #                             mode, so the decoder is trained for the prediction it will make
    offset_weight: float = 1.0  # offsets (in steps) and velocities (0..1) have similar variance
    ar_hidden: int = 64  # forward LSTM over the notes that may be shown the PREVIOUS note's true velocity
    #                      (teacher forcing). The corpus author's published MSEs were measured that way;
    #                      with the input hidden (the default at prediction) it reads the score only
    ar_hide: float = 0.5  # share of training windows whose previous velocities are hidden, so one model
    #                       serves both the honest (score-only) and the teacher-forced evaluation
    feature_version: int = FEATURE_VERSION

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from JSON, ignoring unknown keys so newer files still load for inspection."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TrainConfig:
    """Optimisation and stopping: what ``baseline train`` does with a :class:`ModelConfig`."""

    epochs: int = 60  # upper bound; early stopping usually ends a run well before
    batch_size: int = 32  # windows per step: small batches generalise better on ~3k windows
    lr: float = 2e-3  # Adam, warm for the first epoch, then cosine-decayed to lr_min
    lr_min: float = 5e-5
    weight_decay: float = 1e-4  # AdamW decoupled decay; mild, dropout does most of the regularising
    grad_clip: float = 1.0  # LSTMs on 64 steps occasionally spike
    ema_decay: float = 0.995  # weight averaging over the last ~200 steps (about 2.5 epochs of d1)
    patience: int = 8  # epochs without a better validation loss before stopping
    seed: int = 0  # seeds numpy (shuffling, augmentation) and torch (init, dropout, z noise)
    max_minutes: float = 25.0  # wall budget per run: the 30-minute reproduction target, with margin
    threads: int = 2  # torch intra-op threads; the reference machine has two cores
    transpose: int = 3  # random transposition of training windows by up to ± this many semitones:
    #                     with dropout 0.3 it took d1 from 0.0127 to 0.0117 validation velocity MSE
    select_on: str = "honest"  # which validation loss stops training and picks the weights: "honest"
    #                            (z = 0, no velocity seen: the humanizer) or "teacher_forced" (velocity
    #                            MSE with the previous true velocity shown: the author's measurement)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the checkpoint

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from JSON, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def to_json_dict(model: ModelConfig, train: TrainConfig, data: dict[str, Any]) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint: model, training and data description."""
    return {"model": asdict(model), "train": asdict(train), "data": data}
