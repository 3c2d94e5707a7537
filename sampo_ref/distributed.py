"""Data-parallel training over ``torchrun`` (docs/scaling.md): the same mathematics on W processes.

    torchrun --nproc-per-node 2 -m sampo_ref.cli train …       # one process per GPU (or CPU, gloo)

What each rank does, and why the update equals the single-process one:

* **rollout**: the N tasks of an iteration are drawn from the shared random stream (the same on
  every rank); rank r plays the whole task groups r, r + W, … (its own generation seeds), and the
  trajectories are gathered, in rank order, to every rank. So every rank holds the same rows:
  the same advantages, the same dynamic-sampling decisions, the same mini-batch order;
* **log-probs and loss**: each rank computes rows r, r + W, … of each (mini-)batch. Old
  log-probs, entropies and the sequence mask's keep flags are gathered back to every rank, so
  every mini-batch-wide count (aggregation denominators, Search-Agent SAPO's N_P, the sequence
  mask's token counts) is taken over the *whole* mini-batch, exactly as in one process. A rank's
  loss is its rows' partial sum over those global denominators; summed over ranks it is the
  mini-batch loss, so the gradient is the single-process gradient (DDP and FSDP average over
  ranks, hence the factor W on each rank's loss);
* **logging and checkpoints**: rank 0 writes; every rank reads the same checkpoint on resume.

What is not the same as one process: the random streams of generation (each rank samples its
own groups with its own seeds), so a W-rank run is a different, equally valid sample of the
same training process. Every rank runs the same number of forward passes (the shorter shards
are padded with one zero-weight row), as FSDP's collectives require.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DataParallel:
    """This process's place among ``world`` ranks, and the collectives the trainer uses."""

    rank: int
    world: int
    device: torch.device
    fsdp: bool = False
    wrapped: torch.nn.Module | None = None  # the module the update's forward runs through (DDP wrapper)

    @classmethod
    def from_env(cls, device: str = "auto", fsdp: bool = False) -> "DataParallel | None":
        """The group torchrun describes (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPUs; else None."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        where = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(where)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        return cls(rank, world, where, fsdp)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, items: list) -> list:
        """This rank's share of a list: items r, r + W, …"""
        return items[self.rank :: self.world]

    def gather(self, items: list) -> list:
        """Every rank's list, concatenated in rank order, on every rank."""
        parts: list = [None] * self.world
        dist.all_gather_object(parts, items)
        return [x for part in parts for x in part]

    def micro_batches(self, rows: torch.Tensor, size: int) -> list[tuple[torch.Tensor, bool]]:
        """This rank's rows of ``rows`` in micro-batches of at most ``size``; every rank gets the
        same number. A rank with fewer rows gets (one row, True = zero weight) fillers instead."""
        mine = rows[self.rank :: self.world]
        count = math.ceil(math.ceil(len(rows) / self.world) / size) if len(rows) else 0
        chunks = torch.tensor_split(mine, count) if count else []
        return [(c, False) if len(c) else (rows[:1], True) for c in chunks]

    def gather_rows(self, values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
        """(n, …) on every rank from each rank's ``values`` (k, …) at rows ``index`` (k,)."""
        parts: list = [None] * self.world
        dist.all_gather_object(parts, (index.cpu(), values.cpu()))
        out = torch.empty((n, *values.shape[1:]), dtype=values.dtype)
        for idx, v in parts:
            out[idx] = v
        return out

    def sum(self, totals: dict[str, float]) -> dict[str, float]:
        """Each key's sum over ranks (the partial sums of a mini-batch add up to its value)."""
        keys = sorted(set().union(*self.gather([list(totals)])))
        values = torch.tensor([totals.get(k, 0.0) for k in keys], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(values)
        return dict(zip(keys, values.tolist()))

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def wrap(self, model: torch.nn.Module) -> None:
        """DDP (every rank a full copy), or FSDP2 ``fully_shard`` per decoder layer and the root
        (parameters, gradients and optimiser state sharded over the ranks)."""
        if self.fsdp:
            from torch.distributed.fsdp import fully_shard

            for layer in model.model.layers:
                fully_shard(layer)
            fully_shard(model)
            self.wrapped = model
        else:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)

    def full_state(self, model, optimizer) -> tuple[dict, dict]:
        """The full (unsharded) model and optimiser state dicts of an FSDP2 model, on CPU (a
        collective: every rank calls it)."""
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_optimizer_state_dict)

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, optimizer, options=options)

    def optimizer_io(self, model, optimizer):
        """What ``checkpoint.restore`` loads the optimiser state into: the optimiser itself (DDP:
        every rank a full copy), or an adapter that shards a full state dict over the ranks (FSDP)."""
        return _FullOptimizerState(model, optimizer) if self.fsdp else optimizer

    def no_sync(self, last: bool):
        """Accumulate gradients without communication, except on the last micro-batch."""
        if last:
            return contextlib.nullcontext()
        if self.fsdp:
            return _fsdp_no_sync(self.wrapped)
        return self.wrapped.no_sync()

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class _FullOptimizerState:
    """``load_state_dict`` of an FSDP2 model's optimiser from a full (unsharded) state dict."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer

    def load_state_dict(self, state: dict) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(self.model, self.optimizer, state, options=StateDictOptions(full_state_dict=True))


@contextlib.contextmanager
def _fsdp_no_sync(model):
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def full_value(x) -> float:
    """A Python float from a tensor that may be an FSDP2 ``DTensor`` (e.g. the gradient norm)."""
    return float(x.full_tensor() if hasattr(x, "full_tensor") else x)
