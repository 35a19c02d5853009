"""``piano-metronome build``: align every recording and write the Hub-ready dataset folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.outputs.progress import BuildProgress
from piano_metronome.outputs.workers import DEFAULT_JOBS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from piano_metronome.outputs.build import BuildSummary
    from piano_metronome.processing.recording import RecordingResult

from piano_metronome.commands.common import (
    OPTION_CORPUS,
    OPTION_RAW,
    align_options,
    console,
    fail,
    parse_latency,
    result_console,
)


def register(app: typer.Typer) -> None:
    """Add the ``build`` command."""
    app.command("build")(build)


def build(
    raw: Path = OPTION_RAW,
    out: Path = typer.Option(Path("dataset"), "--out", "-o", help="Dataset folder to write. An existing one is "
                             "replaced atomically only if an earlier build wrote it (and nothing else is in it); "
                             "any other file or non-empty folder is refused."),
    config: list[str] = typer.Option(None, "--config", "-c", help="Config(s) to build: d1, d2, all, demo. "
                                     "Default: all four when the corpus is present, else demo."),
    corpus: Path = OPTION_CORPUS,
    jobs: int = typer.Option(DEFAULT_JOBS, "--jobs", "-j", help="Worker processes aligning "
                             "recordings, whole (subset, split) parts each, while the main process prepares the writer "
                             "(1: align in the main process; default: 2, or 1 on a one-core machine)."),
    num_proc: int = typer.Option(None, "--num-proc", help="Processes for writing shards (datasets' num_proc)."),
    window_steps: int = typer.Option(64, help="Steps per window."),
    hop_steps: int = typer.Option(None, help="Steps between window starts (default: window steps, no overlap)."),
    latency: str = typer.Option("robust", help="Latency removal: 'robust' (per-recording median), 'none', or ms."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any recording is rejected."),
    skip_broken: bool = typer.Option(False, "--skip-broken", help="A file that hits a bug in this program (not bad "
                                     "input) stops the build with exit code 3, naming it; with this flag it is "
                                     "recorded as an internal_error rejection and the others are built."),
    name: str = typer.Option(None, "--name", help="Also make the build loadable as load_dataset(NAME) from any "
                             "folder, offline (written into the datasets cache; see README 'Load by name'). "
                             "Default: piano_metronome for the project's own raw_midi/, none for other --raw "
                             "folders; '' for none.", show_default=False),
) -> None:
    """Align each recording to its click grid and write Arrow shards, card and checksums.

    Every recording is checked against the manifest (sha256), its grid verified against its
    notes, its latency removed, and its notes quantized into bar-aligned windows. The folder
    OUT gets README.md (card + YAML), data/<config>/<split>-NNNNN-of-NNNNN.arrow, the
    per-recording reports (config `recordings`), build_report.json and checksums.sha256.
    Without the corpus it builds the synthetic `demo` config.

    Exit codes: 0 built; 1 built but recordings were rejected and --strict was given;
    2 bad arguments, a refused --out, or nothing to build; 3 a file hit a bug (nothing written;
    please report it with that file, or build the others with --skip-broken).
    """
    from piano_metronome.outputs.build import BuildError, run_build
    from piano_metronome.processing.recording import AlignmentBugError
    from piano_metronome.safety import OverwriteError, refused_exit

    options = align_options(window_steps, hop_steps, parse_latency(latency))
    err = console()
    try:
        summary = run_build(raw, out, config or None, corpus, options, num_proc, ConsoleProgress(err), jobs,
                            skip_broken)
    except BuildError as exc:
        raise fail(str(exc)) from None
    except OverwriteError as exc:
        raise refused_exit(exc) from None
    except AlignmentBugError as bug:
        typer.echo(f"error: {bug} (nothing was written; --skip-broken builds the other files)", err=True)
        raise typer.Exit(3) from None
    print_summary(summary, result_console())
    typer.echo(load_line(out, register_name(raw, name)))
    if strict and summary.rejected:
        raise typer.Exit(1)


def register_name(raw: Path | None, name: str | None) -> str:
    """The name to register the build under: asked for, or ours for the project's own recordings."""
    from piano_metronome.outputs.register import DATASET_NAME
    from piano_metronome.paths import PROJECT_ROOT, raw_dir

    if name is not None:
        return name
    own = raw_dir(raw).resolve() == (PROJECT_ROOT / "raw_midi").resolve()
    return DATASET_NAME if own else ""


def load_line(out: Path, name: str) -> str:
    """Register the build under ``name`` (if any) and return the exact line that loads it.

    A failed registration is a warning: the folder is built and loads by its path.
    """
    from piano_metronome.outputs.configs import default_config
    from piano_metronome.outputs.layout import BUILD_REPORT
    from piano_metronome.outputs.register import RegistrationError, register_everywhere

    configs = list(json.loads((out / BUILD_REPORT).read_text(encoding="utf-8"))["configs"])
    example = default_config(configs)
    by_path = f'load_dataset("{out.resolve()}", "{example}")'
    if name:
        try:
            for note in register_everywhere(out, name):
                typer.echo(f"note: {note}", err=True)
        except (RegistrationError, OSError) as exc:
            typer.echo(f"warning: not loadable by name: {exc}", err=True)
            return f"load with: {by_path}"
        return (f'load with: load_dataset("{name}", "{example}")   '
                f'(configs: {", ".join(configs)}; or by path: {by_path})')
    return f"load with: {by_path}"


class ConsoleProgress(BuildProgress):
    """The build's progress on a rich console (stderr): a bar while aligning, one line per rejection
    or warning as it happens, notes in yellow."""

    def __init__(self, err: Console) -> None:
        self.console = err
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def note(self, text: str) -> None:
        """A note the user should read before the work starts."""
        from rich.markup import escape

        self.console.print(f"[yellow]{escape(text)}[/]")

    def started(self, total: int) -> None:
        """Start the bar (after any worker is forked: the bar runs a thread)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("aligning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=self.console, transient=True)
        self.task = bar.add_task("align", total=total)
        bar.start()
        self.bar = bar

    def advanced(self, count: int = 1) -> None:
        """Move the bar."""
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, count)

    def recording(self, result: RecordingResult) -> None:
        """A rejection or warning, printed as it is collected."""
        from rich.markup import escape

        path = escape(result.report.path)
        if not result.ok:
            self.console.print(f"[red]rejected[/] ({result.report.reason_kind}) {path}: {escape(result.report.reason)}")
        for kind, warning in result.input_warnings:
            self.console.print(f"[yellow]warning[/] ({kind}) {path}: {escape(warning)}")

    def finished(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def print_summary(summary: BuildSummary, err: Console) -> None:
    """The table a person reads at the end of a build (a result: the command prints it on stdout),
    computed from the folder just written, like the card and ``piano-metronome stats``."""
    from rich.markup import escape

    from piano_metronome.commands.stats import splits_table

    err.print(splits_table(summary.splits, title=f"built {summary.out}"))
    if summary.rejected:
        err.print(f"[red]{len(summary.rejected)} recording(s) rejected[/] (see build_report.json):")
        for result in summary.rejected:
            err.print(f"  ({result.report.reason_kind}) {escape(result.report.path)}: {escape(result.report.reason)}")
    if summary.manifest_problems:
        err.print(f"[red]{len(summary.manifest_problems)} manifest row(s) skipped[/] (see build_report.json):")
        for problem in summary.manifest_problems:
            err.print(f"  {escape(problem)}")
