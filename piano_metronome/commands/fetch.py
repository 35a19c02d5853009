"""``piano-metronome fetch``: bring every recording of the manifest into ``raw_midi/<subset>/``.

The recordings are never committed (they are not ours to redistribute); this command brings
them back, verified against the committed manifest, from their pinned source or a local copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.commands.common import OPTION_RAW, console

if TYPE_CHECKING:
    from piano_metronome.inputs.fetch import Fetcher, FetchSummary
    from piano_metronome.inputs.manifest import ManifestProblem, ManifestRow

#: ``--help`` text, one line per paragraph so every typer version wraps it to the terminal.
HELP = (
    "Bring every recording listed in the manifest into raw_midi/<subset>/<file>, verified."
    "\n\n"
    "Each file is downloaded from its pinned source address (or copied from --from DIR/<subset>/<file>), "
    "checked against the manifest's size and sha256, and only then renamed into place: no partial or "
    "wrong file ever appears under a final name. Files already present and valid are skipped. Every file "
    "that fails gets one line saying why; the others are still fetched, and the exit code is 1. If --from "
    "holds none of the files, one line says so."
    "\n\n"
    "Overwriting: a file already at a manifest path that is not the manifest's file (a take of yours, or one "
    "from an older manifest) is never replaced silently: before anything is fetched, the command names it "
    "and stops (exit 2, nothing changed) unless --force."
    "\n\n"
    "Examples: piano-metronome fetch (from the internet) · piano-metronome fetch --from ../shared/corpus"
)


def _report_line(name: str, reason: str) -> str:
    """The one line a failed file gets: its name first, so it can be found in a long log."""
    return f"failed {name}: {reason}"


def _summary_line(summary: FetchSummary, raw: Path) -> str:
    """Counts of what happened, with how many fetched files replaced a wrong one."""
    replaced = f" ({len(summary.replaced)} replaced a wrong file)" if summary.replaced else ""
    return (f"{len(summary.fetched)} fetched{replaced}, {len(summary.skipped)} skipped (already valid), "
            f"{len(summary.failed)} failed → {raw}")


def _run_with_progress(rows: list[ManifestRow], fetcher: Fetcher) -> FetchSummary:
    """Fetch all rows under a progress bar on stderr; failures print above the bar as they happen."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from piano_metronome.inputs.fetch import fetch_all

    err = console()
    columns = (TextColumn("fetch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    # A bar only on a terminal: in a log (CI, a pipe) it would leave only redraw debris.
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("", total=len(rows))

        def on_done(row: ManifestRow, status: str, reason: str) -> None:
            name = row.relative_name
            if status == "failed":
                err.print(_report_line(name, reason), markup=False, soft_wrap=True)
            progress.update(task, advance=1, description=name)

        return fetch_all(rows, fetcher, on_done)


def _check_before_fetching(rows: list[ManifestRow], raw: Path, source_dir: Path | None, force: bool) -> None:
    """Stop with one line, before anything changes, when a user's file is in the way or --from is wrong."""
    from piano_metronome.inputs.fetch import conflicts, present_in
    from piano_metronome.safety import OverwriteError, refused_exit

    if source_dir is not None and rows and not present_in(rows, source_dir):
        example = rows[0].path(source_dir)
        typer.echo(f"error: --from {source_dir} holds none of the {len(rows)} recordings the manifest lists "
                   f"(looked for {source_dir}/<subset>/<file>, e.g. {example})", err=True)
        raise typer.Exit(1)
    found = conflicts(rows, raw)
    folders = [(path, why) for path, why in found if why == "is a folder"]
    if folders:
        raise refused_exit(OverwriteError(folders[0][0], "is a folder where the manifest puts a recording", False))
    if found and not force:
        path, why = found[0]
        more = f"; {len(found) - 1} more file(s) like it" if len(found) > 1 else ""
        raise refused_exit(OverwriteError(path, f"exists and is not the manifest's file ({why}){more}"))


def fetch(
    source_dir: Path | None = typer.Option(
        None, "--from", metavar="DIR", show_default=False,
        help="Copy the files from DIR/<subset>/<file> (e.g. a local copy of the corpus, ../shared/corpus) "
             "instead of downloading them.",
    ),
    raw: Path | None = OPTION_RAW,
    manifest: Path | None = typer.Option(
        None, "--manifest", metavar="FILE", show_default=False,
        help="Manifest listing the files and their checksums. Default: <raw folder>/manifest.csv.",
    ),
    timeout: float = typer.Option(
        10.0, "--timeout", min=0.1, metavar="SECONDS",
        help="Give up on a download after this long; a host that failed to answer is not tried again.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace files at manifest paths that are not the "
                               "manifest's file."),
) -> None:
    """Fetch the manifest's recordings; the user-facing text is :data:`HELP`."""
    from piano_metronome.inputs.fetch import Fetcher
    from piano_metronome.inputs.manifest import read_manifest
    from piano_metronome.inputs.midi import RecordingError
    from piano_metronome.paths import MANIFEST_NAME, raw_dir

    raw = raw_dir(raw)
    manifest = manifest if manifest is not None else raw / MANIFEST_NAME
    if source_dir is not None and not source_dir.is_dir():
        typer.echo(f"error: --from {source_dir}: no such folder", err=True)
        raise typer.Exit(1)
    problems: list[ManifestProblem] = []
    try:
        rows = read_manifest(manifest, problems)  # a bad row is reported, the others still come
    except (RecordingError, OSError) as exc:
        typer.echo(f"error: cannot use manifest {manifest}: {exc}", err=True)
        raise typer.Exit(1) from None
    for problem in problems:
        typer.echo(f"skipped manifest row: {problem}", err=True)
    _check_before_fetching(rows, raw, source_dir, force)
    summary = _run_with_progress(rows, Fetcher(raw, source_dir, timeout, force))
    typer.echo(_summary_line(summary, raw))
    if summary.failed or problems:
        typer.echo(f"error: {len(summary.failed)} of {len(rows)} files failed (listed above)"
                   + (f"; {len(problems)} manifest row(s) skipped" if problems else ""), err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``fetch`` command to the app."""
    app.command("fetch", help=HELP)(fetch)
