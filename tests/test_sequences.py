"""The variable-length sequence cache, bucketed batching and padding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader

from fretlab.cache.reader import FeatureCacheError
from fretlab.cache.sequences import (
    BucketBatchSampler,
    SequenceWriter,
    load_sequences,
    pad_batch,
    pooled_feature_names,
)

LENGTHS = [3, 1, 7, 2, 5]


@pytest.fixture
def items() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(n, 4)).astype(np.float32) for n in LENGTHS]


def write(directory, split, items, dims=None):
    with SequenceWriter(directory, split, dims) as writer:
        for x in items:
            writer.append(x)


def test_cache_round_trips_variable_length_items(tmp_path, items):
    write(tmp_path, "train", items)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npy", "train.offsets.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "train.offsets.npy"), [0, 3, 4, 11, 13, 18])
    assert np.load(tmp_path / "train.offsets.npy").dtype == np.int64
    assert np.load(tmp_path / "train.npy").shape == (18, 4)
    seqs = load_sequences(tmp_path, "train")
    assert isinstance(seqs.data, np.memmap) and len(seqs) == 5 and seqs.dims == 4
    np.testing.assert_array_equal(seqs.lengths, LENGTHS)
    for got, want in zip(seqs, items, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(seqs[-1], items[-1])
    assert np.shares_memory(seqs[2], seqs.data)  # a view, not a copy
    with pytest.raises(IndexError):
        seqs[5]


def test_an_empty_split_keeps_its_dims(tmp_path):
    write(tmp_path, "test", [], dims=6)
    seqs = load_sequences(tmp_path, "test")
    assert len(seqs) == 0 and seqs.dims == 6
    assert list(BucketBatchSampler(seqs.lengths, 4, torch.Generator().manual_seed(0))) == []


def test_a_failed_write_leaves_no_files_and_keeps_the_old_cache(tmp_path, items):
    write(tmp_path, "train", items[:2])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError, match="killed"), SequenceWriter(tmp_path, "train") as writer:
        writer.append(items[2])
        raise RuntimeError("killed mid-split")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(RuntimeError), SequenceWriter(tmp_path / "fresh", "val") as writer:
        writer.append(items[0])
        raise RuntimeError("killed")
    assert list((tmp_path / "fresh").iterdir()) == []


def test_writer_refuses_empty_or_mismatched_items(tmp_path, items):
    with SequenceWriter(tmp_path, "train") as writer:
        writer.append(items[0])
        with pytest.raises(ValueError, match="item 1 has 3 dims"):
            writer.append(np.zeros((2, 3)))
        with pytest.raises(ValueError, match="frames >= 1"):
            writer.append(np.zeros((0, 4)))
    assert len(load_sequences(tmp_path, "train")) == 1


@pytest.mark.parametrize(("offsets", "problem"), [
    ([0, 3, 2, 18], "never decrease"),
    ([1, 4, 18], "start at 0"),
    ([0, 3, 17], "last offset is 17 but train.npy has 18 rows"),
    ([[0, 18]], "1-D integer"),
])
def test_inconsistent_offsets_are_refused_naming_the_file(tmp_path, items, offsets, problem):
    write(tmp_path, "train", items)
    np.save(tmp_path / "train.offsets.npy", np.asarray(offsets, dtype=np.int64))
    with pytest.raises(FeatureCacheError, match=problem) as err:
        load_sequences(tmp_path, "train")
    assert "train.offsets.npy" in str(err.value)


def test_a_missing_cache_file_is_named(tmp_path, items):
    write(tmp_path, "train", items)
    (tmp_path / "train.npy").unlink()
    with pytest.raises(FeatureCacheError, match=r"train\.npy: sequence cache file not found"):
        load_sequences(tmp_path, "train")


def test_pooled_stats_are_each_items_mean_then_std(tmp_path, items):
    write(tmp_path, "train", items)
    seqs = load_sequences(tmp_path, "train")
    pooled = seqs.pooled_stats()
    assert pooled.shape == (5, 8) and pooled.dtype == np.float32
    want = np.stack([np.concatenate([x.mean(axis=0), x.std(axis=0)]) for x in items])
    np.testing.assert_allclose(pooled, want, rtol=1e-6, atol=1e-6)
    assert pooled[1, 4:].tolist() == [0.0] * 4  # a one-frame item has std 0
    assert pooled_feature_names(["a", "b"]) == ["a_mean", "b_mean", "a_std", "b_std"]


def test_split_stats_match_numpy_over_all_frames(tmp_path, items):
    shifted = [x + 100 for x in items]  # features such as MFCC 0 sit far from zero
    write(tmp_path, "train", shifted)
    mean, std = load_sequences(tmp_path, "train").stats(chunk_rows=4)  # chunks that cut items apart
    frames = np.concatenate(shifted).astype(np.float64)
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, frames.std(axis=0), rtol=1e-4)


@pytest.fixture
def spread_lengths() -> np.ndarray:
    return np.random.default_rng(1).integers(10, 1000, size=1000)


def epoch(lengths, seed, **kwargs) -> list[list[int]]:
    return list(BucketBatchSampler(lengths, 16, torch.Generator().manual_seed(seed), **kwargs))


def mean_spread(lengths: np.ndarray, batches: list[list[int]]) -> float:
    return float(np.mean([np.ptp(lengths[b]) for b in batches]))


def test_bucketed_batches_cover_every_index_once_with_similar_lengths(spread_lengths):
    sampler = BucketBatchSampler(spread_lengths, 16, torch.Generator().manual_seed(0), bucket_size_multiplier=10)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63  # ceil(1000 / 16)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) == 16 for b in batches if len(b) != 1000 % 16)
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).tolist()
    random_batches = [perm[i : i + 16] for i in range(0, 1000, 16)]
    # a sorted bucket of 160 of lengths uniform over 10..1000 spreads ~100 per batch, a random batch ~870
    assert mean_spread(spread_lengths, batches) < 0.25 * mean_spread(spread_lengths, random_batches)


def test_bucketed_batches_are_reproducible_per_seed_and_vary_by_epoch(spread_lengths):
    assert epoch(spread_lengths, 7) == epoch(spread_lengths, 7)
    assert epoch(spread_lengths, 7) != epoch(spread_lengths, 8)
    sampler = BucketBatchSampler(spread_lengths, 16, torch.Generator().manual_seed(7))
    first, second = list(sampler), list(sampler)
    assert first == epoch(spread_lengths, 7) and second != first
    assert sorted(i for b in second for i in b) == list(range(1000))


def test_unshuffled_batches_come_in_length_order_once_each(spread_lengths):
    batches = list(BucketBatchSampler(spread_lengths, 16, None, shuffle=False))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000)) and len(batches) == 63
    assert np.all(np.diff(spread_lengths[flat]) >= 0)
    assert batches == list(BucketBatchSampler(spread_lengths, 16, None, shuffle=False))
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        BucketBatchSampler(spread_lengths, 16, None)


def test_pad_batch_zero_pads_and_reports_lengths(tmp_path, items):
    write(tmp_path, "train", items)
    seqs = load_sequences(tmp_path, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read-only memory-map views must not trigger torch's non-writable warning
        padded, lengths = pad_batch([seqs[0], seqs[2], seqs[1]])
    assert padded.shape == (3, 7, 4) and padded.dtype == torch.float32
    assert lengths.tolist() == [3, 7, 1] and lengths.dtype == torch.int64 and lengths.device.type == "cpu"
    np.testing.assert_array_equal(padded[0, :3].numpy(), items[0])
    np.testing.assert_array_equal(padded[1].numpy(), items[2])
    assert torch.count_nonzero(padded[0, 3:]) == 0 and torch.count_nonzero(padded[2, 1:]) == 0


def test_sampler_and_pad_batch_drive_a_dataloader_into_a_packed_rnn(tmp_path, items):
    write(tmp_path, "train", items)
    seqs = load_sequences(tmp_path, "train")
    sampler = BucketBatchSampler(seqs.lengths, 2, torch.Generator().manual_seed(0))
    rnn = torch.nn.GRU(4, 3, batch_first=True)
    seen = []
    for padded, lengths in DataLoader(seqs, batch_sampler=sampler, collate_fn=pad_batch):
        packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
        _, hidden = rnn(packed)
        assert hidden.shape == (1, len(lengths), 3)
        seen += lengths.tolist()
    assert sorted(seen) == sorted(LENGTHS)
