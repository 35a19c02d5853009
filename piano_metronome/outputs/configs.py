"""The configs (which subsets each holds) and their manifest rows, without importing ``datasets``.

Kept apart from the builder so the build can read manifests and fork its alignment workers
before the slow ``datasets`` import, which then happens while the workers align.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from piano_metronome.inputs.manifest import ManifestProblem, ManifestRow, read_manifest
from piano_metronome.paths import DEMO_SUBSET, MANIFEST_NAME

if TYPE_CHECKING:
    from piano_metronome.outputs.schema import Column

#: The config holding the windows of every subset of a raw folder (only when it has more than one).
ALL_CONFIG = "all"
#: The configs of whole takes (one row per recording): the recorded subsets, and the demo takes.
TAKES_CONFIG = "takes"
DEMO_TAKES_CONFIG = "demo_takes"
#: The project's own configs: windows per corpus subset, ``all`` of them, the synthetic demo takes,
#: and the same recordings as whole takes.
CONFIG_SUBSETS = {"d1": ("d1",), "d2": ("d2",), ALL_CONFIG: ("d1", "d2"), TAKES_CONFIG: ("d1", "d2"),
                  DEMO_SUBSET: (DEMO_SUBSET,), DEMO_TAKES_CONFIG: (DEMO_SUBSET,)}
#: What each kind of config holds: windows (the default), whole takes, or the per-recording reports.
WINDOWS, TAKES, RECORDINGS = "windows", "takes", "recordings"


def columns_of(config: str) -> tuple[Column, ...]:
    """The schema of a config's tables: windows, whole takes, or the recordings table."""
    from piano_metronome.outputs.schema import RECORDING_COLUMNS, TAKE_COLUMNS, WINDOW_COLUMNS

    return {WINDOWS: WINDOW_COLUMNS, TAKES: TAKE_COLUMNS, RECORDINGS: RECORDING_COLUMNS}[table_kind(config)]


def table_kind(config: str) -> str:
    """Whether a config holds windows, whole takes or the recordings table (it decides the schema)."""
    from piano_metronome.outputs.schema import RECORDINGS_CONFIG

    if config == RECORDINGS_CONFIG:
        return RECORDINGS
    return TAKES if config in (TAKES_CONFIG, DEMO_TAKES_CONFIG) else WINDOWS


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
    """The configs a raw folder can give: windows of each subset of its manifest, ``all`` of them
    when there are several, and ``takes`` of them; ``demo`` and ``demo_takes`` when it holds the
    demo takes' manifest.

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
        if subsets:
            configs[TAKES_CONFIG] = subsets
    if (raw / DEMO_SUBSET / MANIFEST_NAME).is_file():
        configs[DEMO_SUBSET] = (DEMO_SUBSET,)
        configs[DEMO_TAKES_CONFIG] = (DEMO_SUBSET,)
    return configs


def default_config(configs: Iterable[str]) -> str:
    """The config ``load_dataset(name)`` returns when none is named: ``all`` when built, else the first."""
    names = list(configs)
    return ALL_CONFIG if ALL_CONFIG in names else names[0]


def config_order(config: str) -> tuple[int, str]:
    """Where a config is listed: its subsets' configs by name, then ``all``, ``takes``, ``demo``,
    ``demo_takes`` (the order :func:`configs_of` gives, so every listing of a build agrees with it)."""
    ranks = {ALL_CONFIG: 1, TAKES_CONFIG: 2, DEMO_SUBSET: 3, DEMO_TAKES_CONFIG: 4}
    return (ranks.get(config, 0), config)
