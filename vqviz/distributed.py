"""Training on several processes with ``torchrun``: PyTorch's DistributedDataParallel.

    torchrun --nproc_per_node=2 -m vqviz train seq --dataset mnist

``torchrun`` starts one process per GPU (or per CPU worker) and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environments.
:func:`session` reads them and joins the process group: NCCL when training on
GPUs, gloo on CPUs. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every
function here is a no-op that returns its input, so single-process code is
unchanged.

What runs where:

- :class:`vqviz.train.Trainer` wraps each stage's modules in DDP and feeds each
  rank a disjoint shard of every epoch through a ``DistributedSampler``; the
  batch size stays the global one (each rank takes its share), so the same
  command gives the same optimisation on 1 or N processes. Epoch means of the
  loss terms are averaged over the ranks.
- Whole-split passes (SEQ's features for k-means) are split across ranks and
  gathered with :func:`map_shards`, so every rank sees every sample's feature.
- Rank 0 alone writes the checkpoint (:func:`is_main`); the others wait for it.

Buffers that models update during the forward pass (VQ-VAE's EMA codebook,
SK-VQ's Sinkhorn scalings, batch-norm statistics) are broadcast from rank 0 at
every step, as DDP does by default: their statistics come from rank 0's batches.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Callable, Iterator

import torch
import torch.distributed as dist

from .errors import ConfigError
from .utils import resolve_device


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank: 0 when not distributed."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes: 1 when not distributed."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the process that writes and prints."""
    return rank() == 0


def requested() -> bool:
    """True when ``torchrun`` (or a launcher like it) asked for more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def device_for(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``device`` for this process: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
    resolved = resolve_device(device)
    if resolved.type == "cuda" and resolved.index is None and requested():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return resolved


@contextlib.contextmanager
def session(device: str | torch.device = "auto", timeout_s: float = 1800) -> Iterator[None]:
    """Join torchrun's process group for the duration of the block, then leave it.

    NCCL when ``device`` resolves to CUDA, gloo otherwise. Does nothing without
    torchrun, or when a process group already exists (the caller owns it).
    """
    if not requested() or (dist.is_available() and dist.is_initialized()):
        yield
        return
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 asks for distributed training, but this PyTorch has no torch.distributed")
    target = device_for(device)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    backend = "nccl" if target.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if active():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. a download into a shared cache); the others then follow."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def _collective_tensor(t: torch.Tensor) -> torch.Tensor:
    # gloo works on CPU tensors, NCCL on CUDA tensors: move to the backend's device.
    if dist.get_backend() == "nccl":
        return t.to(torch.device("cuda", torch.cuda.current_device()))
    return t.cpu()


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average each number over the ranks (every rank passes the same keys)."""
    if not active() or not values:
        return values
    keys = sorted(values)
    t = _collective_tensor(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64))
    dist.all_reduce(t)
    return dict(zip(keys, (t / world_size()).tolist()))


def any_true(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (e.g. a non-finite loss)."""
    if not active():
        return flag
    t = _collective_tensor(torch.tensor([int(flag)], dtype=torch.int32))
    dist.all_reduce(t)  # the number of ranks that raised the flag
    return t.item() > 0


def shard(n: int, of_rank: int | None = None) -> slice:
    """A rank's contiguous part of ``range(n)`` (default: this rank's); parts differ in size by at most one."""
    r, w = rank() if of_rank is None else of_rank, world_size()
    return slice(r * n // w, (r + 1) * n // w)


def map_shards(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)``, with each rank computing its :func:`shard` of the rows and every rank getting all of them.

    ``fn`` maps (n, ...) -> (n, ...). The result is on the device ``fn`` returns, in row order.
    """
    if not active():
        return fn(x)
    n, w = len(x), world_size()
    part = fn(x[shard(n)])
    sizes = [len(range(n)[shard(n, i)]) for i in range(w)]
    # all_gather needs equal shapes: pad every part to the largest, then cut.
    padded = part.new_zeros((max(sizes), *part.shape[1:]))
    padded[: len(part)] = part
    send = _collective_tensor(padded)
    parts = [torch.empty_like(send) for _ in range(world_size())]
    dist.all_gather(parts, send)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(part.device)


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Rank ``src``'s copy of ``t`` (same shape and dtype on every rank), on ``t``'s device."""
    if not active():
        return t
    buf = _collective_tensor(t.clone())
    dist.broadcast(buf, src)
    return buf.to(t.device)
