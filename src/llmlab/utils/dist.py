"""Distributed helpers: which process this is under ``torchrun``, joining its process group, and summing over
ranks. Used by the training loop and by evaluations that shard their work (bits per byte).

    from llmlab.utils.dist import dist_info, all_reduce_sum
    rank, world = dist_info()            # (0, 1) outside torchrun

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def dist_info() -> tuple[int, int]:
    """(rank, world_size) of this process: from torch.distributed if initialised, else from torchrun's env."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes (gloo on CPU, NCCL on GPU); a no-op for one process."""
    rank, world = dist_info()
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return dist_info()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (in place; identity for one process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
