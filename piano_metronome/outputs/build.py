"""Build a Hub-ready dataset folder: shards per config and split, recordings table, card, checksums.

The folder is written in a temporary sibling and swapped in only when complete (an atomic
directory exchange on Linux), so an interrupted build never leaves a half-written dataset
where a good one was. Same inputs give byte-identical files: rows are sorted by recording,
nothing carries a timestamp.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from piano_metronome import __version__
from piano_metronome.inputs.manifest import ManifestProblem, ManifestRow, sha256_file
from piano_metronome.inputs.midi import RecordingError
from piano_metronome.outputs.layout import (
    BUILD_REPORT,
    CHECKSUM_FILE,
    GENERATOR,
    check_replaceable,
    config_dir,
    shard_name,
    spool_path,
)
from piano_metronome.outputs.progress import BuildProgress
from piano_metronome.outputs.report_log import RecordingsTally, ReportLog, by_recording_id, read_log
from piano_metronome.outputs.schema import RECORDINGS_CONFIG, RECORDINGS_SPLIT
from piano_metronome.outputs.staging import staging_dir, swap_in
from piano_metronome.processing.align import AlignedPerformance, AlignOptions
from piano_metronome.processing.recording import RecordingResult, process_row

if TYPE_CHECKING:
    from piano_metronome.outputs.stats import SplitStats


class BuildError(Exception):
    """Bad input to the build as a whole (not one bad recording): the one-line reason a user reads."""


@dataclass
class BuildSummary:
    """What a build produced, per config and split, and what it rejected."""

    out: Path
    configs: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    config_subsets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    recordings: RecordingsTally = field(default_factory=RecordingsTally)
    manifest_problems: list[str] = field(default_factory=list)
    skip_broken: bool = False  # files that hit a bug were recorded as rejections instead of stopping the build
    splits: list[SplitStats] = field(default_factory=list)  # per config and split, read from the written folder

    @property
    def rejected(self) -> list[RecordingResult]:
        """Recordings that did not make it in, each with its reason, in manifest order."""
        return self.recordings.rejected

    def dropped(self) -> Counter[str]:
        """Dropped notes by reason over all recordings."""
        return self.recordings.dropped


def aligned_of(result: RecordingResult) -> AlignedPerformance:
    """The aligned performance of an accepted recording (asking for a rejected one's is a bug)."""
    if result.aligned is None:
        raise AssertionError(f"{result.row.recording_id}: no aligned performance (status {result.report.status})")
    return result.aligned


def midi_bytes_of(result: RecordingResult) -> bytes:
    """The verified file bytes of an accepted recording (asking for a rejected one's is a bug)."""
    if result.midi_bytes is None:
        raise AssertionError(f"{result.row.recording_id}: no file bytes (status {result.report.status})")
    return result.midi_bytes


def process_all(rows: list[ManifestRow], sources: list[Path], options: AlignOptions, report_path: Path,
                progress: Callable[[RecordingResult], None] | None = None,
                spool_dir: Path | None = None, skip_broken: bool = False) -> None:
    """Align every row once; stream its windows and take to the spools, its result to a report log.

    Nothing of a recording stays in memory once it is written, so peak memory does not grow
    with the corpus; the builder then reads the spools (``all`` reads the ``d1`` and ``d2``
    ones) instead of aligning again, and the recordings table is written from the log.
    A bug met on one file (:class:`AlignmentBugError`) stops everything, unless ``skip_broken``
    asks to record that file as an ``internal_error`` rejection and go on.
    """
    from piano_metronome.processing.recording import AlignmentBugError, broken

    spools = Spools(spool_dir) if spool_dir is not None else None
    try:
        with ReportLog(report_path) as log:
            for row in rows:
                try:
                    result = process_row(row, sources, options)
                except AlignmentBugError as bug:
                    if not skip_broken:
                        raise
                    result = broken(bug)
                if spools is not None and result.ok:
                    spools.write(result, options)
                log.write(result)
                if progress:
                    progress(result)
    finally:
        if spools is not None:
            spools.close()


class Spools:
    """The Arrow stream files one alignment pass writes: windows and takes, per subset and split.

    The ``datasets`` builder then reads them per config (``all`` reads the ``d1`` and ``d2`` ones),
    so every recording is aligned once, and only its report stays in memory.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[tuple[str, str, str], pa.ipc.RecordBatchStreamWriter] = {}

    def _writer(self, kind: str, row: ManifestRow, schema: pa.Schema) -> pa.ipc.RecordBatchStreamWriter:
        key = (kind, row.subset, row.split)
        if key not in self.writers:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.writers[key] = pa.ipc.new_stream(str(spool_path(self.folder, *key)), schema)
        return self.writers[key]

    def write(self, result: RecordingResult, options: AlignOptions) -> None:
        """The windows (if any) and the take of an accepted recording."""
        from piano_metronome.outputs.configs import TAKES, WINDOWS
        from piano_metronome.outputs.tables import take_schema, take_table, window_schema, windows_table

        aligned = aligned_of(result)
        if result.report.windows:
            self._writer(WINDOWS, result.row, window_schema()).write_table(windows_table(aligned, options))
        self._writer(TAKES, result.row, take_schema()).write_table(
            take_table(aligned, midi_bytes_of(result), result.row.relative_name))

    def close(self) -> None:
        """Finish every file (a stream needs its end marker to be read)."""
        for writer in self.writers.values():
            writer.close()


#: Shard size limit handed to the ``datasets`` writer. The writer checks its limit (default "500MB") after
#: each record batch, so a shard ends up to a batch past it (503 MB seen at 100× the corpus); 480 MB keeps
#: every file within the default.
MAX_SHARD_BYTES = 480 * 10**6


def build_config(config: str, subsets: tuple[str, ...], splits: tuple[str, ...], raw: Path, sources: list[Path],
                 options: AlignOptions, work: Path, out: Path,
                 num_proc: int | None = None) -> dict[str, dict[str, int]]:
    """Run the ``datasets`` builder for one config and move its shards to ``data/<config>/``.

    The builder reads the spools that :func:`process_all` wrote under ``work/spool``; ``splits``
    are those the manifest gives the config's subsets.
    """
    import datasets

    from piano_metronome.outputs.datasets_builder import builder_class

    builder = builder_class(config, subsets)(
        config_name=config, data_dir=str(raw), cache_dir=str(work / "cache"), sources=tuple(str(s) for s in sources),
        align_options=options, spool_dir=str(work / "spool"), splits=splits, dataset_name="piano_metronome")
    prepared = work / "prepared" / config
    builder.download_and_prepare(output_dir=str(prepared), file_format="arrow", num_proc=num_proc,
                                 max_shard_size=MAX_SHARD_BYTES, download_mode=datasets.DownloadMode.FORCE_REDOWNLOAD)
    target = config_dir(out, config)
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, split in builder.info.splits.items():
        shards = sorted(prepared.glob(f"piano_metronome-{name}*.arrow"))
        for index, shard in enumerate(shards):
            shutil.move(str(shard), target / shard_name(name, index, len(shards)))
        written[name] = {"num_examples": int(split.num_examples), "num_bytes": int(split.num_bytes),
                         "shards": len(shards)}
    return written


#: Recordings per record batch of the recordings table (the same as the windows' batches).
RECORDING_BATCH_ROWS = 1000


def write_recordings(logs: list[Path], out: Path) -> None:
    """The per-recording alignment reports as an Arrow table users can load (config ``recordings``).

    Read back from the report logs in recording-id order and written a batch at a time: flat memory.
    """
    from piano_metronome.outputs.tables import recording_row, recording_schema, recordings_table

    target = config_dir(out, RECORDINGS_CONFIG)
    target.mkdir(parents=True, exist_ok=True)
    batch: list[dict[str, object]] = []
    with pa.OSFile(str(target / shard_name(RECORDINGS_SPLIT)), "wb") as sink, pa.ipc.new_stream(
            sink, recording_schema()) as writer:
        for result in by_recording_id(logs):
            batch.append(recording_row(result.report, result.row.file_name, result.row.sha256))
            if len(batch) == RECORDING_BATCH_ROWS:
                writer.write_table(recordings_table(batch))
                batch = []
        if batch:
            writer.write_table(recordings_table(batch))


def write_checksums(out: Path) -> None:
    """sha256 of every file in the folder (sorted paths), in ``sha256sum -c`` format."""
    lines = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != CHECKSUM_FILE):
        digest = sha256_file(path)  # in blocks: a shard is never read into memory whole
        lines.append(f"{digest}  {path.relative_to(out).as_posix()}\n")
    (out / CHECKSUM_FILE).write_text("".join(lines), encoding="utf-8")


def write_build_report(summary: BuildSummary, options: AlignOptions, out: Path) -> None:
    """Machine-readable summary: configs, splits, rejections, drops, options (no timestamps)."""
    report = {
        "generator": GENERATOR,  # the marker by which a later build knows this folder is its own
        "configs": summary.configs,
        "config_subsets": {c: list(s) for c, s in summary.config_subsets.items()},
        "recordings": summary.recordings.count,
        "rejected": {r.row.recording_id: {"file": r.row.relative_name, "kind": r.report.reason_kind,
                                          "reason": r.report.reason} for r in summary.rejected},
        "manifest_problems": summary.manifest_problems,
        "input_warnings": {r.row.recording_id: [{"file": r.row.relative_name, "kind": kind, "text": text}
                                                for kind, text in r.input_warnings]
                           for r in summary.recordings.warned},
        "skip_broken": summary.skip_broken,
        "dropped_notes": dict(sorted(summary.dropped().items())),
        "align_options": {k: v for k, v in vars(options).items()},
        "piano_metronome_version": __version__,  # so `rebuild` can tell a code change from a data change
    }
    (out / BUILD_REPORT).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def plan_sources(raw: Path, corpus: Path | None) -> list[Path]:
    """Where recordings are looked for, in order: the raw folder, --corpus, $PIANO_METRONOME_CORPUS."""
    from piano_metronome.paths import corpus_dir

    sources = [raw]
    for extra in (corpus, corpus_dir()):
        if extra is not None and extra not in sources:
            sources.append(extra)
    return sources


def recordings_found(raw: Path, subsets: tuple[str, ...], sources: list[Path]) -> bool:
    """Whether a config's manifest exists and at least one of its first files can be found."""
    from piano_metronome.outputs.configs import config_rows
    from piano_metronome.processing.recording import find_file

    try:
        rows = config_rows(raw, subsets)
    except (OSError, ValueError):
        return False
    return any(find_file(r, sources) is not None for r in rows[:5])


def choose_configs(raw: Path, sources: list[Path], asked: list[str] | None,
                   available: dict[str, tuple[str, ...]]) -> tuple[list[str], str | None]:
    """The configs to build and a note for the user (or None).

    Asked for: each must be one the raw folder gives. Not asked: every config whose
    recordings are found; the demo takes alone (with a hint) when none are.
    """
    from piano_metronome.paths import DEMO_SUBSET

    if asked is not None:
        unknown = [c for c in asked if c not in available]
        if unknown:
            raise BuildError(f"unknown config(s) {', '.join(unknown)} for {raw}; it gives "
                             f"{', '.join(available) or 'none (no manifest.csv)'}")
        return [c for c in available if c in asked], None  # the raw folder's order, however asked
    demo = [c for c, subsets in available.items() if subsets == (DEMO_SUBSET,)]
    found = [c for c, subsets in available.items()
             if c not in demo and recordings_found(raw, subsets, sources)]
    if found:
        return found + demo, None
    if demo:
        return demo, ("recordings not found: building the synthetic demo configs only. Get the real "
                      "recordings with `piano-metronome fetch` (or `fetch --from DIR`).")
    raise BuildError(f"none of the recordings listed in {raw / 'manifest.csv'} were found (looked in "
                     f"{', '.join(str(s) for s in sources)})")


def run_build(raw: Path | None, out: Path, configs: list[str] | None, corpus: Path | None, options: AlignOptions,
              num_proc: int | None = None, progress: BuildProgress | None = None, jobs: int = 1,
              skip_broken: bool = False) -> BuildSummary:
    """The whole build; see the ``build`` command. Progress goes to ``progress``, nothing is printed.

    Raises (nothing written, nothing left behind) :class:`BuildError` for a missing raw folder,
    an unknown config or an unreadable manifest, :class:`~piano_metronome.safety.OverwriteError`
    for an ``out`` that is not the build's own, and
    :class:`~piano_metronome.processing.recording.AlignmentBugError` for a file that hit a bug
    (unless ``skip_broken``: then it is recorded as an ``internal_error`` rejection).
    """
    from piano_metronome.outputs.configs import configs_of
    from piano_metronome.paths import raw_dir

    raw = raw_dir(raw)
    if not raw.is_dir():
        raise BuildError(f"raw folder {raw} does not exist (give --raw DIR: a folder with manifest.csv)")
    check_replaceable(out)
    sources = plan_sources(raw, corpus)
    problems: list[ManifestProblem] = []
    try:
        available = configs_of(raw, problems)
    except (OSError, RecordingError) as exc:
        raise BuildError(f"cannot read the manifest: {exc}") from None
    progress = progress or BuildProgress()
    configs, note = choose_configs(raw, sources, configs, available)
    if note:
        progress.note(note)
    subsets = tuple(dict.fromkeys(s for c in configs for s in available[c]))
    rows = _rows_for(raw, subsets, problems)
    for problem in dict.fromkeys(problems):
        progress.note(f"manifest row skipped: {problem}")
    staging = staging_dir(out)
    try:
        tally = align_all(rows, sources, options, progress, staging / ".work" / "spool", jobs, skip_broken)
        summary = BuildSummary(out=out, recordings=tally, config_subsets={c: available[c] for c in configs},
                               manifest_problems=[p.describe(raw) for p in dict.fromkeys(problems)],
                               skip_broken=skip_broken)
        return _write_folder(raw, staging, summary, sources, options, num_proc, splits_by_subset(rows))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _rows_for(raw: Path, subsets: tuple[str, ...], problems: list[ManifestProblem] | None = None) -> list[ManifestRow]:
    """Manifest rows for the subsets: the raw folder's manifest, and the demo's own for demo.

    Bad rows are skipped and appended to ``problems``; only an unreadable manifest stops the build.
    """
    from piano_metronome.outputs.configs import config_rows
    from piano_metronome.paths import DEMO_SUBSET

    rows: list[ManifestRow] = []
    try:
        recorded = tuple(s for s in subsets if s != DEMO_SUBSET)
        if recorded:
            rows += config_rows(raw, recorded, problems)
        if DEMO_SUBSET in subsets:
            rows += config_rows(raw, (DEMO_SUBSET,), problems)
    except (OSError, RecordingError) as exc:
        raise BuildError(f"cannot read the manifest: {exc}") from None
    return rows


#: A worker that aligns no recording for this long is taken for hung (killed, its recordings aligned
#: here); one recording takes well under a second, and the largest accepted one a few.
WORKER_STALL_S = 600.0


def align_all(rows: list[ManifestRow], sources: list[Path], options: AlignOptions, progress: BuildProgress,
              spool_dir: Path, jobs: int = 1, skip_broken: bool = False) -> RecordingsTally:
    """Align every recording, telling ``progress`` as they are done; the tally keeps counts and logs.

    With ``jobs`` > 1, that many forked workers align whole (subset, split) parts (forked before the caller
    starts any progress thread, and before ``datasets`` is imported) while this process imports
    the dataset writer, the slowest import of the build; a failed worker is redone here.
    """
    from piano_metronome.outputs import workers

    spool_dir.mkdir(parents=True, exist_ok=True)
    logs = spool_dir.parent / "reports"
    logs.mkdir(exist_ok=True)

    def run(group: list[ManifestRow], done: Callable[[RecordingResult], None] | None, log: Path) -> None:
        process_all(group, sources, options, log, done, spool_dir, skip_broken)

    parallel = jobs > 1 and workers.can_fork() and len(rows) > 1
    if parallel:
        _import_aligner()
    groups = workers.partition(rows, jobs) if parallel else []
    children = [workers.start(g, run, logs / f"worker-{i}.jsonl") for i, g in enumerate(groups)]
    progress.started(len(rows))
    tally = RecordingsTally()

    def count(result: RecordingResult) -> None:
        progress.recording(result)
        tally.add(result)

    try:
        if not children:
            def done(result: RecordingResult) -> None:
                count(result)
                progress.advanced()

            run(rows, done, logs / "all.jsonl")
            tally.logs.append(logs / "all.jsonl")
        if children:
            _import_writer()
        for number, (child, log) in enumerate(zip(children, workers.collect(
                children, stall_s=WORKER_STALL_S, on_progress=progress.advanced), strict=True)):
            if log is None:
                progress.note("a worker process failed; aligning its recordings here")
                log = logs / f"worker-{number}-again.jsonl"
                run(child.items, None, log)
            for result in read_log(log):
                count(result)
            tally.logs.append(log)
    finally:
        progress.finished()
    tally.in_order({row.recording_id: i for i, row in enumerate(rows)})
    return tally


def _import_aligner() -> None:
    """Import once, before forking, what every worker would otherwise import for itself."""
    import pandas  # noqa: F401  (pyarrow imports it on the first array of strings; datasets needs it too)
    import symusic  # noqa: F401


def _import_writer() -> None:
    """Import what writing the folder needs, while workers align (it takes as long as aligning)."""
    import datasets  # noqa: F401
    import huggingface_hub.repocard  # noqa: F401
    import scipy.io  # noqa: F401  (datasets imports it when it patches the builder module for streaming)

    import piano_metronome.outputs.datasets_builder  # noqa: F401


def splits_by_subset(rows: list[ManifestRow]) -> dict[str, set[str]]:
    """The splits each subset's manifest rows name."""
    splits: dict[str, set[str]] = {}
    for row in rows:
        splits.setdefault(row.subset, set()).add(row.split)
    return splits


def _write_folder(raw: Path, staging: Path, summary: BuildSummary, sources: list[Path], options: AlignOptions,
                  num_proc: int | None, splits: dict[str, set[str]]) -> BuildSummary:
    """Write everything into the staging folder, then swap it in at ``summary.out`` (atomic)."""
    import datasets

    from piano_metronome.inputs.manifest import SPLITS
    from piano_metronome.outputs.card import write_card
    from piano_metronome.outputs.stats import folder_stats
    from piano_metronome.outputs.stats_markdown import stats_markdown

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        work = staging / ".work"
        for config, subsets in summary.config_subsets.items():
            named = tuple(s for s in SPLITS if any(s in splits.get(subset, ()) for subset in subsets))
            summary.configs[config] = build_config(config, subsets, named, raw, sources, options, work, staging,
                                                   num_proc)
        write_recordings(summary.recordings.logs, staging)
        shutil.rmtree(work)
        stats = folder_stats(staging)  # from the tables written: the card's section and the command's summary
        summary.splits = stats.splits
        write_card(staging, summary.configs, summary.recordings.count, stats_markdown(stats))
        write_build_report(summary, options, staging)
        write_checksums(staging)
        swap_in(staging, summary.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary
