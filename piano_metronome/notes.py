"""Notes on a grid: the one object model every stage shares (like pretty_midi's ``Note``, but columnar).

The aligner produces them (a take's placed notes), windows store them, the renderer turns them
back into MIDI and the model predicts their offsets and velocities. Columns, not objects: a
take has thousands of notes and every stage works on whole arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Notes:
    """Parallel arrays, one entry per note, sorted by (step, key) where a stage needs it.

    ``step``: grid step (sub-beats from the grid's origin); ``key``: piano key 0…87 (MIDI pitch −
    :data:`~piano_metronome.constants.LOWEST_MIDI_PITCH`); ``offset``: from the step, in steps,
    positive = late; ``velocity``: MIDI 1…127; ``duration``: key held, in steps.
    """

    step: np.ndarray
    key: np.ndarray
    offset: np.ndarray
    velocity: np.ndarray
    duration: np.ndarray

    def __post_init__(self) -> None:
        sizes = {len(a) for a in (self.step, self.key, self.offset, self.velocity, self.duration)}
        if len(sizes) > 1:
            raise ValueError(f"note arrays differ in length: {sorted(sizes)}")

    def __len__(self) -> int:
        return len(self.step)
