"""The published README.md: a card huggingface_hub and datasets accept offline, whose numbers are the build's.

Statistics are parsed back out of the card and compared with a count made here from the
Arrow tables, so a card that drifts from its data fails.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from piano_metronome.kinds import WarningKind
from piano_metronome.outputs.card import (
    CARD_TEMPLATE,
    FIELDS_MARKER,
    STATS_MARKER,
    fill_markers,
    size_category,
)
from piano_metronome.outputs.schema import RECORDING_COLUMNS, WINDOW_COLUMNS, features
from piano_metronome.processing.keys import key_signature, parse_key


def arrow(path: Path) -> pa.Table:
    """An Arrow stream shard, read with nothing but pyarrow."""
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_stream(source).read_all()


def cells(line: str) -> list[str]:
    """The cells of a markdown table row (an escaped ``\\|`` stays inside its cell)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def table_after(text: str, heading: str) -> list[list[str]]:
    """Rows (header and separator skipped) of the first table after a heading line."""
    start = text.index(heading + "\n")
    lines = text[start:].splitlines()[1:]
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def body(folder: Path) -> str:
    """The README without its YAML front matter."""
    return (folder / "README.md").read_text(encoding="utf-8").split("\n---\n", 1)[1]


def recordings_of(folder: Path) -> list[dict]:
    """The recordings table as dicts, read with pyarrow only."""
    return arrow(next((folder / "data" / "recordings").glob("*.arrow"))).to_pylist()


# ------------------------------------------------------------------------------------------
# The card passes huggingface_hub and datasets, offline


def test_card_loads_with_huggingface_hub(demo_dataset: Path) -> None:
    """``DatasetCard.load`` parses it; its data is a DatasetCardData with the licence left unset and the counts."""
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCard.load(demo_dataset / "README.md")
    assert isinstance(card.data, DatasetCardData)
    data = card.data.to_dict()
    assert (data["license"], data["license_name"]) == ("other", "unspecified")
    assert data["size_categories"] == ["n<1K"]
    assert {"music", "midi", "piano"} <= set(data["tags"])
    names = [c["config_name"] for c in data["configs"]]
    assert names == ["demo", "demo_takes", "recordings"]
    assert [c.get("default") for c in data["configs"]] == [True, None, None]
    report = json.loads((demo_dataset / "build_report.json").read_text(encoding="utf-8"))
    info = {i["config_name"]: i for i in data["dataset_info"]}
    for split in info["demo"]["splits"]:
        assert split["num_examples"] == report["configs"]["demo"][split["name"]]["num_examples"]
        assert split["num_bytes"] > 0
    assert DatasetCard(str(card)).data.to_dict() == data  # the text round-trips
    written = (demo_dataset / "README.md").read_text(encoding="utf-8")
    assert str(DatasetCard(written)) == written  # laid out exactly as huggingface_hub lays out a card
    assert card.text.lstrip().startswith("# Piano to a metronome")


def test_load_dataset_reads_the_yaml_and_checks_split_sizes(demo_dataset: Path, tmp_path: Path) -> None:
    """``load_dataset(dir, config)`` gives the declared features and sizes; a wrong size in the YAML fails."""
    from datasets import load_dataset
    from datasets.exceptions import NonMatchingSplitsSizesError

    ds = load_dataset(str(demo_dataset), "demo", cache_dir=str(tmp_path / "cache"))
    report = json.loads((demo_dataset / "build_report.json").read_text(encoding="utf-8"))
    declared = {k: v["num_examples"] for k, v in report["configs"]["demo"].items()}
    assert {k: v.num_rows for k, v in ds.items()} == declared
    assert ds["train"].features == features()
    recordings = load_dataset(str(demo_dataset), "recordings", split="recordings", cache_dir=str(tmp_path / "cache"))
    assert recordings.num_rows == len(recordings_of(demo_dataset))
    stream = load_dataset(str(demo_dataset), "demo", split="validation", streaming=True)
    assert next(iter(stream))["window_id"].startswith("demo/")

    broken = tmp_path / "broken"
    shutil.copytree(demo_dataset, broken)
    readme = broken / "README.md"
    train = report["configs"]["demo"]["train"]["num_examples"]
    text = readme.read_text(encoding="utf-8")
    assert text.count(f"num_examples: {train}\n") >= 1
    readme.write_text(text.replace(f"num_examples: {train}\n", f"num_examples: {train + 1}\n", 1), encoding="utf-8")
    with pytest.raises(NonMatchingSplitsSizesError):
        load_dataset(str(broken), "demo", cache_dir=str(tmp_path / "cache2"))


# ------------------------------------------------------------------------------------------
# Fields: generated from the schema


def test_fields_are_the_schema(demo_dataset: Path) -> None:
    """Every column of both tables, in order, with its type and its doc, as the schema declares."""
    text = body(demo_dataset)
    for heading, columns in (("#### Windows", WINDOW_COLUMNS), ("#### Recordings", RECORDING_COLUMNS)):
        title = next(line for line in text.splitlines() if line.startswith(heading))
        rows = table_after(text, title)
        assert [r[0] for r in rows] == [f"`{c.name}`" for c in columns]
        for row, column in zip(rows, columns, strict=True):
            assert len(row) == 3, row
            assert column.dtype in row[1] or (column.dtype == "key" and "ClassLabel" in row[1])
            assert row[2].replace("\\|", "|") == column.doc


def test_template_has_both_markers_and_the_required_sections() -> None:
    """The hand-written card: both markers once, and every section the issue asks for."""
    template = CARD_TEMPLATE.read_text(encoding="utf-8")
    assert template.count(STATS_MARKER) == 1 and template.count(FIELDS_MARKER) == 1
    for phrase in ("## How the recordings were made", "## How the notes were aligned", "positive = late",
                   "negative = early", "## Splits", "author_validation.txt", "## Intended uses", "## Limitations",
                   "4/4 only", "synthetic", "piano-metronome fetch", "piano-metronome validate",
                   "piano-metronome rebuild", "## Licence", "states **no licence**", "Learning to Groove with "
                   "Inverse Sequence Transformations", "781-piano-autoencoder", 'load_dataset("piano_metronome", "d1")',
                   "streaming=True", "dense_arrays"):
        assert phrase in template, phrase


def test_template_types_no_measured_numbers() -> None:
    """No latency, spread or percentage typed into the prose: those come from the build."""
    template = CARD_TEMPLATE.read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", template, flags=re.S)
    assert not re.search(r"−?-?\d+(\.\d+)? ?ms\b", prose.replace("25 ms", "")), "typed milliseconds"
    assert not re.search(r"\d+\.\d+ ?%", prose), "typed percentage"
    assert not re.search(r"\b\d{3,}\b recordings", prose), "typed recording count"


def test_missing_markers_append_sections() -> None:
    """A card without markers still gets both generated sections, at the end."""
    filled = fill_markers("# Title\n\nText.\n", "STATISTICS", ["demo"])
    assert filled.index("## Fields") < filled.index("## Statistics of this build") < filled.index("STATISTICS")
    assert "`window_id`" in filled


def test_size_category() -> None:
    """The Hub's bucket for the largest config."""
    assert size_category({"demo": {"train": {"num_examples": 12}}}) == "n<1K"
    assert size_category({"d1": {"train": {"num_examples": 2593}, "test": {"num_examples": 315}},
                          "all": {"train": {"num_examples": 5434}}}) == "1K<n<10K"
    assert size_category({"x": {"train": {"num_examples": 10_000}}}) == "10K<n<100K"


# ------------------------------------------------------------------------------------------
# Statistics: what the card says equals the tables


def expected_splits(folder: Path) -> dict[tuple[str, str], list[str]]:
    """(config, split) → the cells the card's first statistics table must hold, counted from the files."""
    recordings = recordings_of(folder)
    out = {}
    for config_dir in sorted(p for p in (folder / "data").iterdir() if p.name != "recordings"):
        shards = {p.name.split("-")[0]: arrow(p) for p in config_dir.glob("*.arrow")}
        if any("midi" in t.column_names for t in shards.values()):
            continue  # whole takes have their own table
        subsets = {s for t in shards.values() for s in t["subset"].to_pylist()}
        for split, table in shards.items():
            chosen = [r for r in recordings if r["subset"] in subsets and r["split"] == split]
            ok = [r for r in chosen if r["status"] == "ok"]
            dropped: dict[str, int] = {}
            for r in ok:
                for reason, n in json.loads(r["dropped_json"]).items():
                    dropped[reason] = dropped.get(reason, 0) + n
            notes = sum(len(s) for s in table["note_step"].to_pylist())
            out[(config_dir.name, split)] = [
                str(len(ok)), str(len(chosen) - len(ok)), f"{table.num_rows:,}", f"{notes:,}",
                f"{sum(r['duration_s'] for r in ok) / 3600:.2f}",
                ", ".join(f"{k} {v:,}" for k, v in sorted(dropped.items())) or "none",
                str(sum(len(r["warnings"]) for r in ok))]
    return out


def expected_alignment(folder: Path) -> dict[str, list[str]]:
    """subset → the cells of the card's alignment table, computed here from the recordings table."""
    out = {}
    recordings = recordings_of(folder)
    for subset in sorted({r["subset"] for r in recordings}):
        ok = [r for r in recordings if r["subset"] == subset and r["status"] == "ok"]
        lat = np.array([r["latency_ms"] for r in ok])
        placed = np.array([r["notes_placed"] for r in ok], dtype=float)
        beyond = (np.array([r["share_beyond_035"] for r in ok]) * placed).sum() / placed.sum()
        conc = np.array([r["fit_concentration"] for r in ok])
        out[subset] = [str(len(ok)), f"{np.median(lat):.1f}",
                       f"{np.percentile(lat, 10):.1f} … {np.percentile(lat, 90):.1f}",
                       f"{lat.min():.1f} … {lat.max():.1f}", f"{np.median([r['timing_sd_ms'] for r in ok]):.1f}",
                       f"{np.median(conc):.3f}", f"{conc.min():.3f}", f"{beyond:.2%}"]
    return out


def expected_checks(folder: Path) -> dict[str, list[str]]:
    """subset → the counts of the card's checks table (key signatures compared here, not read from warnings)."""
    out = {}
    recordings = recordings_of(folder)
    for subset in sorted({r["subset"] for r in recordings}):
        rows = [r for r in recordings if r["subset"] == subset]
        ok = [r for r in rows if r["status"] == "ok"]
        sources: dict[str, int] = {}
        for r in ok:
            sources[r["grid_source"]] = sources.get(r["grid_source"], 0) + 1
        disagree = sum(1 for r in ok if r["key_label"] and key_signature(parse_key(r["key_label"]))
                       != key_signature(parse_key(r["key_estimated"])))
        out[subset] = [", ".join(f"{k} {v}" for k, v in sorted(sources.items())),
                       str(sum(n for k, n in sources.items() if k.endswith("+fit"))),
                       str(sum(1 for r in ok if r["grid_shift_steps"])), str(sum(1 for r in ok if r["conflicts"])),
                       str(disagree), str(sum(1 for r in ok if r["timing_sd_ms"] < 1.0)), str(len(rows) - len(ok))]
    return out


def assert_card_statistics(folder: Path) -> None:
    """Every statistics table of the card equals what is counted here from the Arrow tables."""
    text = body(folder)
    splits = {(r[0], r[1]): r[2:] for r in table_after(text, "### Recordings, windows, notes and hours")}
    assert splits == expected_splits(folder)
    alignment = {r[0]: r[1:] for r in table_after(text, "### What the alignment measured")}
    assert alignment == expected_alignment(folder)
    checks = {r[0]: r[1:] for r in table_after(text, "### What the checks found")}
    assert checks == expected_checks(folder)
    listed = " ".join(r[-1] for r in table_after(text, "### Grid sources the notes contradict, and the grid used"))
    conflicted = sorted(r["recording_id"] for r in recordings_of(folder) if r["conflicts"])
    assert sorted(re.findall(r"[\w]+/[\w]+", listed)) == conflicted
    assert {r[0]: r[1:] for r in table_after(text, "### Warnings by kind")} == expected_warnings(folder)


def expected_warnings(folder: Path) -> dict[str, list[str]]:
    """Card label → warnings of that kind per subset, counted here from the stored kinds (accepted recordings)."""
    recordings = recordings_of(folder)
    subsets = sorted({r["subset"] for r in recordings})
    ok = [r for r in recordings if r["status"] == "ok"]
    assert all(len(r["warning_kinds"]) == len(r["warnings"]) for r in recordings)
    return {kind.label: [str(sum(r["warning_kinds"].count(kind.value) for r in ok if r["subset"] == s))
                         for s in subsets]
            for kind in WarningKind if any(kind.value in r["warning_kinds"] for r in ok)}


def test_demo_card_statistics(demo_dataset: Path) -> None:
    """The demo build's card says what its tables hold."""
    assert_card_statistics(demo_dataset)


@pytest.mark.corpus
def test_corpus_card_statistics(corpus_build: Path) -> None:
    """The corpus build's card says what its tables hold, subset by subset, split by split."""
    assert_card_statistics(corpus_build)
    text = body(corpus_build)
    assert {r[0] for r in table_after(text, "### What the alignment measured")} == {"d1", "d2", "demo"}
    assert "`d1/cj`" in text  # the take whose onsets were quantized before export is named
