"""Sequence (turn) masking: drop negative-advantage turns whose ratio fell too far (docs/algorithms/seq_mask.md#key-equations).

A knob, not a loss: the trainer removes masked turns from the POLICY term's mask of the token clip
(S10), soft SAPO (S14) or CISPO (S15); the KL and entropy terms keep the full response mask. The
[ARL] actor-config comment attributes it to DeepSeek-V3.2; it answers ARLArena's Finding 2
("Adv < 0 & IS < 1 -> instability"), arXiv 2602.21534, row GRPO_SM of ``sum.png``.

Relative to GRPO, on the four axes:

* advantage: unchanged, the group z-score (S2).
* ratio / clipping: the base loss's clipping, plus every token of a turn with A < 0 and
  s_j < e^{-delta} gets kappa = 0, Eq. (S17). Not offered on GSPO (as in [ARL]).
* aggregation: the configured mode (token-mean in [ARL]); masked turns also leave the
  policy term's denominator, and its clipfrac / ppo_kl denominators (docs/algorithms/grpo.md#key-equations, docs/algorithms/seq_mask.md#key-equations).
* dynamic sampling: none.

Docs page: ``docs/algorithms/seq_mask.md``.

Defaults and their sources:
* delta = 3e-3, which masks A < 0 turns with s_j < 0.997: the [ARL] seq-mask scripts (docs/algorithms/seq_mask.md#key-equations).
  The [ARL] code default is 0.223 ~ ln 1.25 (masks s_j < 0.8).
* sign: Eq. (S17) as written, log(pi_old / pi_theta); the [ARL] docstring states the opposite sign
  but its computation agrees with (S17) (docs/algorithms/seq_mask.md#key-equations).

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens.
"""

from __future__ import annotations

import torch

from sampo_ref.algos.common import masked_mean

ON = dict(seq_mask=True, seq_mask_delta=3e-3)  # the mask as the [ARL] seq-mask scripts run it


@torch.no_grad()
def sequence_mask(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    delta: float = 3e-3,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. (S17): keep_j = A-bar_j >= 0 or mean_t log(pi_old / pi_theta) <= delta -> (keep, stats).

    logp, logp_old, mask (B, T); adv (B,) or (B, T) -> keep (B,) bool, stats.
    A-bar_j is the row's masked mean advantage; the log-ratio is UNCLAMPED ([ARL] apply_seq_mask).
    Equivalently, a row is masked iff A-bar_j < 0 and s_j < e^{-delta}. A row without response
    tokens is kept for delta >= 0 (it has nothing to mask).
    stats (detached scalars): seq_masked_rows (count) and seq_masked_frac (share of the rows with
    at least one response token).
    """
    if adv.dim() == logp.dim() - 1:
        adv = adv.unsqueeze(-1)  # (B, 1), broadcast over the row's tokens
    # --8<-- [start:sequence_mask]
    adv_row = masked_mean(adv.expand_as(logp), mask, dim=-1)  # (B,)  A-bar_j
    neg_log_ratio = torch.where(mask.bool(), logp_old - logp, torch.zeros_like(logp))  # (B, T)
    # Eq. (S17): row mean of log(pi_old / pi_theta) = -log s_j, unclamped
    neg_log_seq_ratio = masked_mean(neg_log_ratio, mask, dim=-1)  # (B,)
    keep = (adv_row >= 0) | (neg_log_seq_ratio <= delta)  # (B,)
    # --8<-- [end:sequence_mask]
    row_valid = mask.sum(-1) > 0  # (B,)
    masked_rows = (~keep & row_valid).to(logp.dtype)  # (B,)
    stats = {
        "seq_masked_rows": masked_rows.sum(),
        "seq_masked_frac": masked_rows.sum() / row_valid.sum().clamp(min=1),
    }
    return keep, stats


# --8<-- [start:apply_sequence_mask]
def apply_sequence_mask(mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The policy term's mask: mask (B, T) with the rows where keep (B,) is False zeroed -> (B, T).

    Use it for the policy loss AND its aggregation denominator; never for the KL or entropy terms.
    """
    return mask * keep.to(mask.dtype).unsqueeze(-1)  # (B, T)
# --8<-- [end:apply_sequence_mask]
