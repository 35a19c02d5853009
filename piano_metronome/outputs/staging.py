"""Atomic replacement of a folder: write beside it, then swap it in.

A build writes into a fresh staging folder next to its target (same file system, so the swap
is a rename) and swaps it in only when complete, so an interrupted build never leaves a
half-written dataset where a good one was. The staging folder's name carries the writer's
process id, so a later build can tell a killed build's leftovers from a build still running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(result == 0)


def swap_in(new: Path, out: Path) -> None:
    """Put the finished folder ``new`` at ``out``; the old one is removed only after the swap."""
    if not out.exists():
        os.replace(new, out)
        return
    if _exchange(new, out):
        shutil.rmtree(new)
        return
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id still runs (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(out: Path) -> list[Path]:
    """Delete staging folders of earlier builds of ``out`` whose process is gone (killed builds)."""
    removed = []
    for folder in out.parent.glob(f".{out.name}.building-*"):
        pid = folder.name.rsplit("building-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def staging_dir(out: Path) -> Path:
    """A fresh temporary folder beside ``out`` (same file system, so the swap is a rename).

    Its name carries the build's process id, so a later build can tell a killed build's
    leftovers (removed) from a build still running beside it (left alone).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-{os.getpid()}-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a dataset folder is meant to be shared
    return staging
