"""Multi-process training on PyTorch's own engines: ``torchrun`` launches, DDP averages gradients.

``train.ddp.nproc > 1`` makes the train stage re-run itself under ``torch.distributed.run``
(the module behind the ``torchrun`` command), one process per GPU or CPU slot. Launched by
hand or by a cluster scheduler (``torchrun --nnodes ...``), the stage finds the usual
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` variables and joins that job instead. A single process
never touches ``torch.distributed``, so the default run is exactly the single-process one.
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from fretlab.params import DDP


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world`` (``local_rank`` on its machine)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, checkpoints and writes outputs."""
        return self.rank == 0


def current() -> DistInfo:
    """The running job's ranks, or a single process when ``torch.distributed`` is not initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def relaunch_under_torchrun(cfg: DDP, argv: list[str] | None = None) -> bool:
    """Re-run this script as ``cfg.nproc`` torchrun workers; True once they have all finished.

    Returns False (run in this process) when ``nproc`` is 1 or this process already is a worker.
    A failing worker makes torchrun raise, so the stage fails as it would in one process.
    """
    if cfg.nproc <= 1 or "LOCAL_RANK" in os.environ:
        return False
    from torch.distributed.run import main as torchrun  # deferred: only multi-process runs need it

    argv = sys.argv if argv is None else argv
    torchrun(["--standalone", f"--nproc-per-node={cfg.nproc}", *argv])
    return True


def backend_for(cfg: DDP, device: torch.device) -> str:
    """``auto``: NCCL for CUDA tensors, gloo for CPU ones."""
    if cfg.backend != "auto":
        return cfg.backend
    return "nccl" if device.type == "cuda" else "gloo"


def start(cfg: DDP, device: torch.device) -> DistInfo:
    """Join the torchrun job described by the environment (a no-op outside one).

    On CUDA each process takes the GPU matching its ``LOCAL_RANK``, so ``torch.device("cuda")``
    means that GPU from here on. The process group is torn down when the process exits.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return current()
    if not dist.is_available():
        raise RuntimeError("train.ddp needs a torch build with torch.distributed; set train.ddp.nproc: 1")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    backend = backend_for(cfg, device)
    dist.init_process_group(backend)
    atexit.register(_stop)
    info = current()
    if info.is_main:
        print(f"train.ddp: {info.world} processes, {backend} backend")
    return info


def _stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op in one process). The stages end on one so that no rank tears the process group
    down while rank 0 still writes: a gloo worker that exited early sometimes aborted the job at teardown."""
    if current().world > 1:
        dist.barrier()


def all_sum(*values: torch.Tensor | float) -> list[float]:
    """Sum scalars over all ranks (identity in a single process)."""
    if current().world == 1:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (so all ranks take the same early-stopping and lr decisions)."""
    if current().world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
