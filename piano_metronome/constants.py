"""Facts of the piano and of MIDI that every stage uses, declared once.

A key index (0…87) is what the dataset stores; a MIDI pitch is what files hold. Every
conversion between them, and every reading or writing of the sustain pedal, goes through
these names, so "key 0 = MIDI 21" cannot drift between the parser, the renderer and the model.
"""

from __future__ import annotations

#: MIDI pitch of piano key 0 (A0) and of the top key 87 (C8).
LOWEST_MIDI_PITCH = 21
HIGHEST_MIDI_PITCH = 108
#: Keys of a piano: key index = MIDI pitch − LOWEST_MIDI_PITCH.
NUM_KEYS = HIGHEST_MIDI_PITCH - LOWEST_MIDI_PITCH + 1
#: MIDI control number of the sustain (damper) pedal.
SUSTAIN_CC = 64
#: Largest value of a MIDI data byte (velocity, controller value).
MAX_MIDI_VALUE = 127
#: MIDI channel of drums (0-based 9, "channel 10"): never piano notes.
DRUM_CHANNEL = 9
