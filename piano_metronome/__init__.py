"""piano_metronome: piano performances recorded to a click, aligned to their grid.

Stages, one sub-package each (inputs → processing → outputs):

- :mod:`piano_metronome.inputs`: the manifest, fetching recordings, parsing MIDI, synthetic demo takes;
- :mod:`piano_metronome.processing`: grid verification, latency, quantization, windows, keys;
- :mod:`piano_metronome.outputs`: the schema, the ``datasets`` builder, dense arrays, validation, rendering.
"""

__version__ = "0.1.0"
