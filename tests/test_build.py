"""Build and load: the folder `piano-metronome build` writes is what `load_dataset` reads, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasets import ClassLabel, Dataset, load_dataset

from piano_metronome.inputs.manifest import read_manifest
from piano_metronome.outputs.dense import dense_arrays, iter_dense
from piano_metronome.outputs.schema import WINDOW_COLUMNS, arrow_schema, features
from piano_metronome.processing.align import AlignOptions
from piano_metronome.processing.keys import KEY_NAMES
from piano_metronome.processing.recording import process_row
from tests.conftest import build_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("demo_build") / "dataset", ["demo"])


def check_loaded(dataset_dir: Path, config: str) -> dict:
    """Load a config offline and check the features exactly; return the DatasetDict."""
    loaded = load_dataset(str(dataset_dir), config)
    assert set(loaded) == {"train", "validation", "test"}
    for split in loaded.values():
        assert split.features == features()
        assert split.features["key_label"] == ClassLabel(names=list(KEY_NAMES))
        table = split.data.table
        for column in WINDOW_COLUMNS:  # ints keep their declared width
            assert table.schema.field(column.name).type == arrow_schema().field(column.name).type
    return loaded


def test_demo_build_loads_with_declared_features(demo_build):
    loaded = check_loaded(demo_build, "demo")
    manifest = {r.recording_id: r.split for r in read_manifest(ROOT / "raw_midi" / "demo" / "manifest.csv")}
    for split, ds in loaded.items():
        assert {manifest[r] for r in ds["recording_id"]} == {split}


def test_demo_build_layout(demo_build):
    names = sorted(p.relative_to(demo_build).as_posix() for p in demo_build.rglob("*") if p.is_file())
    assert names == ["README.md", "build_report.json", "checksums.sha256",
                     "data/demo/test-00000-of-00001.arrow", "data/demo/train-00000-of-00001.arrow",
                     "data/demo/validation-00000-of-00001.arrow", "data/recordings/recordings-00000-of-00001.arrow"]
    for shard in (demo_build / "data" / "demo").glob("*.arrow"):
        with pa.OSFile(str(shard)) as source:
            schema = pa.ipc.open_stream(source).schema
        assert schema.equals(arrow_schema(), check_metadata=True)
    assert not list(demo_build.parent.glob(".*building*")), "staging folder left behind"


def test_yaml_counts_match_and_are_checked(demo_build):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(demo_build / "README.md")
    info = {c["config_name"]: c for c in card.data["dataset_info"]}["demo"]
    loaded = load_dataset(str(demo_build), "demo")
    for split in info["splits"]:
        assert split["num_bytes"] > 0
        assert split["num_examples"] == loaded[split["name"]].num_rows


def test_streaming_keeps_features(demo_build):
    streamed = load_dataset(str(demo_build), "demo", streaming=True)
    first = next(iter(streamed["train"]))
    assert streamed["train"].features == features()
    assert first["window_id"] == "demo/da/000"
    assert isinstance(first["note_step"], list)


def test_build_without_corpus_builds_demo_and_says_how_to_fetch(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from piano_metronome.cli import app

    monkeypatch.delenv("PIANO_METRONOME_CORPUS", raising=False)
    raw = tmp_path / "raw"
    (raw / "demo").mkdir(parents=True)
    for f in (ROOT / "raw_midi" / "demo").iterdir():
        (raw / "demo" / f.name).write_bytes(f.read_bytes())
    (raw / "manifest.csv").write_bytes((ROOT / "raw_midi" / "manifest.csv").read_bytes())
    result = CliRunner().invoke(app, ["build", "--raw", str(raw), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "fetch" in result.output
    assert sorted(p.name for p in (tmp_path / "out" / "data").iterdir()) == ["demo", "demo_takes", "recordings"]


def placed_notes_by_window(result, options: AlignOptions) -> dict[str, set]:
    """What the alignment engine placed, as window id → {(step, key, offset, velocity)}."""
    aligned = result.aligned
    begin, end = aligned.window_slices(options.window_steps)
    out = {}
    for index, (b, e, start) in enumerate(zip(begin, end, aligned.window_starts, strict=True)):
        n = aligned.notes
        out[f"{aligned.info.recording_id}/{index:03d}"] = {
            (int(s - start), int(k), float(o), int(v))
            for s, k, o, v in zip(n.step[b:e], n.key[b:e], n.offset[b:e], n.velocity[b:e], strict=True)}
    return out


def dense_notes(ds: Dataset) -> dict[str, set]:
    """Every hit of the dense H/O/V, read back per window id."""
    out = {}
    ids = ds["window_id"]
    position = 0
    for batch in iter_dense(ds, batch_size=64):
        for H, O, V in zip(batch["H"], batch["O"], batch["V"], strict=True):
            steps, keys = np.nonzero(H)
            out[ids[position]] = {(int(s), int(k), float(O[s, k]), int(round(V[s, k] * 127)))
                                  for s, k in zip(steps, keys, strict=True)}
            position += 1
    return out


def check_dense_reproduces_alignment(dataset_dir: Path, config: str, rows, sources) -> int:
    """For every note, the dense arrays hold what the alignment engine placed. Returns notes checked."""
    options = AlignOptions()
    expected: dict[str, set] = {}
    for row in rows:
        expected.update(placed_notes_by_window(process_row(row, sources, options), options))
    got: dict[str, set] = {}
    for split in ("train", "validation", "test"):
        got.update(dense_notes(Dataset.from_file(str(dataset_dir / "data" / config / f"{split}-00000-of-00001.arrow"))))
    assert set(got) == set(expected)
    for window_id, notes in expected.items():
        assert {(s, k, round(o, 5), v) for s, k, o, v in got[window_id]} == {
            (s, k, round(float(np.float32(o)), 5), v) for s, k, o, v in notes}, window_id
    return sum(len(n) for n in expected.values())


def test_dense_reproduces_alignment_on_demo(demo_build):
    rows = read_manifest(ROOT / "raw_midi" / "demo" / "manifest.csv")
    assert check_dense_reproduces_alignment(demo_build, "demo", rows, [ROOT / "raw_midi"]) > 1000


def test_dense_helper_shapes_and_key_tempo(demo_build):
    ds = Dataset.from_file(str(demo_build / "data" / "demo" / "train-00000-of-00001.arrow"))
    dense = dense_arrays(ds)
    n = ds.num_rows
    assert dense["H"].shape == dense["O"].shape == dense["V"].shape == (n, 64, 88)
    assert dense["H"].dtype == np.float32
    assert np.array_equal(dense["key"].argmax(1), np.array(ds["key_signature"]))
    assert np.allclose(dense["tempo"], np.array(ds["bpm"]) / 100 - 1, atol=1e-6)
    assert int(dense["H"].sum()) == sum(len(x) for x in ds["note_step"])
    assert set(np.unique(dense["H"])) <= {0.0, 1.0}
    assert np.all((dense["V"] > 0) == (dense["H"] > 0))


def test_torch_collate_matches_dense(demo_build):
    torch = pytest.importorskip("torch")
    from piano_metronome.outputs.dense import torch_collate

    ds = Dataset.from_file(str(demo_build / "data" / "demo" / "train-00000-of-00001.arrow"))
    batch = torch_collate([ds[i] for i in range(3)])
    dense = dense_arrays(ds.select(range(3)))
    for name in ("H", "O", "V", "key", "tempo"):
        assert torch.equal(batch[name], torch.from_numpy(dense[name]))


def test_shuffled_dataset_decodes_in_its_own_order(demo_build):
    ds = Dataset.from_file(str(demo_build / "data" / "demo" / "train-00000-of-00001.arrow"))
    shuffled = ds.shuffle(seed=1)
    dense = dense_arrays(shuffled)
    for i in range(len(shuffled)):
        assert int(dense["H"][i].sum()) == len(shuffled[i]["note_step"])


@pytest.mark.corpus
def test_corpus_build_loads_and_splits_by_recording(corpus_build, corpus):
    author = set((corpus / "author_validation.txt").read_text(encoding="utf-8").split())
    by_name = {r.file_name: r.recording_id for r in read_manifest(ROOT / "raw_midi" / "manifest.csv")}
    author_ids = {by_name[name] for name in author}
    assert len(author_ids) == 20
    for config in ("d1", "d2", "all"):
        loaded = check_loaded(corpus_build, config)
        seen: dict[str, str] = {}
        for split, ds in loaded.items():
            for recording in set(ds["recording_id"]):
                assert seen.setdefault(recording, split) == split, f"{recording} in two splits"
        expected = {r for r in author_ids if config == "all" or r.startswith(config + "/")}
        assert set(loaded["validation"]["recording_id"]) == expected
    report = json.loads((corpus_build / "build_report.json").read_text())
    assert report["rejected"] == {}


@pytest.mark.corpus
def test_dense_reproduces_alignment_on_corpus(corpus_build, corpus):
    rows = [r for r in read_manifest(ROOT / "raw_midi" / "manifest.csv")]
    assert check_dense_reproduces_alignment(corpus_build, "all", rows, [corpus]) == 431_594


def test_num_proc_build_loads_the_same_windows(tmp_path, demo_build):
    from piano_metronome.outputs.build import run_build

    out = tmp_path / "np"
    run_build(None, out, ["demo"], None, AlignOptions(), num_proc=2)
    for split in ("train", "validation", "test"):
        a = load_dataset(str(out), "demo", split=split)
        b = load_dataset(str(demo_build), "demo", split=split)
        assert a["window_id"] == b["window_id"] and a["note_offset"] == b["note_offset"]


def test_plain_schema_has_the_declared_types():
    """Workers write spools without importing datasets; the types must be the declared ones."""
    from piano_metronome.outputs.schema import RECORDING_COLUMNS, plain_arrow_schema

    for columns in (WINDOW_COLUMNS, RECORDING_COLUMNS):
        assert plain_arrow_schema(columns).equals(arrow_schema(columns), check_metadata=False)
