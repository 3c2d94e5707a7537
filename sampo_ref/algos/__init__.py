"""Algorithms: one file per method, pure functions on tensors, and this registry.

Each file is the complete definition of its method. It states, as data,

    DEFAULTS     its hyper-parameters (config fields), with their sources in the module docstring
    ADVANTAGE    the advantage axis, in words (``sampo-ref list``)
    SURROGATE    the ratio / clipping axis, a template filled from the config
    PG_AGG       the aggregation its policy term always uses, or None for the configured mode
    FILTER       a dynamic-sampling function that is part of the method (SAMPO), or None
    SEQ_MASK     whether the sequence mask (S17) may be applied to its surrogate

and exposes the two calls the trainer makes:

    advantages(batch: TurnBatch, cfg) -> Tensor (B,)                one scalar per row
    policy_loss(logp, batch, masks, cfg) -> (terms, stats)         the loss's named parts, per token

``terms`` maps a name ("pg", and Search-Agent SAPO's "ckl") to a ``common.Term``: per-token values,
the mask they are aggregated over and its mode, a coefficient; ``stats`` maps names to
``common.Stat`` diagnostics. A method that aggregates a term over a mask of its own adds that
mask for the whole mini-batch with ``minibatch_masks(batch, policy_mask, cfg)`` (Search-Agent SAPO).
The trainer counts every mask once per mini-batch, aggregates, adds the KL and entropy terms and
steps; nothing else differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from sampo_ref.algos import cispo, empg, gigpo, grpo, gspo, sampo, sapo, soft_sapo


@dataclass(frozen=True)
class Algorithm:
    name: str
    defaults: dict  # the method's config values, applied over the base defaults (presets.resolve)
    advantage: str  # the advantage axis in words
    surrogate: str  # the ratio / clipping axis, a str.format template over the config's fields
    pg_agg: str | None  # forced aggregation of the policy term, or None = cfg.loss_agg
    filter: Callable | None  # dynamic sampling that is part of the method
    seq_mask: bool  # the sequence mask (S17) may be applied
    advantages: Callable
    policy_loss: Callable
    minibatch_masks: Callable | None  # masks of its own terms over the mini-batch, or None


def _from_module(module: ModuleType) -> Algorithm:
    """Every file states every axis: a missing attribute is an error, not a silent default."""
    return Algorithm(
        module.__name__.rsplit(".", 1)[-1], module.DEFAULTS, module.ADVANTAGE, module.SURROGATE, module.PG_AGG,
        module.FILTER, module.SEQ_MASK, module.advantages, module.policy_loss,
        getattr(module, "minibatch_masks", None),  # only methods with a term over a mask of their own
    )


ALGORITHMS: dict[str, Algorithm] = {
    m.__name__.rsplit(".", 1)[-1]: _from_module(m) for m in (grpo, gspo, gigpo, empg, soft_sapo, cispo, sapo, sampo)
}
