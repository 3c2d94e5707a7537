"""Dynamic sampling: the DAPO group filter (DAPO, arXiv 2503.14476 §3.2), as in ARLArena.

A group whose G trajectories all got the same raw return teaches nothing: its scores are constant
up to the invalid-action penalty, so GRPO gives it (almost) zero advantage. The filter drops such
groups and rolls out again until the batch is full or a try limit is hit. Its choice on the four
axes, vs GRPO:

* advantage: unchanged (whatever the variant computes, on the kept groups only).
* ratio / clipping: unchanged.
* aggregation: unchanged.
* dynamic sampling: this file. Resample, keep non-uniform groups, fill the last try's deficit with
  uniform groups if needed, truncate by whole groups (docs/algorithms/dynamic_sampling.md#the-rule).

Pure and independent of models and environments: ``rollout`` is any callable that runs one fresh
rollout (new resets, new tasks, new group ids) and returns its groups. [ARL] ALFWorld's DAPO_GRPO
row is plain GRPO + this filter; DAPO_GIGPO and SAMPO put it in front of GiGPO (docs/algorithms/dynamic_sampling.md#the-rule, docs/algorithms/sampo.md).

Docs page: ``docs/algorithms/dynamic_sampling.md``.

Settings and their sources (no defaults in the signatures; the presets pass them):
* max_tries (``max_num_gen_batches``) = 3, cold_start_steps = 15: [ARL] ALFWorld DAPO and SAMPO
  scripts; WebShop SAMPO uses cold start 5; the [ARL] config default is 10 and 0 (docs/algorithms/dynamic_sampling.md#the-rule).
* target = train_batch_size * G trajectories (docs/algorithms/dynamic_sampling.md#the-rule, step 1).
* the uniformity test is exact equality of raw returns, before any penalty:
  ``[ARL] multi_turn_rollout/utils.py::filter_group_data`` (docs/algorithms/dynamic_sampling.md#the-rule).

Shape legend: ``G`` group size, ``N`` trajectories.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

Group = TypeVar("Group")  # any object holding one group's G trajectories

ARL = dict(filter_groups=True, max_num_gen_batches=3, cold_start_steps=15)  # the filter as [ARL] ALFWorld runs it


def _returns_attr(group) -> Sequence[float]:
    return group.returns


def is_uniform(returns: Sequence[float]) -> bool:
    """True iff every raw episode return R_tau of the group is exactly equal (docs/algorithms/dynamic_sampling.md#the-rule).

    Exact ``==``, no tolerance: 0.1 + 0.2 and 0.3 differ. A one-trajectory group is uniform.
    """
    if len(returns) == 0:
        raise ValueError("a group has no trajectories")
    return all(r == returns[0] for r in returns)


# --8<-- [start:filter_active]
def filter_active(step: int, cold_start_steps: int, enabled: bool, training: bool) -> bool:
    """docs/algorithms/dynamic_sampling.md#the-rule, when it is active: enabled, a training rollout, and step > cold_start_steps.

    Global steps count from 1, so with cold_start_steps = 15 the filter first runs at step 16.
    Validation rollouts (training=False) are never filtered.
    """
    if step < 1:
        raise ValueError(f"global steps count from 1, got step={step}")
    return enabled and training and step > cold_start_steps
# --8<-- [end:filter_active]


def dynamic_sample(
    rollout: Callable[[], list[Group]],
    target_trajectories: int,
    group_size: int,
    max_tries: int,
    returns_of: Callable[[Group], Sequence[float]] = _returns_attr,
) -> tuple[list[Group], dict]:
    """docs/algorithms/dynamic_sampling.md#the-rule, step by step -> (kept groups, info).

    rollout() runs one fresh rollout and returns its groups, in order. ``returns_of(group)`` gives
    the G raw episode returns of a group (default: ``group.returns``). Every group must hold
    exactly ``group_size`` trajectories and the target must be a multiple of ``group_size``.
    The kept groups never exceed the target; they can hold uniform groups only if the last try
    was reached. info: tries (rollout calls), groups_seen, uniform_seen, uniform_dropped,
    uniform_filler (uniform groups kept on the last try), surplus_dropped (non-uniform groups cut
    by truncation or left over), trajectories_kept.
    """
    if group_size < 1 or max_tries < 1:
        raise ValueError(f"need group_size >= 1 and max_tries >= 1, got {group_size}, {max_tries}")
    if target_trajectories < 0 or target_trajectories % group_size != 0:
        raise ValueError(
            f"target_trajectories={target_trajectories} must be a non-negative multiple of "
            f"group_size={group_size} (train_batch_size * G)"
        )
    info = dict(tries=0, groups_seen=0, uniform_seen=0, uniform_dropped=0, uniform_filler=0,
                surplus_dropped=0, trajectories_kept=0)
    # --8<-- [start:resample]
    pool: list[Group] = []
    # 1.-2. empty pool; roll out again while short of the target and tries are left
    while len(pool) * group_size < target_trajectories and info["tries"] < max_tries:
        info["tries"] += 1
        groups = rollout()  # fresh resets: new tasks, new group ids
        uniform = []
        for group in groups:
            returns = returns_of(group)
            if len(returns) != group_size:
                raise ValueError(f"a group has {len(returns)} trajectories, expected {group_size}")
            uniform.append(is_uniform(returns))
        info["groups_seen"] += len(groups)
        info["uniform_seen"] += sum(uniform)
        need = target_trajectories - len(pool) * group_size  # trajectories still missing
        informative = [g for g, u in zip(groups, uniform) if not u]
        last = info["tries"] == max_tries
        if not last:
            # 3. not the last try: only non-uniform groups
            kept = informative
        else:
            # 4. last try: floor(deficit / G) groups, non-uniform first, then uniform, in order
            filler = [g for g, u in zip(groups, uniform) if u]
            kept = (informative + filler)[: need // group_size]
        # 5. truncate by whole groups to floor(need / G) * G trajectories (a no-op after 4.)
        kept = kept[: need // group_size]
        n_filler = max(0, len(kept) - len(informative))  # uniform groups sit after the others
        info["uniform_filler"] += n_filler
        info["uniform_dropped"] += sum(uniform) - n_filler
        info["surplus_dropped"] += len(informative) - (len(kept) - n_filler)
        pool += kept
    # 6. so the batch never exceeds the target
    info["trajectories_kept"] = len(pool) * group_size
    # --8<-- [end:resample]
    return pool, info
