"""SAPO: Search-Agent Policy Optimization (J. Li et al., arXiv 2603.10069), conditional KL.

Not Qwen's Soft Adaptive PO, which is ``soft_sapo.py`` (docs/notation.md). GRPO plus a token-level k1 KL
penalty on tokens of non-negative-advantage rows whose ratio fell to t_kl or below.

Relative to GRPO, on the four axes:

* advantage: unchanged, the group z-score (S2).
* ratio / clipping: the GRPO token clip (S10) with symmetric eps and NO dual clip, plus
  w_kl * L_ckl, Eq. (S16): -lambda on tokens of rows in P = {A >= 0} with lambda <= ln t_kl,
  lambda UNCLAMPED, averaged over N_P = the response tokens of the rows in P.
* aggregation: token-mean for the clip term (``PG_AGG``, docs/dimensions.md#loss-aggregation); the KL term has its own
  denominator N_P, counted over the whole MINI-batch (``kl_denominator``).
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
    L = aggregate(clip_loss, mask, "token-mean", N) + w_kl * aggregate(ckl, mask, "token-mean", N_P)
with N = agg_denominator(minibatch_mask, "token-mean") and N_P = kl_denominator(minibatch_mask,
minibatch_in_p). ``sapo_loss`` folds both into one per-token loss whose token-mean over N is L.

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens.
"""

from __future__ import annotations

import math

import torch

from sampo_ref.algos import grpo
from sampo_ref.algos.common import agg_denominator, masked_mean
from sampo_ref.algos.grpo import token_clip_loss

PG_AGG = "token-mean"  # docs/algorithms/sapo.md#key-equations: the listing's token-mean; sapo_loss's folding assumes it


def positive_rows(adv: torch.Tensor, include_zero_adv: bool = True) -> torch.Tensor:
    """The set P of Eq. (S16): adv (B,) -> (B,) bool, A_j >= 0 (or A_j > 0 without zeros)."""
    return adv >= 0 if include_zero_adv else adv > 0  # (B,)


def kl_denominator(mask: torch.Tensor, in_p: torch.Tensor) -> float:
    """N_P of Eq. (S16): response tokens of the rows in P, over the whole MINI-batch.

    mask (B, T), in_p (B,) bool -> float. 0 becomes 1 (as ``common.agg_denominator``); then every
    token of the KL term is 0, so L_ckl = 0 when N_P = 0, as (S16) says.
    """
    return agg_denominator(mask[in_p.bool()], "token-mean")  # the token count of P's rows


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
    Aggregate as sum / N_P (``aggregate(term, mask, "token-mean", kl_denominator(...))``).
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
    w_kl: float = 0.1,
    include_zero_adv: bool = True,
    n_tokens: float | None = None,
    n_p: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. (S10) + w_kl * Eq. (S16) folded into one per-token loss -> (loss (B, T), stats).

    logp, logp_old, mask (B, T); adv (B,). The returned loss l satisfies
        sum(l) / N = L_clip + w_kl * L_ckl,   l = l_clip + w_kl * (N / N_P) * ckl,
    so aggregate it with ``PG_AGG`` (token-mean) and denominator N. For micro-batches pass the
    MINI-batch counts, n_tokens = N = agg_denominator(minibatch_mask, "token-mean") and
    n_p = N_P = kl_denominator(minibatch_mask, positive_rows(minibatch_adv)); None: this call's.
    Gradient on token (j, t), token-mean: -kappa_clip A_j / N - w_kl / N_P * 1[selected].
    The loss is exactly 0 where mask is 0.
    stats (detached scalars): clipfrac, clipfrac_lower (0), ppo_kl of the clip term; ckl
    (L_ckl over this call's rows) and ckl_frac (selected tokens / tokens of rows in P).
    """
    if not w_kl >= 0.0:
        raise ValueError(f"need w_kl >= 0, got {w_kl!r}")
    # --8<-- [start:sapo_loss]
    # Eq. (S10), base: token clip, no dual clip (the listing)
    loss, stats = token_clip_loss(logp, logp_old, adv, mask, clip_low, clip_high, dual_clip=None)
    in_p = positive_rows(adv, include_zero_adv)  # (B,)
    ckl = conditional_kl(logp, logp_old, mask, in_p, t_kl)  # (B, T)  Eq. (S16), per token
    n_tokens = agg_denominator(mask, "token-mean") if n_tokens is None else n_tokens
    n_p = kl_denominator(mask, in_p) if n_p is None else n_p
    # Eq. (S16): L = L_clip + w_kl L_ckl, with L_ckl's 1 / N_P rewritten over the common N
    loss = loss + (w_kl * n_tokens / n_p) * ckl  # (B, T)  ckl is 0 off mask, so loss stays 0 there
    # --8<-- [end:sapo_loss]

    with torch.no_grad():
        p_mask = mask * in_p.to(mask.dtype).unsqueeze(-1)  # (B, T)  tokens of rows in P
        stats["ckl"] = ckl.sum() / kl_denominator(mask, in_p)
        selected = (logp - logp_old <= math.log(t_kl)).to(logp.dtype)  # (B, T)
        stats["ckl_frac"] = masked_mean(selected, p_mask)
    return loss, stats


# ----------------------------------------------------------------------------- entry points

DEFAULTS = dict(clip_low=0.2, clip_high=0.2, sapo_t_kl=0.8, sapo_w_kl=0.1, sapo_include_zero_adv=True)
ADVANTAGE = grpo.ADVANTAGE  # no change on the advantage axis
SURROGATE = "token clip ε {clip_low:g} + cond. KL t {sapo_t_kl:g}, w {sapo_w_kl:g}"
FILTER = None  # no dynamic sampling
SEQ_MASK = False  # not part of the method
advantages = grpo.advantages


def minibatch_totals(batch, mask, cfg) -> dict[str, float]:
    """N and N_P of the whole mini-batch, so that micro-batching leaves (S16) unchanged."""
    in_p = positive_rows(batch.adv, cfg.sapo_include_zero_adv)  # (B,)
    return {"n_tokens": agg_denominator(mask, "token-mean"), "n_p": kl_denominator(mask, in_p)}


def policy_loss(logp, batch, mask, cfg, n_tokens=None, n_p=None):
    """Token clip (S10, no dual clip) + w_kl × conditional KL (S16); (loss (B, T), stats)."""
    return sapo_loss(logp, batch.logp_old.to(logp.device), batch.adv.to(logp.device), mask,
                     cfg.clip_low, cfg.clip_high, cfg.sapo_t_kl, cfg.sapo_w_kl,
                     cfg.sapo_include_zero_adv, n_tokens=n_tokens, n_p=n_p)
