"""Build benchmarks (issue 4), each printed as a ratio measured in this same run.

1. full-corpus build time (the whole `piano-metronome build` process) ÷ pretty_midi's parse of
   the corpus — target ≤ 0.15;
2. peak memory of that build — target ≤ 500 MB;
3. the corpus replicated 10×: build time ≤ 11× and peak memory ≤ 1.3× the 1× build;
4. dense decoding of the whole dataset, in order — target ≥ 500,000 windows/s.

Usage: PIANO_METRONOME_CORPUS=../shared/corpus python benchmarks/bench_build.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, corpus_dir, corpus_files, run_cli  # noqa: E402


def pretty_midi_parse_seconds() -> float:
    """How long pretty_midi takes to parse every corpus file (the reference)."""
    import pretty_midi

    start = time.perf_counter()
    for path in corpus_files():
        pretty_midi.PrettyMIDI(str(path))
    return time.perf_counter() - start


def replicated_raw(folder: Path, copies: int) -> Path:
    """A raw folder whose manifest lists every corpus recording ``copies`` times (ids made unique)."""
    from piano_metronome.inputs.manifest import read_manifest, write_manifest

    rows = read_manifest(ROOT / "raw_midi" / "manifest.csv")
    out_rows = []
    for copy in range(copies):
        for row in rows:
            stem, rest = row.file_name.split("_", 1)
            name = f"{stem}{copy:02d}_{rest}" if copies > 1 else row.file_name
            target = folder / row.subset / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(corpus_dir() / row.subset / row.file_name, target)
            out_rows.append(replace(row, recording_id=f"{row.subset}/{name.split('_')[0]}", file_name=name))
    write_manifest(out_rows, folder / "manifest.csv")
    return folder


def build(raw: Path, out: Path) -> dict:
    """One corpus build (d1, d2, all) as a separate process."""
    args = ["build", "--raw", str(raw), "--out", str(out), "--config", "d1", "--config", "d2", "--config", "all"]
    return run_cli(args, env={"PIANO_METRONOME_CORPUS": ""})


def dense_windows_per_second(dataset: Path, passes: int = 5) -> tuple[float, int]:
    """Windows per second decoding every shard of every config to dense H/O/V, in order."""
    from datasets import Dataset

    from piano_metronome.outputs.dense import DenseDecoder, iter_dense

    shards = [Dataset.from_file(str(p)) for p in sorted((dataset / "data").glob("[!r]*/*.arrow"))]
    decoder = DenseDecoder()  # one decoder for every pass, as a training loop keeps it
    windows = 0
    start = time.perf_counter()
    for _ in range(passes):
        for shard in shards:
            for batch in iter_dense(shard, decoder=decoder):
                windows += len(batch["H"])
    return windows / (time.perf_counter() - start), windows // passes


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = build(replicated_raw(tmp / "raw1", 1), tmp / "ds1")
        reference = pretty_midi_parse_seconds()
        ten = build(replicated_raw(tmp / "raw10", 10), tmp / "ds10")
        rate, windows = dense_windows_per_second(tmp / "ds1")
    print(f"pretty_midi parse of the corpus:           {reference:8.2f} s")
    print(f"piano-metronome build (whole process):     {one['wall_s']:8.2f} s  "
          f"ratio {one['wall_s'] / reference:.3f}  (target <= 0.15)")
    print(f"peak memory of the build:                  {one['max_rss_mb']:8.0f} MB (target <= 500)")
    print(f"10x corpus build:                          {ten['wall_s']:8.2f} s  "
          f"ratio {ten['wall_s'] / one['wall_s']:.2f}x time (target <= 11), "
          f"{ten['max_rss_mb'] / one['max_rss_mb']:.2f}x memory (target <= 1.3)")
    print(f"dense decoding ({windows:,} windows, in order, batches of 64, Arrow → H/O/V/key/tempo): "
          f"{rate:10,.0f} windows/s (target >= 500,000)")


if __name__ == "__main__":
    main()
