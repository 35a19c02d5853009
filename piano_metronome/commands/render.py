"""``piano-metronome render``: a window (or a whole recording) of a built dataset back to MIDI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from piano_metronome.commands.common import fail


def register(app: typer.Typer) -> None:
    """Add the ``render`` command."""
    app.command("render")(render)


def render(
    item_id: str = typer.Argument(..., metavar="WINDOW_ID", help="A window id (d1/aa/003) or a recording id "
                                  "(d1/aa: every window of it, at its place)."),
    out: Path = typer.Argument(..., metavar="OUT", help="MIDI file to write; an existing file is replaced "
                               "only with --force."),
    data: Path = typer.Option(Path("dataset"), "--data", "-d", help="Built dataset folder."),
    config: str = typer.Option(None, "--config", "-c", help="Config to read (default: the id's subset, "
                               "else any config holding it)."),
    latency: bool = typer.Option(False, "--latency/--no-latency", help="Put the recording's measured latency "
                                 "back (the player's own lag behind the click)."),
    lead_in: int = typer.Option(None, "--lead-in", help="Whole beats of silence before step 0 (default: the "
                                "fewest that keep every event at tick ≥ 0)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Write WINDOW_ID as a MIDI file at its real tempo: offsets, velocities, durations, pedal.

    One tempo event at the window's BPM, 960 ticks per beat, a 4/4 (beats-per-bar) time
    signature, notes at their step + offset, the sustain pedal as CC64 changes. No event
    starts before tick 0: an early first hit delays the window by whole beats of lead-in,
    and the lead-in, grid and latency are written into the file as a JSON marker at tick 0.

    OUT is a file you name, so an existing OUT is never replaced without --force (exit 2,
    nothing written); a folder at OUT is refused even with --force.

    Exit codes: 0 written; 1 OUT cannot be written; 2 no such window, folder or config, or OUT exists.
    """
    from piano_metronome.outputs.render import read_render_info, render_recording, render_window
    from piano_metronome.safety import OverwriteError, check_file, refused_exit, write_atomic

    try:
        check_file(out, force)
    except OverwriteError as exc:
        raise refused_exit(exc) from None
    rows = _find_rows(data, item_id, config)
    try:
        if len(rows) == 1 and rows[0]["window_id"] == item_id:
            score = render_window(rows[0], apply_latency=latency, lead_in_beats=lead_in)
        else:
            score = render_recording(rows, apply_latency=latency, lead_in_beats=lead_in)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        write_atomic(out, lambda temp: score.dump_midi(str(temp)))
    except OSError as exc:
        raise fail(f"{out}: cannot write ({exc.strerror or exc})", code=1) from None
    info = read_render_info(score)
    assert info is not None, "render_window and render_recording always write the render marker"
    notes = sum(len(t.notes) for t in score.tracks)
    typer.echo(f"wrote {out}: {len(rows)} window(s), {notes} notes at {rows[0]['bpm']:.2f} BPM, "
               f"lead-in {info['lead_in_beats']} beat(s), latency {info['latency_ms']:.1f} ms")


def _find_rows(data: Path, item_id: str, config: str | None) -> list[dict[str, Any]]:
    """The rows of a window id, or every window of a recording id (the library's lookup), or a clean error."""
    from piano_metronome.outputs.layout import find_windows

    try:
        rows = find_windows(data, item_id, config)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    if rows:
        return rows
    where = f"config {config!r}" if config else f"any config of {data}"
    raise fail(f"no window or recording {item_id!r} in {where} (ids look like d1/aa/003 or d1/aa)")
