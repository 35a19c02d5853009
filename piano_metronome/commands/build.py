"""``piano-metronome build``: align every recording and write the Hub-ready dataset folder."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from piano_metronome.commands.common import OPTION_RAW, align_options, console, parse_latency


def register(app: typer.Typer) -> None:
    """Add the ``build`` command."""
    app.command("build")(build)


def build(
    raw: Path = OPTION_RAW,
    out: Path = typer.Option(Path("dataset"), "--out", "-o", help="Dataset folder to write (replaced atomically)."),
    config: list[str] = typer.Option(None, "--config", "-c", help="Config(s) to build: d1, d2, all, demo. "
                                     "Default: all four when the corpus is present, else demo."),
    corpus: Path = typer.Option(None, "--corpus", help="Also look for recordings here (<dir>/d1, <dir>/d2); "
                                "$PIANO_METRONOME_CORPUS is used too."),
    jobs: int = typer.Option(min(2, os.cpu_count() or 1), "--jobs", "-j", help="Worker processes aligning "
                             "recordings, whole subsets each, while the main process prepares the writer "
                             "(1: align in the main process; default: 2, or 1 on a one-core machine)."),
    num_proc: int = typer.Option(None, "--num-proc", help="Processes for writing shards (datasets' num_proc)."),
    window_steps: int = typer.Option(64, help="Steps per window."),
    hop_steps: int = typer.Option(None, help="Steps between window starts (default: window steps, no overlap)."),
    latency: str = typer.Option("robust", help="Latency removal: 'robust' (per-recording median), 'none', or ms."),
    strict: bool = typer.Option(False, help="Exit 1 if any recording is rejected."),
) -> None:
    """Align each recording to its click grid and write Arrow shards, card and checksums.

    Every recording is checked against the manifest (sha256), its grid verified against its
    notes, its latency removed, and its notes quantized into bar-aligned windows. The folder
    OUT gets README.md (card + YAML), data/<config>/<split>-NNNNN-of-NNNNN.arrow, the
    per-recording reports (config `recordings`), build_report.json and checksums.sha256.
    Without the corpus it builds the synthetic `demo` config.

    Exit codes: 0 built; 1 built but recordings were rejected and --strict was given;
    2 bad arguments or nothing to build.
    """
    from piano_metronome.outputs.build import run_build

    options = align_options(window_steps, hop_steps, parse_latency(latency))
    summary = run_build(raw, out, config or None, corpus, options, num_proc, console(), jobs)
    if strict and summary.rejected:
        raise typer.Exit(1)
