"""Algorithms: one file per method, pure functions on tensors, and this registry.

Each file exposes the same entry points, which are all the trainer calls:

    advantages(batch: TurnBatch, cfg) -> Tensor (B,)                one scalar per row
    policy_loss(logp, batch, mask, cfg, **totals) -> (loss (B, T), stats)   per-token surrogate ℓ

and, where it differs from the default,

    PG_AGG              aggregation mode its policy term always uses (default: cfg.loss_agg)
    SEQ_MASK            whether the sequence mask (S17) may be applied to its surrogate
    FILTER              a dynamic-sampling function that is part of the method (SAMPO)
    minibatch_totals    mini-batch-wide counts its loss needs (Search-Agent SAPO's N_P)

The trainer aggregates, adds the KL and entropy terms and steps; nothing else differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from sampo_ref.algos import cispo, empg, gigpo, grpo, gspo, sampo, sapo, soft_sapo


@dataclass(frozen=True)
class Algorithm:
    name: str
    advantages: Callable
    policy_loss: Callable
    pg_agg: str | None  # forced aggregation of the policy term, or None = cfg.loss_agg
    seq_mask: bool  # the sequence mask (S17) may be applied
    filter: Callable | None  # dynamic sampling that is part of the method
    minibatch_totals: Callable | None


def _from_module(module: ModuleType) -> Algorithm:
    return Algorithm(
        module.__name__.rsplit(".", 1)[-1], module.advantages, module.policy_loss,
        getattr(module, "PG_AGG", None), getattr(module, "SEQ_MASK", False), getattr(module, "FILTER", None),
        getattr(module, "minibatch_totals", None),
    )


ALGORITHMS: dict[str, Algorithm] = {
    m.__name__.rsplit(".", 1)[-1]: _from_module(m) for m in (grpo, gspo, gigpo, empg, soft_sapo, cispo, sapo, sampo)
}
