"""``piano-metronome manifest``: list a folder of recordings as a manifest (sizes, hashes, splits).

The committed ``raw_midi/manifest.csv`` is made by this command from the corpus, and a new
contributor's recordings get theirs the same way, so splits and hashes never come from hand edits.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.commands.common import fail

if TYPE_CHECKING:
    from piano_metronome.inputs.manifest import ManifestRow, SkippedFile

STEPS_HELP = (
    "Grid of a subset as SUBSET=N sub-beats per beat, e.g. --steps-per-beat d3=4; repeat for more "
    "subsets. Defaults exist only for the corpus's subsets, d1=4 (16ths) and d2=2 (8ths); any other subset "
    "folder without one is an error, because a wrong grid would misalign every note of it."
)

#: ``--help`` text, one line per paragraph so every typer version wraps it to the terminal.
HELP = (
    "Write a manifest for a folder of recordings: one row per file with size, sha256, labels and split."
    "\n\n"
    "SOURCE_DIR holds one folder per subset (mine/, d1/, …) of <id>_<bpm>_<key>.mid files. The manifest goes "
    "to SOURCE_DIR/manifest.csv (beside the recordings, where `build --raw SOURCE_DIR` reads it) or to --out. "
    "Splits are by recording, never by window: validation = the recordings in the validation list; "
    "test = a stable-hash share (--test-fraction) of the rest of each subset; train = the others. "
    "The same recordings always give the same bytes, so the committed manifest can be checked."
    "\n\n"
    "Overwriting: an existing manifest of the same recordings is regenerated (recordings added or changed "
    "are fine). A file that is not a manifest, or a manifest listing recordings that are not in SOURCE_DIR "
    "(another folder's manifest, or takes you removed), is left untouched: error, exit 2, unless --force."
    "\n\n"
    "Examples: piano-metronome manifest mytakes --steps-per-beat mine=4 · the committed corpus manifest: "
    "piano-metronome manifest ../shared/corpus --source-url corpus --out raw_midi/manifest.csv"
)
#: ``--source-url`` shorthand for the corpus's pinned address.
CORPUS_SOURCE = "corpus"


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


def parse_source_url(value: str | None) -> str | None:
    """The address template: none by default, the corpus's pinned one for ``corpus``, else checked.

    A template that names another placeholder (or none) would give every file a wrong or the same
    address, so it is a usage error before anything is hashed.
    """
    from piano_metronome.inputs.manifest import SOURCE_URL

    if not value:
        return None
    if value == CORPUS_SOURCE:
        return SOURCE_URL
    try:
        value.format(subset="s", file_name="f.mid")
    except (KeyError, IndexError, ValueError) as exc:
        raise typer.BadParameter(f"{value!r} may use only {{subset}} and {{file_name}} ({exc!r})",
                                 param_hint="--source-url") from None
    if "{file_name}" not in value:
        raise typer.BadParameter(f"{value!r} has no {{file_name}}: every file would get the same address",
                                 param_hint="--source-url")
    return value


def why_not_replaceable(path: Path, rows: list[ManifestRow], source_dir: Path) -> str | None:
    """None when ``path`` is a manifest of these recordings (safe to regenerate), else why it is not.

    "These recordings": every recording the old manifest lists is still in ``source_dir``, so
    regenerating after adding or re-recording takes is fine, but writing a folder's 2 takes over
    the corpus's 361-row manifest is not.
    """
    from piano_metronome.inputs.manifest import is_manifest_file, read_manifest

    if not is_manifest_file(path):
        return "is not a manifest (its first line is not the manifest header)"
    new = {(r.subset, r.file_name) for r in rows}
    old = [(r.subset, r.file_name) for r in read_manifest(path, problems=[])]
    lost = [f"{subset}/{name}" for subset, name in old if (subset, name) not in new]
    if lost:
        return (f"is the manifest of other recordings: {len(lost)} of the {len(old)} it lists are not in "
                f"{source_dir} (e.g. {lost[0]})")
    return None


def _summary(rows: list[ManifestRow]) -> list[str]:
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
        None, "--out", help="Manifest to write. Default: SOURCE_DIR/manifest.csv.", show_default=False,
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
        help="Download address of each file, with {subset} and {file_name} filled in, e.g. "
             "https://example.org/takes/{subset}/{file_name}; 'corpus' for the corpus's pinned GitHub "
             "address. Default: none (empty addresses; `fetch` then needs --from).",
        show_default=False, metavar="TEMPLATE",
    ),
    force: bool = typer.Option(False, "--force", help="Replace the output file even if it is not a "
                               "manifest of these recordings."),
) -> None:
    """Write the manifest; the user-facing text is :data:`HELP` (typer keeps docstring line breaks)."""
    from piano_metronome.inputs.manifest import VALIDATION_LIST_NAME, write_manifest
    from piano_metronome.paths import MANIFEST_NAME
    from piano_metronome.safety import OverwriteError, check_file, refused_exit

    steps = parse_steps(steps_per_beat)
    template = parse_source_url(source_url)
    if validation_list is None and (source_dir / VALIDATION_LIST_NAME).is_file():
        validation_list = source_dir / VALIDATION_LIST_NAME
    out = out if out is not None else source_dir / MANIFEST_NAME
    skipped: list[SkippedFile] = []
    entries, rows = _rows(source_dir, steps, validation_list, test_fraction, template, skipped)
    for item in skipped:
        typer.echo(f"skipped {item}", err=True)
    try:
        check_file(out, force, lambda path: why_not_replaceable(path, rows, source_dir))
        _note_lost_addresses(out, template)
        write_manifest(rows, out)
    except OverwriteError as exc:
        raise refused_exit(exc) from None
    except OSError as exc:
        raise fail(f"{out}: cannot write ({exc.strerror or exc})", code=1) from None
    typer.echo(f"wrote {out}: {len(rows)} recordings"
               + (f", validation list {validation_list} ({len(entries)} entries)" if validation_list else ""))
    typer.echo("\n".join(_summary(rows)))
    if skipped:
        typer.echo(f"{len(skipped)} file(s) that look like recordings were skipped (listed on stderr)")


def _note_lost_addresses(out: Path, template: str | None) -> None:
    """Say on stderr when the manifest being replaced had download addresses and the new one has none."""
    from piano_metronome.inputs.manifest import is_manifest_file, read_manifest

    if (template is None and out.is_file() and is_manifest_file(out)
            and any(row.source_url for row in read_manifest(out, problems=[]))):
        typer.echo(f"note: {out} gave download addresses; the new one gives none (for the corpus's "
                   f"pinned ones pass --source-url {CORPUS_SOURCE})", err=True)


def _rows(source_dir: Path, steps: dict[str, int], validation_list: Path | None, test_fraction: float,
          template: str | None, skipped: list[SkippedFile]) -> tuple[list[str], list[ManifestRow]]:
    """The validation entries and the manifest rows, or exit 1 naming the file that is wrong.

    Files that look like recordings but cannot be (see ``recording_files``) go to ``skipped``.
    """
    from piano_metronome.inputs.manifest import VALIDATION_LIST_NAME, build_manifest, read_validation_list
    from piano_metronome.inputs.midi import RecordingError

    try:
        entries = read_validation_list(validation_list) if validation_list else []
        rows = build_manifest(source_dir, steps, entries, test_fraction, template,
                              str(validation_list or VALIDATION_LIST_NAME), skipped)
    except (RecordingError, OSError) as exc:
        raise fail(str(exc), code=1) from None
    return entries, rows


def register(app: typer.Typer) -> None:
    """Add the ``manifest`` command to the app."""
    app.command("manifest", help=HELP)(manifest)
