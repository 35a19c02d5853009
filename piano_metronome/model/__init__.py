"""The reference humanizing model (optional extra ``model``: torch + safetensors).

Read in this order: :mod:`.config` (hyper-parameters), :mod:`.features` (dataset rows →
tensors), :mod:`.vae` (the network), :mod:`.train` (the loop), :mod:`.evaluate` (metrics
and trivial baselines), :mod:`.checkpoint` (safetensors + JSON), :mod:`.humanize` (MIDI in,
MIDI out) and :mod:`.pipeline` (what the ``baseline`` commands run). Importing this package
does not import torch.
"""
