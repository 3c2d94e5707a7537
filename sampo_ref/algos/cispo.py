"""CISPO: Clipped IS-weight Policy Optimization (MiniMax-M1, arXiv 2506.13585).

Relative to GRPO, on the four axes:

* advantage: unchanged, the group z-score (S2).
* ratio / clipping: the token ratio is clipped and used as a stop-gradient weight on the
  REINFORCE term, Eq. (S15): the clip bounds the gradient weight but never zeroes it, so no token
  with A != 0 loses its gradient ("tolerant" clipping). No dual clip.
* aggregation: the configured mode; token-mean for ARLArena's row (docs/dimensions.md#loss-aggregation).
* dynamic sampling: none.

Docs page: ``docs/algorithms/cispo.md``.

Defaults and their sources:
* clip_low = 1.0 (lower bound 0: no lower clipping), clip_high = 0.2, so kappa = min(w, 1.2):
  [ARL] ALFWorld ``train_cispo.sh`` (docs/algorithms/cispo.md#key-equations).
* log-ratio clamp +-20 before exp: as the token clip (docs/notation.md). It only bounds the weight; the
  gradient flows through logp itself, so even a clamped token keeps kappa = e^{+-20}.

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens.
"""

from __future__ import annotations

import torch

from sampo_ref.algos import grpo
from sampo_ref.algos.common import Stat, Term, clip_stats


def cispo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 1.0,
    clip_high: float = 0.2,
) -> tuple[torch.Tensor, dict[str, Stat]]:
    """Eq. (S15): per-token loss -sg(w_hat) A logp, to be minimised -> (loss (B, T), stats).

    logp, logp_old, mask (B, T); adv (B,), one value per row, or (B, T).
    w_hat = clip(w, 1 - eps_l, 1 + eps_h). Gradient: d loss / d logp = -kappa * A, kappa = w_hat,
    never zero for A != 0. Only the gradient has meaning: the loss value is not a surrogate of
    return (docs/algorithms/cispo.md#key-equations). The loss is exactly 0 where mask is 0.
    stats (``Stat``s, detached): clipfrac (share of valid tokens with w != w_hat),
    clipfrac_lower (always 0, no dual clip), ppo_kl.
    """
    if not 0.0 <= clip_low <= 1.0 or not clip_high >= 0.0:
        raise ValueError(
            f"need 0 <= clip_low <= 1 and clip_high >= 0, got {clip_low!r}, {clip_high!r}"
        )
    if adv.dim() == logp.dim() - 1:
        adv = adv.unsqueeze(-1)  # (B, 1), broadcast over the row's tokens

    # --8<-- [start:cispo_loss]
    log_ratio = logp - logp_old  # (B, T)  lambda
    ratio = torch.exp(torch.clamp(log_ratio, -20.0, 20.0))  # (B, T)  w
    # Eq. (S15): w_hat = clip(w, 1 - eps_l, 1 + eps_h), held constant (stop-gradient)
    ratio_clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high).detach()  # (B, T)
    # Eq. (S15): loss = -sg(w_hat) A logp, so d loss / d logp = -w_hat A
    loss = -ratio_clipped * adv * logp  # (B, T)
    # no max(), no dual clip: the clip bounds kappa, it never sets it to 0 (docs/algorithms/cispo.md#key-equations)
    loss = torch.where(mask.bool(), loss, torch.zeros_like(loss))  # (B, T)
    # --8<-- [end:cispo_loss]

    return loss, clip_stats(ratio != ratio_clipped, logp, logp_old, mask)  # clipped: w != ŵ; no dual clip


# ----------------------------------------------------------------------------- entry points

DEFAULTS = dict(clip_low=1.0, clip_high=0.2)
ADVANTAGE = grpo.ADVANTAGE  # no change on the advantage axis
SURROGATE = "CISPO weight clip ε {clip_low:g}/{clip_high:g}"
PG_AGG = None  # the configured mode (token-mean in ARLArena's row)
FILTER = None  # no dynamic sampling
SEQ_MASK = True  # [ARL] seq_mask/train_cispo_seq_mask.sh
advantages = grpo.advantages


def policy_loss(logp, batch, masks, cfg):
    """Clipped stop-gradient IS weight (S15) on the rows of ``batch`` -> ({"pg": term}, stats)."""
    loss, stats = cispo_loss(logp, batch.logp_old.to(logp.device), batch.adv.to(logp.device), masks["policy"],
                             cfg.clip_low, cfg.clip_high)
    return {"pg": Term(loss, "policy", cfg.loss_agg)}, stats
