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
from pathlib import Path
from typing import Any

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


def spool_path(spool_dir: Path, subset: str, split: str) -> Path:
    """Where the windows of one subset and split wait between aligning and the ``datasets`` writer."""
    return spool_dir / f"{subset}-{split}.arrow"


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
