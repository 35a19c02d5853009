"""Statistics of a build: the numbers the card, the console and ``piano-metronome stats`` show.

Everything here reads a *built folder* only (the ``recordings`` table and the window shards,
through :mod:`piano_metronome.outputs.layout`), never a rebuild or a build's memory: the build's
summary, the card's statistics section and ``piano-metronome stats`` are computed once from
the folder the build has just written, so they say exactly what a user who loads the tables
would count.
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

from piano_metronome.kinds import WarningKind
from piano_metronome.outputs.layout import built_config_subsets, count_windows_and_notes, read_recordings, window_shards


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


# ------------------------------------------------------------------------------------------
# Statistics of a built folder


def _sum_json(values: Iterable[str]) -> dict[str, int]:
    """Sum JSON objects of counts (``dropped_json``), sorted by key."""
    total: Counter[str] = Counter()
    for value in values:
        total.update(json.loads(value or "{}"))
    return dict(sorted(total.items()))


def _columns(table: pa.Table, *names: str) -> dict[str, list[Any]]:
    """Only the named columns as Python lists: the recordings table's long texts (candidates,
    conflicts, warnings) would cost ~8 kB per recording, which grows with the corpus."""
    columns: dict[str, list[Any]] = table.select(list(names)).to_pydict()
    return columns


def folder_split_stats(folder: Path) -> list[SplitStats]:
    """Per config and split: recordings, hours, drops, warnings (recordings table); windows, notes (shards)."""
    recordings = _columns(read_recordings(folder), "subset", "split", "status", "duration_s", "dropped_json",
                          "warning_kinds")
    config_subsets = built_config_subsets(folder)
    rows = []
    for config, splits in window_shards(folder).items():
        subsets = config_subsets.get(config, ())
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
                warnings=sum(len(recordings["warning_kinds"][i]) for i in ok),
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
    rec = _columns(recordings, "subset", "status", "reason", "recording_id", "grid_source", "conflict_kinds",
                   "warning_kinds", "timing_sd_ms", "fit_concentration", "grid_shift_steps", "latency_ms",
                   "notes_placed", "share_beyond_035")
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
    rec = _columns(recordings, "conflict_kinds", "status", "conflict_bpms", "subset", "grid_source", "bpm_used",
                   "recording_id")
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
    rec = _columns(recordings, "subset", "status", "warning_kinds")
    counts: dict[WarningKind, Counter[str]] = {}
    for subset, status, kinds in zip(rec["subset"], rec["status"], rec["warning_kinds"], strict=True):
        for kind in kinds if status == "ok" else ():
            counts.setdefault(WarningKind(kind), Counter())[subset] += 1
    return {kind.label: dict(sorted(counts[kind].items())) for kind in WarningKind if kind in counts}


#: Window lengths the card states counts for, when the folder holds whole takes (cut with
#: :func:`~piano_metronome.outputs.takes.windows_from_takes`): 2, 4 and 8 bars of 16ths.
RECUT_STEPS = (32, 64, 128)


@dataclass(frozen=True)
class TakesStats:
    """One takes config and split: takes, notes, hours, and the windows they cut into at each length."""

    config: str
    split: str
    takes: int
    notes: int
    hours: float
    windows_at: dict[int, int]


def takes_stats(folder: Path) -> list[TakesStats]:
    """Per takes config and split, read from the takes shards a record batch at a time (flat memory:
    a take with its file and notes is ~75 kB, 100× the corpus's takes are gigabytes)."""
    from piano_metronome.outputs.layout import iter_batches
    from piano_metronome.outputs.takes import window_counts

    rows = []
    for config, splits in window_shards(folder, kind="takes").items():
        for split, shards in splits.items():
            takes = notes = 0
            seconds = 0.0
            windows_at = dict.fromkeys(RECUT_STEPS, 0)
            for batch in (b for shard in shards for b in iter_batches(shard)):
                table = pa.Table.from_batches([batch]).select(["note_step", "total_steps", "duration_s"])
                takes += table.num_rows
                notes += int(pa.compute.sum(pa.compute.list_value_length(table["note_step"])).as_py() or 0)
                seconds += float(pa.compute.sum(table["duration_s"]).as_py() or 0.0)
                for steps, count in window_counts(table, RECUT_STEPS).items():
                    windows_at[steps] += count
            rows.append(TakesStats(config=config, split=split, takes=takes, notes=notes, hours=seconds / 3600.0,
                                   windows_at=windows_at))
    return rows


@dataclass(frozen=True)
class FolderStats:
    """Everything ``stats`` and the card report about a built folder."""

    splits: list[SplitStats]
    alignment: list[SubsetAlignment]
    conflicts: list[ConflictGroup]
    warnings: dict[str, dict[str, int]]
    takes: list[TakesStats] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Plain data for ``stats --format json``."""
        return {"splits": [asdict(s) for s in self.splits], "alignment": [asdict(a) for a in self.alignment],
                "conflicts": [asdict(c) for c in self.conflicts], "warnings": self.warnings,
                "takes": [asdict(t) for t in self.takes]}


def folder_stats(folder: Path) -> FolderStats:
    """Read a built folder once and compute every table."""
    recordings = read_recordings(folder)
    return FolderStats(folder_split_stats(folder), subset_alignment(recordings), conflict_groups(recordings),
                       warning_kinds(recordings), takes_stats(folder))
