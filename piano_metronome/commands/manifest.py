"""``piano-metronome manifest``: list a folder of recordings as a manifest (sizes, hashes, splits).

The committed ``raw_midi/manifest.csv`` is made by this command from the corpus, and a new
contributor's recordings get theirs the same way, so splits and hashes never come from hand edits.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

STEPS_HELP = (
    "Grid of a subset as SUBSET=N sub-beats per beat, e.g. --steps-per-beat d3=4; repeat for more "
    "subsets. Defaults: d1=4 (16ths), d2=2 (8ths). A subset folder with no known grid is an error, "
    "because a wrong grid would misalign every note of it."
)

#: ``--help`` text, one line per paragraph so every typer version wraps it to the terminal.
HELP = (
    "Write a manifest for a folder of recordings: one row per file with size, sha256, labels and split."
    "\n\n"
    "Splits are by recording, never by window: validation = the recordings in the validation list; "
    "test = a stable-hash share (--test-fraction) of the rest of each subset; train = the others. "
    "The same recordings always give the same bytes, so the committed manifest can be checked."
    "\n\n"
    "Example, from the corpus: piano-metronome manifest ../shared/corpus"
)


def parse_steps(values: list[str]) -> dict[str, int]:
    """Defaults overridden by ``SUBSET=N`` pairs; a malformed pair is a usage error naming it."""
    from piano_metronome.inputs.manifest import DEFAULT_STEPS_PER_BEAT

    steps = dict(DEFAULT_STEPS_PER_BEAT)
    for value in values:
        subset, _, number = value.partition("=")
        if not subset or not number.isdigit() or int(number) < 1:
            raise typer.BadParameter(f"{value!r} is not SUBSET=N with N a whole number ≥ 1",
                                     param_hint="--steps-per-beat")
        steps[subset.strip()] = int(number)
    return steps


def _summary(rows) -> list[str]:
    """One line per subset with its split counts, so a wrong split shows at a glance."""
    lines = []
    for subset in sorted({r.subset for r in rows}):
        counts = Counter(r.split for r in rows if r.subset == subset)
        parts = ", ".join(f"{split} {counts.get(split, 0)}" for split in ("train", "validation", "test"))
        lines.append(f"  {subset}: {sum(counts.values())} recordings ({parts})")
    return lines


def manifest(
    source_dir: Path = typer.Argument(
        ..., help="Folder holding one sub-folder per subset (d1/, d2/, …) of <id>_<bpm>_<key>.mid files.",
        show_default=False, metavar="SOURCE_DIR",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Manifest to write. Default: raw_midi/manifest.csv.", show_default=False,
        metavar="FILE",
    ),
    validation_list: Path | None = typer.Option(
        None, "--validation-list",
        help="File listing the recordings of the validation split, one a line (file name, "
             "SUBSET/FILE or SUBSET/ID). Default: SOURCE_DIR/author_validation.txt when present, "
             "else no validation split.",
        show_default=False, metavar="FILE",
    ),
    test_fraction: float = typer.Option(
        0.1, "--test-fraction", min=0.0, max=1.0,
        help="Share of the non-validation recordings put in the test split, chosen by a stable hash "
             "of the recording id (the same on every machine).",
    ),
    steps_per_beat: list[str] = typer.Option(
        [], "--steps-per-beat", help=STEPS_HELP, show_default=False, metavar="SUBSET=N",
    ),
    source_url: str | None = typer.Option(
        None, "--source-url",
        help="Download address of each file, with {subset} and {file_name} filled in; '' for none "
             "(then `fetch` needs --from). Default: the corpus's pinned GitHub address.",
        show_default=False, metavar="TEMPLATE",
    ),
) -> None:
    """Write the manifest; the user-facing text is :data:`HELP` (typer keeps docstring line breaks)."""
    from piano_metronome.inputs.manifest import (
        SOURCE_URL,
        VALIDATION_LIST_NAME,
        build_manifest,
        read_validation_list,
        write_manifest,
    )
    from piano_metronome.inputs.midi import RecordingError
    from piano_metronome.paths import MANIFEST_NAME, raw_dir

    steps = parse_steps(steps_per_beat)
    if validation_list is None and (source_dir / VALIDATION_LIST_NAME).is_file():
        validation_list = source_dir / VALIDATION_LIST_NAME
    out = out if out is not None else raw_dir() / MANIFEST_NAME
    try:
        entries = read_validation_list(validation_list) if validation_list else []
        rows = build_manifest(source_dir, steps, entries, test_fraction,
                              SOURCE_URL if source_url is None else source_url or None,
                              str(validation_list or VALIDATION_LIST_NAME))
        write_manifest(rows, out)
    except (RecordingError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {out}: {len(rows)} recordings"
               + (f", validation list {validation_list} ({len(entries)} entries)" if validation_list else ""))
    typer.echo("\n".join(_summary(rows)))


def register(app: typer.Typer) -> None:
    """Add the ``manifest`` command to the app."""
    app.command("manifest", help=HELP)(manifest)
