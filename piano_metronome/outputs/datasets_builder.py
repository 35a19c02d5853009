"""The ``datasets`` builder: configs ``d1``, ``d2``, ``all`` and ``demo``; splits from the manifest.

``datasets`` writes the shards itself (Arrow stream files with the features embedded). In a
build (:mod:`piano_metronome.outputs.build`) every recording is aligned once, before any
config is written, and the builder reads the windows from the spool files that step left
(``all`` reads the ``d1`` and ``d2`` spools); used alone (the loading script) it aligns each
recording of its config itself through :func:`piano_metronome.processing.recording.process_row`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from piano_metronome.inputs.manifest import SPLITS, ManifestRow
from piano_metronome.outputs.build import aligned_of, midi_bytes_of
from piano_metronome.outputs.configs import CONFIG_SUBSETS, TAKES, columns_of, config_rows, table_kind
from piano_metronome.outputs.layout import iter_batches, spool_path
from piano_metronome.outputs.schema import features
from piano_metronome.outputs.tables import take_table, windows_table
from piano_metronome.processing.align import AlignOptions
from piano_metronome.processing.recording import process_row

DESCRIPTION = (
    "Piano performances recorded to a metronome, aligned to their click grid: per 64-step window, the hits "
    "(H), timing offsets (O) and velocities (V) of every note, with key, tempo and sustain pedal."
)
HOMEPAGE = "https://github.com/aleathwick/781-piano-autoencoder"
CITATION = """@misc{leathwick2020piano,
  author = {Leathwick, Alex},
  title = {781-piano-autoencoder: expressive piano performance with autoencoders},
  year = {2020},
  howpublished = {\\url{https://github.com/aleathwick/781-piano-autoencoder}}
}
@inproceedings{gillick2019groove,
  author = {Gillick, Jon and Roberts, Adam and Engel, Jesse and Eck, Douglas and Bamman, David},
  title = {Learning to Groove with Inverse Sequence Transformations},
  booktitle = {International Conference on Machine Learning (ICML)},
  year = {2019}
}"""

class PianoMetronomeConfig(datasets.BuilderConfig):
    """A config: which subsets it holds, whether as windows or whole takes, where the raw files are, and
    the alignment options."""

    def __init__(self, *args: Any, subsets: tuple[str, ...] = ("d1",), sources: tuple[str, ...] = (),
                 align_options: AlignOptions | None = None, spool_dir: str | None = None,
                 splits: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = table_kind(self.name)
        self.subsets = subsets
        self.sources = sources
        self.align_options = align_options or AlignOptions()
        self.spool_dir = spool_dir  # set by the build command: windows already aligned, per subset and split
        self.splits = splits  # with spool_dir: the splits the manifest gives this config (the build read it)


class PianoMetronome(datasets.ArrowBasedBuilder):
    """Builds the windows (or whole takes) of one config from the raw recordings named by the manifest."""

    BUILDER_CONFIG_CLASS = PianoMetronomeConfig
    BUILDER_CONFIGS = [
        PianoMetronomeConfig(name=name, subsets=subsets, description=f"Subsets {', '.join(subsets)}.")
        for name, subsets in CONFIG_SUBSETS.items()
    ]
    DEFAULT_CONFIG_NAME = "all"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=DESCRIPTION, features=features(columns_of(self.config.name)),
                                    homepage=HOMEPAGE, citation=CITATION)

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        raw = Path(self.config.data_dir or "raw_midi")
        sources = tuple(Path(s) for s in self.config.sources) or (raw,)
        if self.config.spool_dir:  # the build aligned already: no manifest rows held (100× the corpus: 36 MB)
            spool = Path(self.config.spool_dir)
            return [datasets.SplitGenerator(name=split, gen_kwargs={
                "rows": (), "sources": sources,
                "spools": [str(spool_path(spool, self.config.kind, s, split)) for s in self.config.subsets]})
                for split in self.config.splits]
        # datasets shards work (num_proc) over the one list-valued argument (the rows); the rest goes as tuples
        rows = config_rows(raw, self.config.subsets)
        return [datasets.SplitGenerator(name=split, gen_kwargs={"rows": split_rows, "sources": sources, "spools": ()})
                for split in SPLITS if (split_rows := [r for r in rows if r.split == split])]

    def _generate_tables(self, rows: list[ManifestRow], sources: tuple[Path, ...],
                         spools: list[str]) -> Iterator[tuple[str, pa.Table]]:
        if spools:
            yield from _read_spools(spools, TAKE_BATCH_ROWS if self.config.kind == TAKES else SHARD_BATCH_ROWS)
            return
        options = self.config.align_options
        for row in rows:
            result = process_row(row, list(sources), options)
            if not result.ok:
                continue
            if self.config.kind == TAKES:
                yield row.recording_id, take_table(aligned_of(result), midi_bytes_of(result),
                                                   row.relative_name)
            elif result.report.windows:
                yield row.recording_id, windows_table(aligned_of(result), options)


#: Windows per record batch in the shards: few large batches read far faster than one per recording.
SHARD_BATCH_ROWS = 1000
#: Takes per record batch: a take is ~75 kB (its file, its notes, its pedal per step), so 1000 of them
#: would hold ~75 MB at once, twice over while regrouped; 100 keep a batch near 8 MB.
TAKE_BATCH_ROWS = 100


def _read_spools(spools: list[str], batch_rows: int) -> Iterator[tuple[str, pa.Table]]:
    """Rows aligned earlier in this build, in recording order, regrouped into batches of
    ``batch_rows`` (one small batch per recording would slow every reader)."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for spool in spools:
        if not Path(spool).is_file():  # no recording of this subset landed in this split
            continue
        for batch in iter_batches(Path(spool)):
            pending.append(batch)
            rows += batch.num_rows
            if rows >= batch_rows:
                table = pa.Table.from_batches(pending).combine_chunks()
                yield f"{spool}:{rows}", table.slice(0, batch_rows)
                rest = table.slice(batch_rows)
                pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield "end", pa.Table.from_batches(pending).combine_chunks()


def builder_class(config: str, subsets: tuple[str, ...]) -> type[PianoMetronome]:
    """The builder for a config: the project's own class, or a subclass declaring a musician's
    config (one of their subsets, or ``all`` of them) the way ``BUILDER_CONFIGS`` declares ours."""
    if config in PianoMetronome.builder_configs and PianoMetronome.builder_configs[config].subsets == subsets:
        return PianoMetronome
    declared = PianoMetronomeConfig(name=config, subsets=subsets, description=f"Subsets {', '.join(subsets)}.")
    return type("PianoMetronome", (PianoMetronome,), {"BUILDER_CONFIGS": [declared], "DEFAULT_CONFIG_NAME": config})
