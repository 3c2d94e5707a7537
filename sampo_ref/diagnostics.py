"""Stability diagnostics (docs/metrics.md): what a run logs besides its loss, and the collapse warning.

Four pieces, each used by the trainer once per iteration:

* ``batch_diagnostics``: advantage statistics, group degeneracy, rollout entropy, and the gap
  between the sampler's log-probs and the recomputed π_old;
* ``kl_split``: the k3 KL to the reference per row, binned by the sign of the row's advantage ×
  the direction the update moved the row's tokens (ARLArena's Finding 2: in collapsing CISPO
  runs the bin "A ≤ 0, ratio down" runs away from the reference while the others stay flat);
* ``over_steps``: the iteration's value of each diagnostic the optimiser steps logged;
* ``CollapseWatch``: compares each iteration with the run so far and says, in words, when a
  signal that preceded collapse in the paper (docs/metrics.md) appears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from sampo_ref.algos.common import Stat, k3_kl, masked_mean, pool

KL_BINS = ("pos_up", "pos_down", "neg_up", "neg_down")  # sign of A (> 0 vs ≤ 0) × ratio direction


def batch_diagnostics(trajs, batch) -> dict:
    """Advantage statistics, group degeneracy, entropy and the sampling/recompute mismatch."""
    returns: dict[int, list[float]] = {}
    for tau in trajs:
        returns.setdefault(tau.group_id, []).append(tau.episode_return)
    sample_logp = [lp for tau in trajs for t in tau.turns for lp in (t.sample_logp or [])]
    mask = batch.response_mask.bool()
    out = {
        "adv/mean": batch.adv.mean().item(), "adv/min": batch.adv.min().item(), "adv/max": batch.adv.max().item(),
        "groups/uniform_return": float(np.mean([len(set(r)) == 1 for r in returns.values()])),
        "groups/zero_adv_rows": (batch.adv == 0).float().mean().item(),
        "actor/entropy_old": masked_mean(batch.entropy_old, batch.response_mask).item(),
        "rows": len(batch),
    }
    if len(sample_logp) == int(mask.sum()):  # |log π_sample − log π_old| per token, same weights
        out["actor/logp_mismatch"] = (torch.tensor(sample_logp) - batch.logp_old[mask]).abs().mean().item()
    return out


@torch.no_grad()
def kl_split(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor, adv: torch.Tensor,
             mask: torch.Tensor) -> dict[str, Stat]:
    """Per bin, ``kl_ref/<bin>``: the mean over its rows of the row's mean k3 KL to the reference,
    and ``kl_ref/<bin>_share``: the share of rows in it; both pooled over every row the iteration's
    updates saw (``over="iteration"``), not averaged per step.

    logp, logp_old, logp_ref: (B, T) log-probs of the response tokens under π_θ, π_old, π_ref;
    adv: (B,); mask: (B, T) response mask. A row's direction is "up" when the token mean of
    π_θ(y_t) − π_old(y_t) is > 0 (the authors' flag, docs/metrics.md), else "down"; its sign bin is
    "pos" when A > 0, else "neg". Rows without tokens are left out of every bin (and count in the shares).
    """
    m = mask.float()
    tokens = m.sum(-1)  # (B,)
    has = tokens > 0
    row_kl = (k3_kl(logp, logp_ref) * m).sum(-1) / tokens.clamp(min=1)  # (B,) mean k3 per row (S18)
    up = ((logp.exp() - logp_old.exp()) * m).sum(-1) > 0  # (B,) token mean > 0 ⇔ token sum > 0
    pos = adv > 0
    out = {}
    for name, sel in (("pos_up", pos & up), ("pos_down", pos & ~up), ("neg_up", ~pos & up), ("neg_down", ~pos & ~up)):
        sel = sel & has
        rows = int(sel.sum())
        out[f"kl_ref/{name}"] = Stat(row_kl[sel].sum().item(), rows, over="iteration")
        out[f"kl_ref/{name}_share"] = Stat(float(rows), mask.shape[0], over="iteration")
    return out


def over_steps(steps: list[dict[str, Stat]]) -> dict[str, float]:
    """The iteration's value of each diagnostic from its optimiser steps: the mean of the per-step
    values, or, for ``over="iteration"``, the pool of all of them (a mean over nothing: no key)."""
    out = {}
    for key in dict.fromkeys(k for step in steps for k in step):
        parts = [step[key] for step in steps if key in step]
        if parts[0].over == "step":
            out[key] = sum(p.value for p in parts) / len(parts)
        elif (pooled := pool(parts)).count or pooled.pool != "mean":
            out[key] = pooled.value
    return out


@dataclass
class CollapseWatch:
    """Warns when an iteration shows a signal that preceded collapse in ARLArena (docs/metrics.md).

    Each check compares the new iteration with the run so far (after ``warmup`` iterations):
    * valid-format ratio falls below ``format_drop`` × its best so far (the paper's CISPO collapse:
      "the valid-format ratio of actions drops sharply");
    * the largest gradient norm of the iteration exceeds ``grad_spike`` × the median so far
      ("gradient norms explode");
    * rollout entropy falls below ``entropy_floor`` × its initial value (the policy has become
      deterministic: exploration and the group signal die out);
    * rollout success falls more than ``success_drop`` below its best so far.
    Returns the messages; the trainer prints them and logs how many fired (``warn/*``).
    """

    warmup: int = 3
    format_drop: float = 0.7
    grad_spike: float = 10.0
    entropy_floor: float = 0.5
    success_drop: float = 0.3
    history: dict[str, list[float]] = field(default_factory=dict)

    def _seen(self, key: str) -> list[float]:
        return [v for v in self.history.get(key, []) if math.isfinite(v)]

    def update(self, record: dict) -> dict[str, str]:
        """Check ``record`` (one iteration's metrics) against the history, then add it to the history."""
        fmt, grad = self._seen("rollout/valid_format"), self._seen("actor/grad_norm_max")
        ent, succ = self._seen("actor/entropy_old"), self._seen("rollout/success")
        now = {k: record.get(k, float("nan")) for k in
               ("rollout/valid_format", "actor/grad_norm_max", "actor/entropy_old", "rollout/success")}
        warnings = {}
        if len(fmt) >= self.warmup and now["rollout/valid_format"] < self.format_drop * max(fmt):
            warnings["format_drop"] = (
                f"valid-format ratio fell to {now['rollout/valid_format']:.2f} (best so far {max(fmt):.2f}): "
                "the policy is leaving the answer format; usual causes are a too tolerant ratio clip "
                "(soft SAPO, CISPO), a learning rate too high, or negative-advantage tokens pushed down without bound")
        if len(grad) >= self.warmup and now["actor/grad_norm_max"] > self.grad_spike * float(np.median(grad)):
            warnings["grad_spike"] = (
                f"gradient norm {now['actor/grad_norm_max']:.3g} is over {self.grad_spike:g}× the run's median "
                f"({float(np.median(grad)):.3g}): usually tokens whose ratio has drifted far off-policy; look at "
                "clip fraction and kl_ref/neg_down, lower the learning rate or use turn-level clipping / sequence masking")
        if ent and now["actor/entropy_old"] < self.entropy_floor * ent[0]:
            warnings["entropy_collapse"] = (
                f"rollout entropy {now['actor/entropy_old']:.3g} nats/token is below {self.entropy_floor:g}× its "
                f"initial {ent[0]:.3g}: the policy has become nearly deterministic; groups turn uniform and the "
                "signal vanishes (raise entropy_coef, lower lr, or check for a reward hack such as valid loops)")
        if len(succ) >= self.warmup and now["rollout/success"] < max(succ) - self.success_drop:
            warnings["success_drop"] = (
                f"rollout success {now['rollout/success']:.2f} is over {self.success_drop:g} below its best "
                f"{max(succ):.2f}: a collapse in progress, or a hard batch; check the other warnings")
        for k, v in now.items():
            self.history.setdefault(k, []).append(v)
        return warnings
