"""Keys: parse hand-typed labels, map them to the 12-class signature, and estimate the key from notes.

The original data merged relative major and minor into one *key signature* class
(C ≡ Am = 0, Db ≡ Bbm = 1, …), because a model conditioned on the key mostly needs the
set of seven pitch classes, not the mode. We keep the full 24-way key as well, so nothing
is thrown away, and we check the label against the notes because labels were typed by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PITCH_CLASS_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
MINOR_PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

#: The 24 keys in ClassLabel order: index 0–11 major on C…B, 12–23 minor on C…B.
KEY_NAMES: tuple[str, ...] = tuple(PITCH_CLASS_NAMES) + tuple(n + "m" for n in MINOR_PITCH_CLASS_NAMES)

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_RE = re.compile(r"^([A-Ga-g])([#b♯♭]?)(m|min|minor|M|maj|major)?$")

# Krumhansl & Kessler (1982) probe-tone profiles, as used by the Krumhansl–Schmuckler algorithm.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _profiles() -> np.ndarray:
    """All 24 rotated, centred and normalised profiles, so correlation is one matrix product."""
    rows = [np.roll(_KK_MAJOR, pc) for pc in range(12)] + [np.roll(_KK_MINOR, pc) for pc in range(12)]
    p = np.array(rows, dtype=np.float64)
    p -= p.mean(axis=1, keepdims=True)
    normalised: np.ndarray = p / np.linalg.norm(p, axis=1, keepdims=True)
    return normalised


_PROFILES = _profiles()


def parse_key(label: str) -> int:
    """Return the 24-way key index of a label such as ``C``, ``G#m``, ``Bbm`` or ``F#``.

    Raises ValueError with the label in the message, so a bad file name is reported by name.
    """
    match = _KEY_RE.match(label.strip())
    if not match:
        raise ValueError(f"not a key label: {label!r} (expected e.g. 'C', 'Bb', 'G#m')")
    letter, accidental, mode = match.groups()
    pc = _LETTER_PC[letter.upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1, "": 0}[accidental]
    minor = mode in ("m", "min", "minor")
    return pc % 12 + (12 if minor else 0)


#: ``key_label`` of a recording whose file name gives no key: datasets' ClassLabel "no label" (−1), never
#: 0, which is C major; its ``key_signature`` is −1 too.
NO_KEY = -1


def key_signature(key_index: int) -> int:
    """The 12-class key signature of a 24-way key: the relative major's tonic (C ≡ Am = 0); −1 for no key."""
    if key_index < 0:
        return NO_KEY
    tonic = key_index % 12
    return tonic if key_index < 12 else (tonic + 3) % 12


_SIGNATURES = np.array([key_signature(k) for k in range(24)])


@dataclass(frozen=True)
class KeyEstimate:
    """A key estimated from notes, with a confidence in [0, 1]."""

    key: int
    correlation: float
    confidence: float


def estimate_key(pitches: np.ndarray, weights: np.ndarray | None = None) -> KeyEstimate:
    """Krumhansl–Schmuckler key finding on a duration-weighted pitch-class histogram.

    Confidence is the margin between the best and the best *other-signature* key, rescaled to
    [0, 1]; relative major/minor share a signature, so their near-tie must not lower it.
    """
    if len(pitches) == 0:
        return KeyEstimate(key=0, correlation=0.0, confidence=0.0)
    w = np.ones(len(pitches)) if weights is None else np.asarray(weights, dtype=np.float64)
    hist = np.bincount(np.asarray(pitches) % 12, weights=w, minlength=12).astype(np.float64)
    hist -= hist.mean()
    norm = np.linalg.norm(hist)
    if norm == 0:
        return KeyEstimate(key=0, correlation=0.0, confidence=0.0)
    corr = _PROFILES @ (hist / norm)
    best = int(np.argmax(corr))
    other = corr[_SIGNATURES[best] != _SIGNATURES].max()
    margin = float(corr[best] - other)
    return KeyEstimate(key=best, correlation=float(corr[best]), confidence=float(np.clip(margin / 0.3, 0, 1)))
