"""The configs (which subsets each holds) and their manifest rows, without importing ``datasets``.

Kept apart from the builder so the build can read manifests and fork its alignment workers
before the slow ``datasets`` import, which then happens while the workers align.
"""

from __future__ import annotations

from pathlib import Path

from piano_metronome.inputs.manifest import ManifestRow, read_manifest
from piano_metronome.paths import DEMO_SUBSET, MANIFEST_NAME

CONFIG_SUBSETS = {"d1": ("d1",), "d2": ("d2",), "all": ("d1", "d2"), "demo": (DEMO_SUBSET,)}


def manifest_path(raw: Path, subsets: tuple[str, ...]) -> Path:
    """The demo takes keep their own manifest in ``raw_midi/demo/``; the corpus uses ``raw_midi/``."""
    return raw / DEMO_SUBSET / MANIFEST_NAME if subsets == (DEMO_SUBSET,) else raw / MANIFEST_NAME


def config_rows(raw: Path, subsets: tuple[str, ...], problems: list | None = None) -> list[ManifestRow]:
    """The manifest rows of a config, sorted by recording id (the order of windows in shards).

    Bad manifest rows are skipped (and appended to ``problems`` when given): one bad row must
    not stop the others from building.
    """
    rows = read_manifest(manifest_path(raw, subsets), [] if problems is None else problems)
    return sorted((r for r in rows if r.subset in subsets), key=lambda r: r.recording_id)
