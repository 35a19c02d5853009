"""Loading script for the piano_metronome dataset (the builder the dataset card promises).

Two uses:

* ``datasets`` < 4 (classic loading scripts)::

      load_dataset("loading_script/piano_metronome.py", "d1", data_dir="raw_midi", trust_remote_code=True)

  builds the windows from the raw recordings named by ``raw_midi/manifest.csv`` (run
  ``piano-metronome fetch`` first; the ``demo`` config needs nothing but this repository).

* any ``datasets`` version, as a builder class::

      from loading_script.piano_metronome import PianoMetronome
      builder = PianoMetronome(config_name="d1", data_dir="raw_midi")
      builder.download_and_prepare()
      ds = builder.as_dataset()

``datasets`` ≥ 4 no longer runs loading scripts; a built dataset folder (``piano-metronome
build``) is loaded with ``load_dataset(folder, "d1")`` instead. The builder itself lives in
the package (:mod:`piano_metronome.outputs.datasets_builder`), so this file and the ``build`` command
can never disagree; it needs ``pip install piano_metronome`` (or this repository).
"""

from __future__ import annotations

from piano_metronome.outputs.datasets_builder import PianoMetronome as _PackageBuilder
from piano_metronome.outputs.datasets_builder import PianoMetronomeConfig

__all__ = ["PianoMetronome", "PianoMetronomeConfig"]


class PianoMetronome(_PackageBuilder):
    """The package's builder, defined here so ``datasets`` finds it in this module."""
