"""How a long job of the library (a build, a certification) tells its caller what happens.

The library prints nothing: commands draw progress bars and tables from these calls, tests
record them, ``rebuild`` ignores them. Kept free of heavy imports, so a command module can
subclass it without slowing ``--help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from piano_metronome.processing.recording import RecordingResult


class BuildProgress:
    """What a build tells its caller while it runs; every method does nothing unless overridden.

    The library prints nothing: the ``build`` command draws a progress bar and tables from
    these calls, tests record them, and ``rebuild`` ignores them.
    """

    def note(self, text: str) -> None:
        """Something the user should know before the work starts (e.g. only the demo is built)."""

    def started(self, total: int) -> None:
        """Alignment of ``total`` recordings begins (worker processes, if any, are already forked)."""

    def advanced(self, count: int = 1) -> None:
        """``count`` more recordings are aligned."""

    def recording(self, result: RecordingResult) -> None:
        """One recording's result, in the order they are collected (rejections and warnings in it)."""

    def finished(self) -> None:
        """Alignment is over; writing the folder begins."""
