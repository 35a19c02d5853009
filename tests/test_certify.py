"""The independent grid certificate: known answers on generated takes, the dataset run, the command.

Ground truth comes from takes the project generates itself (``inputs/demo.py``): their true tempo,
latency and bar line are known, so a grid can be made right or wrong on purpose and the verdict
must follow. Everything that runs the tracker needs the ``verify`` extra (CI installs it).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from piano_metronome.inputs.demo import TAKES, generate_take
from piano_metronome.processing import certify as engine
from piano_metronome.processing.certify import (
    AGREES,
    AGREES_AT_MULTIPLE,
    DISAGREES,
    VerifyExtraMissingError,
    certify_onsets,
    grid_beats,
    nearest_multiple,
    verdict_of,
)
from piano_metronome.processing.grid import constant_grid

SPECS = {spec.take_id: spec for spec in TAKES}
AGREEING = (AGREES, AGREES_AT_MULTIPLE)


def needs_extra() -> None:
    """Skip without the verify extra (CI installs it, so nothing is skipped there)."""
    pytest.importorskip("partitura")
    pytest.importorskip("mir_eval")


def played(take_id: str, **changes) -> tuple[np.ndarray, float, float]:
    """A generated take's onsets in seconds (what the tracker hears), its true BPM and latency (s)."""
    take = generate_take(replace(SPECS[take_id], **changes))
    return take.ticks * take.tick_s, take.true_bpm, take.latency_ms / 1000.0


def true_grid(take_id: str, **changes):
    """The click the generated player followed: its tempo from t = 0, the bar line where the spec says."""
    onsets, bpm, _ = played(take_id, **changes)
    spec = replace(SPECS[take_id], **changes)
    grid = constant_grid(bpm, "tempo_map").shifted_beats(spec.grid_shift_steps / spec.steps_per_beat)
    return onsets, grid, bpm, spec


# --- the rule, without the tracker ------------------------------------------------------------

def test_verdict_rule_follows_its_numbers() -> None:
    """Each threshold decides on its own side: tempo ratio ±4 %, F 0.8, enough beats."""
    assert verdict_of(1.01, 1.0, 0.9, 100) == AGREES
    assert verdict_of(2.02, 2.0, 0.9, 100) == AGREES_AT_MULTIPLE
    assert verdict_of(0.51, 0.5, 0.81, 100) == AGREES_AT_MULTIPLE
    assert verdict_of(1.01, 1.0, 0.79, 100) == DISAGREES
    assert verdict_of(1.053, float("nan"), 0.9, 100) == DISAGREES
    assert verdict_of(1.0, 1.0, 0.95, engine.MIN_TRACKED_BEATS - 1) == DISAGREES


def test_nearest_multiple_refuses_a_95_for_100_click() -> None:
    """100/95 is 5.3 % from 1: outside the 4 % tolerance, so it is no metrical multiple at all."""
    assert nearest_multiple(100 / 95) != nearest_multiple(100 / 95)  # NaN
    assert nearest_multiple(1.03) == 1.0
    assert nearest_multiple(1.98) == 2.0
    assert nearest_multiple(0.49) == 0.5
    assert nearest_multiple(1.5) == 1.5


def test_grid_levels_hold_the_right_beats() -> None:
    """Level 2 halves the beat; level 1/2 keeps every other beat, from the phase asked."""
    grid = constant_grid(60.0, "tempo_map")
    assert np.allclose(grid_beats(grid, 0.0, 4.0), [0, 1, 2, 3, 4])
    assert np.allclose(grid_beats(grid, 0.0, 2.0, 2.0), [0, 0.5, 1, 1.5, 2])
    assert np.allclose(grid_beats(grid, 0.0, 6.0, 0.5, 0), [0, 2, 4, 6])
    assert np.allclose(grid_beats(grid, 0.0, 6.0, 0.5, 1), [1, 3, 5])


def test_missing_extra_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without partitura the error says which extra to install, not a bare ImportError."""
    monkeypatch.setitem(sys.modules, "partitura", None)
    monkeypatch.setitem(sys.modules, "partitura.musicanalysis", None)
    with pytest.raises(VerifyExtraMissingError, match=r"pip install 'piano_metronome\[verify\]'"):
        engine.track_beats(np.array([0.0, 0.5, 1.0]))


# --- known answers on generated takes ---------------------------------------------------------

@pytest.mark.parametrize("take_id", sorted(SPECS))
def test_right_grid_agrees(take_id: str) -> None:
    """The click each demo take was played to: the tracker agrees (at the beat or a multiple)."""
    needs_extra()
    onsets, grid, _, _ = true_grid(take_id)
    cert = certify_onsets(onsets, grid)
    assert cert.verdict in AGREEING, cert.note
    assert cert.f_measure_at_multiple >= engine.MIN_F_MEASURE


@pytest.mark.parametrize(("take_id", "tempo"), [("da", 120.0), ("db", 72.0), ("dd", 66.0)])
def test_right_grid_agrees_at_other_tempi(take_id: str, tempo: float) -> None:
    """Takes generated at other tempi than the demo's, each on its own click: still agreement."""
    needs_extra()
    onsets, grid, _, _ = true_grid(take_id, tempo_qpm=tempo, labelled_bpm=f"{tempo:g}")
    cert = certify_onsets(onsets, grid)
    assert cert.verdict in AGREEING, cert.note


@pytest.mark.parametrize(("take_id", "wrong_bpm"), [("da", 95.0), ("db", 80.0), ("dc", 95.0), ("dd", 93.0)])
def test_wrong_tempo_map_disagrees(take_id: str, wrong_bpm: float) -> None:
    """A grid at a tempo the player did not follow (3–5 % off) is found out."""
    needs_extra()
    onsets, bpm, _ = played(take_id)
    cert = certify_onsets(onsets, constant_grid(wrong_bpm, "tempo_map"))
    assert cert.verdict == DISAGREES, cert.note
    assert abs(bpm - wrong_bpm) / bpm > 0.025  # the test's own premise: the map really is wrong


@pytest.mark.parametrize("take_id", sorted(SPECS))
def test_grid_shifted_by_a_quarter_beat_disagrees(take_id: str) -> None:
    """A bar line off by a quarter beat (a 16th) puts no grid beat or 8th on the tracked beats."""
    needs_extra()
    onsets, grid, _, _ = true_grid(take_id)
    cert = certify_onsets(onsets, grid.shifted_beats(0.25))
    assert cert.verdict == DISAGREES, cert.note


def test_phase_has_the_sign_of_the_latency() -> None:
    """Players early against the click: the tracked beats sit before the clicks."""
    needs_extra()
    onsets, grid, _, _ = true_grid("dc")
    cert = certify_onsets(onsets, grid)
    assert cert.phase_ms < 0, cert.note


def test_label_check_names_only_a_wrong_label() -> None:
    """dc's file name says 95, its click is 100: named. da's label is its click: not named."""
    needs_extra()
    onsets, grid, bpm, _ = true_grid("dc")
    wrong = certify_onsets(onsets, grid, labelled_bpm=95.0, tempo_map_bpm=bpm)
    assert wrong.label_disagrees is True, wrong.note
    assert "BPM label 95" in wrong.note
    onsets, grid, bpm, _ = true_grid("da")
    right = certify_onsets(onsets, grid, labelled_bpm=100.0, tempo_map_bpm=bpm)
    assert right.label_disagrees is False
    assert certify_onsets(onsets, grid).label_disagrees is None


# --- a built dataset --------------------------------------------------------------------------

RAW = Path(__file__).resolve().parent.parent / "raw_midi"


def test_demo_dataset_certifies_and_jobs_do_not_change_it(demo_dataset: Path) -> None:
    """Every demo take of a build agrees with its stored grid; workers give the same certificates."""
    needs_extra()
    from piano_metronome.outputs.certify import certify_dataset, digest

    seen: list[tuple[int, int]] = []
    one = certify_dataset(demo_dataset, [RAW], jobs=1, progress=lambda d, n: seen.append((d, n)))
    two = certify_dataset(demo_dataset, [RAW], jobs=2)
    assert [t.recording_id for t in one] == sorted(s.recording_id for s in TAKES)
    assert all(t.certificate.verdict in AGREEING for t in one), [t.certificate.note for t in one]
    assert digest(one) == digest(two)
    assert seen[-1] == (len(TAKES), len(TAKES))
    dc = next(t for t in one if t.recording_id == "demo/dc")
    assert dc.certificate.label_disagrees is True


def test_rebuilt_grid_is_the_stored_one(demo_dataset: Path) -> None:
    """The grid rebuilt from the raw file and the row hits the stored window starts; a wrong one does not."""
    from piano_metronome.inputs.midi import read_midi
    from piano_metronome.outputs.certify import (
        CertifyError,
        check_grid,
        read_recordings,
        stored_grid,
        stored_window_starts,
    )

    starts = stored_window_starts(demo_dataset)
    for row in read_recordings(demo_dataset):
        performance = read_midi(RAW / row["subset"] / row["file_name"])
        grid = stored_grid(performance, row)
        check_grid(grid, row, starts[row["recording_id"]])
        with pytest.raises(CertifyError, match=row["recording_id"]):
            check_grid(grid.rescaled(1.01), row, starts[row["recording_id"]])


def test_changed_raw_file_is_named(demo_dataset: Path, tmp_path: Path) -> None:
    """A raw take that is not the one built (other sha256) is refused with its path."""
    from piano_metronome.outputs.certify import CertifyError, find_raw, read_recordings

    shutil.copytree(RAW / "demo", tmp_path / "demo")
    row = read_recordings(demo_dataset)[0]
    target = tmp_path / "demo" / row["file_name"]
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(CertifyError, match=row["file_name"]):
        find_raw(row, [tmp_path])
    with pytest.raises(CertifyError, match="not found"):
        find_raw(row, [tmp_path / "nowhere"])


def test_command_prints_results_on_stdout(demo_dataset: Path, tmp_path: Path) -> None:
    """`certify DIR` counts verdicts and names the wrong label on stdout and stores them; --no-write
    leaves the folder as it was; --json gives every take."""
    needs_extra()
    from piano_metronome.cli import app

    folder = tmp_path / "dataset"
    shutil.copytree(demo_dataset, folder)
    before = _files(folder)
    runner = CliRunner()
    args = ["certify", str(folder), "--raw", str(RAW), "--jobs", "1"]
    result = runner.invoke(app, [*args, "--no-write", "--json"])
    assert result.exit_code == 0, result.output
    assert {t["recording_id"] for t in json.loads(result.stdout)} == {s.recording_id for s in TAKES}
    assert _files(folder) == before
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "certified 4 take(s)" in result.stdout
    assert "dc_95_F.mid" in result.stdout
    assert all(r["cert_verdict"] in AGREEING for r in _recordings(folder))


def test_command_refuses_a_folder_that_is_not_a_build(tmp_path: Path) -> None:
    """One line, exit 2, naming the recordings table it looked for."""
    needs_extra()
    from piano_metronome.cli import app

    result = CliRunner().invoke(app, ["certify", str(tmp_path)])
    assert result.exit_code == 2
    assert "recordings" in result.output


# --- the corpus -------------------------------------------------------------------------------

@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_wrong_labels_are_all_named(corpus: Path, corpus_build: Path) -> None:
    """Every take whose file-name BPM the build overrode is named by the certificate, none other
    among the same number of takes with right labels; their stored grids are not disputed."""
    needs_extra()
    from piano_metronome.outputs.certify import certify_dataset, read_recordings

    rows = read_recordings(corpus_build)
    corpus_rows = [r for r in rows if r["subset"] != "demo"]
    wrong = {r["recording_id"] for r in corpus_rows if abs(r["bpm_labelled"] - r["bpm_fitted"]) > 0.5}
    right = sorted(r["recording_id"] for r in corpus_rows if r["recording_id"] not in wrong)
    assert len(wrong) == 24
    chosen = wrong | set(right[:: max(1, len(right) // 12)])
    takes = certify_dataset(corpus_build, [RAW, corpus], jobs=2, recording_ids=chosen)
    named = {t.recording_id for t in takes if t.certificate.label_disagrees}
    assert named == wrong
    assert all(t.certificate.verdict in AGREEING for t in takes if t.recording_id in wrong)


# --- stored with the data ---------------------------------------------------------------------

def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a folder by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _recordings(folder: Path) -> list[dict]:
    from piano_metronome.outputs.certify import read_recordings

    return read_recordings(folder)


@pytest.fixture(scope="module")
def certified(demo_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo build, certified in place once (read-only for the tests that use it)."""
    needs_extra()
    from piano_metronome.outputs.certify import certify_dataset, write_certificates

    folder = tmp_path_factory.mktemp("certified") / "dataset"
    shutil.copytree(demo_dataset, folder)
    write_certificates(folder, certify_dataset(folder, [RAW], jobs=2))
    return folder


def test_a_build_leaves_certificates_null_and_says_how(demo_dataset: Path) -> None:
    """Without certify every cert_* column is null and the card says how to fill them."""
    from piano_metronome.outputs.certify import CERT_FIELDS

    rows = _recordings(demo_dataset)
    assert rows and all(row[c] is None for row in rows for c in CERT_FIELDS)
    card = (demo_dataset / "README.md").read_text(encoding="utf-8")
    assert "piano-metronome certify" in card and "piano_metronome[verify]" in card


def test_certify_stores_validates_and_names_the_wrong_label(certified: Path) -> None:
    """Stored: every take's verdict, the run in build_report.json, a card summary; the folder validates."""
    from piano_metronome.outputs.validate import validate_dataset

    rows = {r["recording_id"]: r for r in _recordings(certified)}
    assert all(r["cert_verdict"] in AGREEING for r in rows.values())
    assert rows["demo/dc"]["cert_label_disagrees"] is True
    assert rows["demo/da"]["cert_label_disagrees"] is False
    report = json.loads((certified / "build_report.json").read_text(encoding="utf-8"))
    assert set(report["certificates"]["libraries"]) == {"partitura", "mir_eval"}
    assert report["certificates"]["label_disagrees"] == ["demo/dc"]
    card = (certified / "README.md").read_text(encoding="utf-8")
    assert "100.0 % agree" in card and "dc_95_F.mid" in card
    result = validate_dataset(certified)
    assert result.ok, [(c.name, [vars(p) for p in c.problems]) for c in result.checks if c.status == "fail"]


def test_certify_twice_gives_the_same_bytes(certified: Path, tmp_path: Path) -> None:
    """Same inputs, same bytes: certifying a certified folder again changes nothing."""
    from piano_metronome.outputs.certify import certify_dataset, write_certificates

    again = tmp_path / "dataset"
    shutil.copytree(certified, again)
    write_certificates(again, certify_dataset(again, [RAW], jobs=1))
    assert _files(again) == _files(certified)


def test_rebuild_of_a_certified_folder_is_byte_identical(certified: Path) -> None:
    """rebuild re-runs certify when the folder it verifies was certified, so nothing differs."""
    from piano_metronome.outputs.rebuild import rebuild

    report = rebuild(certified, RAW, None)
    assert report.identical, [vars(f) for f in report.files if f.status != "identical"]


def _rewrite_row(folder: Path, recording_id: str, **changes) -> None:
    """Change one recordings row on disk and fix the checksums, as a careless editor would."""
    import pyarrow as pa

    from piano_metronome.outputs.build import write_checksums
    from piano_metronome.outputs.certify import recordings_path, write_recordings_shard

    path = recordings_path(folder)
    with pa.OSFile(str(path), "rb") as source:
        table = pa.ipc.open_stream(source).read_all()
    rows = table.to_pylist()
    for row in rows:
        if row["recording_id"] == recording_id:
            row.update(changes)
    write_recordings_shard(pa.Table.from_pylist(rows, schema=table.schema), path)
    write_checksums(folder)


@pytest.mark.parametrize(("changes", "says"), [
    ({"cert_verdict": "disagrees"}, "its numbers say"),
    ({"cert_f_measure_at_multiple": 0.5}, "its numbers say"),
    ({"cert_phase_ms": None}, "half stored"),
    ({"cert_label_disagrees": False}, "cert_label_disagrees"),
    ({"cert_multiple": 3.0}, "cert_multiple"),
])
def test_validate_finds_an_inconsistent_certificate(certified: Path, tmp_path: Path, changes: dict,
                                                    says: str) -> None:
    """A stored verdict its numbers do not give, half a certificate, a wrong label flag: each fails, named."""
    from piano_metronome.outputs.validate import validate_dataset

    folder = tmp_path / "dataset"
    shutil.copytree(certified, folder)
    _rewrite_row(folder, "demo/dc", **changes)
    report = validate_dataset(folder)
    check = next(c for c in report.checks if c.name == "certificates")
    assert check.status == "fail"
    assert any("demo/dc" in p.where and says in p.what for p in check.problems), [vars(p) for p in check.problems]


def test_certificate_problems_on_hand_made_rows() -> None:
    """The consistency rule without the tracker: a right row passes, each kind of damage is named."""
    from piano_metronome.outputs.certify import certificate_problems

    row = {"recording_id": "x/a", "status": "ok", "bpm_used": 100.0, "bpm_labelled": 95.0, "bpm_tempo_map": 100.0,
           "cert_verdict": AGREES_AT_MULTIPLE, "cert_tracked_bpm": 199.0, "cert_tempo_ratio": 1.99,
           "cert_multiple": 2.0, "cert_f_measure": 0.66, "cert_f_measure_at_multiple": 0.97, "cert_phase_ms": -12.0,
           "cert_tracked_beats": 300, "cert_label_f_measure": 0.2, "cert_label_disagrees": True}
    assert certificate_problems(row) == []
    for damage, named in (({"cert_verdict": AGREES}, "its numbers say 'agrees at a multiple'"),
                          ({"cert_label_disagrees": None}, "cert_label_disagrees None but the label 95"),
                          ({"status": "rejected"}, "a rejected recording has a certificate"),
                          ({"cert_tracked_bpm": 150.0}, "cert_tempo_ratio 1.9900 ≠ cert_tracked_bpm 150.000")):
        problems = certificate_problems({**row, **damage})
        assert len(problems) == 1 and named in problems[0], (damage, problems)
    blank = {**row, **{k: None for k in row if k.startswith("cert_")}}
    assert certificate_problems(blank) == []


def test_validate_independent_certifies_afresh(certified: Path, tmp_path: Path) -> None:
    """`validate --independent` passes on a certified folder and fails where a stored certificate was
    changed in a way its own consistency rule cannot see (the phase)."""
    from piano_metronome.cli import app

    result = CliRunner().invoke(app, ["validate", str(certified), "--independent", "--json"])
    assert result.exit_code == 0, result.output
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "independent")
    assert check["status"] == "warn" and "dc_95_F.mid" in check["problems"][0]["where"]  # the wrong label
    folder = tmp_path / "dataset"
    shutil.copytree(certified, folder)
    _rewrite_row(folder, "demo/da", cert_phase_ms=40.0)
    result = CliRunner().invoke(app, ["validate", str(folder), "--independent", "--json"])
    assert result.exit_code == 1
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "independent")
    assert any("da_100_C.mid" in p["where"] and "cert_phase_ms" in p["what"] for p in check["problems"])
