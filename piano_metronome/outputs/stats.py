"""Statistics of a build, from the alignment reports: the numbers the card and the console show."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

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
    """Totals over the recordings of ``subsets`` in ``split``."""
    chosen = [r for r in results if r.row.subset in subsets and r.row.split == split]
    ok = [r for r in chosen if r.ok]
    dropped: Counter = Counter()
    for r in ok:
        dropped.update(r.report.dropped)
    return SplitStats(
        config=config, split=split, recordings=len(ok), rejected=len(chosen) - len(ok),
        windows=sum(r.report.windows for r in ok), notes=sum(r.report.notes_placed for r in ok),
        hours=sum(r.report.duration_s for r in ok) / 3600.0, dropped=dict(sorted(dropped.items())),
        warnings=sum(len(r.report.warnings) for r in ok),
    )


def _fmt_dropped(dropped: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in dropped.items()) or "none"


def stats_markdown(rows: list[SplitStats], results: list[RecordingResult]) -> str:
    """Markdown tables for the card: per config and split, then what alignment measured."""
    lines = ["| config | split | recordings | windows | notes | hours | notes dropped (by reason) | warnings |",
             "|---|---|---:|---:|---:|---:|---|---:|"]
    for s in rows:
        lines.append(f"| {s.config} | {s.split} | {s.recordings} | {s.windows:,} | {s.notes:,} | {s.hours:.2f} | "
                     f"{_fmt_dropped(s.dropped)} | {s.warnings} |")
    lines += ["", *alignment_markdown(results)]
    return "\n".join(lines) + "\n"


def alignment_markdown(results: list[RecordingResult]) -> list[str]:
    """What the alignment measured per subset: latency, timing spread, ambiguity, conflicts."""
    lines = ["| subset | recordings | median latency (ms) | latency range (ms) | median timing SD (ms) | "
             "notes beyond 0.35 step | grid conflicts | key-signature disagreements | rejected |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for subset in sorted({r.row.subset for r in results}):
        sub = [r for r in results if r.row.subset == subset]
        ok = [r.report for r in sub if r.ok]
        if not ok:
            lines.append(f"| {subset} | 0 | – | – | – | – | – | – | {len(sub)} |")
            continue
        latency = np.array([r.latency_ms for r in ok])
        placed = np.array([r.notes_placed for r in ok], dtype=float)
        beyond = float((np.array([r.share_beyond_035 for r in ok]) * placed).sum() / max(placed.sum(), 1))
        lines.append(
            f"| {subset} | {len(ok)} | {np.median(latency):.1f} | {latency.min():.1f} … {latency.max():.1f} | "
            f"{np.median([r.timing_sd_ms for r in ok]):.1f} | {beyond:.2%} | "
            f"{sum(1 for r in ok if r.conflicts)} | {sum(1 for r in ok if r.key_signature_agrees is False)} | "
            f"{len(sub) - len(ok)} |")
    return lines
