"""The configs (which subsets each holds) and their manifest rows, without importing ``datasets``.

Kept apart from the builder so the build can read manifests and fork its alignment workers
before the slow ``datasets`` import, which then happens while the workers align.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from piano_metronome.inputs.manifest import ManifestProblem, ManifestRow, read_manifest
from piano_metronome.paths import DEMO_SUBSET, MANIFEST_NAME

#: The project's own configs: one per corpus subset, ``all`` of them, and the synthetic demo takes.
CONFIG_SUBSETS = {"d1": ("d1",), "d2": ("d2",), "all": ("d1", "d2"), "demo": (DEMO_SUBSET,)}
#: The config holding every subset of a raw folder (only when it has more than one).
ALL_CONFIG = "all"


def manifest_path(raw: Path, subsets: tuple[str, ...]) -> Path:
    """The demo takes keep their own manifest in ``raw_midi/demo/``; the corpus uses ``raw_midi/``."""
    return raw / DEMO_SUBSET / MANIFEST_NAME if subsets == (DEMO_SUBSET,) else raw / MANIFEST_NAME


def config_rows(raw: Path, subsets: tuple[str, ...],
                problems: list[ManifestProblem] | None = None) -> list[ManifestRow]:
    """The manifest rows of a config, sorted by recording id (the order of windows in shards).

    Bad manifest rows are skipped (and appended to ``problems`` when given): one bad row must
    not stop the others from building.
    """
    rows = read_manifest(manifest_path(raw, subsets), [] if problems is None else problems)
    return sorted((r for r in rows if r.subset in subsets), key=lambda r: r.recording_id)


def configs_of(raw: Path, problems: list[ManifestProblem] | None = None) -> dict[str, tuple[str, ...]]:
    """The configs a raw folder can give: one per subset of its manifest, ``all`` when there are
    several, and ``demo`` when it holds the demo takes' manifest.

    Derived from the manifest, so a musician's own folder (``mine/``, ``lessons/``) gets its
    own configs, and the project's ``raw_midi/`` gets exactly :data:`CONFIG_SUBSETS`.
    """
    configs: dict[str, tuple[str, ...]] = {}
    if (raw / MANIFEST_NAME).is_file():
        rows = read_manifest(raw / MANIFEST_NAME, [] if problems is None else problems)
        subsets = tuple(sorted({r.subset for r in rows if r.subset != DEMO_SUBSET}))
        configs.update({s: (s,) for s in subsets})
        if len(subsets) > 1:
            configs[ALL_CONFIG] = subsets
    if (raw / DEMO_SUBSET / MANIFEST_NAME).is_file():
        configs[DEMO_SUBSET] = (DEMO_SUBSET,)
    return configs


def default_config(configs: Iterable[str]) -> str:
    """The config ``load_dataset(name)`` returns when none is named: ``all`` when built, else the first."""
    names = list(configs)
    return ALL_CONFIG if ALL_CONFIG in names else names[0]


def config_order(config: str) -> tuple[int, str]:
    """Where a config is listed: its subsets' configs by name, then ``all``, then ``demo`` (the order
    :func:`configs_of` gives, so every listing of a build agrees with the build itself)."""
    rank = 2 if config == DEMO_SUBSET else 1 if config == ALL_CONFIG else 0
    return (rank, config)
