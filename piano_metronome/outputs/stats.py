"""Statistics of a build: the numbers the card, the console and ``piano-metronome stats`` show.

Two sources, one meaning. During a build, :func:`split_stats` sums the alignment reports in
memory (the summary printed at the end). Everything else reads a *built folder* only, the
``recordings`` table and the window shards, never a rebuild: the card's statistics section is
generated from the folder the build has just written, so it says exactly what a user who
loads the tables would count.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from piano_metronome.inputs.manifest import SPLITS
from piano_metronome.kinds import WarningKind
from piano_metronome.outputs.schema import CONFIGS, RECORDING_COLUMNS, RECORDINGS_CONFIG
from piano_metronome.processing.pipeline import RecordingResult


@dataclass(frozen=True)
class SplitStats:
    """Totals for one config and split."""

    config: str
    split: str
    recordings: int
    rejected: int
    windows: int
    notes: int
    hours: float
    dropped: dict[str, int]
    warnings: int


def split_stats(config: str, subsets: tuple[str, ...], split: str, results: list[RecordingResult]) -> SplitStats:
    """Totals over the recordings of ``subsets`` in ``split``, from in-memory alignment results."""
    chosen = [r for r in results if r.row.subset in subsets and r.row.split == split]
    ok = [r for r in chosen if r.ok]
    dropped: Counter[str] = Counter()
    for r in ok:
        dropped.update(r.report.dropped)
    return SplitStats(
        config=config, split=split, recordings=len(ok), rejected=len(chosen) - len(ok),
        windows=sum(r.report.windows for r in ok), notes=sum(r.report.notes_placed for r in ok),
        hours=sum(r.report.duration_s for r in ok) / 3600.0, dropped=dict(sorted(dropped.items())),
        warnings=sum(len(r.report.warnings) for r in ok),
    )


# ------------------------------------------------------------------------------------------
# Reading a built folder


def read_arrow(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One Arrow IPC stream shard (what ``datasets`` writes), memory-mapped, optionally some columns."""
    with pa.memory_map(str(path)) as source, pa.ipc.open_stream(source) as reader:
        table = reader.read_all()
    return table.select(columns) if columns else table


def _split_order(split: str) -> tuple[int, str]:
    """train, validation, test first (the manifest's order), anything else after, by name."""
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


def _config_order(config: str) -> tuple[int, str]:
    """d1, d2, all, demo first (the build's order), anything else after, by name."""
    return (CONFIGS.index(config) if config in CONFIGS else len(CONFIGS), config)


def window_shards(folder: Path) -> dict[str, dict[str, list[Path]]]:
    """config → split → shard paths, from ``data/<config>/<split>-NNNNN-of-NNNNN.arrow``."""
    found: dict[str, dict[str, list[Path]]] = {}
    data = Path(folder) / "data"
    if not data.is_dir():
        raise FileNotFoundError(f"{folder} has no data/ folder: is it a dataset built by `piano-metronome build`?")
    for config_dir in sorted(p for p in data.iterdir() if p.is_dir() and p.name != RECORDINGS_CONFIG):
        for shard in sorted(config_dir.glob("*.arrow")):
            split = shard.name.split("-")[0]
            found.setdefault(config_dir.name, {}).setdefault(split, []).append(shard)
    return {c: {s: found[c][s] for s in sorted(found[c], key=_split_order)} for c in sorted(found, key=_config_order)}


def read_recordings(folder: Path) -> pa.Table:
    """The ``recordings`` table of a built folder (one row per recording, rejected ones included)."""
    shards = sorted((Path(folder) / "data" / RECORDINGS_CONFIG).glob("*.arrow"))
    if not shards:
        raise FileNotFoundError(f"{folder} has no data/{RECORDINGS_CONFIG}/*.arrow")
    table = pa.concat_tables([read_arrow(p) for p in shards])
    missing = [c.name for c in RECORDING_COLUMNS if c.name not in table.column_names]
    if missing:  # counts are read from these columns: without them nothing can be counted honestly
        raise FileNotFoundError(f"{folder}: the recordings table has no column(s) {', '.join(missing)} (built by an "
                                "older version?); build it again")
    return table


def read_windows(folder: Path, config: str, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """The windows of one config (one split, or all of them in split order)."""
    shards = window_shards(folder).get(config)
    if not shards:
        raise FileNotFoundError(f"{folder} has no config {config!r}")
    paths = [p for s, ps in shards.items() if split is None or s == split for p in ps]
    if not paths:
        raise FileNotFoundError(f"{folder}: config {config!r} has no split {split!r}")
    return pa.concat_tables([read_arrow(p, columns) for p in paths])


def every_window(folder: Path, columns: list[str] | None = None) -> pa.Table:
    """Every window of the folder once (``all`` repeats ``d1`` and ``d2``), in config order."""
    seen: set[str] = set()
    parts = []
    for config in window_shards(folder):
        table = read_windows(folder, config, columns=None if columns is None else sorted({*columns, "window_id"}))
        ids = table["window_id"].to_pylist()
        keep = np.array([i not in seen for i in ids], dtype=bool)
        seen.update(ids)
        if keep.any():
            parts.append(table.filter(pa.array(keep)))
    if not parts:
        raise FileNotFoundError(f"{folder} holds no windows")
    table = pa.concat_tables(parts)
    return table.select(columns) if columns else table


# ------------------------------------------------------------------------------------------
# Statistics of a built folder


def config_subsets(folder: Path, config: str) -> tuple[str, ...]:
    """The subsets a config holds: the builder's definition, else what its shards contain."""
    from piano_metronome.outputs.configs import CONFIG_SUBSETS

    if config in CONFIG_SUBSETS:
        return CONFIG_SUBSETS[config]
    subsets = read_windows(folder, config, columns=["subset"])["subset"].to_pylist()
    return tuple(sorted(set(subsets)))


def _sum_json(values: Iterable[str]) -> dict[str, int]:
    """Sum JSON objects of counts (``dropped_json``), sorted by key."""
    total: Counter[str] = Counter()
    for value in values:
        total.update(json.loads(value or "{}"))
    return dict(sorted(total.items()))


def count_windows_and_notes(shards: list[Path]) -> tuple[int, int]:
    """Windows and notes in shards, read one record batch at a time (flat memory on any size)."""
    windows = notes = 0
    for shard in shards:
        with pa.OSFile(str(shard)) as source, pa.ipc.open_stream(source) as reader:
            for batch in reader:
                steps = batch.column("note_step")
                windows += batch.num_rows
                notes += steps.offsets[-1].as_py() - steps.offsets[0].as_py() if len(steps) else 0
    return windows, notes


def folder_split_stats(folder: Path) -> list[SplitStats]:
    """Per config and split: recordings, hours, drops, warnings (recordings table); windows, notes (shards)."""
    recordings = read_recordings(folder).to_pydict()
    rows = []
    for config, splits in window_shards(folder).items():
        subsets = config_subsets(folder, config)
        for split in splits:
            chosen = [i for i, (sub, spl) in enumerate(zip(recordings["subset"], recordings["split"], strict=True))
                      if sub in subsets and spl == split]
            ok = [i for i in chosen if recordings["status"][i] == "ok"]
            windows, notes = count_windows_and_notes(splits[split])
            rows.append(SplitStats(
                config=config, split=split, recordings=len(ok), rejected=len(chosen) - len(ok),
                windows=windows, notes=notes,
                hours=float(sum(recordings["duration_s"][i] for i in ok)) / 3600.0,
                dropped=_sum_json(recordings["dropped_json"][i] for i in ok),
                warnings=sum(len(recordings["warnings"][i]) for i in ok),
            ))
    return rows


def has_warning(kinds: list[str], kind: WarningKind) -> bool:
    """Whether a recording's ``warning_kinds`` include ``kind``."""
    return kind.value in kinds


#: Below this robust timing SD (ms) a recording's onsets look quantized in the DAW: no human timing to learn.
QUANTIZED_SD_MS = 1.0


@dataclass(frozen=True)
class SubsetAlignment:
    """What the alignment measured over the accepted recordings of one subset."""

    subset: str
    recordings: int
    rejected: int
    latency_median_ms: float
    latency_p10_ms: float
    latency_p90_ms: float
    latency_min_ms: float
    latency_max_ms: float
    timing_sd_median_ms: float
    concentration_median: float
    concentration_min: float
    notes_placed: int
    share_beyond_035: float
    grid_sources: dict[str, int]
    fitted_period: int
    bar_line_moved: int
    grid_conflicts: int
    key_disagreements: int
    rejections: dict[str, str] = field(default_factory=dict)
    quantized: tuple[str, ...] = ()


def subset_alignment(recordings: pa.Table) -> list[SubsetAlignment]:
    """Per subset, from the ``recordings`` table: latency, grid fit, ambiguity, conflicts."""
    rec = recordings.to_pydict()
    out = []
    for subset in sorted(set(rec["subset"])):
        rows = [i for i, s in enumerate(rec["subset"]) if s == subset]
        ok = [i for i in rows if rec["status"][i] == "ok"]
        rejections = {rec["recording_id"][i]: rec["reason"][i] for i in rows if rec["status"][i] != "ok"}
        if not ok:
            nan = float("nan")
            out.append(SubsetAlignment(subset, 0, len(rows), nan, nan, nan, nan, nan, nan, nan, nan, 0, 0.0, {},
                                       0, 0, 0, 0, rejections, ()))
            continue
        col = {name: np.array([rec[name][i] for i in ok], dtype=np.float64) for name in (
            "latency_ms", "timing_sd_ms", "fit_concentration", "share_beyond_035", "notes_placed",
            "grid_shift_steps")}
        placed = col["notes_placed"]
        sources = Counter(rec["grid_source"][i] for i in ok)
        out.append(SubsetAlignment(
            subset=subset, recordings=len(ok), rejected=len(rows) - len(ok),
            latency_median_ms=float(np.median(col["latency_ms"])),
            latency_p10_ms=float(np.percentile(col["latency_ms"], 10)),
            latency_p90_ms=float(np.percentile(col["latency_ms"], 90)),
            latency_min_ms=float(col["latency_ms"].min()), latency_max_ms=float(col["latency_ms"].max()),
            timing_sd_median_ms=float(np.median(col["timing_sd_ms"])),
            concentration_median=float(np.median(col["fit_concentration"])),
            concentration_min=float(col["fit_concentration"].min()),
            notes_placed=int(placed.sum()),
            share_beyond_035=float((col["share_beyond_035"] * placed).sum() / max(placed.sum(), 1.0)),
            grid_sources=dict(sorted(sources.items())),
            fitted_period=sum(n for s, n in sources.items() if s.endswith("+fit")),
            bar_line_moved=int((col["grid_shift_steps"] != 0).sum()),
            grid_conflicts=sum(1 for i in ok if rec["conflict_kinds"][i]),
            key_disagreements=sum(1 for i in ok
                                  if has_warning(rec["warning_kinds"][i], WarningKind.KEY_LABEL_DISAGREES)),
            rejections=rejections,
            quantized=tuple(sorted(rec["recording_id"][i] for i in ok if rec["timing_sd_ms"][i] < QUANTIZED_SD_MS)),
        ))
    return out


@dataclass(frozen=True)
class ConflictGroup:
    """Recordings whose grid sources disagree in the same way, and the grid the build used."""

    subset: str
    contradicted: str  # e.g. "label_bpm 95"
    grid_source: str
    bpm_used: float
    recording_ids: tuple[str, ...]


def _contradicted(kinds: list[str], bpms: list[float]) -> str:
    """``label_bpm 95``: the grid sources the notes contradicted (the conflicts' kinds), with their BPM."""
    return "; ".join(f"{kind} {bpm:g}" for kind, bpm in zip(kinds, bpms, strict=True))


def conflict_groups(recordings: pa.Table) -> list[ConflictGroup]:
    """Grid-source conflicts (e.g. a BPM label the notes contradict), grouped by what disagreed."""
    rec = recordings.to_pydict()
    groups: dict[tuple[str, str, str, float], list[str]] = {}
    for i, kinds in enumerate(rec["conflict_kinds"]):
        if kinds and rec["status"][i] == "ok":
            contradicted = _contradicted(kinds, rec["conflict_bpms"][i])
            key = (rec["subset"][i], contradicted, rec["grid_source"][i], round(rec["bpm_used"][i], 2))
            groups.setdefault(key, []).append(rec["recording_id"][i])
    return [ConflictGroup(subset, contradicted, source, bpm, tuple(sorted(ids)))
            for (subset, contradicted, source, bpm), ids in sorted(groups.items())]


def warning_kinds(recordings: pa.Table) -> dict[str, dict[str, int]]:
    """Card label of each warning kind → subset → warnings of that kind (accepted recordings only).

    Counted from the stored ``warning_kinds``, never from the wording; kinds in declaration order.
    """
    rec = recordings.to_pydict()
    counts: dict[WarningKind, Counter[str]] = {}
    for subset, status, kinds in zip(rec["subset"], rec["status"], rec["warning_kinds"], strict=True):
        for kind in kinds if status == "ok" else ():
            counts.setdefault(WarningKind(kind), Counter())[subset] += 1
    return {kind.label: dict(sorted(counts[kind].items())) for kind in WarningKind if kind in counts}


@dataclass(frozen=True)
class FolderStats:
    """Everything ``stats`` and the card report about a built folder."""

    splits: list[SplitStats]
    alignment: list[SubsetAlignment]
    conflicts: list[ConflictGroup]
    warnings: dict[str, dict[str, int]]

    def as_json(self) -> dict[str, Any]:
        """Plain data for ``stats --format json``."""
        return {"splits": [asdict(s) for s in self.splits], "alignment": [asdict(a) for a in self.alignment],
                "conflicts": [asdict(c) for c in self.conflicts], "warnings": self.warnings}


def folder_stats(folder: Path) -> FolderStats:
    """Read a built folder once and compute every table."""
    recordings = read_recordings(folder)
    return FolderStats(folder_split_stats(folder), subset_alignment(recordings), conflict_groups(recordings),
                       warning_kinds(recordings))


# ------------------------------------------------------------------------------------------
# Markdown (the card's generated statistics section)


def fmt_dropped(dropped: dict[str, int]) -> str:
    """``same_cell_collision 14, zero_duration 1`` or ``none``."""
    return ", ".join(f"{k} {v:,}" for k, v in dropped.items()) or "none"


def splits_markdown(rows: list[SplitStats]) -> list[str]:
    """The per config and split table."""
    lines = ["| config | split | recordings | rejected | windows | notes | hours | notes dropped (by reason) | "
             "warnings |", "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for s in rows:
        lines.append(f"| {s.config} | {s.split} | {s.recordings} | {s.rejected} | {s.windows:,} | {s.notes:,} | "
                     f"{s.hours:.2f} | {fmt_dropped(s.dropped)} | {s.warnings} |")
    return lines


def alignment_markdown(rows: list[SubsetAlignment]) -> list[str]:
    """Latency, timing spread, grid fit and ambiguity per subset."""
    lines = ["| subset | recordings | latency median (ms) | latency 10th–90th percentile (ms) | latency range (ms) | "
             "timing SD, median (ms) | grid fit (concentration), median | grid fit, lowest | "
             "notes beyond ±0.35 step |", "|---|---:|---:|---|---|---:|---:|---:|---:|"]
    for a in rows:
        if not a.recordings:
            lines.append(f"| {a.subset} | 0 | – | – | – | – | – | – | – |")
            continue
        lines.append(f"| {a.subset} | {a.recordings} | {a.latency_median_ms:.1f} | {a.latency_p10_ms:.1f} … "
                     f"{a.latency_p90_ms:.1f} | {a.latency_min_ms:.1f} … {a.latency_max_ms:.1f} | "
                     f"{a.timing_sd_median_ms:.1f} | {a.concentration_median:.3f} | {a.concentration_min:.3f} | "
                     f"{a.share_beyond_035:.2%} |")
    return lines


def checks_markdown(rows: list[SubsetAlignment]) -> list[str]:
    """What the checks found per subset: grid sources used, corrections, label conflicts, rejections."""
    lines = ["| subset | grid used (recordings) | fitted period used | bar line moved | grid sources disagree | "
             f"key label ≠ estimated key signature | timing SD < {QUANTIZED_SD_MS:g} ms (quantized onsets) | "
             "rejected |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for a in rows:
        sources = ", ".join(f"{k} {v}" for k, v in a.grid_sources.items()) or "–"
        lines.append(f"| {a.subset} | {sources} | {a.fitted_period} | {a.bar_line_moved} | {a.grid_conflicts} | "
                     f"{a.key_disagreements} | {len(a.quantized)} | {a.rejected} |")
    quantized = [rid for a in rows for rid in a.quantized]
    if quantized:
        lines += ["", f"Recordings whose onsets sit on the grid within {QUANTIZED_SD_MS:g} ms (probably quantized "
                  f"before export, so their offsets carry no human timing): {', '.join(f'`{r}`' for r in quantized)}."]
    return lines


def conflicts_markdown(groups: list[ConflictGroup]) -> list[str]:
    """Each disagreement between grid sources: what lost, the grid the build used, which recordings."""
    if not groups:
        return ["No grid source disagreed with the one the notes fit."]
    lines = ["| subset | contradicted by the notes (BPM) | grid used | BPM used | recordings |",
             "|---|---|---|---:|---|"]
    for g in groups:
        lines.append(f"| {g.subset} | {g.contradicted} | {g.grid_source} | {g.bpm_used:.2f} | "
                     f"{len(g.recording_ids)}: {', '.join(g.recording_ids)} |")
    return lines


def warnings_markdown(kinds: dict[str, dict[str, int]], subsets: list[str]) -> list[str]:
    """Warnings by kind and subset."""
    if not kinds:
        return ["No warnings."]
    lines = ["| warning | " + " | ".join(subsets) + " |", "|---|" + "---:|" * len(subsets)]
    for kind, counts in kinds.items():
        lines.append(f"| {kind} | " + " | ".join(str(counts.get(s, 0)) for s in subsets) + " |")
    return lines


def stats_markdown(stats: FolderStats) -> str:
    """The card's statistics section (tables under level-3 headings)."""
    subsets = [a.subset for a in stats.alignment]
    rejected = [f"- `{rid}`: {reason}" for a in stats.alignment for rid, reason in a.rejections.items()]
    parts = [
        "### Recordings, windows, notes and hours", "", *splits_markdown(stats.splits), "",
        "### What the alignment measured", "", *alignment_markdown(stats.alignment), "",
        "### What the checks found", "", *checks_markdown(stats.alignment), "",
        "### Grid sources the notes contradict, and the grid used", "", *conflicts_markdown(stats.conflicts), "",
        "### Warnings by kind", "", *warnings_markdown(stats.warnings, subsets), "",
    ]
    if rejected:
        parts += ["### Rejected recordings", "", *rejected, ""]
    return "\n".join(parts)


def folder_markdown(folder: Path) -> str:
    """The statistics section of a built folder's card."""
    return stats_markdown(folder_stats(folder))
