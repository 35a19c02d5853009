"""The built dataset folder's layout, declared once: file names, shard paths, and how a build is recognised.

```
<out>/README.md                                   card (YAML + DATASET_CARD.md + statistics)
<out>/data/<config>/<split>-NNNNN-of-NNNNN.arrow  windows of each config and split
<out>/data/recordings/recordings-00000-of-00001.arrow
<out>/build_report.json                           what was built and how; its "generator" marks our folders
<out>/checksums.sha256                            sha256 of every other file
```

A command that replaces a folder must know the folder is its own: a build folder is recognised
by the marker in its ``build_report.json`` *and* by every file in it being listed in its
checksums, so a user's file that found its way in is never deleted with it
(:func:`check_replaceable`, through the one refusal rule of :mod:`piano_metronome.safety`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

CARD_FILE = "README.md"
DATA_DIR = "data"
BUILD_REPORT = "build_report.json"
CHECKSUM_FILE = "checksums.sha256"
#: The standalone YAML ``datasets`` reads in a folder (configs and features without a card).
REPO_YAML = ".huggingface.yaml"
#: The value of ``generator`` in ``build_report.json``: the marker of a folder ``build`` wrote.
GENERATOR = "piano-metronome build"


#: ``<split>-NNNNN-of-NNNNN.arrow``, the name :func:`shard_name` writes.
SHARD_NAME = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.arrow$")


def shard_name(split: str, index: int = 0, count: int = 1) -> str:
    """``train-00000-of-00001.arrow``: the name the Hub reads a split from without any YAML."""
    return f"{split}-{index:05d}-of-{count:05d}.arrow"


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """(split, index, count) of a shard file name, or None for a name the build never writes."""
    match = SHARD_NAME.match(name)
    return (match["split"], int(match["index"]), int(match["count"])) if match else None


def spool_path(spool_dir: Path, kind: str, subset: str, split: str) -> Path:
    """Where the windows (or takes) of one subset and split wait between aligning and the ``datasets`` writer."""
    return spool_dir / f"{kind}-{subset}-{split}.arrow"


def config_dir(out: Path, config: str) -> Path:
    """``<out>/data/<config>``: where one config's shards live."""
    return out / DATA_DIR / config


def shard_glob(config: str, split: str) -> str:
    """The data-files pattern of one split, relative to the folder (as written in the card's YAML)."""
    return f"{DATA_DIR}/{config}/{split}-*.arrow"


def shard_paths(out: Path, config: str, split: str) -> list[Path]:
    """The shards of one split, in order."""
    return sorted(config_dir(out, config).glob(f"{split}-*.arrow"))


def listed_files(out: Path) -> set[str]:
    """Relative paths the folder's checksum file lists (empty when it has none)."""
    try:
        text = (out / CHECKSUM_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {line.split("  ", 1)[1] for line in text.splitlines() if "  " in line}


def is_build_folder(out: Path) -> bool:
    """Whether ``out`` carries the build's marker (its own ``build_report.json``).

    Builds before the ``generator`` field marked their report with ``piano_metronome_version``
    alone; those folders are recognised too, so upgrading never strands a user's dataset.
    """
    try:
        report = json.loads((out / BUILD_REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and (report.get("generator") == GENERATOR or "piano_metronome_version" in report)


def why_not_a_build_folder(out: Path) -> str | None:
    """None when ``out`` is a folder a build wrote and holds nothing else; else why it is not.

    A build replaces such a folder whole, so a user's file found in it (not in its checksums)
    makes it the user's too.
    """
    if not is_build_folder(out):
        return f"is not empty and was not written by `piano-metronome build` (no {BUILD_REPORT} of ours)"
    ours = listed_files(out) | {CHECKSUM_FILE}
    foreign = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                     if not p.is_dir() and p.relative_to(out).as_posix() not in ours)
    if foreign:
        return f"holds {len(foreign)} file(s) the build did not write (e.g. {foreign[0]}); move them first"
    return None


def check_replaceable(out: Path) -> None:
    """Raise :class:`~piano_metronome.safety.OverwriteError` unless a build may replace ``out``
    (nothing there, an empty folder, or a folder a build wrote holding only its files)."""
    from piano_metronome.safety import check_replaceable_folder

    check_replaceable_folder(out, why_not_a_build_folder, forceable=False)


def read_build_report(out: Path) -> dict[str, Any]:
    """The folder's ``build_report.json``; raises OSError or ValueError when it cannot be read."""
    report = json.loads((out / BUILD_REPORT).read_text(encoding="utf-8"))
    if not isinstance(report, dict):
        raise ValueError(f"{BUILD_REPORT} is not a JSON object")
    return report


def built_config_subsets(out: Path) -> dict[str, tuple[str, ...]]:
    """Config → subsets it holds, as the build recorded them (builds before that field: the project's configs)."""
    from piano_metronome.outputs.configs import CONFIG_SUBSETS

    try:
        recorded = read_build_report(out).get("config_subsets")
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        return dict(CONFIG_SUBSETS)
    return {str(c): tuple(s) for c, s in recorded.items()}


# ------------------------------------------------------------------------------------------
# Reading a built folder: the one Arrow reader, and where each table is


def read_table(source: Path | bytes, columns: list[str] | None = None, full_check: bool = False) -> pa.Table:
    """One Arrow IPC stream file (what ``datasets`` writes), memory-mapped, optionally some columns.

    ``full_check`` validates every buffer, so a damaged file fails here, not in a later read.
    """
    import pyarrow as pa

    if isinstance(source, bytes):
        table = pa.ipc.open_stream(pa.py_buffer(source)).read_all()
    else:
        with pa.memory_map(str(source)) as stream, pa.ipc.open_stream(stream) as reader:
            table = reader.read_all()
    if full_check:
        table.validate(full=True)
    return table.select(columns) if columns else table


def read_schema(path: Path) -> pa.Schema:
    """The schema of an Arrow stream file (with its embedded features), without reading its rows."""
    import pyarrow as pa

    with pa.OSFile(str(path)) as stream, pa.ipc.open_stream(stream) as reader:
        return reader.schema


def iter_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The record batches of an Arrow stream file, one at a time (flat memory on any size)."""
    import pyarrow as pa

    with pa.OSFile(str(path)) as stream, pa.ipc.open_stream(stream) as reader:
        yield from reader


def split_order(split: str) -> tuple[int, str]:
    """train, validation, test first (the manifest's order), anything else after, by name."""
    from piano_metronome.inputs.manifest import SPLITS

    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


def window_shards(out: Path, kind: str = "windows") -> dict[str, dict[str, list[Path]]]:
    """config → split → shard paths of a built folder's windows (or ``kind="takes"``: its whole takes),
    configs and splits in their usual order."""
    from piano_metronome.outputs.configs import config_order, table_kind

    found: dict[str, dict[str, list[Path]]] = {}
    data = Path(out) / DATA_DIR
    if not data.is_dir():
        raise FileNotFoundError(f"{out} has no {DATA_DIR}/ folder: is it a dataset built by `piano-metronome build`?")
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and table_kind(p.name) == kind):
        for shard in sorted(folder.glob("*.arrow")):
            parsed = parse_shard_name(shard.name)
            if parsed is not None:
                found.setdefault(folder.name, {}).setdefault(parsed[0], []).append(shard)
    return {c: {s: found[c][s] for s in sorted(found[c], key=split_order)} for c in sorted(found, key=config_order)}


def read_recordings(out: Path) -> pa.Table:
    """The ``recordings`` table of a built folder (one row per recording, rejected ones included)."""
    import pyarrow as pa

    from piano_metronome.outputs.schema import RECORDING_COLUMNS, RECORDINGS_CONFIG

    shards = sorted(config_dir(out, RECORDINGS_CONFIG).glob("*.arrow"))
    if not shards:
        raise FileNotFoundError(f"{out} has no {DATA_DIR}/{RECORDINGS_CONFIG}/*.arrow")
    table = pa.concat_tables([read_table(p) for p in shards])
    missing = [c.name for c in RECORDING_COLUMNS if c.name not in table.column_names]
    if missing:  # counts are read from these columns: without them nothing can be counted honestly
        raise FileNotFoundError(f"{out}: the recordings table has no column(s) {', '.join(missing)} (built by an "
                                "older version?); build it again")
    return table


def read_windows(out: Path, config: str, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """The windows of one config (one split, or all of them in split order)."""
    import pyarrow as pa

    shards = window_shards(out).get(config)
    if not shards:
        raise FileNotFoundError(f"{out} has no config {config!r}")
    paths = [p for s, ps in shards.items() if split is None or s == split for p in ps]
    if not paths:
        raise FileNotFoundError(f"{out}: config {config!r} has no split {split!r}")
    return pa.concat_tables([read_table(p, columns) for p in paths])


def every_window(out: Path, columns: list[str] | None = None) -> pa.Table:
    """Every window of the folder once (``all`` repeats ``d1`` and ``d2``), in config order."""
    import numpy as np
    import pyarrow as pa

    seen: set[str] = set()
    parts = []
    for config in window_shards(out):
        table = read_windows(out, config, columns=None if columns is None else sorted({*columns, "window_id"}))
        ids = table["window_id"].to_pylist()
        keep = np.array([i not in seen for i in ids], dtype=bool)
        seen.update(ids)
        if keep.any():
            parts.append(table.filter(pa.array(keep)))
    if not parts:
        raise FileNotFoundError(f"{out} holds no windows")
    table = pa.concat_tables(parts)
    return table.select(columns) if columns else table


def find_windows(out: Path, item_id: str, config: str | None = None) -> list[dict[str, Any]]:
    """The row of a window id (``d1/aa/003``), or every window of a recording id (``d1/aa``), in time
    order, from ``config`` or else the config named after its subset first; empty when none holds it.

    Raises FileNotFoundError for a folder that is not a build, or a ``config`` it does not have.
    """
    import pyarrow.compute as pc

    from piano_metronome.outputs.configs import ALL_CONFIG

    shards = window_shards(out)
    if config is not None and config not in shards:
        raise FileNotFoundError(f"{out} has no config {config!r} (it has {', '.join(shards) or 'none'})")
    subset = item_id.split("/")[0]
    for name in [config] if config else sorted(shards, key=lambda c: (c != subset, c == ALL_CONFIG)):
        table = read_windows(out, name)
        for column in ("window_id", "recording_id"):
            rows = table.filter(pc.equal(table[column], item_id))
            if rows.num_rows:
                return sorted(rows.to_pylist(), key=lambda r: int(r["start_step"]))
    return []


def count_windows_and_notes(shards: list[Path]) -> tuple[int, int]:
    """Windows and notes in shards, read one record batch at a time (flat memory on any size)."""
    windows = notes = 0
    for shard in shards:
        for batch in iter_batches(shard):
            steps = batch.column("note_step")
            windows += batch.num_rows
            notes += steps.offsets[-1].as_py() - steps.offsets[0].as_py() if len(steps) else 0
    return windows, notes
