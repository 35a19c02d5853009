"""``piano-metronome certify``: a second, independent opinion on every take's grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from piano_metronome.commands.common import OPTION_CORPUS, OPTION_RAW, console, fail, result_console
from piano_metronome.outputs.workers import DEFAULT_JOBS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from piano_metronome.outputs.certify import TakeCertificate

HELP = (
    "Certify the click grid of every take in DIR with a beat tracker that never sees it."
    "\n\n"
    "For each recording, partitura's estimate_time (Simon Dixon's multiple-agent beat tracker) is run on "
    "the note onsets alone: no tempo map, no label, no grid. Its beats are compared with the grid the "
    "dataset stores (rebuilt from the raw file's tempo map and the recordings row, and checked against the "
    "stored window start times): tracked tempo and its ratio to the grid's, mir_eval's beat F-measure at "
    "+-70 ms, the median phase of tracked beats against the clicks in ms (it should have the sign of the "
    "measured latency), and a verdict: 'agrees' (tempo ratio 1 +-4 %, F >= 0.8), 'agrees at a multiple' "
    "(the same at 2x, 1/2x, 3/2x, ... of the beat), or 'disagrees'. A take whose file-name BPM disagrees "
    "with both the tempo map and the tracker is named."
    "\n\n"
    "The certificates are stored in DIR: the cert_* columns of the recordings table, a summary in the card "
    "(README.md), the run and the library versions in build_report.json, and new checksums; written beside DIR "
    "and swapped in atomically, so the folder always validates. The same inputs give the same bytes, and "
    "`rebuild` re-runs certify on a certified folder. --no-write only prints."
    "\n\n"
    "Needs the raw recordings (found like the build finds them: --raw, --corpus, $PIANO_METRONOME_CORPUS; "
    "each checked against the stored sha256) and the optional extra: pip install 'piano_metronome[verify]'. "
    "The tracker is slow (seconds per take); takes run in --jobs worker processes with a progress bar on "
    "stderr. The result (counts per verdict, every take that does not agree with its numbers) goes to stdout."
    "\n\n"
    "Exit codes: 0 certified; 1 some take disagrees and --strict was given; 2 DIR is not a built dataset, "
    "a raw recording is missing or changed, or the extra is not installed."
)


def certify(
    dataset: Path = typer.Argument(Path("dataset"), metavar="DIR", help="The built dataset folder to certify."),
    raw: Path | None = OPTION_RAW,
    corpus: Path | None = OPTION_CORPUS,
    jobs: int = typer.Option(DEFAULT_JOBS, "--jobs", "-j", help="Worker processes running the "
                             "tracker (1: in this process)."),
    as_json: bool = typer.Option(False, "--json", help="Print every take's certificate as JSON on stdout."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any take's certificate disagrees."),
    no_write: bool = typer.Option(False, "--no-write", help="Print the certificates; leave DIR as it is."),
) -> None:
    """Certify and print; the user-facing text is :data:`HELP`."""
    from piano_metronome.outputs.certify import CertifyError, certify_dataset, sources_for, write_certificates
    from piano_metronome.processing.certify import DISAGREES, VerifyExtraMissingError
    from piano_metronome.safety import OverwriteError, refused_exit

    if not dataset.is_dir():
        raise fail(f"{dataset} is not a folder")
    if jobs < 1:
        raise fail(f"--jobs must be at least 1, got {jobs}")
    bar = ProgressBar(console())
    try:
        takes = certify_dataset(dataset, sources_for(raw, corpus), jobs, bar.update)
    except (CertifyError, VerifyExtraMissingError) as exc:
        raise fail(str(exc)) from None
    finally:
        bar.stop()
    if not no_write:
        try:
            write_certificates(dataset, takes)
        except CertifyError as exc:
            raise fail(str(exc)) from None
        except OverwriteError as exc:
            raise refused_exit(exc) from None
    if as_json:
        from piano_metronome.outputs.certify import _to_json

        typer.echo(json.dumps([_to_json(t) for t in takes], indent=1, ensure_ascii=False))
    else:
        print_certificates(dataset, takes)
    if strict and any(t.certificate and t.certificate.verdict == DISAGREES for t in takes):
        raise typer.Exit(1)


class ProgressBar:
    """A rich bar on stderr, started at the first call (after the workers are forked: it runs a thread)."""

    def __init__(self, err: Console) -> None:
        self.console = err
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def update(self, done: int, total: int) -> None:
        """Move the bar to ``done`` of ``total`` takes."""
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(TextColumn("tracking beats"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=self.console, transient=True)
            self.task = bar.add_task("certify", total=total)
            bar.start()
            self.bar = bar
        if self.task is not None:
            self.bar.update(self.task, completed=done)

    def stop(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def print_certificates(dataset: Path, takes: list[TakeCertificate]) -> None:
    """Counts per verdict, then every take that disagrees or whose BPM label is wrong, with its numbers (stdout)."""
    from collections import Counter

    from rich.markup import escape
    from rich.table import Table

    from piano_metronome.processing.certify import DISAGREES, VERDICTS

    out = result_console()
    certified = [(t, t.certificate) for t in takes if t.certificate is not None]
    counts = Counter(c.verdict for _, c in certified)
    out.print(f"certified {len(certified)} take(s) of {escape(str(dataset))}: "
              + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
              + (f"; {len(takes) - len(certified)} skipped (rejected by the build)" if len(certified) < len(takes)
                 else ""))
    named = [(t, c) for t, c in certified if c.verdict == DISAGREES or c.label_disagrees]
    if not named:
        return
    table = Table(title="takes that disagree or whose BPM label is wrong", title_justify="left")
    for name in ("take", "verdict", "tracked bpm", "ratio", "F beat", "F multiple", "phase ms", "label"):
        table.add_column(name, justify="left" if name in ("take", "verdict", "label") else "right")
    for t, c in named:
        label = f"wrong (F {c.label_f_measure:.2f})" if c.label_disagrees else ""
        table.add_row(escape(t.file), c.verdict, f"{c.tracked_bpm:.2f}", f"{c.tempo_ratio:.3f}", f"{c.f_measure:.2f}",
                      f"{c.f_measure_at_multiple:.2f}", f"{c.phase_ms:+.0f}", label)
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``certify`` command."""
    app.command("certify", help=HELP)(certify)
