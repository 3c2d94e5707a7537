"""GRPO: Group Relative Policy Optimization (DeepSeekMath, arXiv 2402.03300), multi-turn form.

GRPO is the baseline every other variant is described against. Its choice on the four axes:

* advantage: group z-score of the row scores (S1), with the statistics taken over **all turn-rows**
  of the group, Eq. (S2). ``per_trajectory=True`` gives the "vanilla GRPO" alternative of docs/algorithms/grpo.md#key-equations.
* surrogate: PPO token clip with dual clip, Eq. (S10).
* aggregation: token-mean (docs/dimensions.md#loss-aggregation). The trainer calls ``common.aggregate``; this file only makes
  the per-token loss.
* dynamic sampling: none.

Docs page: ``docs/algorithms/grpo.md``.

Defaults and their sources:
* clip_low = clip_high = 0.2, dual_clip c = 3.0 (must be > 1):
  ``[ARL] recipe/world_agent/config/alfworld_.yaml`` (docs/algorithms/grpo.md#key-equations).
* eps = 1e-6 in the z-score: ``[ARL] core_algos.py::compute_grpo_outcome_advantage`` (docs/algorithms/grpo.md#key-equations).
* log-ratio clamp +-20 before exp: ``[ARL] core_algos.py::compute_policy_loss_vanilla`` (docs/notation.md).

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens, ``N`` trajectories.
"""

from __future__ import annotations

import torch

from sampo_ref.algos.common import Stat, Term, clip_stats, dense_index, group_stats, row_scores, segment_mean


def grpo_advantages(
    scores: torch.Tensor,
    group_index: torch.Tensor,
    traj_index: torch.Tensor | None = None,
    per_trajectory: bool = False,
    eps: float = 1e-6,
    norm_by_std: bool = True,
) -> torch.Tensor:
    """Eq. (S2): A_j = (q_j - mu_g) / (sigma_g + eps), one scalar per row -> adv (B,).

    scores (B,) are the row scores of Eq. (S1); group_index (B,) and traj_index (B,) are ids.
    Default: mu_g, sigma_g over all rows of the group, so longer trajectories weigh more.
    ``per_trajectory=True``: each trajectory first contributes the mean of its rows' scores, and
    mu_g, sigma_g are taken over those means; the row still uses its own score q_j (docs/algorithms/grpo.md#key-equations).
    Singleton group: mu = 0, sigma = 1. Constant group: every A_j is exactly 0.
    ``norm_by_std=False``: A_j = q_j - mu_g, the Dr. GRPO advantage (arXiv 2503.20783 §3.2).
    """
    # --8<-- [start:grpo_advantages]
    if not per_trajectory:
        mean, std = group_stats(scores, group_index)  # (B,), (B,)
    else:
        if traj_index is None:
            raise ValueError("per_trajectory=True needs traj_index (B,), got None")
        traj_inv, n_traj = dense_index(traj_index)  # (B,)
        traj_mean, _ = segment_mean(scores, traj_inv, n_traj)  # (N,)  s-bar_tau
        traj_group = group_index.new_zeros(n_traj).scatter_(0, traj_inv, group_index)  # (N,)
        if not torch.equal(traj_group[traj_inv], group_index):
            raise ValueError("a trajectory id appears under two different group ids")
        mean_t, std_t = group_stats(traj_mean, traj_group)  # (N,), (N,)
        mean, std = mean_t[traj_inv], std_t[traj_inv]  # (B,), (B,)
    # Eq. (S2): the row's own score against its group's statistics
    if not norm_by_std:
        return scores - mean  # (B,)
    return (scores - mean) / (std + eps)  # (B,)
    # --8<-- [end:grpo_advantages]


def token_clip_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = 3.0,
) -> tuple[torch.Tensor, dict[str, Stat]]:
    """Eq. (S10): per-token PPO clip loss with dual clip, to be minimised -> (loss (B, T), stats).

    logp, logp_old, mask (B, T); adv (B,) one value per row (a (B, T) advantage also works).
    Gradient: d loss / d logp = -kappa * A, with kappa = w or exactly 0 (table in docs/algorithms/grpo.md#key-equations).
    ``dual_clip=None`` disables the dual clip. The loss is exactly 0 where mask is 0.
    stats (``Stat``s, detached): clipfrac, clipfrac_lower, ppo_kl, all over the valid tokens of mask.
    """
    if dual_clip is not None and not dual_clip > 1.0:
        raise ValueError(f"dual_clip must be > 1 or None, got {dual_clip!r}")
    if not 0.0 <= clip_low <= 1.0 or not clip_high >= 0.0:
        raise ValueError(
            f"need 0 <= clip_low <= 1 and clip_high >= 0, got {clip_low!r}, {clip_high!r}"
        )
    if adv.dim() == logp.dim() - 1:
        adv = adv.unsqueeze(-1)  # (B, 1), broadcast over the row's tokens

    # --8<-- [start:token_clip]
    log_ratio = logp - logp_old  # (B, T)  lambda
    ratio = torch.exp(torch.clamp(log_ratio, -20.0, 20.0))  # (B, T)  w; |lambda| > 20 -> kappa = 0
    pg_unclipped = -adv * ratio  # (B, T)
    pg_clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)  # (B, T)
    # Eq. (S10), first part: the pessimistic (larger) of the two losses
    loss = torch.maximum(pg_unclipped, pg_clipped)  # (B, T)
    if dual_clip is not None:
        # Eq. (S10), dual clip, for A < 0 only: cap the loss at -c * A, so w > c gets kappa = 0
        capped = torch.minimum(loss, -dual_clip * adv)  # (B, T)
        loss = torch.where(adv < 0, capped, loss)  # (B, T)
    # where(), not * mask: padding gets exactly zero loss and zero gradient
    loss = torch.where(mask.bool(), loss, torch.zeros_like(loss))  # (B, T)
    # --8<-- [end:token_clip]

    with torch.no_grad():
        # clipped branch strictly larger: (A > 0, w > 1 + eps_h) or (A < 0, w < 1 - eps_l)
        clipped = pg_clipped > pg_unclipped  # (B, T)
        dual = (adv < 0) & (ratio > dual_clip) if dual_clip is not None else None  # (B, T)
    stats = clip_stats(clipped, logp, logp_old, mask, dual)
    return loss, stats


# ----------------------------------------------------------------------------- entry points
# The method as data, and the two calls the trainer makes (sampo_ref/algos/__init__.py explains the contract).

# --8<-- [start:entry_points]
DEFAULTS = dict(clip_low=0.2, clip_high=0.2, dual_clip=3.0)  # the sources are listed in the module docstring
ADVANTAGE = "GRPO (S2)"  # the four axes, as ``sampo-ref list`` prints them
SURROGATE = "token clip ε {clip_low:g}/{clip_high:g}, dual c {dual_clip:g}"
PG_AGG = None  # the policy term uses the configured mode (token-mean in ARLArena's row)
FILTER = None  # no dynamic sampling
SEQ_MASK = True  # the sequence mask (S17) may be applied to this surrogate


def advantages(batch, cfg) -> torch.Tensor:
    """Row scores (S1) → group z-scores (S2); adv (B,)."""
    scores = row_scores(batch.episode_return, batch.valid, cfg.invalid_penalty)  # (B,)
    return grpo_advantages(scores, batch.group_index, norm_by_std=cfg.norm_adv_by_std)  # (B,)


def policy_loss(logp, batch, masks, cfg):
    """Token clip with dual clip (S10) on the rows of ``batch`` -> ({"pg": term}, stats)."""
    loss, stats = token_clip_loss(logp, batch.logp_old.to(logp.device), batch.adv.to(logp.device), masks["policy"],
                                  cfg.clip_low, cfg.clip_high, cfg.dual_clip)
    return {"pg": Term(loss, "policy", cfg.loss_agg)}, stats
# --8<-- [end:entry_points]
