"""The reference humanizing model (optional extra ``model``: torch + safetensors).

Read in this order: :mod:`.config` (hyper-parameters), :mod:`.features` (dataset rows →
tensors, score-only), :mod:`.vae` (the network), :mod:`.train` (the loop), :mod:`.evaluate`
(metrics and trivial baselines), :mod:`.checkpoint` (safetensors + JSON), :mod:`.humanize` (MIDI
in, MIDI out) and :mod:`.pipeline` (what the ``baseline`` commands run). For the reproduction:
:mod:`.ridge` (the non-neural baseline), :mod:`.report` (seeds and bootstrap intervals),
:mod:`.diagnostics` (its tables and the latent report) and :mod:`.author` (the corpus author's
released runs). Importing this package does not import torch.
"""
