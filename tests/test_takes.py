"""The `takes` configs: each recording's file itself and its whole aligned performance, readable by
the MIDI tools people already use, and cut into windows of any length exactly as the build cuts them."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from piano_metronome.outputs.build import write_checksums
from piano_metronome.outputs.layout import CHECKSUM_FILE, read_recordings, read_table, shard_paths
from piano_metronome.outputs.takes import windows_from_takes
from piano_metronome.outputs.validate import validate_dataset


def load(folder: Path, config: str, split: str | None = None):
    """A config of a built folder through `datasets`, as a user loads it."""
    from datasets import load_dataset

    return load_dataset(str(folder), config, split=split)


def midi_note_counts(data: bytes) -> tuple[int, int, int]:
    """Notes in a MIDI file by symusic, pretty_midi and a MidiTok REMI tokenizer (no project code)."""
    import miditok
    import pretty_midi
    import symusic

    score = symusic.Score.from_midi(data)
    by_symusic = sum(len(track.notes) for track in score.tracks)
    by_pretty_midi = sum(len(i.notes) for i in pretty_midi.PrettyMIDI(io.BytesIO(data)).instruments)
    encoded = miditok.REMI().encode(score)
    sequences = encoded if isinstance(encoded, list) else [encoded]
    by_miditok = sum(token.startswith("Pitch_") for seq in sequences for token in seq.tokens)
    return by_symusic, by_pretty_midi, by_miditok


def check_files_and_counts(folder: Path, config: str, tools_on: set[str] | None = None) -> int:
    """Every take's bytes are its recording's file; its note count by each MIDI tool is `notes_input`."""
    recordings = {r["recording_id"]: r for r in read_recordings(folder).to_pylist()}
    rows = 0
    for split, takes in load(folder, config).items():
        for row in takes:
            rows += 1
            recording = recordings[row["recording_id"]]
            data = row["midi"]["bytes"]
            assert hashlib.sha256(data).hexdigest() == recording["sha256"]
            assert row["midi"]["path"] == f"{recording['subset']}/{recording['file_name']}"
            assert len(row["note_step"]) == recording["notes_placed"]
            if tools_on is None or split in tools_on:
                assert midi_note_counts(data) == (recording["notes_input"],) * 3, row["recording_id"]
    return rows


def card_window_counts(folder: Path, config: str, split: str) -> dict[int, int]:
    """The card's "Whole takes" table row: windows of each length the takes of a split cut into."""
    card = (folder / "README.md").read_text(encoding="utf-8")
    header = next(line for line in card.splitlines() if line.startswith("| config | split | takes |"))
    lengths = [int(n) for n in re.findall(r"windows of (\d+) steps", header)]
    row = next(line for line in card.splitlines() if line.startswith(f"| {config} | {split} |"))
    cells = [c.strip().replace(",", "") for c in row.strip("|").split("|")]
    return dict(zip(lengths, map(int, cells[-len(lengths):]), strict=True))


def test_demo_takes_are_the_files_and_read_in_every_tool(demo_dataset: Path) -> None:
    assert check_files_and_counts(demo_dataset, "demo_takes") == 4


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_demo_takes_recut_at_64_are_the_demo_windows(demo_dataset: Path, split: str) -> None:
    takes = load(demo_dataset, "demo_takes", split)
    windows = pa.concat_tables(read_table(p) for p in shard_paths(demo_dataset, "demo", split))
    recut = windows_from_takes(takes, window_steps=64)
    assert recut.cast(windows.schema).equals(windows)


def test_recut_counts_are_the_cards(demo_dataset: Path) -> None:
    for split in ("train", "validation", "test"):
        takes = load(demo_dataset, "demo_takes", split)
        stated = card_window_counts(demo_dataset, "demo_takes", split)
        assert set(stated) == {32, 64, 128}
        for steps, count in stated.items():
            windows = windows_from_takes(takes, window_steps=steps)
            assert windows.num_rows == count
            assert max((max(s) for s in windows["note_step"].to_pylist() if s), default=0) < steps


def test_hop_gives_overlapping_windows(demo_dataset: Path) -> None:
    takes = load(demo_dataset, "demo_takes", "train")
    plain, hopped = windows_from_takes(takes, 64), windows_from_takes(takes, 64, hop_steps=32)
    assert hopped.num_rows > plain.num_rows
    assert set(hopped["start_step"].to_pylist()) > set(plain["start_step"].to_pylist())


def test_validate_finds_a_take_that_is_not_its_file_or_its_windows(tmp_path: Path, demo_dataset: Path) -> None:
    out = tmp_path / "dataset"
    shutil.copytree(demo_dataset, out)
    shard = shard_paths(out, "demo_takes", "train")[0]
    rows = read_table(shard).to_pylist()
    data = bytearray(rows[0]["midi"]["bytes"])
    data[len(data) // 2] ^= 0x01
    rows[0]["midi"]["bytes"] = bytes(data)
    rows[1]["note_velocity"][0] = (rows[1]["note_velocity"][0] % 120) + 1
    schema = read_table(shard).schema
    with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    write_checksums(out)
    report = validate_dataset(out)
    takes = next(c for c in report.checks if c.name == "takes")
    found = [f"{p.where}: {p.what}" for p in takes.problems]
    assert takes.status == "fail" and len(found) == 2, found
    assert any(rows[0]["recording_id"] in f and "not the recording's file" in f for f in found)
    assert any(rows[1]["recording_id"] in f and "differ from those of its windows in demo" in f for f in found)
    assert (out / CHECKSUM_FILE).is_file()


@pytest.mark.corpus
def test_corpus_takes(corpus_build: Path) -> None:
    # every file in symusic, pretty_midi and MidiTok for the held-out splits (MidiTok is slow); sha256 for all
    assert check_files_and_counts(corpus_build, "takes", tools_on={"validation", "test"}) == 361
    for split in ("train", "validation", "test"):
        takes = load(corpus_build, "takes", split)
        windows = pa.concat_tables(read_table(p) for p in shard_paths(corpus_build, "all", split))
        recut = windows_from_takes(takes, window_steps=64)
        assert recut.cast(windows.schema).sort_by("window_id").equals(windows.sort_by("window_id"))
        stated = card_window_counts(corpus_build, "takes", split)
        assert windows_from_takes(takes, window_steps=32).num_rows == stated[32]
        assert windows_from_takes(takes, window_steps=128).num_rows == stated[128]


def test_takes_check_reads_a_recording_across_its_split_s_shards(demo_dataset: Path) -> None:
    """A split written as two shards, with one recording's windows in both: the takes still match."""
    from dataclasses import replace

    from piano_metronome.outputs.check_report import Check
    from piano_metronome.outputs.validate import check_takes, read_card, read_shards

    shards = read_shards(demo_dataset, read_card(demo_dataset))
    windows = next(s for s in shards if s.config == "demo" and s.split == "train")
    ids = windows.data["recording_id"].to_pylist()
    cut = ids.index(ids[0]) + ids.count(ids[0]) // 2  # inside the first recording's windows
    assert 0 < cut < ids.count(ids[0])
    halves = [replace(windows, rel=f"{windows.rel}#{i}", table=part)
              for i, part in enumerate((windows.data.slice(0, cut), windows.data.slice(cut)))]
    split_shards = [part for s in shards for part in (halves if s is windows else [s])]
    for given in (shards, split_shards):
        check = Check("takes", "")
        check_takes(given, read_recordings(demo_dataset), check)
        assert check.problems == [] and check.summary
    damaged = replace(halves[1], table=halves[1].data.slice(1))  # one window of the first recording lost
    check = Check("takes", "")
    check_takes([damaged if s is halves[1] else s for s in split_shards], read_recordings(demo_dataset), check)
    assert any(ids[0] in p.where and "differ from those of its windows in demo" in p.what for p in check.problems)
