"""Pieces shared by the commands: options with one meaning everywhere, the console, errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from piano_metronome.processing.align import AlignOptions

OPTION_RAW = typer.Option(None, "--raw", help="Raw folder with manifest.csv, demo/ and fetched recordings "
                          "(default: ./raw_midi).")
OPTION_CORPUS = typer.Option(None, "--corpus", help="Also look for recordings here (<dir>/d1, <dir>/d2); "
                             "$PIANO_METRONOME_CORPUS is used too.")


def console() -> Console:
    """A rich console on stderr for progress and logs, so stdout carries only results."""
    import shutil

    from rich.console import Console

    # 120 columns when not a terminal (CI logs, pipes): rich's 80 would fold the summary table
    return Console(stderr=True, highlight=False, width=shutil.get_terminal_size((120, 24)).columns)


def result_console() -> Console:
    """A rich console on stdout for a command's result (report tables), so ``cmd > report.txt`` keeps it.

    Looked up at call time (``sys.stdout``), so a redirected or captured stdout gets the table; wide
    enough off a terminal that no number is cut.
    """
    import sys

    from rich.console import Console

    out = Console(file=sys.stdout, highlight=False)
    return out if out.is_terminal else Console(file=sys.stdout, highlight=False, width=200)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (no traceback) and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def parse_latency(value: str) -> str | float:
    """'robust', 'none' or a number of milliseconds."""
    if value in ("robust", "none"):
        return value
    try:
        return float(value)
    except ValueError:
        raise fail(f"--latency must be 'robust', 'none' or a number of ms, not {value!r}") from None


def align_options(window_steps: int, hop_steps: int | None, latency: str | float) -> AlignOptions:
    """AlignOptions from command-line values, with a clean error for bad ones."""
    from piano_metronome.processing.align import AlignOptions

    try:
        return AlignOptions(window_steps=window_steps, hop_steps=hop_steps, latency=latency)
    except ValueError as exc:
        raise fail(str(exc)) from None
