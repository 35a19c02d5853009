"""The humanizing VAE: from the score of a window to a velocity and an offset per note.

GrooVAE's "humanize" setting, for 88 keys instead of 9 drums, with the notes as tokens::

    token  : one per note = Linear([its features, its step's features, its key's embedding,
             the window's score context]) + an embedding of its step in the window
             + the texture at its step: a bi-LSTM over the window's 64-step piano roll
             (every key's onset and whether it is held, silences included)
    prior  : p(z | score)       = mean over the window's tokens -> MLP -> (mu, log-variance)
    encoder: q(z | performance) = mean over tokens of MLP([token, velocity, offset]) -> (mu, log-var)
    states : a transformer over the window's note tokens (each note attends to every other: the
             melody above it, the chord it belongs to, the bar before), from the score alone
    ar     : forward LSTM over the notes on [state, previous note's TRUE velocity or 0, a flag]
    head   : MLP([state, ar state, z]) + Linear(z) -> velocity in (0, 1), offset in (-0.5, 0.5) steps
             (the linear map of z shifts a whole window's loudness and push alike)

The encoder and prior average over the notes, so z is "how this window was played" (its
loudness, its push or drag) rather than a per-note code. z joins only at the head: the
transformer's states are the score's alone, so they are computed once per window and both
training paths below share them (the second path costs only the ar layer and the head).

Training decodes every window twice and adds both reconstructions:

- the posterior path, z ~ q(z | performance), previous velocity hidden and half the note states
  dropped (``posterior_dropout``): z is its only route to how the window was played, and the
  weakened score route leaves it something to explain, so the latent is used (KL 3-4 nats a
  window; without the dropout the d2 model fitted its training windows from the score alone and
  z fell to ~1.5 nats, its posterior no better than the honest prediction);
- the honest path, z = mean of p(z | score), previous velocity shown for ``1 - ar_hide`` of the
  windows: exactly the prediction that is evaluated, optimised directly, so a latent that carries
  the window's dynamics costs the score-only prediction nothing;

plus beta * max(KL(q || p) - free bits, 0) spread over the window's notes. Each reconstruction is
velocity MSE (the metric) plus the offset's absolute error in ms (the timing metric is a mean
absolute error, whose best point prediction is the median). Sampling z from p(z | score) gives
different performances of one score.

Teacher forcing: the corpus author's published velocity MSEs come from a note-sequence LSTM
given the previous note's TRUE velocity (a one-step-ahead prediction, not a humanization). The
``ar`` layer can be given that input, forward in (step, key) order only, so a note never sees its
own velocity; the honest prediction never is.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .config import ModelConfig
from .features import CONTEXT_DIM, Batch, note_feature_dim, step_feature_dim

Out = dict[str, torch.Tensor]


def _mlp(n_in: int, hidden: int, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    """Two-layer GELU MLP: the one shape every small network here has."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_out))


def _pool(x: torch.Tensor, batch_index: torch.Tensor, n_windows: int) -> torch.Tensor:
    """Mean of per-note rows over each window's notes (zeros for a window without notes)."""
    sums = torch.zeros(n_windows, x.shape[1], dtype=x.dtype).index_add_(0, batch_index, x)
    counts = torch.bincount(batch_index, minlength=n_windows).clamp(min=1)
    return sums / counts[:, None].to(x.dtype)


def _padded(x: torch.Tensor, batch_index: torch.Tensor, n_windows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Notes (sorted by window) as a (windows, most notes, dim) tensor and its padding mask."""
    counts = torch.bincount(batch_index, minlength=n_windows)
    padded = pad_sequence(list(torch.split(x, counts.tolist())), batch_first=True)
    pad = torch.arange(padded.shape[1])[None, :] >= counts[:, None]
    return padded, pad


def piano_roll(batch: Batch, steps: int, keys: int) -> torch.Tensor:
    """(windows, steps, 2 · keys): which keys start on each step, then which are held down on it
    (from the onset for the note's duration input, in whole steps, at least one, cut at the window's
    end). Both come from the score alone."""
    where = (batch.batch_index, batch.step, batch.key)
    onsets = torch.zeros(batch.windows, steps, keys)
    onsets[where] = 1.0
    change = torch.zeros(batch.windows, steps + 1, keys)  # +1 where a key goes down, -1 where it comes up
    ones = torch.ones(len(batch.step))
    change.index_put_(where, ones, accumulate=True)
    end = (batch.step + batch.duration.round().long().clamp(min=1)).clamp(max=steps)
    change.index_put_((batch.batch_index, end, batch.key), -ones, accumulate=True)
    return torch.cat([onsets, change.cumsum(1)[:, :steps].clamp(0.0, 1.0)], dim=-1)


class Block(nn.Module):
    """A pre-norm transformer block (as in nanoGPT, without the causal mask): every note of a
    window attends to every other. Dropout only on the residual branches: dropout on the
    attention weights cost a fifth of the training time for no measurable gain."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = _mlp(d, 2 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` (windows, notes, d); ``keep`` (windows, 1, 1, notes) is False on padding."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.mlp(self.ln2(x)))


class HumanizerVAE(nn.Module):
    """Conditional VAE over windows of notes; see the module docstring for the data flow."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        n_in = note_feature_dim(cfg.max_sub_beats, cfg.max_beats) + step_feature_dim(cfg.max_sub_beats, cfg.max_beats)
        self.key_embed = nn.Embedding(cfg.n_keys, cfg.key_embed)
        self.step_embed = nn.Embedding(cfg.steps, d)
        self.token = nn.Linear(n_in + cfg.key_embed + CONTEXT_DIM, d)
        self.roll: nn.Linear | None = None
        if cfg.step_hidden:
            s_dim = step_feature_dim(cfg.max_sub_beats, cfg.max_beats)
            self.roll = nn.Linear(2 * cfg.n_keys, d)  # a step's 88 onsets and 88 held keys -> a chord code
            self.step_rnn = nn.LSTM(d + s_dim, cfg.step_hidden, batch_first=True, bidirectional=True)
            self.step_out = nn.Linear(2 * cfg.step_hidden, d)
        self.prior = _mlp(d + CONTEXT_DIM, d, 2 * cfg.latent)
        self.encoder = _mlp(d + 2, d, d)
        self.to_posterior = nn.Linear(d + CONTEXT_DIM, 2 * cfg.latent)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.ar = nn.LSTM(d + 2, cfg.ar_hidden, batch_first=True) if cfg.ar_hidden else None
        self.head = _mlp(d + cfg.ar_hidden + cfg.latent, cfg.head_hidden, 2, cfg.dropout)
        self.z_shift = nn.Linear(cfg.latent, 2) if cfg.z_shift else None
        last = self.head[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.bias.copy_(torch.tensor([math.log(0.35 / 0.65), 0.0]))  # typical velocity, on grid
            self.to_posterior.bias[cfg.latent:].fill_(-3.0)  # q starts sharp (sd 0.2): z's signal is not
            #   drowned in noise before the decoder has learnt to read it (at 0, KL stayed near 1 nat)

    def tokens(self, batch: Batch) -> torch.Tensor:
        """One d_model vector per note from the score alone (features, key, step, window context)."""
        x = torch.cat([batch.note_features, batch.step_features[batch.batch_index, batch.step],
                       self.key_embed(batch.key), batch.context[batch.batch_index]], dim=-1)
        return self.token(x) + self.step_embed(batch.step) + self.texture(batch)

    def texture(self, batch: Batch) -> torch.Tensor | float:
        """Each note's view of the window's texture: a bi-LSTM over the 64 steps of the window's piano
        roll (every key's onset and whether it is held, rests included), read at the note's step; 0
        without ``step_hidden``. Attention over notes sees only the onsets; what is still sounding
        under a note, and the silences, are what this adds."""
        if self.roll is None:
            return 0.0
        seq = torch.cat([self.roll(piano_roll(batch, self.cfg.steps, self.cfg.n_keys)), batch.step_features], dim=-1)
        return self.step_out(self.step_rnn(seq)[0])[batch.batch_index, batch.step]

    def prior_params(self, batch: Batch, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z | score): mean and log-variance from the window's pooled tokens and its context."""
        pooled = torch.cat([_pool(tokens, batch.batch_index, batch.windows), batch.context], dim=-1)
        mu, logvar = self.prior(pooled).chunk(2, dim=-1)
        return mu, logvar.clamp(-8.0, 4.0)

    def encode(self, batch: Batch, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | performance): the window's mean over notes of an MLP of [token, velocity, offset]."""
        per_note = self.encoder(torch.cat([tokens, batch.velocity[:, None], batch.offset[:, None]], dim=-1))
        pooled = torch.cat([_pool(per_note, batch.batch_index, batch.windows), batch.context], dim=-1)
        mu, logvar = self.to_posterior(pooled).chunk(2, dim=-1)
        return mu, logvar.clamp(-8.0, 4.0)

    def decode(self, batch: Batch, z: torch.Tensor, tokens: torch.Tensor | None = None,
               shown: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity (0..1) and offset (steps, -0.5..0.5) of every note, given the score and z.

        ``shown`` (bool per window) gives those windows' notes the previous note's true
        velocity (teacher forcing); None hides it everywhere, the honest prediction.
        """
        tokens = self.tokens(batch) if tokens is None else tokens
        return self.readouts(batch, [self.states(batch, tokens)], [(z, shown)])[0]

    def states(self, batch: Batch, tokens: torch.Tensor) -> torch.Tensor:
        """The transformer's state of every note, from the score alone (z is not in it, so one
        pass serves every z a window is decoded with)."""
        h, pad = _padded(tokens, batch.batch_index, batch.windows)
        for block in self.blocks:
            h = block(h, ~pad[:, None, None, :])
        return self.norm(h)[~pad]

    def readouts(self, batch: Batch, hs: list[torch.Tensor],
                 paths: list[tuple[torch.Tensor, torch.Tensor | None]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Velocity and offset per note for each (z, shown) of ``paths``, from that path's note
        states in ``hs``, the ar layer and z. The paths' windows are stacked, so the ar LSTM's
        note-by-note loop (most of its cost) runs once for all of them."""
        n = len(paths)
        rows = hs
        if self.ar is not None:
            seqs, pad = [], None
            for h, (_, shown) in zip(hs, paths, strict=True):
                seq, pad = _padded(self._previous(batch, h, shown), batch.batch_index, batch.windows)
                seqs.append(seq)
            assert pad is not None
            ar_states = self.ar(torch.cat(seqs))[0].chunk(n)
            rows = [torch.cat([h, s[~pad]], dim=-1) for h, s in zip(hs, ar_states, strict=True)]
        x = torch.cat([torch.cat([r, z[batch.batch_index]], dim=-1) for r, (z, _) in zip(rows, paths, strict=True)])
        logits = self.head(x)
        if self.z_shift is not None:
            logits = logits + torch.cat([self.z_shift(z)[batch.batch_index] for z, _ in paths])
        return [(torch.sigmoid(o[:, 0]), 0.5 * torch.tanh(o[:, 1])) for o in logits.chunk(n)]

    @staticmethod
    def _previous(batch: Batch, x: torch.Tensor, shown: torch.Tensor | None) -> torch.Tensor:
        """``x`` with [previous note's velocity, shown flag]: zeros for a window's first note and
        for windows not shown (notes arrive sorted by window, step, key)."""
        bi = batch.batch_index
        flag = torch.zeros(len(bi), dtype=x.dtype)
        if shown is not None:
            flag[1:] = ((bi[1:] == bi[:-1]) & shown[bi[1:]]).to(x.dtype)
        prev = torch.cat([torch.zeros(1, dtype=x.dtype), batch.velocity[:-1]])
        return torch.cat([x, (prev * flag)[:, None], flag[:, None]], dim=-1)

    def forward(self, batch: Batch, z_mode: str = "sample", teacher_forced: bool = False) -> Out:
        """Run the VAE. ``z_mode``: ``sample`` (training: z ~ q), ``posterior`` (mean of q: a
        diagnostic that reads the target), ``prior`` (mean of p(z | score): the honest prediction).

        In training every window is decoded on both paths (see the module docstring): the
        posterior one with the previous velocity hidden, the honest one shown it for
        ``1 - ar_hide`` of the windows. Outside training, teacher forcing only when
        ``teacher_forced`` is asked for (a labelled diagnostic, never the honest prediction).
        """
        tokens = self.tokens(batch)
        prior_mu, prior_logvar = self.prior_params(batch, tokens)
        if z_mode == "prior":
            mu, logvar, z = prior_mu, prior_logvar, prior_mu
        else:
            mu, logvar = self.encode(batch, tokens)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if z_mode == "sample" else mu
        out = {"mu": mu, "logvar": logvar, "prior_mu": prior_mu, "prior_logvar": prior_logvar}
        h = self.states(batch, tokens)
        if self.training:
            shown = torch.rand(batch.windows) >= self.cfg.ar_hide
            h_post = nn.functional.dropout(h, self.cfg.posterior_dropout) if self.cfg.posterior_dropout else h
            honest, posterior = self.readouts(batch, [h, h_post], [(prior_mu, shown), (z, None)])
            (out["velocity_honest"], out["offset_honest"]), (out["velocity"], out["offset"]) = honest, posterior
        else:
            forced = torch.ones(batch.windows, dtype=torch.bool) if teacher_forced else None
            out["velocity"], out["offset"] = self.readouts(batch, [h], [(z, forced)])[0]
        return out

    def loss(self, batch: Batch, out: Out) -> Out:
        """Reconstruction of the posterior path + ``honest_weight`` · that of the honest path +
        beta · max(KL − free bits, 0); each reconstruction is velocity MSE + offset_weight ·
        |offset error| in units of 100 ms.

        The KL (q against the score's prior, per window) is spread over the batch's notes, since
        the reconstruction terms are per note. With beta = 0.02 that is the Gaussian likelihood's
        own scale (velocity noise of SD 0.1 makes a squared error worth 1 / 0.02 nats), so a nat
        of KL costs what it would in a true ELBO; the free bits keep a few nats of it free.
        """
        v_mse, o_mae = self._recon(batch, out["velocity"], out["offset"])
        kl = kl_per_window(out).mean()
        free_nats = self.cfg.free_bits * math.log(2.0)
        per_note = batch.windows / max(len(batch.velocity), 1)
        kl_term = self.cfg.beta * torch.clamp(kl - free_nats, min=0.0) * per_note
        total = v_mse + self.cfg.offset_weight * o_mae + kl_term
        losses = {"velocity_mse": v_mse, "offset_mae": o_mae, "kl": kl}
        if "velocity_honest" in out:
            hv, ho = self._recon(batch, out["velocity_honest"], out["offset_honest"])
            total = total + self.cfg.honest_weight * (hv + self.cfg.offset_weight * ho)
            losses.update(velocity_mse_honest=hv, offset_mae_honest=ho)
        return {"loss": total, **losses}

    @staticmethod
    def _recon(batch: Batch, velocity: torch.Tensor, offset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocity MSE (the metric) and offset MAE in units of 100 ms (the timing metric is an MAE)."""
        v_mse = nn.functional.mse_loss(velocity, batch.velocity)
        return v_mse, ((offset - batch.offset).abs() * batch.ms_per_step).mean() / 100.0


def kl_per_window(out: Out) -> torch.Tensor:
    """KL(q(z | performance) || p(z | score)) of each window, in nats (zero when z came from the prior)."""
    mu, logvar, pmu, plogvar = out["mu"], out["logvar"], out["prior_mu"], out["prior_logvar"]
    return 0.5 * (plogvar - logvar + (logvar.exp() + (mu - pmu).pow(2)) / plogvar.exp() - 1.0).sum(-1)
