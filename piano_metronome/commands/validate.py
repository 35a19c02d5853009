"""``piano-metronome validate``: prove a dataset folder intact, or the raw recordings true to their manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.commands.common import console, result_console

if TYPE_CHECKING:
    from piano_metronome.outputs.check_report import Report

HELP = (
    "Check a built dataset folder (default: dataset), or with --raw the raw recordings (default: raw_midi)."
    "\n\n"
    "On a dataset: every shard reads as Arrow with the declared schema and features; checksums.sha256 "
    "matches every file; every window satisfies the schema's invariants (steps, keys, offsets, velocities, "
    "durations, one note per cell, sorted notes, pedal, key and tempo ranges); rows per split equal the "
    "card's num_examples; window ids are unique; no recording is in two splits; and each recording's notes "
    "add up (input = placed + dropped, placed = the notes in its windows)."
    "\n\n"
    "With --raw: each manifest row's file is present with the manifest's size and sha256, parses as MIDI and "
    "aligns; labels the notes contradict (BPM, key signature) are warnings, since labels are hand-typed."
    "\n\n"
    "Prints a table of checks with what failed and where (shard, window id, file, manifest line) on stdout, "
    "so `validate DIR > report.txt` keeps it; --json prints the same report as JSON on stdout. A folder that "
    "cannot be validated at all is one error line on stderr."
    "\n\n"
    "Exit codes: 0 every check passed (warnings allowed); 1 a check failed; 2 the folder cannot be read as a "
    "dataset (or raw folder) at all, or bad usage."
)
SHOWN = 5


def validate(
    path: Path | None = typer.Argument(None, show_default=False, metavar="DIR",
                                       help="Dataset folder (default: dataset); with --raw, the raw folder "
                                            "(default: raw_midi)."),
    raw: bool = typer.Option(False, "--raw", help="Check the raw recordings against their manifest instead."),
    corpus: Path | None = typer.Option(None, "--corpus", help="With --raw or --independent: also look for recordings "
                                       "here (<dir>/d1, <dir>/d2); $PIANO_METRONOME_CORPUS is used too."),
    independent: bool = typer.Option(False, "--independent", help="Also certify every take afresh with a beat "
                                     "tracker that never sees the grid (as `certify --no-write`; needs the raw "
                                     "recordings and pip install 'piano_metronome[verify]'); a stored certificate "
                                     "that differs fails, a take the tracker disagrees with is a warning."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    show: int = typer.Option(SHOWN, "--show", min=0, help="Problems shown per check in the table."),
) -> None:
    """Validate; the user-facing text is :data:`HELP`."""
    from piano_metronome.outputs.validate import validate_dataset
    from piano_metronome.outputs.validate_raw import validate_raw

    if raw:
        from piano_metronome.outputs.build import plan_sources
        from piano_metronome.paths import raw_dir

        folder = raw_dir(path)
        report = validate_raw(folder, plan_sources(folder, corpus))
    else:
        folder = path if path is not None else Path("dataset")
        report = validate_dataset(folder)
        if independent and not report.unreadable:
            from piano_metronome.commands.certify import ProgressBar
            from piano_metronome.outputs.certify import independent_check

            bar = ProgressBar(console())
            try:
                independent_check(report, folder, corpus, bar.update)
            finally:
                bar.stop()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1, ensure_ascii=False))
    else:
        print_report(report, show)
    raise typer.Exit(report.exit_code)


STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def print_report(report: Report, show: int = SHOWN) -> None:
    """The table a person reads, on stdout: one row per check, its first problems under it.

    A folder that cannot be read at all is an error, so it goes to stderr as one line.
    """
    from rich.markup import escape
    from rich.table import Table

    if report.unreadable:
        console().print(f"error: cannot validate {escape(report.target)}: {escape(report.unreadable)}", soft_wrap=True)
        return
    out = result_console()
    table = Table(title=f"validate {report.kind} {report.target}", title_justify="left")
    for name in ("check", "status", "found"):
        table.add_column(name, overflow="fold")
    for check in report.checks:
        lines = [escape(check.summary)] if check.summary else []
        lines += [f"{escape(p.where)}: {escape(p.what)}" for p in check.problems[:show]]
        if check.count > min(show, len(check.problems)):
            lines.append(f"… {check.count - min(show, len(check.problems))} more (--json lists up to 50)")
        table.add_row(check.name, f"[{STYLE[check.status]}]{check.status}[/]", "\n".join(lines))
    out.print(table)
    failed = [c.name for c in report.checks if c.status == "fail"]
    verdict = f"[bold red]FAILED[/]: {', '.join(failed)}" if failed else "[green]all checks passed[/]"
    out.print(f"{verdict} ({report.seconds:.2f} s)")


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command."""
    app.command("validate", help=HELP)(validate)
