"""The manifest: one row per recording, the single list of what the dataset is built from.

Splits are decided here, by recording and never by window, so no recording leaks across
splits: ``validation`` is the corpus author's held-out list (comparable numbers), ``test`` a
stable hash of the recording id (the same on every machine, for any new recording), and
``train`` the rest.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from piano_metronome.inputs.midi import RecordingError

SPLITS = ("train", "validation", "test")
#: The corpus's pinned download address (``--source-url corpus``); never a default for other recordings.
SOURCE_URL = (
    "https://raw.githubusercontent.com/aleathwick/781-piano-autoencoder/"
    "dafb317960f7511fb2bce8244ca8300491e9f825/datasets/{subset}/{file_name}"
)
#: File names ``<id>_<bpm>_<key>.mid``; the labels were typed by hand and are only claims.
FILE_NAME_RE = re.compile(r"^(?P<id>[^_/\\]+)_(?P<bpm>\d+(?:\.\d+)?)_(?P<key>[A-Ga-g][#b]?m?)\.(?i:midi?)$")
#: What a recording's name ends in, in any case (``.mid``, ``.MID``, ``.midi``).
MIDI_SUFFIXES = (".mid", ".midi")


def is_midi_name(name: str) -> bool:
    """A recording's name: it ends in ``.mid`` or ``.midi``, in any case."""
    return name.lower().endswith(MIDI_SUFFIXES)


def _almost_midi_name(name: str) -> bool:
    """A name meant as a recording but not one: ``take.mid.``, ``take.mid `` (a trailing dot or space)."""
    return not is_midi_name(name) and name.lower().rstrip(". ").endswith(MIDI_SUFFIXES)


def printable(name: str) -> str:
    """A file name as it can be printed and stored: bytes that are not UTF-8 shown as ``\\xff``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def not_a_file(path: Path) -> str | None:
    """None for a regular file (or a link to one); else what it is, found without opening it.

    Opening a FIFO blocks, and ``/dev/zero`` or ``/dev/urandom`` never end, so only regular files
    are recordings: anything else is reported and skipped (or rejected) by what this says.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"a symbolic link to {printable(os.readlink(path))}, which does not exist" if path.is_symlink() else None
    except OSError as exc:
        return "a symbolic link loop" if exc.errno == errno.ELOOP else f"cannot be examined ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    what = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    return what + (f" (through a symbolic link to {printable(os.readlink(path))})" if path.is_symlink() else "")


@dataclass(frozen=True)
class SkippedFile:
    """A file in a subset folder that looks like a recording but is not listed: which, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def recording_files(folder: Path, skipped: list[SkippedFile] | None = None) -> list[Path]:
    """The recordings of a subset folder: regular files named ``*.mid``/``*.midi`` (any case), sorted.

    Anything that looks like one but is not (a name that is not UTF-8, ``take.mid.``, a FIFO, a
    folder, a device, a dangling or looping link) is appended to ``skipped`` with the reason,
    and never opened.
    """
    files = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if not (is_midi_name(name) or _almost_midi_name(name)):
            continue
        shown = f"{folder.name}/{printable(name)}"
        if not _is_utf8(name):
            _skip(skipped, shown, "file name is not valid UTF-8 (a manifest cannot list it): rename it")
            continue
        if _almost_midi_name(name):
            _skip(skipped, shown, f"name ends in {name[name.lower().rfind('.mid'):]!r}, not .mid or .midi: rename it")
            continue
        what = not_a_file(path)
        if what is not None:
            _skip(skipped, shown, f"{what}, not a recording; skipped without reading it")
            continue
        files.append(path)
    return files


def _skip(skipped: list[SkippedFile] | None, path: str, reason: str) -> None:
    """Note a skipped file where the caller collects them."""
    if skipped is not None:
        skipped.append(SkippedFile(path, reason))


def relative_name(subset: str, file_name: str) -> str:
    """``<subset>/<file name>``: how a recording's file is named in reports, messages and a take's
    ``midi.path`` (for a manifest row or a row of the recordings table alike)."""
    return f"{subset}/{file_name}"


@dataclass(frozen=True)
class ManifestRow:
    """One recording: where it is, what it should hash to, what its name claims, its split."""

    recording_id: str
    subset: str
    file_name: str
    size: int
    sha256: str
    labelled_bpm: str
    labelled_key: str
    steps_per_beat: int
    split: str
    source_url: str

    @property
    def relative_name(self) -> str:
        """``<subset>/<file name>`` (:func:`relative_name`)."""
        return relative_name(self.subset, self.file_name)

    def path(self, raw: Path) -> Path:
        """The file's place under the raw folder; refuses names that would escape it."""
        rel = PurePosixPath(self.subset) / self.file_name
        if rel.is_absolute() or ".." in rel.parts or "\\" in str(rel):
            raise RecordingError(str(rel), "manifest path escapes the raw folder")
        return raw / rel


MANIFEST_COLUMNS = tuple(f.name for f in fields(ManifestRow))


def parse_file_name(file_name: str) -> tuple[str, str, str]:
    """Split ``aa_97_Cm.mid`` into (id, bpm label, key label), or raise naming the file."""
    match = FILE_NAME_RE.match(file_name)
    if not match:
        raise RecordingError(file_name, "file name is not <id>_<bpm>_<key>.mid")
    return match["id"], match["bpm"], match["key"]


def hash_share(recording_id: str) -> float:
    """A stable number in [0, 1) from the recording id (sha256), the same on every machine."""
    return int.from_bytes(hashlib.sha256(recording_id.encode()).digest()[:8], "big") / 2**64


def assign_split(recording_id: str, validation_ids: set[str], test_fraction: float = 0.1) -> str:
    """``validation`` if listed, ``test`` if its hash falls below ``test_fraction``, else ``train``."""
    if recording_id in validation_ids:
        return "validation"
    return "test" if hash_share(recording_id) < test_fraction else "train"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scan_recordings(
    folder: Path,
    subset: str,
    steps_per_beat: int,
    validation_ids: set[str] | frozenset[str] = frozenset(),
    test_fraction: float = 0.1,
    source_url: str | None = None,
    skipped: list[SkippedFile] | None = None,
) -> list[ManifestRow]:
    """Manifest rows for every recording (:func:`recording_files`) in ``folder``; ids are ``<subset>/<id>``.

    ``source_url`` is a template with ``{subset}`` and ``{file_name}``; without one the address is
    empty, so nobody's files are ever listed under someone else's download address. Files that
    look like recordings but are not are appended to ``skipped``.
    """
    rows = []
    for path in recording_files(folder, skipped):
        file_id, bpm, key = parse_file_name(path.name)
        recording_id = f"{subset}/{file_id}"
        rows.append(
            ManifestRow(
                recording_id=recording_id,
                subset=subset,
                file_name=path.name,
                size=path.stat().st_size,
                sha256=sha256_file(path),
                labelled_bpm=bpm,
                labelled_key=key,
                steps_per_beat=steps_per_beat,
                split=assign_split(recording_id, set(validation_ids), test_fraction),
                source_url=source_url.format(subset=subset, file_name=path.name) if source_url else "",
            )
        )
    return rows


#: The first line of every manifest this project writes: how a manifest is recognised as ours.
MANIFEST_HEADER = ",".join(MANIFEST_COLUMNS)


def write_manifest(rows: list[ManifestRow], path: Path) -> None:
    """Write rows sorted by id, so the same recordings always give the same bytes.

    Written to a temp file and renamed into place: an interrupted run never leaves half a manifest.
    """
    from piano_metronome.safety import write_atomic

    def write(temp: Path) -> None:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in sorted(rows, key=lambda r: r.recording_id):
                writer.writerow(asdict(row))

    write_atomic(path, write)


def is_manifest_file(path: Path) -> bool:
    """True when ``path``'s first line is exactly our manifest header (a file we wrote, or one like it)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            first = handle.readline(len(MANIFEST_HEADER) + 3)
    except (OSError, UnicodeDecodeError):
        return False
    return first.rstrip("\r\n") == MANIFEST_HEADER


@dataclass(frozen=True)
class ManifestProblem:
    """A manifest row that cannot be used: the manifest file, its line, and why."""

    manifest: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.manifest} line {self.line}: {self.reason}"

    def describe(self, root: Path) -> str:
        """The line with the manifest named relative to ``root``, so reports do not depend on the checkout."""
        manifest = Path(self.manifest)
        name = manifest.relative_to(root).as_posix() if manifest.is_relative_to(root) else manifest.name
        return f"{name} line {self.line}: {self.reason}"


def _parse_record(record: dict[str, Any], line: int, manifest: str,
                  seen: dict[str, int]) -> ManifestRow | ManifestProblem:
    """One CSV record → a row, or the problem that makes it unusable (so the others still build).

    ``record`` is a ``csv.DictReader`` row: strings, and None in the fields a short line leaves out.
    """
    try:
        row = ManifestRow(**{**{c: record[c] for c in MANIFEST_COLUMNS},
                             "size": int(record["size"]),
                             "steps_per_beat": int(record["steps_per_beat"])})
    except (ValueError, TypeError) as exc:  # TypeError: a short line leaves fields None
        return ManifestProblem(manifest, line, f"unreadable row ({exc})")
    bad = [c for c in MANIFEST_COLUMNS if isinstance(record[c], str) and not _is_utf8(record[c])]
    if bad:
        return ManifestProblem(manifest, line, f"not valid UTF-8 in {', '.join(bad)} "
                                               f"({printable(str(record[bad[0]]))!r}); row skipped")
    if row.recording_id in seen:
        return ManifestProblem(manifest, line, f"recording id {row.recording_id!r} repeats (first on line "
                                               f"{seen[row.recording_id]}); row skipped")
    if row.split not in SPLITS:
        return ManifestProblem(manifest, line, f"{row.recording_id}: unknown split {row.split!r}")
    try:
        row.path(Path("."))
    except RecordingError as exc:
        return ManifestProblem(manifest, line, f"{row.recording_id}: {exc.reason} ({exc.path})")
    seen[row.recording_id] = line
    return row


def _is_utf8(text: str) -> bool:
    """Whether text read with ``surrogateescape`` came from valid UTF-8 (no escaped byte in it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_manifest(path: Path, problems: list[ManifestProblem] | None = None) -> list[ManifestRow]:
    """Read and check a manifest: columns, types, unique ids, known splits, no escaping paths.

    With ``problems`` (a list), a bad row is appended there and skipped, so one typo never stops
    the other recordings from building; without it the first bad row raises (strict callers).
    A manifest without the required columns always raises: no row of it can be trusted.
    """
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise RecordingError(path, f"manifest lacks columns {sorted(missing)}")
        rows: list[ManifestRow] = []
        seen: dict[str, int] = {}
        for record in reader:
            parsed = _parse_record(record, reader.line_num, str(path), seen)
            if isinstance(parsed, ManifestRow):
                rows.append(parsed)
            elif problems is None:
                raise RecordingError(path, f"line {parsed.line}: {parsed.reason}")
            else:
                problems.append(parsed)
    return rows


#: Grid of each corpus subset (sub-beats per beat): d1 is played in 16ths, d2 in 8ths.
DEFAULT_STEPS_PER_BEAT = {"d1": 4, "d2": 2}
#: The corpus author's held-out list; its entries are bare file names such as ``aa_97_Cm.mid``.
VALIDATION_LIST_NAME = "author_validation.txt"


def read_validation_list(path: Path) -> list[str]:
    """Entries of a validation list, one a line; blank lines and ``#`` comments are skipped.

    An entry may be a file name (``aa_97_Cm.mid``, the author's format), ``d1/aa_97_Cm.mid``
    or a recording id (``d1/aa``), so contributors can list their own recordings either way.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordingError(path, f"cannot read validation list ({exc.strerror or exc})") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def subset_folders(source_dir: Path) -> list[Path]:
    """Sub-folders of ``source_dir`` holding ``*.mid`` files, sorted; each one is a subset."""
    if not source_dir.is_dir():
        raise RecordingError(source_dir, "not a folder")
    folders = [
        p for p in sorted(source_dir.iterdir())
        if p.is_dir() and not p.name.startswith(".") and any(is_midi_name(c.name) or _almost_midi_name(c.name)
                                                             for c in p.iterdir())
    ]
    if not folders:
        raise RecordingError(source_dir, "holds no subset folders with *.mid files (expected e.g. d1/, d2/)")
    return folders


def resolve_validation_ids(entries: list[str], files: dict[str, list[str]], list_name: str) -> set[str]:
    """Map validation entries to recording ids; an entry that matches none or several is an error.

    Refusing unmatched entries matters: a typo would otherwise silently move a recording
    into ``train`` and make the validation numbers incomparable with the author's.
    """
    spellings = []  # (recording id, the ways an entry may name it)
    for subset, names in files.items():
        for name in names:
            recording_id = f"{subset}/{parse_file_name(name)[0]}"
            spellings.append((recording_id, (name, f"{subset}/{name}", recording_id)))
    ids = set()
    for entry in entries:
        matches = {recording_id for recording_id, forms in spellings if entry in forms}
        if len(matches) != 1:
            found = "matches no recording" if not matches else f"is ambiguous ({', '.join(sorted(matches))})"
            raise RecordingError(list_name, f"entry {entry!r} {found}")
        ids |= matches
    return ids


def build_manifest(
    source_dir: Path,
    steps_per_beat: dict[str, int],
    validation_entries: Sequence[str] = (),
    test_fraction: float = 0.1,
    source_url: str | None = None,
    list_name: str = VALIDATION_LIST_NAME,
    skipped: list[SkippedFile] | None = None,
) -> list[ManifestRow]:
    """Rows for every recording under ``source_dir/<subset>/``, sorted by recording id.

    Every subset needs a grid (``steps_per_beat``): guessing one would silently misalign a
    whole subset, so an unknown subset is an error naming it.
    """
    folders = subset_folders(source_dir)
    unknown = [f.name for f in folders if f.name not in steps_per_beat]
    if unknown:
        raise RecordingError(source_dir, f"no steps per beat known for subset(s) {', '.join(unknown)}: say "
                                         f"how many sub-beats per beat each is played in "
                                         f"(--steps-per-beat {unknown[0]}=4 for 16ths, =2 for 8ths)")
    files = {f.name: [p.name for p in recording_files(f)] for f in folders}
    validation_ids = resolve_validation_ids(list(validation_entries), files, list_name)
    rows = [
        row
        for folder in folders
        for row in scan_recordings(folder, folder.name, steps_per_beat[folder.name],
                                   validation_ids, test_fraction, source_url, skipped)
    ]
    _check_unique_ids(rows, source_dir)
    return sorted(rows, key=lambda r: r.recording_id)


def _check_unique_ids(rows: list[ManifestRow], source_dir: Path) -> None:
    """Two files with one id (``aa_97_C.mid`` and ``aa_98_C.mid``) would share a split key."""
    seen: dict[str, str] = {}
    for row in rows:
        if row.recording_id in seen:
            raise RecordingError(source_dir, f"recording id {row.recording_id!r} is used by both "
                                             f"{seen[row.recording_id]} and {row.file_name}")
        seen[row.recording_id] = row.file_name


def row_for_file(midi: Path, manifest: Path | None = None) -> tuple[ManifestRow, Path] | None:
    """The manifest row of one recording, and the manifest it came from, or None when none lists it.

    Without ``manifest``, looks where the project keeps them: beside the subset folder
    (``<raw>/manifest.csv`` for ``<raw>/<subset>/<file>``), then in the file's own folder (the demo
    takes carry theirs); a file there that is not a manifest is passed over. A row matches by
    subset (the file's folder) and file name, so a take is never given another recording's grid;
    in a manifest given explicitly, a file name that only one row has matches too. An explicit
    manifest that cannot be read raises :class:`RecordingError`.
    """
    subset = midi.resolve().parent.name
    if manifest is not None:
        rows = read_manifest(manifest, problems=[])
        exact = [r for r in rows if r.file_name == midi.name and r.subset == subset]
        named = [r for r in rows if r.file_name == midi.name]
        chosen = exact or (named if len(named) == 1 else [])
        return (chosen[0], manifest) if chosen else None
    for candidate in (midi.parent.parent / "manifest.csv", midi.parent / "manifest.csv"):
        if not candidate.is_file() or not is_manifest_file(candidate):
            continue
        for row in read_manifest(candidate, problems=[]):
            if row.file_name == midi.name and row.subset == subset:
                return row, candidate
    return None
