"""The ``piano-metronome`` command-line tool: one typer app, one module per command.

Each module in :mod:`piano_metronome.commands` has a ``register(app)`` function and keeps its
heavy imports inside the command body, so ``--help`` answers instantly.
"""

from __future__ import annotations

import importlib

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
)

#: Command modules under piano_metronome.commands, in the order their commands appear in --help.
COMMAND_MODULES = ("fetch", "manifest", "demo", "align", "build", "publish", "validate", "rebuild", "stats", "plot",
                   "render", "baseline")

for _module in COMMAND_MODULES:
    importlib.import_module(f"piano_metronome.commands.{_module}").register(app)


def main() -> None:
    """Entry point of the console script."""
    app()
