"""Build benchmarks (issue 4), each printed as a ratio measured in this same run.

1. full-corpus build time (the whole `piano-metronome build` process, configs d1, d2, all and
   takes) ÷ pretty_midi's parse of the corpus — target ≤ 0.15;
2. peak memory of that build — target ≤ 500 MB;
3. the corpus replicated 10×: build time ≤ 11× and peak memory ≤ 1.3× the 1× build;
4. the corpus replicated 100× (issue 13; about 2,260 hours and 43 million notes, every copy a distinct
   recording id): build time ≤ 100× (linear) and peak memory ≤ 1.5× the 1× build, the shards within
   the ``datasets`` writer's default shard size; and from the measured rate, hours of recordings
   built per hour of one machine;
5. dense decoding of the whole dataset, in order — target ≥ 500,000 windows/s.

Usage: PIANO_METRONOME_CORPUS=../shared/corpus python benchmarks/bench_build.py [--skip-100x]
(the 100× build takes some minutes on 2 cores; ``--skip-100x`` leaves it out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, corpus_dir, corpus_files  # noqa: E402


def pretty_midi_parse_seconds() -> float:
    """How long pretty_midi takes to parse every corpus file (the reference)."""
    import pretty_midi

    start = time.perf_counter()
    for path in corpus_files():
        pretty_midi.PrettyMIDI(str(path))
    return time.perf_counter() - start


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows (36,100 copies cost no disk), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def replicated_raw(folder: Path, copies: int) -> Path:
    """A raw folder whose manifest lists every corpus recording ``copies`` times (ids made unique)."""
    from piano_metronome.inputs.manifest import read_manifest, write_manifest

    rows = read_manifest(ROOT / "raw_midi" / "manifest.csv")
    out_rows = []
    for copy in range(copies):
        for row in rows:
            stem, rest = row.file_name.split("_", 1)
            name = f"{stem}{copy:03d}_{rest}" if copies > 1 else row.file_name
            target = folder / row.subset / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(corpus_dir() / row.subset / row.file_name, target)
            out_rows.append(replace(row, recording_id=f"{row.subset}/{name.split('_')[0]}", file_name=name))
    write_manifest(out_rows, folder / "manifest.csv")
    return folder


#: The configs every build of this benchmark writes: all the corpus gives (the demo's are not the corpus).
CONFIGS = ("d1", "d2", "all", "takes")


def build(raw: Path, out: Path) -> dict:
    """One corpus build (:data:`CONFIGS`): the console command in a process of its own, as a user runs it.

    Wall seconds, and the peak memory of the command or of any worker it forked (``wait4`` reports
    the largest resident set among the process and the children it waited for).
    """
    args = ["build", "--raw", str(raw), "--out", str(out), *(a for c in CONFIGS for a in ("--config", c))]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "piano_metronome", *args], stdout=subprocess.DEVNULL,
                                 stderr=log, env={**os.environ, "PIANO_METRONOME_CORPUS": ""})
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        if child.returncode != 0:
            log.seek(0)
            sys.exit(f"piano-metronome {' '.join(args)} failed:\n{log.read().decode(errors='replace')[-2000:]}")
    return {"wall_s": wall, "max_rss_mb": usage.ru_maxrss / 1024}


def dense_windows_per_second(dataset: Path, passes: int = 5) -> tuple[float, int]:
    """Windows per second decoding every shard of every config to dense H/O/V, in order."""
    from datasets import Dataset

    from piano_metronome.outputs.dense import DenseDecoder, iter_dense
    from piano_metronome.outputs.layout import window_shards

    shards = [Dataset.from_file(str(p)) for splits in window_shards(dataset).values()
              for paths in splits.values() for p in paths]
    decoder = DenseDecoder()  # one decoder for every pass, as a training loop keeps it
    windows = 0
    start = time.perf_counter()
    for _ in range(passes):
        for shard in shards:
            for batch in iter_dense(shard, decoder=decoder):
                windows += len(batch["H"])
    return windows / (time.perf_counter() - start), windows // passes


def corpus_hours_and_notes(dataset: Path) -> tuple[float, int]:
    """Hours of recordings and input notes of the accepted recordings of a built folder."""
    from piano_metronome.outputs.layout import read_recordings

    table = read_recordings(dataset)
    ok = [r for r in table.to_pylist() if r["status"] == "ok"]
    return sum(r["duration_s"] for r in ok) / 3600.0, sum(r["notes_input"] for r in ok)


def largest_shard_mb(dataset: Path) -> float:
    """The largest Arrow shard of a built folder, in MB (the writer's default limit is 500 MB)."""
    return max(p.stat().st_size for p in (dataset / "data").rglob("*.arrow")) / 1e6


def scale_line(name: str, run: dict, one: dict, copies: int, time_target: float, memory_target: float) -> str:
    """One printed line: wall time and peak memory of a replicated build, as ratios to the 1× build."""
    return (f"{name} corpus build:{'':<{28 - len(name)}}{run['wall_s']:8.2f} s  "
            f"ratio {run['wall_s'] / one['wall_s']:.2f}x time (target <= {time_target:g}), "
            f"{run['max_rss_mb'] / one['max_rss_mb']:.2f}x memory (target <= {memory_target:g}; "
            f"{run['max_rss_mb']:.0f} MB)")


def hundred_fold(tmp: Path, one: dict) -> list[str]:
    """The 100× build (issue 13): its ratios, its size, and the hours of recordings built per hour."""
    raw = replicated_raw(tmp / "raw100", 100)
    run = build(raw, tmp / "ds100")
    hours, notes = corpus_hours_and_notes(tmp / "ds100")
    return [scale_line("100x", run, one, 100, 100, 1.5),
            f"  100x: {hours:,.0f} hours of recordings, {notes:,} input notes; largest shard "
            f"{largest_shard_mb(tmp / 'ds100'):.0f} MB (datasets' default max_shard_size: 500 MB)",
            f"  rate: {hours / (run['wall_s'] / 3600.0):,.0f} hours of recordings built per hour of this machine "
            f"({notes / run['wall_s']:,.0f} notes/s)"]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-100x", action="store_true", help="leave out the 100x build (minutes on 2 cores)")
    skip_100 = parser.parse_args().skip_100x
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = build(replicated_raw(tmp / "raw1", 1), tmp / "ds1")
        reference = pretty_midi_parse_seconds()
        ten = build(replicated_raw(tmp / "raw10", 10), tmp / "ds10")
        shutil.rmtree(tmp / "raw10")
        shutil.rmtree(tmp / "ds10")
        hundred = [] if skip_100 else hundred_fold(tmp, one)
        rate, windows = dense_windows_per_second(tmp / "ds1")
    print(f"pretty_midi parse of the corpus:           {reference:8.2f} s")
    print(f"configs built: {', '.join(CONFIGS)}")
    print(f"piano-metronome build (whole process):     {one['wall_s']:8.2f} s  "
          f"ratio {one['wall_s'] / reference:.3f}  (target <= 0.15)")
    print(f"peak memory of the build:                  {one['max_rss_mb']:8.0f} MB (target <= 500)")
    print(scale_line("10x", ten, one, 10, 11, 1.3))
    for line in hundred:
        print(line)
    print(f"dense decoding ({windows:,} windows, in order, batches of 64, Arrow → H/O/V/key/tempo): "
          f"{rate:10,.0f} windows/s (target >= 500,000)")


if __name__ == "__main__":
    main()
