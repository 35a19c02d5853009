"""``piano-metronome plot``: PNGs of a built dataset: offsets, latency, velocity, grid fit, piano rolls."""

from __future__ import annotations

from pathlib import Path

import typer

from piano_metronome.commands.common import console, fail

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
) -> None:
    """Draw what a person should look at before trusting the data, as PNGs in OUT.

    offsets.png (offset histogram per subset, in ms and in steps), latency.png (latency per
    recording), velocity_by_position.png (velocity at each step of the bar), grid_fit.png
    (grid fit against timing spread, per recording) and pianoroll_<window>.png (hits
    coloured by velocity, shifted by their offset, pedal underneath). Needs matplotlib
    (`pip install 'piano_metronome[plot]'`). Exit codes: 0 written; 2 no such folder or window,
    or matplotlib missing.
    """
    try:
        from piano_metronome.outputs import plots
    except ImportError as exc:
        raise fail(f"plot needs matplotlib ({exc}); install it with `pip install 'piano_metronome[plot]'`") from None
    from piano_metronome.outputs.stats import every_window, read_recordings

    try:
        tables = {"windows": every_window(dataset), "recordings": read_recordings(dataset)}
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    rows = _window_rows(tables["windows"], window)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (function, table) in FIGURES.items():
        written.append(_save(getattr(plots, function)(tables[table]), out / name))
    for row in rows:
        written.append(_save(plots.piano_roll(row), out / f"pianoroll_{row['window_id'].replace('/', '_')}.png"))
    console().print(f"wrote {len(written)} figures to {out}: {', '.join(p.name for p in written)}")


def _window_rows(windows, ids: list[str] | None) -> list[dict]:
    """The rows of the requested windows (in the order asked), or the first window when none is asked."""
    import pyarrow.compute as pc

    if not ids:
        return windows.slice(0, 1).to_pylist()
    rows = []
    for window_id in ids:
        chosen = windows.filter(pc.equal(windows["window_id"], window_id))
        if not chosen.num_rows:
            raise fail(f"no window {window_id!r} in the dataset (ids look like d1/aa/003)")
        rows.append(chosen.to_pylist()[0])
    return rows


def _save(figure, path: Path) -> Path:
    """Write one figure as PNG (Agg, through the figure's own canvas) and return its path."""
    figure.savefig(path)
    return path
