"""Forked alignment workers: same bytes as one process, and a failed worker changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from piano_metronome.inputs.manifest import read_manifest
from piano_metronome.outputs import workers
from piano_metronome.outputs.report_log import ReportLog, by_recording_id, read_log, result_from_json, result_to_json
from piano_metronome.processing.align import AlignOptions
from piano_metronome.processing.recording import InputWarning, process_row

ROOT = Path(__file__).resolve().parent.parent
DEMO_ROWS = read_manifest(ROOT / "raw_midi" / "demo" / "manifest.csv")


def test_partition_keeps_parts_whole_balanced_and_in_order():
    rows = read_manifest(ROOT / "raw_midi" / "manifest.csv")
    groups = workers.partition(rows, 2)
    assert len(groups) == 2
    assert sorted(r.recording_id for g in groups for r in g) == sorted(r.recording_id for r in rows)
    owner = {}
    for number, group in enumerate(groups):
        for row in group:
            assert owner.setdefault((row.subset, row.split), number) == number  # a spool has one writer
        assert [r.recording_id for r in group] == sorted(r.recording_id for r in group)
    loads = sorted(sum(r.size for r in g) for g in groups)
    assert loads[0] / loads[1] > 0.9  # whole subsets alone would give 0.69
    (single,) = workers.partition(rows, 1)
    assert single == rows


def test_result_json_round_trip():
    """Everything of a result but its notes and bytes survives JSON, input warnings and their kinds included."""
    from dataclasses import replace

    from piano_metronome.kinds import WarningKind

    result = replace(process_row(DEMO_ROWS[2], [ROOT / "raw_midi"], AlignOptions()),
                     input_warnings=(InputWarning(WarningKind.NOTES_EXCLUDED.value, "first"),
                                     InputWarning(WarningKind.NO_TEMPO_EVENT.value, "second")))
    back = result_from_json(result_to_json(result))
    assert back == replace(result, aligned=None, midi_bytes=None)
    assert back.ok


def test_report_logs_read_back_by_recording_id(tmp_path):
    """Two logs written in any order are read back one result at a time, sorted by recording id."""
    results = [process_row(r, [ROOT / "raw_midi"], AlignOptions()) for r in DEMO_ROWS]
    halves = [results[1::2], results[0::2]]
    paths = [tmp_path / "odd.jsonl", tmp_path / "even.jsonl"]
    for half, path in zip(halves, paths, strict=True):
        with ReportLog(path) as log:
            for result in reversed(half):
                log.write(result)
    assert [r.report for r in read_log(paths[0])] == [r.report for r in reversed(halves[0])]
    back = list(by_recording_id(paths))
    ordered = sorted(results, key=lambda r: r.row.recording_id)
    assert [(r.row, r.report) for r in back] == [(r.row, r.report) for r in ordered]


@pytest.mark.skipif(not workers.can_fork(), reason="fork is POSIX-only")
def test_worker_results_and_failure(tmp_path):
    """Workers collected together: results, progress from every worker, a crash, a slow worker that keeps
    finishing items (kept however long it runs) and a hung one (killed once it stalls)."""
    import time

    def run(rows, progress, path):
        with ReportLog(path) as log:
            for row in rows:
                result = process_row(row, [ROOT / "raw_midi"], AlignOptions())
                log.write(result)
                if progress:
                    progress(result)

    def crash(rows, progress, path):
        path.write_text("{}\n")  # a partial log must not be taken for a result
        raise RuntimeError("boom")

    def slow(items, progress, path):
        for _ in items:
            time.sleep(0.8)
            progress()
        path.write_text("done")

    ticks: list[int] = []
    started = time.monotonic()
    ok, bad, patient = workers.collect([workers.start(DEMO_ROWS, run, tmp_path / "ok.jsonl"),
                                        workers.start(DEMO_ROWS, crash, tmp_path / "bad.jsonl"),
                                        workers.start([1, 2, 3, 4], slow, tmp_path / "slow.txt")],
                                       stall_s=2.0, on_progress=ticks.append)
    assert time.monotonic() - started > 3.0  # the slow worker ran past the stall limit, and was waited for
    assert ok is not None and bad is None and patient == tmp_path / "slow.txt"
    expected = [process_row(r, [ROOT / "raw_midi"], AlignOptions()).report for r in DEMO_ROWS]
    assert [r.report for r in read_log(ok)] == expected
    assert sum(ticks) == len(DEMO_ROWS) + 4  # one progress byte per item, from both working workers

    def hang(rows, progress, path):
        time.sleep(60)

    started = time.monotonic()
    assert workers.collect([workers.start(DEMO_ROWS, hang, tmp_path / "hang.jsonl")], stall_s=0.5) == [None]
    assert time.monotonic() - started < 30


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
