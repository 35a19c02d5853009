"""Fuzz: damaged MIDI bytes are rejected with a RecordingError or aligned into valid windows, never a crash.

Each case mutates a demo take (bit flips, random bytes, truncation, insertion, deletion)
from a fixed seed, so a failure names a reproducible case number.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import symusic

from piano_metronome.inputs.manifest import read_manifest
from piano_metronome.inputs.midi import RecordingError, parse_midi_bytes
from piano_metronome.kinds import DropReason
from piano_metronome.outputs.invariants import window_invariants
from piano_metronome.outputs.tables import windows_table
from piano_metronome.paths import PROJECT_ROOT
from piano_metronome.processing.align import AlignOptions, align
from piano_metronome.processing.grid import GridError
from piano_metronome.processing.recording import info_of

DEMO = PROJECT_ROOT / "raw_midi" / "demo"
ROWS = sorted(read_manifest(DEMO / "manifest.csv"), key=lambda r: r.file_name)
TAKES = {row.file_name: (DEMO / row.file_name).read_bytes() for row in ROWS}
CASES = 400


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to eight edits of one kind at random places."""
    out = bytearray(data)
    kind = rng.choice(["flip", "flip", "byte", "truncate", "insert", "delete"])
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out)) if out else 0
        if kind == "truncate":
            return bytes(out[:rng.randrange(len(out) + 1)])
        if kind == "insert":
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif out and kind == "delete":
            del out[at:at + rng.randint(1, 4)]
        elif out and kind == "flip":
            out[at] ^= 1 << rng.randrange(8)
        elif out:
            out[at] = rng.randrange(256)
    return bytes(out)


def test_mutated_takes_never_crash() -> None:
    rng = random.Random(5)
    options = AlignOptions()
    outcomes = {"aligned": 0, "rejected": 0}
    for case in range(CASES):
        row = rng.choice(ROWS)
        data = mutate(rng, TAKES[row.file_name])
        stage = "parse"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # a numpy warning here is a silent NaN path
                performance = parse_midi_bytes(data, f"case {case}")
                stage = "align"
                aligned = align(performance, info_of(row), options)
        except RecordingError as exc:
            assert exc.reason and "\n" not in exc.reason, f"case {case}: {exc.reason!r}"
            # the pipeline stores a parse failure as midi_unusable; the aligner's rejections carry their kind
            assert stage == "parse" or isinstance(exc, GridError), f"case {case}: {exc!r} has no kind"
            outcomes["rejected"] += 1
            continue
        except Exception as exc:  # anything else is the bug this test hunts
            pytest.fail(f"case {case} ({row.file_name}): {type(exc).__name__}: {exc}")
        outcomes["aligned"] += 1
        report = aligned.report
        assert report.notes_input == report.notes_placed + report.notes_dropped, f"case {case}"
        report.check_findings()
        assert all(DropReason(reason) for reason in report.dropped), f"case {case}: {report.dropped}"
        if report.windows:
            broken = window_invariants(windows_table(aligned, options))
            assert not broken, f"case {case}: {list(broken)}"
    assert outcomes["aligned"] > CASES // 10 and outcomes["rejected"] > CASES // 10, outcomes


def _edited(file_name: str, edit) -> bytes:
    """A demo take changed by ``edit(score)``."""
    score = symusic.Score.from_midi(TAKES[file_name])
    edit(score)
    return score.dumps_midi()


@pytest.mark.parametrize("case, edit, reason", [
    ("starts after a minute of silence", lambda s: s.tracks[0].shift_time(60 * 2 * s.tpq, inplace=True), None),
    ("meter of 132 beats", lambda s: s.time_signatures.__setitem__(0, symusic.TimeSignature(0, 132, 4)),
     "implausible meter"),
])
def test_cases_fuzzing_found(case: str, edit, reason: str | None) -> None:
    """Regressions: each of these once raised something other than a RecordingError."""
    row = ROWS[0]
    data = _edited(row.file_name, edit)
    if reason is not None:
        with pytest.raises(RecordingError, match=reason):
            align(parse_midi_bytes(data, case), info_of(row))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        aligned = align(parse_midi_bytes(data, case), info_of(row))
    assert aligned.report.notes_placed > 0 and not window_invariants(windows_table(aligned, AlignOptions()))


def test_offsets_never_round_up_to_half_a_step() -> None:
    """An offset just below +0.5 in float64 must stay below 0.5 once stored as float32."""
    from piano_metronome.processing.align import _stored_offsets

    stored = _stored_offsets(np.array([0.49999999999, -0.5, 0.1, 0.6]))
    assert stored[0] < 0.5 and stored[1] == -0.5 and stored[3] == np.float32(0.6)
