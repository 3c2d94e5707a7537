"""GSPO: Group Sequence Policy Optimization (Qwen, arXiv 2507.18071), one ratio per turn.

Relative to GRPO, on the four axes:

* advantage: unchanged, the group z-score (S2). (SAMPO swaps in GiGPO, docs/algorithms/sampo.md.)
* ratio / clipping: one importance ratio per turn-row, the geometric mean of its token ratios
  s_j (S11), clipped once per turn in the GSPO-token form (S12); no dual clip; the log-ratio is
  not clamped at +-20, only log s is capped at 10.
* aggregation: the policy term is ALWAYS ``seq-mean-token-mean`` (``PG_AGG``), whatever the
  configured mode; the KL and entropy terms keep the configured mode (docs/algorithms/gspo.md#key-equations, docs/dimensions.md#loss-aggregation).
* dynamic sampling: none (SAMPO adds the DAPO filter, docs/algorithms/dynamic_sampling.md#the-rule, docs/algorithms/sampo.md).

Docs page: ``docs/algorithms/gspo.md``.

Defaults and their sources:
* clip_low = 3e-3, clip_high = 4e-3: [ARL] released ALFWorld scripts ``train_gspo.sh`` and
  ``train_sampo.sh`` (docs/algorithms/gspo.md#key-equations table; the GSPO paper, [VA] and [ARL-dev] use 3e-4 / 4e-4).
* cap log s <= 10 and no +-20 clamp: ``[ARL] core_algos.py::compute_policy_loss_gspo`` (docs/algorithms/gspo.md#key-equations).

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens.
"""

from __future__ import annotations

import torch

from sampo_ref.algos import grpo
from sampo_ref.algos.common import Stat, Term, clip_stats, masked_mean

PG_AGG = "seq-mean-token-mean"  # docs/algorithms/gspo.md#key-equations: GSPO's policy term is always aggregated this way


def seq_log_ratio(logp: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. (S11): log s_j = (1 / L_j) sum_t m_{j,t} lambda_{j,t}, lambda UNCLAMPED -> (B,).

    logp, logp_old, mask (B, T). A row with no response token gets log s = 0.
    Differentiable in ``logp``: d log s_j / d logp_{j,t} = m_{j,t} / L_j.
    """
    # --8<-- [start:seq_log_ratio]
    log_ratio = logp - logp_old  # (B, T)  lambda, no +-20 clamp (docs/algorithms/gspo.md#key-equations)
    # where(), not * mask: a non-finite log-prob on padding must not reach the row mean
    log_ratio = torch.where(mask.bool(), log_ratio, torch.zeros_like(log_ratio))  # (B, T)
    return masked_mean(log_ratio, mask, dim=-1)  # (B,)
    # --8<-- [end:seq_log_ratio]


def gspo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 3e-3,
    clip_high: float = 4e-3,
) -> tuple[torch.Tensor, dict[str, Stat]]:
    """Eq. (S12): GSPO-token per-token loss, to be minimised -> (loss (B, T), stats).

    logp, logp_old, mask (B, T); adv (B,), one value per row (a row-constant (B, T) also works).
    Every token of row j carries the value s_j, so the clip decision is made once per turn.
    Gradient: d loss_{j,t} / d logp_{j,t} = -kappa * A_j with kappa = s_j for the whole turn, or
    exactly 0 for the whole turn when (A > 0, s > 1 + eps_h), (A < 0, s < 1 - eps_l) or
    log s > 10. Under ``PG_AGG`` a row's gradient is -A_j grad s_j, Eq. (S13).
    The loss is exactly 0 where mask is 0.
    stats (``Stat``s, detached): clipfrac (share of valid tokens lying in clipped turns, so
    length-weighted), clipfrac_lower (always 0), ppo_kl (token mean of logp_old - logp) and
    seq_ratio_mean / _min / _max over the rows with at least one response token.
    """
    if not 0.0 <= clip_low <= 1.0 or not clip_high >= 0.0:
        raise ValueError(
            f"need 0 <= clip_low <= 1 and clip_high >= 0, got {clip_low!r}, {clip_high!r}"
        )
    if adv.dim() == logp.dim() - 1:
        adv = adv.unsqueeze(-1)  # (B, 1), broadcast over the row's tokens

    # --8<-- [start:gspo_token]
    log_seq_ratio = seq_log_ratio(logp, logp_old, mask)  # (B,)  Eq. (S11)
    # Eq. (S12): value log s_j on every token, gradient that of logp_{j,t}:
    #   log s_hat = min(10, logp - sg[logp] + sg[log s])
    log_seq_ratio_token = logp - logp.detach() + log_seq_ratio.detach().unsqueeze(-1)  # (B, T)
    log_seq_ratio_token = torch.clamp(log_seq_ratio_token, max=10.0)  # (B, T)  >10: kappa 0
    seq_ratio = torch.exp(log_seq_ratio_token)  # (B, T)  s_hat = s_j on every token of row j
    pg_unclipped = -adv * seq_ratio  # (B, T)
    pg_clipped = -adv * torch.clamp(seq_ratio, 1.0 - clip_low, 1.0 + clip_high)  # (B, T)
    # Eq. (S12): the pessimistic (larger) of the two losses, decided once per turn
    loss = torch.maximum(pg_unclipped, pg_clipped)  # (B, T)
    # no dual clip: GSPO clips whole turns (docs/algorithms/gspo.md#key-equations)
    loss = torch.where(mask.bool(), loss, torch.zeros_like(loss))  # (B, T)
    # --8<-- [end:gspo_token]

    with torch.no_grad():
        clipped = (pg_clipped > pg_unclipped).to(logp.dtype)  # (B, T)  constant along a row
        row_valid = mask.sum(-1) > 0  # (B,)
        row_ratio = torch.exp(torch.clamp(log_seq_ratio, max=10.0))[row_valid]  # (V,)  s_j as used
        rows = float(row_ratio.numel())
        low, high = (row_ratio.min(), row_ratio.max()) if rows else (1.0, 1.0)  # no valid row: the on-policy value
    # clip fraction: tokens in clipped turns / valid tokens (length-weighted); no dual clip
    stats = clip_stats(clipped, logp, logp_old, mask)
    stats.update(seq_ratio_mean=Stat(row_ratio.sum(), rows), seq_ratio_min=Stat(low, rows, "min"),
                 seq_ratio_max=Stat(high, rows, "max"))
    return loss, stats


# ----------------------------------------------------------------------------- entry points

DEFAULTS = dict(clip_low=3e-3, clip_high=4e-3)  # the paper's ALFWorld value; toy scale: sampo_ref/presets.py
ADVANTAGE = grpo.ADVANTAGE  # no change on the advantage axis
SURROGATE = "turn ratio (GSPO) ε {clip_low:g}/{clip_high:g}"
FILTER = None  # no dynamic sampling
SEQ_MASK = False  # [ARL] offers no sequence mask on GSPO (docs/algorithms/seq_mask.md#key-equations): it already clips whole turns
advantages = grpo.advantages


def policy_loss(logp, batch, masks, cfg):
    """GSPO-token surrogate (S12) on the rows of ``batch`` -> ({"pg": term}, stats), always ``PG_AGG``."""
    loss, stats = gspo_loss(logp, batch.logp_old.to(logp.device), batch.adv.to(logp.device), masks["policy"],
                            cfg.clip_low, cfg.clip_high)
    return {"pg": Term(loss, "policy", PG_AGG)}, stats
