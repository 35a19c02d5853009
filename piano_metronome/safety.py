"""Never destroy what we did not write: one rule, one message, for every command that writes.

A command that writes a file or a folder a user names checks it here *before* doing any work,
so a refusal changes nothing and leaves nothing behind. Our own outputs are recognised
positively (a manifest by its exact header, a demo take by its track name, a build by the
marker it writes), never by guessing from a name; anything else is the user's. Replacing a
user's file needs an explicit ``--force`` where the command offers one.

The refusal is one line on stderr and exit code 2::

    error: out.mid: already exists; pass --force to replace it

Commands catch :class:`OverwriteError` and ``raise refused_exit(exc)``; writers that can fail half-way
go through :func:`write_atomic`, so a final name holds either the old file or the whole new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

#: What a forceable refusal tells the user to do.
FORCE_HINT = "pass --force to replace it"
#: The exit code of a refusal: bad usage, like every other argument error of the CLI.
EXIT_REFUSED = 2

#: ``why_not_ours(path)``: None when ``path`` is an output we wrote (free to replace), else why not.
WhyNotOurs = Callable[[Path], "str | None"]


class OverwriteError(Exception):
    """A write refused before anything changed: the path, why, and whether --force would do it."""

    def __init__(self, path: Path, reason: str, forceable: bool = True) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.forceable = path, reason, forceable

    def __str__(self) -> str:
        """``<path>: <reason>`` plus the --force hint when it applies: the whole one-line message."""
        return f"{self.path}: {self.reason}" + (f"; {FORCE_HINT}" if self.forceable else "")


def check_file(path: Path, force: bool = False, why_not_ours: WhyNotOurs | None = None) -> None:
    """Raise :class:`OverwriteError` unless writing the file ``path`` destroys nothing of the user's.

    Absent: fine. A folder or anything but a regular file: refused even with ``force`` (replacing
    it would delete more than one file). An existing file: fine when ``why_not_ours`` recognises
    it as ours, or with ``force``; otherwise refused with its reason ("already exists" when the
    command has no way to recognise its own files, e.g. an output file the user named).
    """
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir():
        raise OverwriteError(path, "is a folder, not a file", forceable=False)
    if path.is_symlink() or not path.is_file():
        raise OverwriteError(path, "exists and is not a regular file", forceable=False)
    reason = why_not_ours(path) if why_not_ours is not None else "already exists"
    if reason is not None and not force:
        raise OverwriteError(path, reason)


def check_folder(path: Path, why_not_ours: WhyNotOurs, force: bool = False, forceable: bool = True) -> None:
    """Raise :class:`OverwriteError` unless the folder ``path`` holds only what we wrote (or nothing).

    Absent or empty: fine. A file where the folder should be: refused, even with ``force``.
    Otherwise every entry must be recognised by ``why_not_ours``; the first that is not is named
    in the refusal (with ``force`` it is allowed: the caller then overwrites only its own names).
    ``forceable=False`` for commands without ``--force``: the message then offers none.
    """
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OverwriteError(path, "exists and is not a folder", forceable=False)
    if not path.exists() or force:
        return
    for entry in sorted(path.iterdir()):
        reason = why_not_ours(entry)
        if reason is not None:
            raise OverwriteError(path, f"holds {entry.name}, {reason}", forceable)


def check_replaceable_folder(path: Path, why_not_ours: WhyNotOurs, force: bool = False,
                             forceable: bool = True) -> None:
    """Raise :class:`OverwriteError` unless the folder ``path`` may be replaced as a whole (``build --out``).

    Absent or empty: fine. A file or a link: refused, even with ``force``. A non-empty folder:
    fine only when ``why_not_ours(path)`` recognises it (returns None, e.g. by a marker file the
    writer puts in it) or with ``force``; else refused with the reason it returned.
    """
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OverwriteError(path, "exists and is not a folder", forceable=False)
    if not path.exists() or force or not any(path.iterdir()):
        return
    reason = why_not_ours(path)
    if reason is not None:
        raise OverwriteError(path, reason, forceable)


def refused_exit(exc: OverwriteError) -> typer.Exit:
    """Print the refusal as one ``error:`` line on stderr and return the ``typer.Exit`` to raise."""
    import typer

    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(EXIT_REFUSED)


def _file_mode() -> int:
    """The mode a new file gets under the current umask (mkstemp's 0600 would hide it from others)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp)`` on a hidden temp file beside ``path``, then rename it over ``path``.

    The rename is atomic within a folder, so ``path`` is either the old file or the complete new
    one, never a partial write; the temp file is removed on any failure (Ctrl-C included).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    temp = Path(name)
    try:
        write(temp)
        os.chmod(temp, _file_mode())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`write_atomic`: the old file or the whole new one."""
    def write(temp: Path) -> None:
        temp.write_text(text, encoding="utf-8")

    return write_atomic(path, write)
