"""Algorithms: pure functions on tensors (advantages, surrogate losses, aggregation).

Each variant is one file that exposes two entry points with the same signatures,

    advantages(batch: TurnBatch, cfg: TrainConfig) -> Tensor (B,)          one scalar per row
    policy_loss(logp, batch, cfg) -> (loss (B, T), stats: dict)           per-token surrogate ℓ

plus ``PG_AGG``: the aggregation mode its policy term always uses, or None for ``cfg.loss_agg``.
The trainer aggregates, adds the KL and entropy terms and steps; nothing else differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from sampo_ref.algos import grpo


@dataclass(frozen=True)
class Algorithm:
    name: str
    advantages: Callable
    policy_loss: Callable
    pg_agg: str | None  # forced aggregation of the policy term, or None = cfg.loss_agg


def _from_module(name: str, module: ModuleType) -> Algorithm:
    return Algorithm(name, module.advantages, module.policy_loss, getattr(module, "PG_AGG", None))


ALGORITHMS: dict[str, Algorithm] = {"grpo": _from_module("grpo", grpo)}
