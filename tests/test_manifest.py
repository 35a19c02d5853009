"""The manifest: the committed one against the corpus, the command, splits, and what reading refuses.

"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from piano_metronome.commands import manifest as manifest_command
from piano_metronome.inputs import manifest as m
from piano_metronome.inputs.midi import RecordingError
from tests.conftest import command_app

COMMITTED = Path(__file__).resolve().parent.parent / "raw_midi" / "manifest.csv"


def make_app() -> typer.Typer:
    """A bare app with only this command, so these tests do not depend on other commands."""
    return command_app(manifest_command.register)


def run(*args: str | Path):
    """Run ``piano-metronome manifest ARGS`` in-process."""
    return CliRunner().invoke(make_app(), ["manifest", *map(str, args)])


def fake_recordings(root: Path, names: dict[str, list[str]]) -> Path:
    """Files named like recordings (contents are not MIDI: the manifest only hashes them)."""
    for subset, files in names.items():
        (root / subset).mkdir(parents=True, exist_ok=True)
        for name in files:
            (root / subset / name).write_bytes(f"fake {subset}/{name}".encode())
    return root


def author_ids(corpus: Path) -> set[str]:
    """The author's validation list as recording ids, found by file name in d1/ or d2/."""
    names = m.read_validation_list(corpus / m.VALIDATION_LIST_NAME)
    return {f"{s}/{n.split('_')[0]}" for n in names for s in ("d1", "d2") if (corpus / s / n).is_file()}


# --- the committed manifest against the corpus ------------------------------------------------

@pytest.mark.corpus
def test_committed_manifest_lists_every_corpus_file_exactly(corpus: Path) -> None:
    rows = m.read_manifest(COMMITTED)
    assert len(rows) == 361
    on_disk = {f"{p.parent.name}/{p.name}" for s in ("d1", "d2") for p in (corpus / s).glob("*.mid")}
    assert {f"{r.subset}/{r.file_name}" for r in rows} == on_disk
    for row in rows:
        path = row.path(corpus)
        file_id, bpm, key = m.parse_file_name(row.file_name)
        assert row.recording_id == f"{row.subset}/{file_id}"
        assert (row.size, row.sha256) == (path.stat().st_size, m.sha256_file(path)), row.recording_id
        assert (row.labelled_bpm, row.labelled_key) == (bpm, key)
        assert row.steps_per_beat == {"d1": 4, "d2": 2}[row.subset]
        assert row.source_url == m.SOURCE_URL.format(subset=row.subset, file_name=row.file_name)


@pytest.mark.corpus
def test_committed_splits_follow_the_rules(corpus: Path) -> None:
    rows = m.read_manifest(COMMITTED)
    validation = author_ids(corpus)
    assert len(validation) == 20
    assert {r.recording_id for r in rows if r.split == "validation"} == validation
    for row in rows:
        assert row.split == m.assign_split(row.recording_id, validation), row.recording_id
    for subset in ("d1", "d2"):
        counts = Counter(r.split for r in rows if r.subset == subset and r.split != "validation")
        assert 0.06 <= counts["test"] / (counts["test"] + counts["train"]) <= 0.14, (subset, counts)


@pytest.mark.corpus
@pytest.mark.parametrize("explicit_list", [False, True])
def test_regenerating_gives_identical_bytes(corpus: Path, tmp_path: Path, explicit_list: bool) -> None:
    out = tmp_path / "manifest.csv"
    extra = ["--validation-list", corpus / m.VALIDATION_LIST_NAME] if explicit_list else []
    result = run(corpus, "--out", out, "--source-url", "corpus", *extra)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == COMMITTED.read_bytes()
    assert "validation 8" in result.output and "validation 12" in result.output


# --- the command on made-up folders --------------------------------------------------------------

def test_unknown_subset_without_grid_is_a_clear_error(tmp_path: Path) -> None:
    src = fake_recordings(tmp_path / "src", {"d1": ["aa_90_C.mid"], "mine": ["xx_120_Am.mid"]})
    result = run(src, "--out", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert "no steps per beat known for subset(s) mine" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.csv").exists()


def test_steps_per_beat_option_gives_and_overrides_grids(tmp_path: Path) -> None:
    src = fake_recordings(tmp_path / "src", {"d1": ["aa_90_C.mid"], "mine": ["xx_120_Am.mid"]})
    out = tmp_path / "out.csv"
    result = run(src, "--out", out, "--steps-per-beat", "mine=3", "--steps-per-beat", "d1=2")
    assert result.exit_code == 0, result.output
    assert {r.recording_id: r.steps_per_beat for r in m.read_manifest(out)} == {"d1/aa": 2, "mine/xx": 3}


@pytest.mark.parametrize("bad", ["d1", "d1=", "d1=0", "d1=x", "=4"])
def test_malformed_steps_per_beat_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    src = fake_recordings(tmp_path / "src", {"d1": ["aa_90_C.mid"]})
    result = run(src, "--out", tmp_path / "out.csv", "--steps-per-beat", bad)
    assert result.exit_code == 2
    assert "SUBSET=N" in result.output


def test_validation_list_accepts_file_names_paths_and_ids(tmp_path: Path) -> None:
    src = fake_recordings(tmp_path / "src", {"d1": ["aa_90_C.mid", "ab_91_D.mid", "ac_92_E.mid"],
                                             "d2": ["ba_80_Am.mid"]})
    listing = tmp_path / "val.txt"
    listing.write_text("# held out\naa_90_C.mid\n\nd1/ab_91_D.mid  # a path\nd2/ba\n")
    out = tmp_path / "out.csv"
    result = run(src, "--out", out, "--validation-list", listing)
    assert result.exit_code == 0, result.output
    splits = {r.recording_id: r.split for r in m.read_manifest(out)}
    assert [k for k, v in splits.items() if v == "validation"] == ["d1/aa", "d1/ab", "d2/ba"]


@pytest.mark.parametrize("entry, reason", [("zz_90_C.mid", "matches no recording"),
                                           ("d3/aa", "matches no recording"),
                                           ("aa_90_C.mid", "is ambiguous")])
def test_validation_entry_must_name_exactly_one_recording(tmp_path: Path, entry: str, reason: str) -> None:
    src = fake_recordings(tmp_path / "src", {"d1": ["aa_90_C.mid"], "d2": ["aa_90_C.mid"]})
    (tmp_path / "val.txt").write_text(entry + "\n")
    result = run(src, "--out", tmp_path / "out.csv", "--validation-list", tmp_path / "val.txt")
    assert result.exit_code == 1
    assert entry in result.output and reason in result.output


def test_bad_file_name_and_repeated_id_are_named(tmp_path: Path) -> None:
    src = fake_recordings(tmp_path / "a", {"d1": ["aa_90_C.mid", "take one.mid"]})
    result = run(src, "--out", tmp_path / "out.csv")
    assert result.exit_code == 1 and "take one.mid" in result.output
    src = fake_recordings(tmp_path / "b", {"d1": ["aa_90_C.mid", "aa_91_C.mid"]})
    result = run(src, "--out", tmp_path / "out.csv")
    assert result.exit_code == 1 and "'d1/aa' is used by both" in result.output


def test_default_output_is_beside_the_recordings_without_addresses(tmp_path: Path) -> None:
    """No --out: SOURCE_DIR/manifest.csv, and no download address unless one is given."""
    src = fake_recordings(tmp_path / "mytakes", {"mine": ["xx_120_Am.mid", "xy_90_C.mid"]})
    result = run(src, "--steps-per-beat", "mine=4")
    assert result.exit_code == 0, result.output
    rows = m.read_manifest(src / "manifest.csv")
    assert [r.recording_id for r in rows] == ["mine/xx", "mine/xy"]
    assert all(r.source_url == "" for r in rows)
    assert m.read_manifest(COMMITTED)[0].source_url.startswith("https://")  # the committed one untouched


@pytest.mark.parametrize("template, expected", [
    ("corpus", m.SOURCE_URL.format(subset="mine", file_name="xx_120_Am.mid")),
    ("https://example.org/{subset}/{file_name}", "https://example.org/mine/xx_120_Am.mid"),
])
def test_source_url_is_only_what_is_given(tmp_path: Path, template: str, expected: str) -> None:
    src = fake_recordings(tmp_path / "src", {"mine": ["xx_120_Am.mid"]})
    result = run(src, "--steps-per-beat", "mine=4", "--source-url", template)
    assert result.exit_code == 0, result.output
    assert [r.source_url for r in m.read_manifest(src / "manifest.csv")] == [expected]


@pytest.mark.parametrize("bad", ["https://example.org/{name}", "https://example.org/same.mid", "{file_name"])
def test_bad_source_url_template_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    src = fake_recordings(tmp_path / "src", {"mine": ["xx_120_Am.mid"]})
    result = run(src, "--steps-per-beat", "mine=4", "--source-url", bad)
    assert result.exit_code == 2 and "--source-url" in result.output, result.output
    assert "Traceback" not in result.output and not (src / "manifest.csv").exists()


def test_source_dir_without_subsets_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path, "--out", tmp_path / "out.csv")
    assert result.exit_code == 1 and "no subset folders" in result.output


# --- splits ------------------------------------------------------------------------------------

def test_split_hash_is_pinned() -> None:
    """The same id must get the same split on every machine and Python version (no ``hash()``)."""
    assert m.hash_share("d1/aa") == 0.919713296062204
    assert m.assign_split("d1/ab", set()) == "test"
    assert m.assign_split("d1/ab", {"d1/ab"}) == "validation"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text("abcdefgh", min_size=2, max_size=4), min_size=1, max_size=12, unique=True))
def test_split_depends_only_on_the_recording(tmp_path_factory: pytest.TempPathFactory,
                                             ids: list[str]) -> None:
    """Adding recordings never moves another one: the split is a property of the recording."""
    root = tmp_path_factory.mktemp("src")
    fake_recordings(root, {"d1": [f"{i}_100_C.mid" for i in ids]})
    alone = {r.recording_id: r.split for r in m.build_manifest(root, {"d1": 4}, test_fraction=0.3)}
    fake_recordings(root, {"d1": ["zzzz_100_C.mid", "yyyy_90_G.mid"]})
    more = {r.recording_id: r.split for r in m.build_manifest(root, {"d1": 4}, test_fraction=0.3)}
    assert {k: more[k] for k in alone} == alone
    assert alone == {f"d1/{i}": m.assign_split(f"d1/{i}", set(), 0.3) for i in ids}


def test_hash_share_is_about_the_fraction() -> None:
    shares = [m.hash_share(f"d9/{i:05d}") for i in range(20_000)]
    assert 0.09 < sum(s < 0.1 for s in shares) / len(shares) < 0.11


# --- reading refuses bad manifests ------------------------------------------------------------

def _row(**changes: object) -> dict[str, object]:
    """One valid manifest record as a dict, with some fields changed."""
    base = dict(recording_id="d1/aa", subset="d1", file_name="aa_90_C.mid", size=3, sha256="0" * 64,
                labelled_bpm="90", labelled_key="C", steps_per_beat=4, split="train", source_url="")
    return {**base, **changes}


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    """A manifest CSV from raw records (not through ManifestRow, so bad values get through)."""
    lines = [",".join(m.MANIFEST_COLUMNS)]
    lines += [",".join(str(r[c]) for c in m.MANIFEST_COLUMNS) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_manifest_round_trips(tmp_path: Path) -> None:
    records = [_row(), _row(recording_id="d1/ab", file_name="ab.mid")]
    rows = m.read_manifest(_write(tmp_path / "ok.csv", records))
    m.write_manifest(rows, tmp_path / "again.csv")
    assert m.read_manifest(tmp_path / "again.csv") == rows


@pytest.mark.parametrize("records, reason", [
    ([_row(), _row(file_name="other.mid")], "repeats"),
    ([_row(file_name="../../etc/passwd")], "escapes"),
    ([_row(subset="/etc", file_name="passwd")], "escapes"),
    ([_row(subset="..", file_name="x.mid")], "escapes"),
    ([_row(file_name="..\\x.mid")], "escapes"),
    ([_row(split="holdout")], "unknown split"),
    ([_row(size="big")], "line 2"),
])
def test_read_manifest_refuses(tmp_path: Path, records: list[dict[str, object]], reason: str) -> None:
    with pytest.raises(RecordingError, match=reason):
        m.read_manifest(_write(tmp_path / "bad.csv", records))


def test_read_manifest_refuses_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("recording_id,subset\nd1/aa,d1\n")
    with pytest.raises(RecordingError, match="lacks columns"):
        m.read_manifest(tmp_path / "bad.csv")


def test_losing_the_addresses_of_a_regenerated_manifest_is_said(tmp_path: Path) -> None:
    src = fake_recordings(tmp_path / "src", {"d1": ["aa_90_C.mid"]})
    assert run(src, "--source-url", "corpus").exit_code == 0
    result = run(src)
    assert result.exit_code == 0, result.output
    assert "gave download addresses; the new one gives none" in result.stderr and "--source-url corpus" in result.stderr
    assert [r.source_url for r in m.read_manifest(src / "manifest.csv")] == [""]
