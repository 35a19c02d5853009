"""The humanizing VAE: from the robotic score of a window to a velocity and an offset per note.

GrooVAE's "humanize" setting, for 88 keys instead of 9 drums::

    score  = H (which keys start on which step) + metre, tempo, key per step
    encoder: bi-LSTM over the 64 steps of [H, V, O, score]  ->  q(z | performance)
    decoder: bi-LSTM over the 64 steps of [H, score, z]      ->  a context vector per step
    notes  : bi-LSTM over the window's notes in (step, key) order on
             [context at its step, its key's embedding, its own features]
    ar     : forward LSTM over the same notes on [those inputs, the note-LSTM state,
             the previous note's true velocity or 0, a flag saying which]
    head   : one MLP per note on [those inputs, the note-LSTM state, the ar state]
             ->  velocity in (0, 1) and offset in (-0.5, 0.5) steps

Training minimises MSE of velocity and offset over the notes that were played, plus
beta * max(KL - free bits, 0) spread over the window's notes. At evaluation the encoder must
not see the performance it is asked to predict, so z is the prior mean (zero); a share of
the training windows (``prior_dropout``) is decoded from z = 0 too, so the decoder is trained
for that prediction. The posterior reconstruction is only a labelled diagnostic.

Teacher forcing: the corpus author's published velocity MSEs come from a note-sequence LSTM
that was given the previous note's TRUE velocity (a one-step-ahead prediction, not a
humanization). The ``ar`` layer can be given the same input, forward in (step, key) order
only, so a note never sees its own velocity. Half the training windows (``ar_hide``) hide it;
the honest prediction always hides it, and a teacher-forced prediction, labelled as such, is
what compares with the published numbers.

The head is per note rather than a dense 88-wide layer because most of what sets a velocity
is the note's role (top of the chord, register, beat), and a shared MLP sees it for every key
with the same weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import ModelConfig
from .features import note_feature_dim, step_feature_dim, valid_column


def _bilstm(n_in: int, hidden: int, layers: int, dropout: float) -> nn.LSTM:
    """A batch-first bidirectional LSTM; dropout between layers only (torch warns otherwise)."""
    return nn.LSTM(n_in, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                   dropout=dropout if layers > 1 else 0.0)


class HumanizerVAE(nn.Module):
    """Conditional VAE over windows; see the module docstring for the data flow."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s_dim = step_feature_dim(cfg.max_sub_beats, cfg.max_beats)
        n_dim = note_feature_dim(cfg.max_sub_beats, cfg.max_beats)
        self.roll = nn.Linear(cfg.n_keys, cfg.roll_dim)  # a score row (88 hits) -> a chord code
        self.perf = nn.Linear(3 * cfg.n_keys, cfg.roll_dim)  # [H, V, O] rows, for the encoder only
        self.encoder = _bilstm(cfg.roll_dim + s_dim, cfg.enc_hidden, 1, 0.0)
        self.to_mu = nn.Linear(4 * cfg.enc_hidden, cfg.latent)
        self.to_logvar = nn.Linear(4 * cfg.enc_hidden, cfg.latent)
        self.decoder = _bilstm(cfg.roll_dim + s_dim + cfg.latent, cfg.dec_hidden, cfg.dec_layers, cfg.dropout)
        self.key_embed = nn.Embedding(cfg.n_keys, cfg.key_embed)
        note_in = 2 * cfg.dec_hidden + cfg.key_embed + n_dim
        self.notes = _bilstm(note_in, cfg.note_hidden, cfg.note_layers, cfg.dropout) if cfg.note_layers else None
        head_in = note_in + (2 * cfg.note_hidden if cfg.note_layers else 0)
        self.ar = nn.LSTM(head_in + 2, cfg.ar_hidden, batch_first=True) if cfg.ar_hidden else None
        head_in += cfg.ar_hidden
        self.head = nn.Sequential(
            nn.Linear(head_in, cfg.head_hidden), nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.head_hidden, cfg.head_hidden), nn.GELU(),
            nn.Linear(cfg.head_hidden, 2),
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.valid_column = valid_column(cfg.max_sub_beats, cfg.max_beats)
        with torch.no_grad():
            self.head[-1].bias.copy_(torch.tensor([math.log(0.35 / 0.65), 0.0]))  # typical velocity, on grid
            self.to_logvar.bias.fill_(-1.0)  # a posterior sharper than the prior (KL ≈ the free bits), so
            #                                   z's signal is not drowned in noise before the decoder reads it

    def _grid(self, batch: dict, values: torch.Tensor) -> torch.Tensor:
        """Scatter one value per note into a (windows, steps, 88) grid, like the dataset's H/V/O."""
        b = batch["step_features"].shape[0]
        grid = torch.zeros(b, self.cfg.steps, self.cfg.n_keys)
        grid[batch["batch_index"], batch["step"], batch["key"]] = values
        return grid

    def encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | performance): mean and log-variance from the bi-LSTM's final states and its mean
        over the window's steps (the mean is a direct route for "how loud was this window")."""
        ones = torch.ones_like(batch["velocity"])
        rows = torch.cat([self._grid(batch, ones), self._grid(batch, batch["velocity"]),
                          self._grid(batch, batch["offset"])], dim=-1)
        x = torch.cat([self.perf(rows), batch["step_features"]], dim=-1)
        out, (h, _) = self.encoder(x)
        valid = batch["step_features"][..., self.valid_column:self.valid_column + 1]
        pooled = (out * valid).sum(1) / valid.sum(1).clamp(min=1.0)
        summary = torch.cat([h[-2], h[-1], pooled], dim=-1)  # forward's last step, backward's first, mean
        return self.to_mu(summary), self.to_logvar(summary).clamp(-8.0, 8.0)

    def decode(self, batch: dict, z: torch.Tensor,
               shown: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity (0..1) and offset (steps, -0.5..0.5) of every note, given the score and z.

        ``shown`` (bool per window) gives those windows' notes the previous note's true
        velocity (teacher forcing); None hides it everywhere, the honest prediction.
        """
        score = self.roll(self._grid(batch, torch.ones_like(batch["velocity"])))
        steps = score.shape[1]
        x = torch.cat([score, batch["step_features"], z[:, None, :].expand(-1, steps, -1)], dim=-1)
        context, _ = self.decoder(x)
        context = self.drop(context)[batch["batch_index"], batch["step"]]
        x = torch.cat([context, self.key_embed(batch["key"]), batch["note_features"]], dim=-1)
        if self.notes is not None:
            x = torch.cat([x, self.drop(self._over_notes(self.notes, x, batch, len(z)))], dim=-1)
        if self.ar is not None:
            x = torch.cat([x, self._over_notes(self.ar, self._previous(batch, x, shown), batch, len(z))], dim=-1)
        out = self.head(x)
        return torch.sigmoid(out[:, 0]), 0.5 * torch.tanh(out[:, 1])

    @staticmethod
    def _previous(batch: dict, x: torch.Tensor, shown: torch.Tensor | None) -> torch.Tensor:
        """``x`` with [previous note's velocity, shown flag]: zeros for a window's first note and
        for windows not shown (notes arrive sorted by window, step, key)."""
        bi = batch["batch_index"]
        flag = torch.zeros(len(bi), dtype=x.dtype)
        if shown is not None:
            flag[1:] = ((bi[1:] == bi[:-1]) & shown[bi[1:]]).to(x.dtype)
        prev = torch.cat([torch.zeros(1, dtype=x.dtype), batch["velocity"][:-1]])
        return torch.cat([x, (prev * flag)[:, None], flag[:, None]], dim=-1)

    @staticmethod
    def _over_notes(lstm: nn.LSTM, x: torch.Tensor, batch: dict, n_windows: int) -> torch.Tensor:
        """Run a note LSTM over each window's notes (they arrive sorted by window, step, key)."""
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

        counts = torch.bincount(batch["batch_index"], minlength=n_windows)
        padded = pad_sequence(list(torch.split(x, counts.tolist())), batch_first=True)
        packed = pack_padded_sequence(padded, counts.clamp(min=1), batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=padded.shape[1])
        return out[torch.arange(padded.shape[1])[None, :] < counts[:, None]]

    def forward(self, batch: dict, z_mode: str = "sample", teacher_forced: bool = False) -> dict[str, torch.Tensor]:
        """Run the VAE; ``z_mode``: ``sample`` (training), ``posterior`` (mean of q) or ``prior`` (z = 0).

        In training a random ``1 - ar_hide`` of the windows are teacher-forced; otherwise only
        when ``teacher_forced`` is asked for (a labelled diagnostic, never the honest prediction).
        """
        b = batch["step_features"].shape[0]
        if z_mode == "prior":
            z = torch.zeros(b, self.cfg.latent)
            mu = logvar = z
        else:
            mu, logvar = self.encode(batch)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if z_mode == "sample" else mu
            if z_mode == "sample" and self.training and self.cfg.prior_dropout > 0:
                z = z * (torch.rand(b, 1) >= self.cfg.prior_dropout)  # some windows decoded from z = 0
        if self.training:
            shown = torch.rand(b) >= self.cfg.ar_hide
        else:
            shown = torch.ones(b, dtype=torch.bool) if teacher_forced else None
        velocity, offset = self.decode(batch, z, shown)
        return {"velocity": velocity, "offset": offset, "mu": mu, "logvar": logvar}

    def loss(self, batch: dict, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MSE of velocity and offset over the played notes, plus beta · max(KL − free bits, 0) per note.

        The KL is per window and the MSE per note, so the KL is spread over the batch's notes:
        otherwise a nat of KL would cost as much as the whole window's reconstruction and the
        posterior collapses onto the prior (z ignored; seen with ~60 notes a window).
        """
        v_mse = nn.functional.mse_loss(out["velocity"], batch["velocity"])
        o_mse = nn.functional.mse_loss(out["offset"], batch["offset"])
        kl = 0.5 * (out["mu"].pow(2) + out["logvar"].exp() - 1.0 - out["logvar"]).sum(-1).mean()
        free_nats = self.cfg.free_bits * math.log(2.0)
        per_note = out["mu"].shape[0] / max(len(batch["velocity"]), 1)
        kl_term = self.cfg.beta * torch.clamp(kl - free_nats, min=0.0) * per_note
        total = v_mse + self.cfg.offset_weight * o_mse + kl_term
        return {"loss": total, "velocity_mse": v_mse, "offset_mse": o_mse, "kl": kl}
