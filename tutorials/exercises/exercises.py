"""Exercises: write the key functions of sampo_ref yourself.

Each function below has its task and equation in the docstring and no body. Fill them in, then
check your work from the repository root with

    pytest tutorials/exercises --student

The checkers (``test_exercises.py``) compare your functions with numbers worked out by hand and
with the reference implementation (``sampo_ref``) on random inputs, values and gradients. Without
``--student`` they check the reference solutions instead (that is what CI runs).

Equation tags (S2), (S10), ... are those of the docs (Background and the algorithm pages).
Conventions: ``B`` rows (one row = one agent turn), ``T`` response tokens; ``mask`` is 1 on real
response tokens and 0 on padding; every function must work in float32 and float64 and be
differentiable with autograd where it returns a loss. Use only torch.
"""

from __future__ import annotations

import torch


def grpo_advantages(scores: torch.Tensor, group_index: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    r"""Exercise 1 — GRPO's group z-score, Eq. (S2).

    scores (B,) are the row scores q_j; group_index (B,) long says which group each row belongs
    to (any integer ids, rows in any order). Return A (B,):

        A_j = (q_j - mu_g) / (sigma_g + eps)

    where mu_g and sigma_g are the mean and the **unbiased** standard deviation (divide by
    |Q_g| - 1) of the scores of all rows of row j's group g.
    Conventions: a group with a single row uses mu = 0 and sigma = 1; a group whose scores are all
    equal gives A = 0 for each of its rows (up to rounding).
    Hint: ``torch.unique(..., return_inverse=True)``, ``index_add_`` or ``bincount``.
    """
    raise NotImplementedError("exercise 1: grpo_advantages (S2)")


def token_clip_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float = 3.0,
) -> torch.Tensor:
    r"""Exercise 2 — the PPO/GRPO token clip with dual clip, Eq. (S10), per token, to be minimised.

    logp, logp_old, mask (B, T); adv (B,), one advantage per row. Return the loss (B, T):

        w      = exp(clamp(logp - logp_old, -20, 20))
        loss   = max(-A w, -A clip(w, 1 - clip_low, 1 + clip_high))
        if A < 0:  loss = min(loss, -dual_clip * A)

    and exactly 0 where mask is 0 (also its gradient). Consequences to check yourself: the gradient
    d loss / d logp is -w A inside the trust region and exactly 0 when (A > 0, w > 1 + clip_high),
    (A < 0, w < 1 - clip_low) or (A < 0, w > dual_clip).
    """
    raise NotImplementedError("exercise 2: token_clip_loss (S10)")


def seq_log_ratio(logp: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""Exercise 3 — GSPO's turn-level log-ratio, Eq. (S11).

    logp, logp_old, mask (B, T). Return log s (B,), the mean of the token log-ratios over the row's
    response tokens (no clamp):

        log s_j = (1 / L_j) sum_t m_{j,t} (logp_{j,t} - logp_old_{j,t}),   L_j = sum_t m_{j,t}

    so s_j is the geometric mean of the token ratios. A row with no response token gets 0.
    Padding values must not leak in, even if they are huge.
    """
    raise NotImplementedError("exercise 3: seq_log_ratio (S11)")


def gspo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 3e-3,
    clip_high: float = 4e-3,
) -> torch.Tensor:
    r"""Exercise 4 — GSPO's per-token loss in the GSPO-token form, Eq. (S12), to be minimised.

    logp, logp_old, mask (B, T); adv (B,). With log s_j from Eq. (S11) and sg = stop-gradient
    (``.detach()``):

        s_hat_{j,t} = exp(min(10, logp_{j,t} - sg[logp_{j,t}] + sg[log s_j]))
        loss_{j,t}  = max(-A_j s_hat_{j,t}, -A_j clip(s_hat_{j,t}, 1 - clip_low, 1 + clip_high))

    and exactly 0 where mask is 0. Every token of row j has the VALUE s_j, so the clip acts on whole
    turns; each token's gradient is d loss_{j,t} / d logp_{j,t} = -A_j s_j, or 0 for every token of
    a clipped turn. No dual clip.
    """
    raise NotImplementedError("exercise 4: gspo_loss (S12)")


def discounted_step_returns(
    env_reward: torch.Tensor, traj_index: torch.Tensor, turn_index: torch.Tensor, gamma: float = 0.95
) -> torch.Tensor:
    r"""Exercise 5 — GiGPO's discounted step return, Eq. (S4).

    env_reward (B,) is the reward the environment returned after each row's action; traj_index (B,)
    and turn_index (B,) say which trajectory the row belongs to and which turn k it is. Rows may
    come in any order. Return G (B,):

        G_{tau,k} = sum over the rows k' >= k of trajectory tau of gamma^(k' - k) r_{tau,k'}

    (the exponent is the difference of turn indices, so a gap in the turns still discounts).
    The invalid-action penalty is NOT part of this: Eq. (S5) subtracts it afterwards,
    G~_j = G_j - c_inv (1 - v_j), in the same form as the row score (S1).
    """
    raise NotImplementedError("exercise 5: discounted_step_returns (S4)")


def step_groups(anchors: list[str], group_index: torch.Tensor) -> torch.Tensor:
    r"""Exercise 6 — GiGPO's anchor-state step groups (docs/algorithms/gigpo.md#key-equations).

    anchors: the B raw anchor observations (strings); group_index (B,) long. Return step_group (B,)
    long: two rows get the same id iff they have the same group id AND exactly the same anchor
    string (no normalisation). Only the partition matters, not how the ids are numbered.
    """
    raise NotImplementedError("exercise 6: step_groups (docs/algorithms/gigpo.md#key-equations)")


def step_advantages(
    step_return: torch.Tensor, step_group: torch.Tensor, mode: str = "mean_std_norm", eps: float = 1e-6
) -> torch.Tensor:
    r"""Exercise 7 — GiGPO's step advantage, Eq. (S6), on the penalised step returns G~ of Eq. (S5).

    step_return (B,) holds G~_j; step_group (B,) the step-group ids. Return A^S (B,):

        mean_norm:      A^S_j = G~_j - mean_h G~
        mean_std_norm:  A^S_j = (G~_j - mean_h G~) / (std_h G~ + eps)     (unbiased std)

    over the rows of row j's step group h. A singleton step group gives A^S = 0 exactly (unlike
    GRPO's singleton convention). Any other ``mode`` raises ValueError naming it.
    """
    raise NotImplementedError("exercise 7: step_advantages (S6)")


def aggregate(loss: torch.Tensor, mask: torch.Tensor, mode: str, max_len: int | None = None) -> torch.Tensor:
    r"""Exercise 8 — the four loss-aggregation modes (docs/dimensions.md#loss-aggregation).

    loss, mask (B, T). Return a scalar:

        token-mean               sum_{b,t} m l / sum_{b,t} m
        seq-mean-token-mean      (1/|V|) sum_{b in V} (sum_t m l / sum_t m),  V = rows with a real token
        seq-mean-token-sum       (1/B) sum_{b,t} m l            (B counts every row, empty ones too)
        seq-mean-token-sum-norm  (1/max_len) sum_{b,t} m l      (max_len given by the caller)

    An empty selection (no real token) gives 0, not NaN. An unknown mode raises ValueError; the
    -norm mode without max_len too. Masked positions must not leak in, even if they hold NaN.
    """
    raise NotImplementedError("exercise 8: aggregate (docs/dimensions.md#loss-aggregation)")


def k3_kl(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    r"""Exercise 9 — the k3 ("low_var_kl") estimate of KL(pi_theta || pi_ref) per token, Eq. (S18).

    logp, logp_ref (B, T). Return (B, T):

        u  = clamp(logp_ref - logp, -20, 20)
        k3 = clamp(exp(u) - u - 1, -10, 10)

    Check yourself: k3 >= 0, k3 = 0 where the two log-probs agree, and d k3 / d logp = 1 - pi_ref / pi
    (zero where a clamp acts).
    """
    raise NotImplementedError("exercise 9: k3_kl (S18)")
