"""The ``piano-metronome`` command-line tool: one typer app, one module per command.

Each module in :mod:`piano_metronome.commands` has a ``register(app)`` function and keeps its
heavy imports inside the command body, so ``--help`` answers instantly.

Help is plain text (``rich_markup_mode=None``) for every command, sub-apps included: rich markup
would eat literal brackets (``pip install 'piano_metronome[plot]'``, ``{'beats': [s…]}``) and
rich panels print a ``<bool>`` type beside every flag.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys

import typer

app = typer.Typer(
    name="piano-metronome",
    help=(
        "Build, verify and inspect a dataset of piano performances recorded to a metronome.\n\n"
        "Typical use: `piano-metronome fetch` (bring the recordings), `piano-metronome build` "
        "(align them to their click grid and write Arrow shards), `piano-metronome validate`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: Command modules under piano_metronome.commands, in the order their commands appear in --help.
COMMAND_MODULES = ("fetch", "manifest", "demo", "align", "build", "publish", "validate", "rebuild", "certify", "stats",
                   "plot", "render", "baseline")

for _module in COMMAND_MODULES:
    importlib.import_module(f"piano_metronome.commands.{_module}").register(app)


def _plain_help(typer_app: typer.Typer) -> None:
    """Plain-text help for the sub-apps too (``baseline``): each keeps its own markup mode otherwise."""
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = None
            _plain_help(group.typer_instance)


_plain_help(app)


def main() -> None:
    """Entry point of the console script: run the command, then leave at once.

    The exit handlers run (logging is flushed, temporary folders are removed) and the output is
    flushed, but the interpreter does not tear down every module it imported: with ``datasets``,
    pandas and torch loaded that teardown costs 0.3–0.5 s of a 3-second build, and frees nothing
    the operating system would not free anyway.
    """
    try:
        app()
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # what SystemExit would have printed
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away (`| head`), a closed stream
            stream.flush()
    os._exit(code or 0)
