"""A torch ``DataLoader`` over a loaded split works with the natural line, in any dataset format.

The expected arrays come from :func:`dense_arrays` on the same rows taken by ``select`` (the
Arrow path, tested against the windows elsewhere), so a collate that drops, reorders or
mis-types a note fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader  # noqa: E402

from piano_metronome.outputs.dense import dense_arrays, torch_collate  # noqa: E402


@pytest.fixture(scope="module")
def train(demo_dataset: Path):
    """The demo config's train split, loaded the way the README shows."""
    from datasets import load_dataset

    return load_dataset(str(demo_dataset), "demo")["train"]


def assert_batches(loader, dataset, order: list[int], batch_size: int) -> None:
    """Every batch equals dense_arrays of the rows it should hold, as float32 of the right shape."""
    batches = list(loader)
    assert len(batches) == -(-len(order) // batch_size)
    for number, batch in enumerate(batches):
        rows = order[number * batch_size:(number + 1) * batch_size]
        expected = dense_arrays(dataset.select(rows))
        assert set(batch) == set(expected)
        for name, array in expected.items():
            got = batch[name].numpy() if isinstance(batch[name], torch.Tensor) else batch[name]
            assert got.dtype == np.float32 and got.shape == array.shape, name
            np.testing.assert_array_equal(got, array, err_msg=name)


def test_the_natural_line_gives_tensors(train) -> None:
    loader = DataLoader(train, batch_size=4, collate_fn=torch_collate)
    first = next(iter(loader))
    assert all(isinstance(v, torch.Tensor) for v in first.values())
    assert first["H"].shape == (4, 64, 88) and first["key"].shape == (4, 12) and first["tempo"].shape == (4,)
    assert_batches(loader, train, list(range(len(train))), 4)


def test_dense_arrays_is_a_collate_too(train) -> None:
    """The line the issue tried, ``collate_fn=dense_arrays``, works (numpy batches)."""
    assert_batches(DataLoader(train, batch_size=5, collate_fn=dense_arrays), train, list(range(len(train))), 5)


@pytest.mark.parametrize("fmt", ["torch", "numpy"])
def test_any_dataset_format(train, fmt: str) -> None:
    """``with_format("torch")`` alone cannot batch ragged lists; with the collate it can."""
    assert_batches(DataLoader(train.with_format(fmt), batch_size=4, collate_fn=torch_collate), train,
                   list(range(len(train))), 4)


def test_sampled_order_is_kept(train) -> None:
    order = list(range(len(train)))[::-1][:7] + [0, 2]
    loader = DataLoader(train, batch_size=3, sampler=order, collate_fn=torch_collate)
    assert_batches(loader, train, order, 3)
