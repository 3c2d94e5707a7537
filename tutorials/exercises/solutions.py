"""The reference solutions of ``exercises.py``: the library's own functions, with the exercise signatures.

Nothing is re-implemented here. Where a library function returns more than the exercise asks for
(the surrogates also return diagnostics) or takes more arguments, a one-line adapter drops them.
CI runs the checkers against this module, so the checkers and the library cannot disagree.
"""

from __future__ import annotations

import torch

from sampo_ref.algos import common, grpo, gspo
from sampo_ref.algos.common import k3_kl
from sampo_ref.algos.gigpo import discounted_step_returns, step_advantages, step_groups
from sampo_ref.algos.gspo import seq_log_ratio

__all__ = ["grpo_advantages", "token_clip_loss", "seq_log_ratio", "gspo_loss", "discounted_step_returns",
           "step_groups", "step_advantages", "aggregate", "k3_kl"]


def grpo_advantages(scores: torch.Tensor, group_index: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return grpo.grpo_advantages(scores, group_index, eps=eps)


def token_clip_loss(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                    clip_low: float = 0.2, clip_high: float = 0.2, dual_clip: float = 3.0) -> torch.Tensor:
    return grpo.token_clip_loss(logp, logp_old, adv, mask, clip_low, clip_high, dual_clip)[0]


def gspo_loss(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
              clip_low: float = 3e-3, clip_high: float = 4e-3) -> torch.Tensor:
    return gspo.gspo_loss(logp, logp_old, adv, mask, clip_low, clip_high)[0]


def aggregate(loss: torch.Tensor, mask: torch.Tensor, mode: str, max_len: int | None = None) -> torch.Tensor:
    return common.aggregate(loss, mask, mode, max_len=max_len)
