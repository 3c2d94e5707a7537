"""SAPO: Search-Agent Policy Optimization (J. Li et al., arXiv 2603.10069), conditional KL.

Not Qwen's Soft Adaptive PO, which is ``soft_sapo.py`` (docs/notation.md). GRPO plus a token-level k1 KL
penalty on tokens of non-negative-advantage rows whose ratio fell to t_kl or below.

Relative to GRPO, on the four axes:

* advantage: unchanged, the group z-score (S2).
* ratio / clipping: the GRPO token clip (S10) with symmetric eps and NO dual clip, plus
  w_kl * L_ckl, Eq. (S16): -lambda on tokens of rows in P = {A >= 0} with lambda <= ln t_kl,
  lambda UNCLAMPED, averaged over N_P = the response tokens of the rows in P.
* aggregation: token-mean for the clip term (``PG_AGG``, docs/dimensions.md#loss-aggregation); the KL term is a term
  of its own, token-mean over the tokens of P's rows (``minibatch_masks``), so its denominator is N_P,
  counted over the whole MINI-batch like every other denominator.
* dynamic sampling: none.

Docs page: ``docs/algorithms/sapo.md``.

Defaults and their sources:
* t_kl = 0.8 (= 1 - eps_l) and w_kl = 0.1: PROJECT CHOICES. The paper's values were not
  available (docs/algorithms/sapo.md#key-equations); chosen on a toy sweep t_kl in {0.5, 0.8, 0.95} x w_kl in {0.01, 0.1, 1}
  (``benchmarks/sapo_sweep.py``, table in docs/algorithms/sapo.md): t_kl = 0.5 barely acts,
  w_kl = 1 gave the largest gradient norms, the middle of the grid is flat within noise.
* include_zero_adv = True: as in the paper's published code listing (secondary); the abstract
  says "positive" tokens, and ``False`` gives P = {A > 0} (project choice, docs/algorithms/sapo.md#key-equations).
* clip_low = clip_high = 0.2, no dual clip: the listing (docs/algorithms/sapo.md#key-equations) with the GRPO default eps.
* the threshold is on the ratio, not the token probability, as in the listing (docs/algorithms/sapo.md#key-equations).

How the two parts combine (the trainer, per micro-batch, with mini-batch denominators):
    L = aggregate(clip, mask, "token-mean", N) + w_kl * aggregate(ckl, p_mask, "token-mean", N_P)
with N the tokens of the mini-batch and N_P those of its rows in P (``positive_mask``).

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens.
"""

from __future__ import annotations

import math

import torch

from sampo_ref.algos import grpo
from sampo_ref.algos.common import Stat, Term
from sampo_ref.algos.grpo import token_clip_loss

PG_AGG = "token-mean"  # docs/algorithms/sapo.md#key-equations: the listing's token-mean


def positive_rows(adv: torch.Tensor, include_zero_adv: bool = True) -> torch.Tensor:
    """The set P of Eq. (S16): adv (B,) -> (B,) bool, A_j >= 0 (or A_j > 0 without zeros)."""
    return adv >= 0 if include_zero_adv else adv > 0  # (B,)


def positive_mask(mask: torch.Tensor, adv: torch.Tensor, include_zero_adv: bool = True) -> torch.Tensor:
    """The tokens of the rows in P, (B, T): the KL term's mask. Its token count is N_P of Eq. (S16)."""
    return mask * positive_rows(adv, include_zero_adv).to(mask.dtype).unsqueeze(-1)  # (B, T)


def conditional_kl(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    mask: torch.Tensor,
    in_p: torch.Tensor,
    t_kl: float = 0.8,
) -> torch.Tensor:
    """Eq. (S16), per token: -1[lambda <= ln t_kl] lambda on valid tokens of rows in P, else 0.

    logp, logp_old, mask (B, T); in_p (B,) bool from ``positive_rows`` -> (B, T).
    lambda is UNCLAMPED, so the gradient -1 on a selected token does not vanish as w -> 0.
    Aggregate as sum / N_P: ``aggregate(term, positive_mask(mask, adv), "token-mean")``.
    -lambda on tokens sampled from pi_old is the k1 estimate of KL(pi_old || pi_theta).
    """
    if not t_kl > 0.0:
        raise ValueError(f"need t_kl > 0, got {t_kl!r}")
    # --8<-- [start:conditional_kl]
    log_ratio = logp - logp_old  # (B, T)  lambda, no +-20 clamp (docs/algorithms/sapo.md#key-equations)
    # Eq. (S16): the condition j in P, m = 1, lambda <= ln t_kl (on the ratio, not the probability)
    selected = in_p.bool().unsqueeze(-1) & mask.bool() & (log_ratio <= math.log(t_kl))  # (B, T)
    return torch.where(selected, -log_ratio, torch.zeros_like(log_ratio))  # (B, T)
    # --8<-- [end:conditional_kl]


def sapo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    t_kl: float = 0.8,
    include_zero_adv: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Stat]]:
    """Eq. (S10) and Eq. (S16), per token, as two terms -> (clip (B, T), ckl (B, T), stats).

    logp, logp_old, mask (B, T); adv (B,). The loss is
        L = L_clip + w_kl * L_ckl = aggregate(clip, mask, "token-mean") + w_kl * aggregate(ckl, p_mask, "token-mean"),
    p_mask = positive_mask(mask, adv): token-means over N tokens and over P's N_P tokens; with
    micro-batches, over the MINI-batch's N and N_P. Gradient on token (j, t):
    -kappa_clip A_j / N - w_kl / N_P * 1[selected]. Both are exactly 0 where mask is 0.
    stats (``Stat``s): clipfrac, clipfrac_lower (0), ppo_kl of the clip term; ckl_frac (selected
    tokens / tokens of rows in P).
    """
    # --8<-- [start:sapo_loss]
    # Eq. (S10), base: token clip, no dual clip (the listing)
    clip, stats = token_clip_loss(logp, logp_old, adv, mask, clip_low, clip_high, dual_clip=None)  # (B, T)
    in_p = positive_rows(adv, include_zero_adv)  # (B,)
    ckl = conditional_kl(logp, logp_old, mask, in_p, t_kl)  # (B, T)  Eq. (S16), per token, 0 off P's tokens
    # --8<-- [end:sapo_loss]

    with torch.no_grad():
        p_mask = positive_mask(mask, adv, include_zero_adv)  # (B, T)
        selected = (logp - logp_old <= math.log(t_kl)).to(logp.dtype)  # (B, T)
        stats["ckl_frac"] = Stat((selected * p_mask).sum(), float(p_mask.sum()))
    return clip, ckl, stats


# ----------------------------------------------------------------------------- entry points

DEFAULTS = dict(clip_low=0.2, clip_high=0.2, sapo_t_kl=0.8, sapo_w_kl=0.1, sapo_include_zero_adv=True)
ADVANTAGE = grpo.ADVANTAGE  # no change on the advantage axis
SURROGATE = "token clip ε {clip_low:g} + cond. KL t {sapo_t_kl:g}, w {sapo_w_kl:g}"
FILTER = None  # no dynamic sampling
SEQ_MASK = False  # not part of the method
advantages = grpo.advantages


# --8<-- [start:terms]
def minibatch_masks(batch, policy_mask, cfg) -> dict[str, torch.Tensor]:
    """The KL term's mask over the whole mini-batch (B, T): tokens of the rows in P, so N_P is counted
    where every other denominator is (``trainer.prepare_minibatch``)."""
    return {"positive": positive_mask(policy_mask, batch.adv, cfg.sapo_include_zero_adv)}


def policy_loss(logp, batch, masks, cfg):
    """Token clip (S10, no dual clip) and w_kl × conditional KL (S16) -> ({"pg", "ckl"}, stats)."""
    clip, ckl, stats = sapo_loss(logp, batch.logp_old.to(logp.device), batch.adv.to(logp.device), masks["policy"],
                                 cfg.clip_low, cfg.clip_high, cfg.sapo_t_kl, cfg.sapo_include_zero_adv)
    return {"pg": Term(clip, "policy", PG_AGG), "ckl": Term(ckl, "positive", "token-mean", cfg.sapo_w_kl)}, stats
# --8<-- [end:terms]
