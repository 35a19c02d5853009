"""``piano-metronome stats``: what a built dataset folder holds, from its tables alone (no rebuild)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.commands.common import fail, result_console

if TYPE_CHECKING:
    from rich.table import Table

    from piano_metronome.outputs.stats import FolderStats, SplitStats

FORMATS = ("table", "markdown", "json")


def register(app: typer.Typer) -> None:
    """Add the ``stats`` command."""
    app.command("stats")(stats)


def splits_table(rows: list[SplitStats], title: str = "windows per config and split") -> Table:
    """Per config and split: recordings, windows, notes, hours, drops, warnings (also the build's summary)."""
    from rich.table import Table

    from piano_metronome.outputs.stats_markdown import fmt_dropped

    table = Table(title=title)
    for name in ("config", "split", "recordings", "rejected", "windows", "notes", "hours", "dropped", "warnings"):
        table.add_column(name, justify="left" if name in ("config", "split", "dropped") else "right", no_wrap=True)
    for s in rows:
        table.add_row(s.config, s.split, str(s.recordings), str(s.rejected), f"{s.windows:,}", f"{s.notes:,}",
                      f"{s.hours:.2f}", fmt_dropped(s.dropped), str(s.warnings))
    return table


def _tables(result: FolderStats) -> list[Table]:
    """Rich tables: per config and split, then per subset what the alignment measured and found."""
    from rich.table import Table


    splits = splits_table(result.splits)
    align = Table(title="alignment per subset (accepted recordings)")
    for name in ("subset", "recordings", "latency median ms", "latency 10–90 % ms", "timing SD ms", "grid fit",
                 "beyond ±0.35", "grid conflicts", "key ≠ label", "bar moved", "rejected"):
        align.add_column(name, justify="left" if name == "subset" else "right", no_wrap=True)
    for a in result.alignment:
        if not a.recordings:
            align.add_row(a.subset, "0", *["–"] * 8, str(a.rejected))
            continue
        align.add_row(a.subset, str(a.recordings), f"{a.latency_median_ms:.1f}",
                      f"{a.latency_p10_ms:.1f} … {a.latency_p90_ms:.1f}", f"{a.timing_sd_median_ms:.1f}",
                      f"{a.concentration_median:.3f}", f"{a.share_beyond_035:.2%}", str(a.grid_conflicts),
                      str(a.key_disagreements), str(a.bar_line_moved), str(a.rejected))
    return [splits, align]


def stats(
    dataset: Path = typer.Argument(Path("dataset"), help="Built dataset folder (default: ./dataset)."),
    fmt: str = typer.Option("table", "--format", "-f", help=f"Output: {', '.join(FORMATS)}."),
) -> None:
    """Per config and split: recordings, windows, notes, hours, notes dropped by reason, warnings.

    Read from DATASET alone (the `recordings` table and the window shards), never by
    rebuilding, so it describes exactly the files a user loads. Also per subset: latency,
    timing spread, grid fit, ambiguous notes, grid conflicts and key-label disagreements.
    `--format markdown` prints the card's statistics section; `--format json` the same numbers
    as data. Exit codes: 0 printed; 2 not a built dataset folder or a bad option.
    """
    from piano_metronome.outputs.stats import folder_stats
    from piano_metronome.outputs.stats_markdown import stats_markdown

    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        result = folder_stats(dataset)
    except (FileNotFoundError, OSError) as exc:
        raise fail(str(exc)) from None
    if fmt == "json":
        typer.echo(json.dumps(result.as_json(), indent=1, sort_keys=True))
    elif fmt == "markdown":
        typer.echo(stats_markdown(result))
    else:
        out = result_console()
        for table in _tables(result):
            out.print(table)
