"""Multi-process runs under ``torchrun``: the process group from torchrun's environment,
disjoint shards of the inputs, and results gathered back in input order.

Inputs are sharded by stride: rank ``r`` of ``w`` takes items ``r, r + w, r + 2w, ...``.
Every item lands on exactly one rank, shards differ in length by at most one, and
:func:`unshard` puts per-rank results back in input order. No padding, so nothing is
evaluated twice (``torch.utils.data.DistributedSampler`` pads with repeats).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar('T')

# A rank waits this long for the slowest rank (scoring shards can take hours).
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=24)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_with_several_processes() -> bool:
    """True under ``torchrun`` (or any launcher setting its variables) with 2+ processes."""
    return int(os.environ.get('WORLD_SIZE', '1')) > 1


def current() -> Ranks:
    """This process's place in the initialised process group (0 of 1 without one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(),
                 int(os.environ.get('LOCAL_RANK', dist.get_rank())))


def setup(device: torch.device) -> Ranks:
    """Join the process group described by torchrun's environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ...) when there are several processes: NCCL for
    CUDA devices, gloo otherwise. A single process needs, and gets, no group."""
    if not launched_with_several_processes() or (dist.is_available() and dist.is_initialized()):
        return current()
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo',
                            timeout=COLLECTIVE_TIMEOUT)
    return current()


def device_for_rank(name: str) -> torch.device:
    """``cuda`` without an index means this rank's local GPU (``LOCAL_RANK``)."""
    device = torch.device(name.replace('gpu', 'cuda'))
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
    return device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(items: Sequence[T], ranks: Ranks) -> List[T]:
    return list(items[ranks.rank::ranks.world_size])


def unshard(parts: Sequence[Sequence[T]]) -> List[T]:
    """Inverse of :func:`shard`: ``parts[r]`` is rank r's shard, in shard order."""
    world_size = len(parts)
    merged: List[Any] = [None] * sum(len(part) for part in parts)
    for rank, part in enumerate(parts):
        expected = len(range(rank, len(merged), world_size))
        if len(part) != expected:
            raise ValueError(f'rank {rank} returned {len(part)} results for a shard of '
                             f'{expected} items')
        merged[rank::world_size] = part
    return merged


class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world_size, ...`` of a dataset of ``length`` items."""

    def __init__(self, length: int, ranks: Ranks):
        self.indices = range(ranks.rank, length, ranks.world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def all_gather(obj: T) -> List[T]:
    """``obj`` from every rank, in rank order (``[obj]`` without a process group)."""
    if not current().distributed:
        return [obj]
    gathered: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_from_main(obj: T) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not current().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if current().distributed:
        dist.barrier()
