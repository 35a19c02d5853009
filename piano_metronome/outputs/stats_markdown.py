"""The statistics of a built folder as markdown: the card's generated section and ``stats --format markdown``.

Numbers come from :mod:`piano_metronome.outputs.stats` (computed once, from the folder); this
module only lays them out.
"""

from __future__ import annotations

from pathlib import Path

from piano_metronome.outputs.stats import (
    QUANTIZED_SD_MS,
    ConflictGroup,
    FolderStats,
    SplitStats,
    SubsetAlignment,
    TakesStats,
    folder_stats,
)


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
    if stats.takes:
        parts += ["### Whole takes", "", *takes_markdown(stats.takes), ""]
    if rejected:
        parts += ["### Rejected recordings", "", *rejected, ""]
    return "\n".join(parts)


def takes_markdown(rows: list[TakesStats]) -> list[str]:
    """Per takes config and split: takes, notes, hours, and how many windows they cut into at each length."""
    lengths = sorted({n for r in rows for n in r.windows_at})
    header = " | ".join(f"windows of {n} steps" for n in lengths)
    lines = [f"| config | split | takes | notes | hours | {header} |",
             "|---|---|---:|---:|---:|" + "---:|" * len(lengths)]
    lines += [f"| {r.config} | {r.split} | {r.takes:,} | {r.notes:,} | {r.hours:.2f} | "
              + " | ".join(f"{r.windows_at[n]:,}" for n in lengths) + " |" for r in rows]
    return lines + ["", "Windows cut from the takes with `piano_metronome.outputs.takes.windows_from_takes(takes, "
                        "window_steps=N)` (bar-aligned, empty windows skipped); at 64 steps they are the windows "
                        "configs' own, byte for byte."]


def folder_markdown(folder: Path) -> str:
    """The statistics section of a built folder's card."""
    return stats_markdown(folder_stats(folder))
