"""Alignment benchmark (issue 3): align the whole corpus (notes already parsed) vs pretty_midi's parse.

Prints both times and their ratio, measured in this run; target: aligning ≥ 20× faster than the
pretty_midi parse. Usage: PIANO_METRONOME_CORPUS=../shared/corpus python benchmarks/bench_align.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, corpus_dir  # noqa: E402


def main() -> None:
    import pretty_midi

    from piano_metronome.inputs.manifest import read_manifest
    from piano_metronome.inputs.midi import read_midi
    from piano_metronome.processing.align import align
    from piano_metronome.processing.recording import info_of

    rows = read_manifest(ROOT / "raw_midi" / "manifest.csv")
    paths = [row.path(corpus_dir()) for row in rows]
    start = time.perf_counter()
    performances = [read_midi(p) for p in paths]
    parse_symusic = time.perf_counter() - start
    align(performances[0], info_of(rows[0]))  # warm-up (first-call imports)
    start = time.perf_counter()
    notes = sum(align(perf, info_of(row)).report.notes_placed for perf, row in zip(performances, rows, strict=True))
    aligning = time.perf_counter() - start
    start = time.perf_counter()
    for path in paths:
        pretty_midi.PrettyMIDI(str(path))
    parse_pretty = time.perf_counter() - start
    print(f"recordings: {len(rows)}, notes placed: {notes:,}")
    print(f"pretty_midi parse:            {parse_pretty:7.2f} s")
    print(f"symusic parse (read_midi):    {parse_symusic:7.2f} s  ({parse_pretty / parse_symusic:,.0f}x faster)")
    print(f"align (parsed notes given):   {aligning:7.2f} s  ({aligning / len(rows) * 1000:.2f} ms a recording)")
    print(f"ratio pretty_midi parse / align: {parse_pretty / aligning:.1f}x (target >= 20)")


if __name__ == "__main__":
    main()
