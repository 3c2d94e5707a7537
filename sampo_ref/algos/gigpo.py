"""GiGPO: Group-in-Group Policy Optimization (L. Feng et al., arXiv 2505.10978), as in ARLArena.

GiGPO keeps GRPO's episode-level group advantage and adds a step-level one: inside each group,
turns that act in the same state (same raw anchor observation) form a *step group*, and their
discounted step returns are compared with each other. Its choice on the four axes, vs GRPO:

* advantage: A = A^E + omega * A^S. A^E is GRPO's group advantage of the row scores (S3, equal to
  (S2) in ``mean_std_norm`` mode, mean-centred only in ``mean_norm`` mode); A^S normalises the
  discounted step returns (S4), penalised per row (S5), inside anchor-state step groups (S6).
  Final advantage (S7). This file changes only this axis.
* ratio / clipping: unchanged, the PPO token clip with dual clip (S10), ``grpo.token_clip_loss``.
* aggregation: unchanged, token-mean (docs/dimensions.md#loss-aggregation).
* dynamic sampling: none (DAPO_GIGPO and SAMPO add the filter of ``dynamic_sampling.py``).

Docs page: ``docs/algorithms/gigpo.md``.

Defaults and their sources:
* mode = "mean_std_norm": the [ARL] and [VA] ALFWorld scripts; the [ARL] config default is
  "mean_norm", and [ARL]'s WebShop SAMPO script runs "mean_norm" (docs/algorithms/gigpo.md#key-equations, docs/algorithms/sampo.md).
* gamma = 0.95: the [ARL] scripts; the [ARL] config default is 1.0 (docs/algorithms/gigpo.md#key-equations).
* step_adv_weight omega = 1.0: ``[ARL] core_algos.py::compute_gigpo_outcome_advantage`` (docs/algorithms/gigpo.md#key-equations).
* invalid_penalty c_inv = 0.1: ``[ARL] ray_trainer.py::apply_invalid_action_penalty`` (docs/rollout.md#from-trajectories-to-rows).
* eps = 1e-6 in both z-scores: [ARL] ``episode_norm_reward``, ``step_norm_reward`` (docs/algorithms/gigpo.md#key-equations).
* grouping by exact anchor string; the reference's optional text-similarity grouping (off by
  default, threshold 0.95) is deliberately not implemented (docs/algorithms/gigpo.md#key-equations).

Shape legend: ``B`` rows (one row = one agent turn), ``N`` trajectories, ``G`` group size.
"""

from __future__ import annotations

import torch

from sampo_ref.algos import grpo
from sampo_ref.algos.common import dense_index, group_stats, row_scores, segment_mean
from sampo_ref.algos.grpo import grpo_advantages

GIGPO_MODES = ("mean_norm", "mean_std_norm")


def _check_mode(mode: str) -> None:
    if mode not in GIGPO_MODES:
        raise ValueError(f"unknown GiGPO mode {mode!r}; expected one of {GIGPO_MODES}")


def discounted_step_returns(
    env_reward: torch.Tensor, traj_index: torch.Tensor, turn_index: torch.Tensor, gamma: float = 0.95
) -> torch.Tensor:
    """Eq. (S4): G_{tau,k} = sum_{k' >= k} gamma^(k' - k) r^env_{tau,k'} -> (B,).

    env_reward (B,) is the reward after each row's action, **before** any invalid-action penalty;
    traj_index (B,) and turn_index (B,) identify the row. Rows may come in any order. A trajectory
    must not hold the same turn index twice. The exponent is the turn-index difference k' - k, so
    a trajectory whose turns are not contiguous is still discounted by elapsed turns.
    """
    # --8<-- [start:step_returns]
    traj, _ = dense_index(traj_index)  # (B,)
    traj_list, turn_list, reward = traj.tolist(), turn_index.tolist(), env_reward.tolist()
    # walk every trajectory backwards, from its last turn to its first
    order = sorted(range(len(reward)), key=lambda j: (traj_list[j], turn_list[j]), reverse=True)
    returns = [0.0] * len(reward)
    prev_traj = prev_turn = None
    running = 0.0
    for j in order:
        if traj_list[j] != prev_traj:
            running = 0.0  # the last turn of a new trajectory: nothing after it
        elif turn_list[j] == prev_turn:
            raise ValueError(f"trajectory {traj_index[j].item()} has turn {turn_list[j]} twice")
        else:
            running *= gamma ** (prev_turn - turn_list[j])
        # Eq. (S4), backwards: G_k = r_k + gamma * G_{k+1}
        running = reward[j] + running
        returns[j] = running
        prev_traj, prev_turn = traj_list[j], turn_list[j]
    return torch.tensor(returns, dtype=env_reward.dtype, device=env_reward.device)  # (B,)
    # --8<-- [end:step_returns]


def step_groups(anchors: list[str], group_index: torch.Tensor) -> torch.Tensor:
    """Anchor-state step groups of docs/algorithms/gigpo.md#key-equations -> step_group (B,) long, ids 0..n-1.

    Two rows share a step group iff they have the same group id **and** exactly the same raw
    anchor string (no normalisation). Repeated states inside one trajectory therefore join the
    same step group; identical strings under two group ids never do.
    """
    if len(anchors) != group_index.numel():
        raise ValueError(f"{len(anchors)} anchors for {group_index.numel()} rows")
    # --8<-- [start:step_groups]
    ids: dict[tuple[int, str], int] = {}
    step = [ids.setdefault((g, a), len(ids)) for g, a in zip(group_index.tolist(), anchors)]
    return torch.tensor(step, dtype=torch.long, device=group_index.device)  # (B,)
    # --8<-- [end:step_groups]


def step_group_sizes(step_group: torch.Tensor) -> torch.Tensor:
    """Rows per step group, (n,) long: the "step-group size" diagnostic of docs/algorithms/gigpo.md#logged-metrics."""
    inverse, n = dense_index(step_group)  # (B,)
    return torch.bincount(inverse, minlength=n)  # (n,)


def episode_advantages(
    scores: torch.Tensor, group_index: torch.Tensor, mode: str = "mean_std_norm", eps: float = 1e-6
) -> torch.Tensor:
    """Eq. (S3): A^E, GRPO's group statistics over all rows of the group, on the S1 scores -> (B,).

    ``mean_std_norm``: exactly (S2). ``mean_norm``: q_j - mu_g. Singleton group: mu = 0, sigma = 1.
    """
    _check_mode(mode)
    return grpo_advantages(scores, group_index, eps=eps, norm_by_std=mode == "mean_std_norm")


def step_advantages(
    step_return: torch.Tensor, step_group: torch.Tensor, mode: str = "mean_std_norm", eps: float = 1e-6
) -> torch.Tensor:
    """Eq. (S6): A^S, the penalised step returns (S5) normalised inside their step group -> (B,).

    Unbiased std. Singleton step group: A^S = 0 exactly (unlike the episode term's convention).
    A step group whose returns are all equal also gives exactly 0.
    """
    _check_mode(mode)
    # --8<-- [start:step_advantages]
    mean, std = group_stats(step_return, step_group)  # (B,), (B,)
    inverse, n = dense_index(step_group)  # (B,)
    _, count = segment_mean(step_return, inverse, n)  # (n,)
    centred = step_return - mean  # (B,)
    # Eq. (S6): mean_norm subtracts the step-group mean; mean_std_norm also divides by its std
    adv = centred if mode == "mean_norm" else centred / (std + eps)  # (B,)
    # Eq. (S6), singleton step group: no other row in this state to compare with
    return torch.where(count[inverse] == 1, torch.zeros_like(adv), adv)  # (B,)
    # --8<-- [end:step_advantages]


def gigpo_advantages(
    episode_return: torch.Tensor,
    env_reward: torch.Tensor,
    valid: torch.Tensor,
    anchors: list[str],
    group_index: torch.Tensor,
    traj_index: torch.Tensor,
    turn_index: torch.Tensor,
    gamma: float = 0.95,
    step_adv_weight: float = 1.0,
    mode: str = "mean_std_norm",
    invalid_penalty: float = 0.1,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Eqs. (S1), (S3)-(S7): the GiGPO advantage, one scalar per row -> adv (B,).

    episode_return (B,) is R_tau of the row's trajectory (no penalty); env_reward (B,) the reward
    after the row's action; valid (B,) v_j in {0, 1}; anchors the B raw anchor observations;
    group_index, traj_index (B,) any ids; turn_index (B,) k. Rows may come in any order.
    The one ``invalid_penalty`` c_inv makes both the row score (S1) and the step return (S5), so
    the two terms cannot disagree about it. ``mode`` is "mean_std_norm" or "mean_norm" (both terms).
    """
    _check_mode(mode)
    # --8<-- [start:gigpo_advantages]
    scores = row_scores(episode_return, valid, invalid_penalty)  # (B,)  Eq. (S1)
    episode_adv = episode_advantages(scores, group_index, mode, eps)  # (B,)  Eq. (S3)
    # Eq. (S4): discounted from the env rewards, before the penalty, so it never reaches k-1
    step_return = discounted_step_returns(env_reward, traj_index, turn_index, gamma)  # (B,)
    # Eq. (S5): G~_j = G_j - c_inv (1 - v_j), the row's own return only; same form as (S1)
    step_return = row_scores(step_return, valid, invalid_penalty)  # (B,)
    step_adv = step_advantages(step_return, step_groups(anchors, group_index), mode, eps)  # (B,)
    # Eq. (S7): A_j = A^E_j + omega * A^S_j
    return episode_adv + step_adv_weight * step_adv  # (B,)
    # --8<-- [end:gigpo_advantages]


# ----------------------------------------------------------------------------- entry points

DEFAULTS = {**grpo.DEFAULTS, "gigpo_mode": "mean_std_norm", "gamma": 0.95, "step_adv_weight": 1.0}
ADVANTAGE = "GiGPO (S7)"
SURROGATE = grpo.SURROGATE  # no change on the ratio axis
PG_AGG = None  # the configured mode
FILTER = None  # none (DAPO_GIGPO is a preset that adds the DAPO filter)
SEQ_MASK = True  # the surrogate is GRPO's token clip
policy_loss = grpo.policy_loss


def advantages(batch, cfg) -> torch.Tensor:
    """Eq. (S7) on a TurnBatch: episode term + ω × anchor-state step term; adv (B,)."""
    return gigpo_advantages(batch.episode_return, batch.env_reward, batch.valid, batch.anchors,
                            batch.group_index, batch.traj_index, batch.turn_index, gamma=cfg.gamma,
                            step_adv_weight=cfg.step_adv_weight, mode=cfg.gigpo_mode,
                            invalid_penalty=cfg.invalid_penalty)
