"""Hyper-parameters of the humanizing VAE and of its training, in two dataclasses saved as JSON.

Every number that changes what is learned lives here with a comment saying why it has
its value, so a checkpoint's ``config.json`` is the whole recipe (no pickles, no code
objects): ``ModelConfig`` fixes the architecture, ``TrainConfig`` the optimisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Bumped whenever the meaning of an input feature or the set of weights changes, so an old checkpoint is
#: refused with a message that says so (rather than a missing-weight error).
FEATURE_VERSION = 6  # 3: notes as transformer tokens, written durations, score context, p(z | score);
#                       4: z joins at the head only, both training paths;
#                       5: the step texture (piano roll of onsets and held keys), no take-wide context;
#                       6: z also shifts the head's logits directly (z_shift)


@dataclass
class ModelConfig:
    """Architecture of :class:`~piano_metronome.model.vae.HumanizerVAE`."""

    steps: int = 64  # steps per window (the dataset's num_steps)
    n_keys: int = 88  # piano keys, A0..C8
    max_sub_beats: int = 4  # one-hot width of the sub-beat index (d1 has 4 steps per beat, d2 has 2)
    max_beats: int = 8  # one-hot width of the beat-in-bar index (4/4 uses 4; room for 7/4, 8/8)
    d_model: int = 64  # width of a note token: 64 wide and 2 layers train twice as fast as 96 and 3, and the
    #                    runs are compute-bound (d2: 0.00472 against 0.00514 validation MSE in 8 min);
    #                    d1 is no worse (0.01201 against 0.01197); 128 was no better and a third slower
    heads: int = 4  # attention heads: a note looks at its chord, the melody line, the beat, the bass
    layers: int = 2  # transformer layers over the window's notes
    step_hidden: int = 64  # bi-LSTM width over the window's 64-step piano roll of onsets and held keys,
    #                        read into each note's token (0 = none). Seed 0, validation, velocity >= 6:
    #                        d1 0.01157 without, 0.01115 with onsets only, 0.01036 with held keys too
    #                        (timing 19.91 -> 19.83 ms); d2 0.00449 -> 0.00434-0.00436; 128 wide: d1
    #                        0.01085 (a third slower, fewer epochs in the budget)
    key_embed: int = 16  # learned embedding of each of the 88 keys (timbre/register quirks)
    latent: int = 16  # z: how a window was played (its loudness, its push or drag)
    z_shift: bool = True  # also add a linear map of z to the head's two logits: a window-wide shift of loudness
    #                       and push that z carries straight past the head's dropout. With posterior_dropout 0.5,
    #                       seed 0, validation, velocity >= 6: d2 posterior 0.00434 -> 0.00383 (z_shift alone
    #                       0.00411), honest 0.00435 -> 0.00434; d1 honest 0.01091 -> 0.01093, timing 19.97 -> 19.84 ms
    head_hidden: int = 128  # width of the per-note MLP that turns a note's state into V, O
    dropout: float = 0.3  # in the transformer and the head; the corpus is small (~2.5k windows a subset):
    #                       at 0.15 the honest validation loss stopped improving by epoch 13 of d1
    posterior_dropout: float = 0.5  # dropout on the note states in the posterior path only (training): on d2 the
    #                                 score route alone fitted the training windows so closely that z was left
    #                                 nothing to explain (KL 1.3-1.7 nats, posterior = honest); weakened there, z
    #                                 learns the window's loudness and push. 0.7: d2 posterior 0.00394, honest 0.00437
    beta: float = 0.02  # KL weight, with the KL spread over the window's notes: 0.02 is the scale of a
    #                    Gaussian likelihood with velocity SD 0.1 (MSE 0.01), so a nat costs what it should;
    #                    at 0.5 a window's KL outweighed its whole reconstruction and z carried ~1 nat
    free_bits: float = 6.0  # KL below this many bits (4.2 nats) per window is free: at beta 0.02 and no
    #                         free bits the KL still fell to 0.1-0.2 nats within two epochs. 12 bits: KL ~7 nats,
    #                         posterior MSE unchanged (d1 0.00671, d2 0.00382)
    honest_weight: float = 1.0  # every training window is decoded from z ~ q (previous velocity hidden)
    #                             AND from z = prior mean (the honest prediction, optimised directly);
    #                             the honest path's reconstruction is added with this weight
    offset_weight: float = 0.05  # on |offset error| in 100 ms units. At 0.2 the timing term (~0.04) outweighed the
    #                              velocity MSE (~0.012 d1, ~0.005 d2) and took the shared layers and the latent:
    #                              seed 0, validation: d1 0.01186 -> 0.01157, d2 0.00470 -> 0.00449 velocity MSE at
    #                              0.05, timing unchanged (19.96 -> 19.91, 13.35 -> 13.36 ms); at 0.02 timing worsened
    ar_hidden: int = 48  # forward LSTM over the notes that may be shown the PREVIOUS note's true velocity
    #                      (teacher forcing). The corpus author's published MSEs were measured that way;
    #                      with the input hidden (the default at prediction) it reads the score only
    ar_hide: float = 0.5  # share of the honest-path windows whose previous velocities are hidden, so one
    #                       model serves both the honest (score-only) and the teacher-forced evaluation
    duration_input: str = "written"  # "written" (the score's, whole steps) or "performed" (key-hold
    #                                  time from the recording: an ablation, not a humanizer's input)
    feature_version: int = FEATURE_VERSION

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from JSON, ignoring unknown keys so newer files still load for inspection."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TrainConfig:
    """Optimisation and stopping: what ``baseline train`` does with a :class:`ModelConfig`."""

    epochs: int = 40  # upper bound; early stopping usually ends a run before
    batch_size: int = 16  # windows per step: twice the updates of 32 in the same time (batches bucketed by length)
    lr: float = 2e-3  # AdamW; halved when the validation loss has not improved for 2 epochs
    lr_min: float = 5e-5  # the floor of those halvings
    weight_decay: float = 1e-2  # AdamW decoupled decay
    grad_clip: float = 1.0  # the LSTM of the ar layer occasionally spikes
    ema_decay: float = 0.995  # weight averaging over the last ~200 steps (about 1.2 epochs of d1)
    schedule: str = "plateau"  # "plateau": lr halved after 2 epochs without improvement; "cosine":
    #                            from lr to lr_min over max_minutes of wall time
    patience: int = 5  # epochs without a better validation loss before stopping
    seed: int = 0  # seeds numpy (shuffling, augmentation) and torch (init, dropout, z noise)
    max_minutes: float = 8.0  # wall budget per run: three seeds of a subset within 30 minutes
    threads: int = 1  # torch intra-op threads (the reference machine has two cores, shared)
    transpose: int = 3  # random transposition of training windows by up to ± this many semitones
    select_on: str = "honest"  # which validation loss stops training and picks the weights: "honest"
    #                            (z = prior mean, no velocity seen: the humanizer) or "teacher_forced"
    #                            (velocity MSE with the previous true velocity shown: the author's measurement)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the checkpoint

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from JSON, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def to_json_dict(model: ModelConfig, train: TrainConfig, data: dict[str, Any]) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint: model, training and data description."""
    return {"model": asdict(model), "train": asdict(train), "data": data}
