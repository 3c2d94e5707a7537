"""EMPG: Entropy-Modulated Policy Gradients (arXiv 2509.09265), as in ARLArena.

EMPG rescales a finished GRPO advantage by how certain the old policy was on each turn: confident
turns (low entropy) get their advantage amplified, uncertain ones damped, and a turn is rewarded a
little when the **next** turn of its trajectory is confident ("future clarity"). Its choice on
the four axes, vs GRPO:

* advantage: GRPO (S2) -> per-row entropy scaling g and next-turn bonus f (S8) -> re-centred by
  the batch mean (S9). This file changes only this axis.
* ratio / clipping: unchanged, the PPO token clip with dual clip (S10), ``grpo.token_clip_loss``.
* aggregation: unchanged, token-mean (docs/dimensions.md#loss-aggregation).
* dynamic sampling: none.

Docs page: ``docs/algorithms/empg.md``.

Defaults and their sources:
* k = 1, k_f = 1, zeta = 0.05: hard-coded in ``[ARL] core_algos.py::compute_EMPG_advantage``; an
  older copy used zeta = 0.1; the EMPG paper fixes k = k' = 1 (secondary) (docs/algorithms/empg.md#key-equations).
* 1e-8 in the min-max normalisation and in g's denominator: the same function (docs/algorithms/empg.md#key-equations).
* turn index k is a row field here; the reference parses it from the prompt (project choice,
  docs/algorithms/empg.md#key-equations).

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens, ``N`` trajectories.
"""

from __future__ import annotations

import torch

from sampo_ref.algos import grpo
from sampo_ref.algos.common import dense_index, masked_mean


def turn_entropy(entropy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """H_j: mean old-policy token entropy over the row's response tokens, (B, T) -> (B,).

    entropy (B, T) is the full-vocabulary entropy of pi_old at each position (the trainer's
    ``entropy_old``); mask (B, T) the response mask. A row with no response token gives 0.
    """
    return masked_mean(entropy, mask, dim=-1)  # (B,)


def minmax_normalise(turn_entropy: torch.Tensor) -> torch.Tensor:
    """docs/algorithms/empg.md#key-equations step 3: H~_j = (H_j - min_B H) / (max_B H - min_B H + 1e-8), over the whole batch.

    (B,) -> (B,) in [0, 1). A batch of equal entropies gives 0 everywhere.
    """
    # --8<-- [start:normalise_and_scale]
    low, high = turn_entropy.min(), turn_entropy.max()
    return (turn_entropy - low) / (high - low + 1e-8)  # (B,)


def entropy_scale(norm_entropy: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """g_j = exp(-k H~_j) / (mean_B exp(-k H~) + 1e-8), self-calibrating: batch mean ~ 1 -> (B,).

    [EMPG paper, Eq. 10]. k = 0 gives g = 1 / (1 + 1e-8) for every row.
    """
    weight = torch.exp(-k * norm_entropy)  # (B,)
    return weight / (weight.mean() + 1e-8)  # (B,)
    # --8<-- [end:normalise_and_scale]


def next_turn_row(traj_index: torch.Tensor, turn_index: torch.Tensor) -> torch.Tensor:
    """For each row, the row of turn k+1 of the same trajectory, or -1 if there is none -> (B,) long.

    Rows may come in any order. A trajectory must not hold the same turn index twice.
    """
    traj, _ = dense_index(traj_index)  # (B,)
    stride = int(turn_index.max()) + 2  # key = traj * stride + k; k + 1 never reaches the next traj
    key = traj * stride + turn_index  # (B,)
    sorted_key, order = torch.sort(key)  # (B,), (B,)
    if bool((sorted_key[1:] == sorted_key[:-1]).any()):
        raise ValueError("a trajectory holds the same turn index twice")
    has_next = torch.zeros_like(key, dtype=torch.bool)  # (B,) in sorted order
    has_next[:-1] = sorted_key[1:] == sorted_key[:-1] + 1
    nxt_sorted = torch.where(has_next, order.roll(-1), torch.full_like(order, -1))  # (B,)
    nxt = torch.empty_like(order)  # (B,)
    nxt[order] = nxt_sorted  # back to the rows' own order
    return nxt  # (B,)


def empg_advantages(
    adv: torch.Tensor,
    turn_entropy: torch.Tensor,
    traj_index: torch.Tensor,
    turn_index: torch.Tensor,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.05,
) -> torch.Tensor:
    """Eqs. (S8)-(S9): the EMPG advantage, one scalar per row -> adv (B,).

    adv (B,) is the GRPO advantage (S2), penalty included; turn_entropy (B,) is H_j (see
    ``turn_entropy()``); traj_index (B,) any ids; turn_index (B,) k. Rows may come in any order.
    Every statistic (min, max, means) is over all B rows of the batch, each row counting once.
    """
    # --8<-- [start:empg_advantages]
    norm_entropy = minmax_normalise(turn_entropy)  # (B,)  H~
    scale = entropy_scale(norm_entropy, k)  # (B,)  g  [EMPG paper, Eq. 10]
    clarity = torch.exp(-k_f * norm_entropy)  # (B,)  f  [EMPG paper, Eq. 11]
    nxt = next_turn_row(traj_index, turn_index)  # (B,)
    # the bonus reads f of turn k+1 of the same trajectory; the last turn gets none
    bonus = torch.where(nxt >= 0, clarity[nxt.clamp(min=0)], torch.zeros_like(clarity))  # (B,)
    # Eq. (S8): A'_j = g_j A_j + zeta f_next(j) 1[next(j) exists]
    modulated = scale * adv + zeta * bonus  # (B,)
    # Eq. (S9): re-centre by the batch mean over rows; no division by a std
    return modulated - modulated.mean()  # (B,)
    # --8<-- [end:empg_advantages]


# ----------------------------------------------------------------------------- entry points

DEFAULTS = {**grpo.DEFAULTS, "empg_k": 1.0, "empg_k_f": 1.0, "empg_zeta": 0.05}
ADVANTAGE = "GRPO → EMPG (S8–S9)"
SURROGATE = grpo.SURROGATE  # no change on the ratio axis
PG_AGG = None  # the configured mode
FILTER = None  # no dynamic sampling
SEQ_MASK = True  # the surrogate is GRPO's token clip
policy_loss = grpo.policy_loss


def advantages(batch, cfg) -> torch.Tensor:
    """GRPO (S2), then modulated by the old policy's turn entropy (S8) and re-centred (S9); adv (B,)."""
    h = turn_entropy(batch.entropy_old, batch.response_mask)  # (B,)
    return empg_advantages(grpo.advantages(batch, cfg), h, batch.traj_index, batch.turn_index,
                           k=cfg.empg_k, k_f=cfg.empg_k_f, zeta=cfg.empg_zeta)
