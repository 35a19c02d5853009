"""``piano-metronome rebuild``: rebuild a dataset from the raw recordings and compare it byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.commands.common import OPTION_CORPUS, OPTION_RAW, console, fail, result_console

if TYPE_CHECKING:
    from piano_metronome.outputs.rebuild import RebuildReport

HELP = (
    "Rebuild DIR from the raw recordings, with the configs and alignment options recorded in "
    "DIR/build_report.json, into a temporary folder, and compare the result with DIR file by file."
    "\n\n"
    "This is how to verify a published dataset against the recordings: the build is deterministic, so "
    "every file must be byte-identical. Each difference is named: files on one side only, and for a "
    "differing shard the windows (or recordings) only on one side and, for the others, which columns "
    "differ; for JSON files the changed keys; for text the changed lines."
    "\n\n"
    "Exit codes: 0 identical; 1 different; 2 DIR is not a built dataset (no build_report.json) or bad usage."
)


def rebuild(
    dataset: Path = typer.Argument(Path("dataset"), metavar="DIR", help="The dataset folder to verify."),
    raw: Path | None = OPTION_RAW,
    corpus: Path | None = OPTION_CORPUS,
    keep: Path | None = typer.Option(None, "--keep", help="Write the rebuild here and keep it (default: a "
                                     "temporary folder, removed afterwards)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON on stdout."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the rebuild's own progress and summary."),
) -> None:
    """Rebuild and compare; the user-facing text is :data:`HELP`."""
    from piano_metronome.outputs.rebuild import RebuildError
    from piano_metronome.outputs.rebuild import rebuild as run_rebuild

    if not dataset.is_dir():
        raise fail(f"{dataset} is not a folder")
    from piano_metronome.commands.build import ConsoleProgress

    progress = ConsoleProgress(console()) if verbose else None
    try:
        report = run_rebuild(dataset, raw, corpus, progress, keep)
    except RebuildError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1, ensure_ascii=False))
    else:
        print_report(report)
    raise typer.Exit(0 if report.identical else 1)


STYLE = {"identical": "green"}


def print_report(report: RebuildReport) -> None:
    """One row per file, on stdout (the command's result); the rebuild's own log stays on stderr."""
    from rich.markup import escape
    from rich.table import Table

    out = result_console()
    table = Table(title=f"rebuild of {report.dataset} (configs {', '.join(report.configs)})", title_justify="left")
    for name in ("file", "result", "differences"):
        table.add_column(name, overflow="fold")
    for item in report.files:
        style = STYLE.get(item.status, "bold red")
        table.add_row(escape(item.path), f"[{style}]{item.status}[/]", escape("\n".join(item.details)))
    out.print(table)
    different = [f for f in report.files if f.status != "identical"]
    verdict = ("[green]byte-identical[/]" if not different else
               f"[bold red]{len(different)} of {len(report.files)} file(s) differ[/]")
    out.print(f"{verdict} ({report.seconds:.1f} s)")
    for note in report.notes:
        out.print(f"[yellow]note[/]: {escape(note)}")


def register(app: typer.Typer) -> None:
    """Add the ``rebuild`` command."""
    app.command("rebuild", help=HELP)(rebuild)
