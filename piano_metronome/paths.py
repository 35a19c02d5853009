"""Where things live by default: the raw folder, the manifest, the demo takes, the corpus variable."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming a folder that holds the real recordings (``d1/``, ``d2/``).
CORPUS_ENV = "PIANO_METRONOME_CORPUS"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RAW = Path("raw_midi")
MANIFEST_NAME = "manifest.csv"
DEMO_SUBSET = "demo"


def raw_dir(raw: Path | None = None) -> Path:
    """The raw folder: the one given, else ``./raw_midi`` if present, else the one in the checkout."""
    if raw is not None:
        return raw
    return DEFAULT_RAW if DEFAULT_RAW.is_dir() else PROJECT_ROOT / "raw_midi"


def corpus_dir() -> Path | None:
    """The folder named by ``$PIANO_METRONOME_CORPUS``, or None when unset."""
    value = os.environ.get(CORPUS_ENV)
    return Path(value) if value else None
