"""``piano-metronome plot``: PNGs of a built dataset: offsets, latency, velocity, grid fit, piano rolls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from piano_metronome.commands.common import fail

if TYPE_CHECKING:
    import pyarrow as pa

#: File name → (plot function name in :mod:`piano_metronome.outputs.plots`, table it draws).
FIGURES = {
    "offsets.png": ("offset_histogram", "windows"),
    "latency.png": ("latency_plot", "recordings"),
    "velocity_by_position.png": ("velocity_by_position", "windows"),
    "grid_fit.png": ("grid_fit_plot", "recordings"),
}


def register(app: typer.Typer) -> None:
    """Add the ``plot`` command."""
    app.command("plot")(plot)


def plot(
    dataset: Path = typer.Argument(Path("dataset"), help="Built dataset folder (default: ./dataset)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the PNGs (created if missing)."),
    window: list[str] = typer.Option(None, "--window", "-w", help="Window id to draw as a piano roll "
                                     "(repeatable; default: the first window of the first config)."),
    force: bool = typer.Option(False, "--force", help="Replace PNGs of the same names that plot did not write."),
) -> None:
    """Draw what a person should look at before trusting the data, as PNGs in OUT.

    offsets.png (offset histogram per subset, in ms and in steps), latency.png (latency per
    recording), velocity_by_position.png (velocity at each step of the bar), grid_fit.png
    (grid fit against timing spread, per recording) and pianoroll_<window>.png (hits
    coloured by velocity, shifted by their offset, pedal underneath). Needs matplotlib
    (`pip install 'piano_metronome[plot]'`).

    Overwriting: other files in OUT are never touched. A PNG of one of these names is replaced
    only when plot wrote it (each PNG carries a 'Source: piano-metronome plot' text chunk);
    anything else there is refused before any figure is drawn (exit 2), unless --force.

    Exit codes: 0 written; 2 no such folder or window, a file in the way, or matplotlib missing.
    """
    try:
        from piano_metronome.outputs import plots
    except ImportError as exc:
        raise fail(f"plot needs matplotlib ({exc}); install it with `pip install 'piano_metronome[plot]'`") from None
    from piano_metronome.outputs.layout import every_window, read_recordings

    try:
        tables = {"windows": every_window(dataset), "recordings": read_recordings(dataset)}
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    rows = _window_rows(dataset, tables["windows"], window)
    targets = {name: (getattr(plots, function), tables[table]) for name, (function, table) in FIGURES.items()}
    targets.update({f"pianoroll_{row['window_id'].replace('/', '_')}.png": (plots.piano_roll, row) for row in rows})
    _check_targets(out, list(targets), force, plots.why_not_our_png)
    written = [plots.save_png(draw(data), out / name) for name, (draw, data) in targets.items()]
    typer.echo(f"wrote {len(written)} figures to {out}: {', '.join(p.name for p in written)}")


def _check_targets(out: Path, names: list[str], force: bool, why_not_ours: Callable[[Path], str | None]) -> None:
    """Refuse (exit 2) before drawing anything if OUT is not a folder or a PNG in the way is not ours."""
    from piano_metronome.safety import OverwriteError, check_file, refused_exit

    try:
        if out.exists() and not out.is_dir():
            raise OverwriteError(out, "exists and is not a folder", forceable=False)
        for name in names:
            check_file(out / name, force, why_not_ours)
    except OverwriteError as exc:
        raise refused_exit(exc) from None


def _window_rows(dataset: Path, windows: pa.Table, ids: list[str] | None) -> list[dict[str, Any]]:
    """The rows of the requested windows (in the order asked, by the library's lookup), or the first
    window when none is asked."""
    from piano_metronome.outputs.layout import find_windows

    if not ids:
        first: list[dict[str, Any]] = windows.slice(0, 1).to_pylist()
        return first
    rows: list[dict[str, Any]] = []
    for window_id in ids:
        found = find_windows(dataset, window_id)
        if len(found) != 1 or found[0]["window_id"] != window_id:
            raise fail(f"no window {window_id!r} in the dataset (ids look like d1/aa/003)")
        rows.append(found[0])
    return rows
