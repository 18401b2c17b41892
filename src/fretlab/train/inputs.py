"""Model inputs for one role (train, val, test): fixed windows or variable-length sequences.

Both kinds answer the same three questions, so the training loop and evaluation never branch on the
input kind: which index batches make an epoch, what the model call for a batch is, and what the model
outputs for every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fretlab.cache.reader import load_features, read_index, row_ids
from fretlab.cache.sequences import BucketBatchSampler, SequenceSet, load_sequences, pad_batch
from fretlab.params import Params
from fretlab.runtime import autocast, batches, predict_logits, to_device_tensor
from fretlab.tasks.targets import TargetSpec, encode_targets


class WindowInputs:
    """Fixed-shape windows ``(N, C, mels, frames)``, moved to the device once and sliced per batch."""

    dims = None  # the window shape comes from the featurize params

    def __init__(self, x: np.ndarray, device: torch.device) -> None:
        self.x = to_device_tensor(x, device)

    def __len__(self) -> int:
        return len(self.x)

    def epoch(self, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        return list(batches(len(self.x), batch_size, generator, self.x.device))

    def gather(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
        return (self.x[idx].to(device, non_blocking=True),)

    def fit_standardization(self, model: nn.Module) -> None:
        model.fit_standardization(self.x)

    def predict(self, model: nn.Module, batch_size: int, amp: bool = False) -> torch.Tensor:
        return predict_logits(model, self.x, batch_size, amp)


class SequenceInputs:
    """Variable-length frame sequences, bucketed by length and padded per batch (with their lengths)."""

    def __init__(self, seqs: SequenceSet) -> None:
        self.seqs = seqs
        self.dims = seqs.dims

    def __len__(self) -> int:
        return len(self.seqs)

    def epoch(self, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        sampler = BucketBatchSampler(self.seqs.lengths, batch_size, generator)
        return [torch.tensor(b, dtype=torch.int64) for b in sampler]

    def gather(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
        x, lengths = pad_batch([self.seqs[i] for i in idx.tolist()])
        return x.to(device, non_blocking=True), lengths

    def fit_standardization(self, model: nn.Module) -> None:
        model.set_standardization(*(torch.from_numpy(a) for a in self.seqs.stats()))

    @torch.no_grad()
    def predict(self, model: nn.Module, batch_size: int, amp: bool = False) -> torch.Tensor:
        """Outputs for every row in the original order; batches run in length order (least padding)."""
        model.eval()
        device = next(iter(model.buffers())).device
        outs: list[torch.Tensor] = []
        order: list[int] = []
        for batch in BucketBatchSampler(self.seqs.lengths, batch_size, shuffle=False):
            x, lengths = pad_batch([self.seqs[i] for i in batch])
            with autocast(device, amp):
                outs.append(model(x.to(device), lengths).float().cpu())
            order += batch
        if not outs:
            return torch.zeros(0)
        result = torch.empty(len(order), outs[0].shape[1])
        result[torch.tensor(order)] = torch.cat(outs)
        return result


Inputs = WindowInputs | SequenceInputs


@dataclass
class RoleData:
    """One role's inputs, encoded targets ``(N, n_targets)`` with their validity mask, and row ids."""

    inputs: Inputs
    y: np.ndarray
    valid: np.ndarray
    ids: list[str]

    @classmethod
    def windows(cls, x: np.ndarray, labels: np.ndarray, device: torch.device | str = "cpu") -> RoleData:
        """Single-label windows from arrays: ``labels`` are class codes (tests, benchmarks)."""
        codes = np.asarray(labels, dtype=np.float64).reshape(-1, 1)
        return cls(WindowInputs(x, torch.device(device)), codes, np.ones_like(codes, dtype=bool),
                   [str(i) for i in range(len(codes))])


def load_inputs(features_dir: str | Path, split: str, kind: str, device: torch.device) -> Inputs:
    """The cached features of one split as model inputs."""
    if kind == "tracks":
        return SequenceInputs(load_sequences(features_dir, split))
    return WindowInputs(load_features(features_dir, split)[0], device)


def load_role_data(params: Params, specs: list[TargetSpec], splits: Sequence[str], device: torch.device,
                   features_dir: str | Path | None = None) -> RoleData:
    """Inputs and targets of one role, from one cache split (or several folds, concatenated)."""
    features_dir = Path(features_dir or params.paths.features)
    if len(splits) != 1 and params.featurize.kind == "tracks":
        raise ValueError("featurize.kind tracks supports one cache split per role (no predefined folds yet)")
    indexes = {s: read_index(features_dir, s) for s in splits}
    targets = [encode_targets(index, specs, str(features_dir / f"{s}.csv")) for s, index in indexes.items()]
    ids = [i for index in indexes.values() for i in row_ids(index)]
    if len(splits) == 1:
        inputs = load_inputs(features_dir, splits[0], params.featurize.kind, device)
    else:
        x = np.concatenate([np.asarray(load_features(features_dir, s)[0]) for s in splits])
        inputs = WindowInputs(x, device)
    y = np.concatenate([t[0] for t in targets])
    valid = np.concatenate([t[1] for t in targets])
    if len(y) != len(inputs):
        raise ValueError(f"{features_dir}: {list(splits)} hold {len(inputs)} feature rows but {len(y)} index rows; "
                         "re-run `dvc repro featurize`")
    return RoleData(inputs, y, valid, ids)
