"""``piano-metronome demo``: regenerate the synthetic demo takes, their ground truth and manifest.

The takes in ``raw_midi/demo/`` are committed, and this command must reproduce them byte for
byte, so anyone can check that the files in the repository are exactly what the generator makes.
"""

from __future__ import annotations

from pathlib import Path

import typer

#: ``--help`` text, one line per paragraph so every typer version wraps it to the terminal.
HELP = (
    "Regenerate the SYNTHETIC demo takes: a simulated pianist playing to a click, with exact ground truth."
    "\n\n"
    "Writes, for each take, <id>_<bpm>_<key>.mid (one piano track, one tempo, 4/4, sustain pedal) and "
    "<id>_<bpm>_<key>.truth.json (each note's intended grid step, its offset in steps, positive = late, "
    "its velocity, and the take's true tempo, grid and latency), then the demo manifest.csv. "
    "The takes cover a 16th and an 8th grid, a BPM label that disagrees with the tempo map, and a grid "
    "shifted by one sub-beat; none of them is a real recording."
    "\n\n"
    "The output is deterministic: running it again gives the same bytes as the committed files."
    "\n\n"
    "Overwriting: the folder may hold only what this command writes (recognised by content: the synthetic "
    "track name, the generator's name in the truth files, a manifest of demo rows). Any other file in it, "
    "or a file where the folder should be, is left untouched: error, exit 2, nothing written."
)


def demo(
    out: Path | None = typer.Option(
        None, "--out", help="Folder to write the takes into. Default: raw_midi/demo.",
        show_default=False, metavar="FOLDER",
    ),
) -> None:
    """Write the takes; the user-facing text is :data:`HELP`."""
    from piano_metronome.inputs.demo import why_not_demo_file, write_demo
    from piano_metronome.paths import DEMO_SUBSET, raw_dir
    from piano_metronome.safety import OverwriteError, check_folder, refused_exit

    folder = out if out is not None else raw_dir() / DEMO_SUBSET
    try:
        check_folder(folder, why_not_demo_file, forceable=False)
        written = write_demo(folder)
    except OverwriteError as exc:
        raise refused_exit(exc) from None
    except (OSError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")
    typer.echo(f"{sum(p.suffix == '.mid' for p in written)} synthetic takes in {folder}")


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to the app."""
    app.command("demo", help=HELP)(demo)
