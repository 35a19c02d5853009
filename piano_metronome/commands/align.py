"""``piano-metronome align``: align one MIDI file and show its report (for musicians checking a take)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.commands.common import align_options, fail, parse_latency, result_console

if TYPE_CHECKING:
    from rich.console import Console

    from piano_metronome.inputs.manifest import ManifestRow
    from piano_metronome.processing.align import AlignmentReport


def register(app: typer.Typer) -> None:
    """Add the ``align`` command."""
    app.command("align")(align_file)


def align_file(
    midi: Path = typer.Argument(..., metavar="MIDI", help="A MIDI file recorded to a click.", exists=False),
    steps_per_beat: int | None = typer.Option(
        None, "--steps-per-beat", "-s", min=1, show_default=False,
        help="Sub-beats per beat: 4 = 16ths, 2 = 8ths. Default: the file's manifest row, else its "
             "subset folder's grid (d1 = 4, d2 = 2); with neither it must be given."),
    manifest: Path | None = typer.Option(
        None, "--manifest", metavar="FILE", show_default=False,
        help="Manifest listing the file (default: manifest.csv beside its subset folder, then in its own "
             "folder)."),
    bpm: str = typer.Option("", help="BPM you noted (default: the manifest row, else a '<id>_<bpm>_<key>.mid' "
                            "name)."),
    key: str = typer.Option("", help="Key you noted, e.g. 'C', 'Bbm' (default: the manifest row, else the "
                            "file name)."),
    beats: Path = typer.Option(None, help="Beat-list sidecar: JSON {'beats': [s…], 'downbeats': [bool…]} or "
                               "one time per line."),
    click_track: str = typer.Option(None, help="Track (name, or index among the tracks that hold notes) whose notes "
                                    "are the click, if the file has one; a name is the safer choice."),
    click_pitch: int = typer.Option(None, help="Only notes of this pitch on the click track are clicks."),
    latency: str = typer.Option("robust", help="'robust', 'none', or a fixed number of ms."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON on stdout."),
) -> None:
    """Check one take before adding it: which grid fits, latency, timing spread, key, notes dropped.

    The grid (sub-beats per beat) is never guessed: --steps-per-beat, else the file's row in its
    manifest, else its subset folder's known grid (d1 16ths, d2 8ths); where it came from is
    said on stderr. The report goes to stdout (a table, or JSON with --json).

    Exit codes: 0 aligned; 1 rejected (the reason is printed); 2 bad arguments or unknown grid.
    """
    from piano_metronome.inputs.manifest import not_a_file, parse_file_name, printable
    from piano_metronome.inputs.midi import ClickSpec, RecordingError, read_midi
    from piano_metronome.processing.align import RecordingInfo, align

    if not os.path.lexists(midi):
        raise fail(f"{midi}: no such file")
    what = not_a_file(midi)
    if what is not None:
        raise fail(f"{midi}: {what}, not a MIDI file; not read")
    steps_per_beat, row = resolve_grid(midi, steps_per_beat, manifest)
    if row is not None:
        bpm, key = bpm or row.labelled_bpm, key or row.labelled_key
    if not (bpm and key):
        try:
            _, name_bpm, name_key = parse_file_name(midi.name)
            bpm, key = bpm or name_bpm, key or name_key
        except RecordingError:
            pass
    info = RecordingInfo(midi.stem, "local", "train", steps_per_beat, bpm, key, beats)
    try:
        click = None
        if click_track is not None:
            click = ClickSpec(int(click_track) if click_track.isdigit() else click_track, click_pitch)
        report = align(read_midi(midi, click), info, align_options(64, None, parse_latency(latency))).report
    except RecordingError as exc:
        typer.echo(f"rejected {printable(exc.path)}: {exc.reason}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(asdict(report), indent=1, sort_keys=True))
        return
    _print_report(report, result_console())


def resolve_grid(midi: Path, steps_per_beat: int | None, manifest: Path | None) -> tuple[int, ManifestRow | None]:
    """(steps per beat, the file's manifest row or None): the option, the row, the subset, else exit 2.

    A silent default would misalign every note of an 8th-note take, so an unknown grid is a
    one-line error saying how to give it; the source of a grid not given is said on stderr.
    """
    from piano_metronome.inputs.manifest import DEFAULT_STEPS_PER_BEAT, row_for_file
    from piano_metronome.inputs.midi import RecordingError

    if manifest is not None and not manifest.is_file():
        raise fail(f"{manifest}: no such manifest")
    try:
        found = row_for_file(midi, manifest)
    except (RecordingError, OSError) as exc:
        raise fail(f"cannot use manifest {manifest}: {exc}") from None
    if steps_per_beat is not None:
        return steps_per_beat, found[0] if found else None
    if found:
        row, source = found
        typer.echo(f"grid: {row.steps_per_beat} steps per beat, from {source} ({row.recording_id})", err=True)
        return row.steps_per_beat, row
    subset = midi.resolve().parent.name
    if subset in DEFAULT_STEPS_PER_BEAT:
        typer.echo(f"grid: {DEFAULT_STEPS_PER_BEAT[subset]} steps per beat, the grid of subset {subset}", err=True)
        return DEFAULT_STEPS_PER_BEAT[subset], None
    where = f"{manifest} does not list it" if manifest else "no manifest beside it lists it"
    raise fail(f"{midi}: grid unknown ({where} and its folder {subset!r} is not a known subset); give "
               f"--steps-per-beat N (4 = 16ths, 2 = 8ths) or --manifest FILE")


def _print_report(report: AlignmentReport, out: Console) -> None:
    """The report as a two-column table a person can read."""
    from rich.table import Table

    table = Table(title=report.path, show_header=False)
    rows = [
        ("grid", f"{report.grid_source} (concentration {report.fit_concentration:.3f})"),
        ("candidates", ", ".join(f"{c['source']} {c['bpm']:.2f} BPM → {c['score']:.3f}" for c in report.candidates)),
        ("BPM labelled / tempo map / fitted", f"{report.bpm_labelled} / {report.bpm_tempo_map} / {report.bpm_fitted}"),
        ("drift over the take", f"{report.drift_ms:.1f} ms"),
        ("grid shift", f"{report.grid_shift_steps} sub-beat(s)"),
        ("latency", f"{report.latency_ms:.1f} ms (negative = early)"),
        ("timing SD", f"{report.timing_sd_ms:.1f} ms; mean |offset| {report.mean_abs_offset:.3f} step; "
                      f"{report.share_beyond_035:.2%} beyond 0.35 step"),
        ("notes", f"{report.notes_input} in, {report.notes_placed} placed, dropped {report.dropped or 'none'}"),
        ("windows", f"{report.windows} (+{report.windows_empty} empty skipped)"),
        ("key", f"label {report.key_label or '–'}, estimated {report.key_estimated} "
                f"(confidence {report.key_confidence:.2f})"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)
    for line in report.conflicts + report.warnings:
        out.print(f"[yellow]•[/] {line}")
