"""Forked alignment workers: same bytes as one process, and a failed worker changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from piano_metronome.inputs.manifest import read_manifest
from piano_metronome.outputs import workers
from piano_metronome.processing.align import AlignOptions
from piano_metronome.processing.recording import process_row

ROOT = Path(__file__).resolve().parent.parent
DEMO_ROWS = read_manifest(ROOT / "raw_midi" / "demo" / "manifest.csv")


def test_partition_keeps_subsets_whole_and_order():
    rows = read_manifest(ROOT / "raw_midi" / "manifest.csv")
    groups = workers.partition(rows, 2)
    assert len(groups) == 2
    assert sorted(r.recording_id for g in groups for r in g) == sorted(r.recording_id for r in rows)
    for group in groups:
        assert len({r.subset for r in group}) == 1
        assert [r.recording_id for r in group] == sorted(r.recording_id for r in group)
    (single,) = workers.partition(rows, 1)
    for subset in ("d1", "d2"):
        assert [r for r in single if r.subset == subset] == [r for r in rows if r.subset == subset]


def test_result_json_round_trip():
    result = process_row(DEMO_ROWS[2], [ROOT / "raw_midi"], AlignOptions())
    back = workers.result_from_json(workers.result_to_json(result))
    assert back.row == result.row and back.report == result.report and back.input_warnings == result.input_warnings
    assert back.ok and back.aligned is None


@pytest.mark.skipif(not workers.can_fork(), reason="fork is POSIX-only")
def test_worker_results_and_failure(tmp_path):
    def run(rows, progress=None):
        results = [process_row(r, [ROOT / "raw_midi"], AlignOptions()) for r in rows]
        for result in results:
            if progress:
                progress(result)
        return results

    ticks: list[int] = []
    good = workers.collect(workers.start(DEMO_ROWS, run, tmp_path / "ok.json"), timeout_s=60, on_progress=ticks.append)
    assert [r.report for r in good] == [r.report for r in run(DEMO_ROWS)]
    assert sum(ticks) == len(DEMO_ROWS)  # one progress byte per recording

    def crash(rows, progress=None):
        raise RuntimeError("boom")

    assert workers.collect(workers.start(DEMO_ROWS, crash, tmp_path / "bad.json"), timeout_s=60) is None

    def hang(rows, progress=None):
        import time

        time.sleep(60)
        return []

    assert workers.collect(workers.start(DEMO_ROWS, hang, tmp_path / "hang.json"), timeout_s=0.5) is None


@pytest.mark.corpus
@pytest.mark.skipif(not workers.can_fork(), reason="fork is POSIX-only")
def test_build_with_two_jobs_is_byte_identical(tmp_path, corpus_build, corpus):
    """d1 and d2 go to different processes; the folder must not change by one byte."""
    from piano_metronome.outputs.build import run_build

    out = tmp_path / "two"
    run_build(None, out, ["d1", "d2", "all", "takes", "demo", "demo_takes"], corpus, AlignOptions(), jobs=2)
    files = sorted(p.relative_to(corpus_build) for p in corpus_build.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for name in files:
        assert (corpus_build / name).read_bytes() == (out / name).read_bytes(), name
