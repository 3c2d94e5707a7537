"""Soft SAPO: Soft Adaptive Policy Optimization (Qwen, arXiv 2511.20347), a sigmoid gate.

ARLArena's row "SAPO" is this method; in this project "SAPO" alone means Search-Agent SAPO
(``sapo.py``, docs/notation.md).

Relative to GRPO, on the four axes:

* advantage: unchanged, the group z-score (S2).
* ratio / clipping: no hard clip. The token ratio w passes through a sigmoid gate of temperature
  tau, f_tau(w) = (4 / tau) sigma(tau (w - 1)), Eq. (S14); tau is chosen per row by the sign of
  the row's mean advantage. The gradient weight decays smoothly and is never exactly zero.
* aggregation: the configured mode; token-mean for ARLArena's row (docs/algorithms/soft_sapo.md#key-equations, docs/dimensions.md#loss-aggregation). The soft SAPO
  paper itself uses seq-mean-token-mean.
* dynamic sampling: none.

Docs page: ``docs/algorithms/soft_sapo.md``.

Defaults and their sources:
* tau_pos = 1.0, tau_neg = 1.05: ``[ARL] examples/embody_agent_trainer/Qwen3-4B/train_sapo.sh``
  and the [verl] comment "default values used in the paper" (docs/algorithms/soft_sapo.md#key-equations). The [ARL] docstring's
  "tau_neg default 2.0" is stale.
* log-ratio clamp +-20 before exp: as the token clip (docs/notation.md, docs/algorithms/soft_sapo.md#key-equations).
* diagnostic clip thresholds 1.2 / 0.8: docs/algorithms/soft_sapo.md#logged-metrics; they do not affect the loss.

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens.
"""

from __future__ import annotations

import torch

from sampo_ref.algos import grpo
from sampo_ref.algos.common import Stat, Term, clip_stats, masked_mean

DIAG_HIGH, DIAG_LOW = 1.2, 0.8  # docs/algorithms/soft_sapo.md#key-equations: thresholds of the diagnostic clip fraction only


def soft_sapo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    tau_pos: float = 1.0,
    tau_neg: float = 1.05,
) -> tuple[torch.Tensor, dict[str, Stat]]:
    """Eq. (S14): per-token soft-gate loss -f_tau(w) A, to be minimised -> (loss (B, T), stats).

    logp, logp_old, mask (B, T); adv (B,), one value per row, or (B, T).
    tau_j = tau_pos if the row's masked mean advantage is > 0, else tau_neg (a per-row choice;
    [verl] and [TRL] choose per token, which is the same for a row-constant advantage).
    Gradient: d loss / d logp = -kappa * A, kappa = 4 sigma (1 - sigma) w, where
    sigma = sigma(tau (w - 1)); kappa(1) = 1 and kappa > 0 except through the +-20 clamp.
    The value at w = 1 is -2A / tau, not -A: loss values are not comparable with GRPO's.
    The loss is exactly 0 where mask is 0.
    stats (``Stat``s, detached): clipfrac (diagnostic share of valid tokens with (A > 0, w > 1.2)
    or (A < 0, w < 0.8)), clipfrac_lower (always 0, no dual clip), ppo_kl.
    """
    if not (tau_pos > 0.0 and tau_neg > 0.0):
        raise ValueError(f"need tau_pos > 0 and tau_neg > 0, got {tau_pos!r}, {tau_neg!r}")
    if adv.dim() == logp.dim() - 1:
        adv = adv.unsqueeze(-1)  # (B, 1), broadcast over the row's tokens
    # --8<-- [start:soft_gate]
    adv_row = masked_mean(adv.expand_as(logp), mask, dim=-1)  # (B,)  mean advantage A-bar_j
    # temperature per row by the sign of A-bar_j (docs/algorithms/soft_sapo.md#key-equations)
    # (tensors in logp's dtype: Python floats would make a float32 tensor, and 1.05 would become 1.0499999523)
    tau = torch.where(adv_row > 0, logp.new_tensor(tau_pos), logp.new_tensor(tau_neg)).unsqueeze(-1)  # (B, 1)

    log_ratio = logp - logp_old  # (B, T)  lambda
    ratio = torch.exp(torch.clamp(log_ratio, -20.0, 20.0))  # (B, T)  w; |lambda| > 20 -> kappa = 0
    # Eq. (S14): f_tau(w) = (4 / tau) sigma(tau (w - 1)); loss = -f_tau(w) A
    gate = 4.0 / tau * torch.sigmoid(tau * (ratio - 1.0))  # (B, T)
    loss = -gate * adv  # (B, T)
    # no hard clip anywhere: the gate only bends kappa (docs/algorithms/soft_sapo.md#key-equations)
    loss = torch.where(mask.bool(), loss, torch.zeros_like(loss))  # (B, T)
    # --8<-- [end:soft_gate]

    with torch.no_grad():
        # diagnostic only: where a hard clip at 0.8 / 1.2 would have acted
        clipped = ((adv > 0) & (ratio > DIAG_HIGH)) | ((adv < 0) & (ratio < DIAG_LOW))  # (B, T)
    return loss, clip_stats(clipped, logp, logp_old, mask)  # no dual clip


# ----------------------------------------------------------------------------- entry points

DEFAULTS = dict(tau_pos=1.0, tau_neg=1.05)
ADVANTAGE = grpo.ADVANTAGE  # no change on the advantage axis
SURROGATE = "soft gate τ {tau_pos:g}/{tau_neg:g}"
PG_AGG = None  # the configured mode (token-mean in ARLArena's row; the soft SAPO paper uses seq-mean-token-mean)
FILTER = None  # no dynamic sampling
SEQ_MASK = True  # [ARL] seq_mask/train_sapo_seq_mask.sh
advantages = grpo.advantages


def policy_loss(logp, batch, masks, cfg):
    """Soft gate (S14) on the rows of ``batch`` -> ({"pg": term}, stats)."""
    loss, stats = soft_sapo_loss(logp, batch.logp_old.to(logp.device), batch.adv.to(logp.device), masks["policy"],
                                 cfg.tau_pos, cfg.tau_neg)
    return {"pg": Term(loss, "policy", cfg.loss_agg)}, stats
