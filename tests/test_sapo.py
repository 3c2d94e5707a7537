"""Maths tests for sampo_ref.algos.sapo (Search-Agent SAPO): the set P, the conditional KL term
(S16) with its own denominator N_P, and its combination with the token clip (S10), docs/algorithms/sapo.md#key-equations.

Gradient identity: on token (j, t) the token-mean total has gradient
    -kappa_clip A_j / N - w_kl / N_P * 1[j in P, lambda <= ln t_kl].
"""

import math

import pytest
import torch

from sampo_ref.algos.common import agg_denominator, aggregate
from sampo_ref.algos.sapo import (
    PG_AGG,
    conditional_kl,
    positive_mask,
    positive_rows,
    sapo_loss,
)

F64 = torch.float64

# rows: A = 1 (w 0.5, 0.9, 0.7), A = 0 (w 0.6, 1.5, padding), A = -1 (w 0.5, 0.5, 0.5)
HAND_ADV = [1.0, 0.0, -1.0]
HAND_W = [[0.5, 0.9, 0.7], [0.6, 1.5, 3.0], [0.5, 0.5, 0.5]]
HAND_MASK = [[1, 1, 1], [1, 1, 0], [1, 1, 1]]


def total_loss(logp, logp_old, adv, mask, w_kl=0.1, n=None, n_p=None, **kwargs):
    """L = L_clip + w_kl L_ckl, the two terms of ``sapo_loss`` aggregated as the trainer does:
    over N tokens and over P's N_P tokens (pass the mini-batch's N and N_P for a micro-batch)."""
    clip, ckl, stats = sapo_loss(logp, logp_old, adv, mask, **kwargs)
    p_mask = positive_mask(mask, adv, kwargs.get("include_zero_adv", True))
    return aggregate(clip, mask, PG_AGG, n) + w_kl * aggregate(ckl, p_mask, "token-mean", n_p), stats


def _batch(adv=HAND_ADV, ratios=HAND_W, mask=HAND_MASK, logp_old=-1.2):
    logp_old_t = torch.full((len(ratios), len(ratios[0])), logp_old, dtype=F64)
    log_w = torch.tensor([[math.log(w) for w in row] for row in ratios], dtype=F64)
    logp = (logp_old_t + log_w).requires_grad_(True)
    return logp, logp_old_t, torch.tensor(adv, dtype=F64), torch.tensor(mask, dtype=F64)


@pytest.mark.equation("S16")
def test_positive_rows_flag():
    """Checks P of (S16): A >= 0 by default, A > 0 with include_zero_adv=False."""
    adv = torch.tensor([0.5, 0.0, -0.1, -0.0])
    assert positive_rows(adv).tolist() == [True, True, False, True]
    assert positive_rows(adv, include_zero_adv=False).tolist() == [True, False, False, False]


@pytest.mark.equation("S16")
@pytest.mark.parametrize("include_zero", [True, False])
def test_conditional_kl_hand_values_and_gradient(include_zero):
    """Checks (S16) per token, t_kl = 0.8 (ln 0.8 = -0.2231436):

    row 0 (A = 1, in P):  lambda = ln 0.5, ln 0.9, ln 0.7 -> selected, not, selected
                          term = 0.6931472, 0, 0.3566749
    row 1 (A = 0):        in P only with include_zero: ln 0.6 selected -> 0.5108256; ln 1.5 not
    row 2 (A = -1):       never in P -> 0
    N_P = 3 + 2 = 5 (include) or 3; L_ckl = 1.5606477 / 5 = 0.3121295 or 1.0498221 / 3 = 0.3499407.
    The gradient of the term is -1 on exactly the selected tokens and 0 on every other token.
    """
    logp, logp_old, adv, mask = _batch()
    in_p = positive_rows(adv, include_zero)
    term = conditional_kl(logp, logp_old, mask, in_p, t_kl=0.8)
    row1 = [0.5108256, 0.0, 0.0] if include_zero else [0.0, 0.0, 0.0]
    expected = torch.tensor([[0.6931472, 0.0, 0.3566749], row1, [0.0, 0.0, 0.0]], dtype=F64)
    assert torch.allclose(term.detach(), expected, atol=1e-7)

    n_p = agg_denominator(positive_mask(mask, adv, include_zero), "token-mean")
    assert n_p == (5.0 if include_zero else 3.0)
    value = aggregate(term, mask, "token-mean", n_p)
    assert value.item() == pytest.approx(0.3121295 if include_zero else 0.3499407, abs=1e-7)

    (grad,) = torch.autograd.grad(term.sum(), logp)
    selected = torch.tensor([[1, 0, 1], [1 if include_zero else 0, 0, 0], [0, 0, 0]], dtype=F64)
    assert torch.equal(grad, -selected)  # exactly -1 or exactly 0


@pytest.mark.equation("S16")
def test_unclamped_log_ratio_keeps_gradient_as_w_goes_to_zero():
    """Checks (S16): lambda is not clamped at -20, so lambda = -30 gives term 30 and gradient -1."""
    logp, logp_old, adv, mask = _batch([1.0], [[math.exp(-30.0), math.exp(-5.0)]], [[1, 1]])
    term = conditional_kl(logp, logp_old, mask, positive_rows(adv))
    assert term.detach().tolist()[0] == pytest.approx([30.0, 5.0])
    (grad,) = torch.autograd.grad(term.sum(), logp)
    assert torch.equal(grad, torch.full((1, 2), -1.0, dtype=F64))


@pytest.mark.equation("S16")
def test_empty_p_gives_zero():
    """Checks (S16): L_ckl = 0 when N_P = 0 (all rows negative), with zero gradient, no NaN."""
    logp, logp_old, adv, mask = _batch([-1.0, -2.0], [[0.1, 0.2], [0.3, 0.5]], [[1, 1], [1, 0]])
    in_p = positive_rows(adv)
    term = conditional_kl(logp, logp_old, mask, in_p)
    value = aggregate(term, positive_mask(mask, adv), "token-mean")
    (grad,) = torch.autograd.grad(value, logp)
    assert value.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))
    clip, ckl, stats = sapo_loss(logp, logp_old, adv, mask)
    assert torch.equal(ckl, torch.zeros_like(ckl)) and bool(torch.isfinite(clip).all())
    assert stats["ckl_frac"].value == 0.0  # no token of P: a share of nothing is 0


@pytest.mark.equation("S10", "S16")
@pytest.mark.parametrize(
    "include_zero, value, grad_rows",
    [
        # N = 8, N_P = 5: -kappa A / 8 - 0.1 / 5 on selected tokens
        (True, 0.0687130, [[-0.0825, -0.1125, -0.1075], [-0.02, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        # N_P = 3: 0.1 / 3 = 0.0333333
        (False, 0.0724941, [[-0.0958333, -0.1125, -0.1208333], [0.0] * 3, [0.0] * 3]),
    ],
)
def test_sapo_loss_total(include_zero, value, grad_rows):
    """Checks (S10) + w_kl (S16), w_kl = 0.1, t_kl = 0.8, eps = 0.2, no dual clip.

    Clip term: row 0 (A = 1): -0.5, -0.9, -0.7 (w = 0.5 is not clipped for A > 0); row 1: 0;
    row 2 (A = -1, w = 0.5 < 0.8, clipped): 0.8 x 3. Sum 0.3 over N = 8 tokens: L_clip = 0.0375.
    L = 0.0375 + 0.1 * 0.3121295 = 0.0687130 (include zero) or 0.0375 + 0.1 * 0.3499407 = 0.0724941.
    Row 2 stays exactly 0: clipped by the token clip and not in P (docs/dimensions.md#which-tokens-get-exactly-zero-gradient).
    """
    logp, logp_old, adv, mask = _batch()
    total, stats = total_loss(logp, logp_old, adv, mask, include_zero_adv=include_zero)
    assert PG_AGG == "token-mean"
    assert total.item() == pytest.approx(value, abs=1e-7)
    (grad,) = torch.autograd.grad(total, logp)
    assert torch.allclose(grad, torch.tensor(grad_rows, dtype=F64), atol=1e-7)
    assert torch.equal(grad[2], torch.zeros(3, dtype=F64))
    assert grad[1, 2].item() == 0.0  # padding
    assert stats["clipfrac"].item() == pytest.approx(3 / 8)
    assert stats["clipfrac_lower"].item() == 0.0
    assert stats["ckl_frac"].item() == pytest.approx(3 / 5 if include_zero else 2 / 3)


@pytest.mark.equation("S16")
def test_micro_batches_use_minibatch_denominators():
    """Checks (S16) under micro-batching: with the mini-batch N and N_P passed in, the sum of the
    micro-batch aggregates equals the whole mini-batch's loss and gradient."""
    logp, logp_old, adv, mask = _batch()
    whole, _ = total_loss(logp, logp_old, adv, mask)
    (grad_whole,) = torch.autograd.grad(whole, logp)

    n = agg_denominator(mask, PG_AGG)
    n_p = agg_denominator(positive_mask(mask, adv), "token-mean")
    total = 0.0
    for rows in ([0], [1, 2]):
        total = total + total_loss(logp[rows], logp_old[rows], adv[rows], mask[rows], n=n, n_p=n_p)[0]
    (grad_split,) = torch.autograd.grad(total, logp)
    assert total.item() == pytest.approx(0.0687130, abs=1e-7)
    assert torch.allclose(grad_split, grad_whole, atol=1e-15)


@pytest.mark.equation("S16")
@pytest.mark.parametrize("t_kl, kl_on", [(0.8, False), (1.0, True), (1.2, True)])
def test_on_policy_kl_term(t_kl, kl_on):
    """Checks docs/dimensions.md#which-tokens-get-exactly-zero-gradient conventions' exception: on-policy (lambda = 0) the KL condition
    lambda <= ln t_kl holds iff t_kl >= 1; then every P token gets -w_kl / N_P on top of -A / N."""
    logp_old = torch.tensor([[-0.5, -1.0], [-2.0, -0.3]], dtype=F64)
    logp = logp_old.clone().requires_grad_(True)
    adv = torch.tensor([0.4, -0.6], dtype=F64)
    mask = torch.ones(2, 2, dtype=F64)
    total, _ = total_loss(logp, logp_old, adv, mask, t_kl=t_kl, w_kl=0.1)
    (grad,) = torch.autograd.grad(total, logp)
    extra = 0.1 / 2 if kl_on else 0.0  # N_P = 2 (row 0)
    expected = torch.tensor([[-0.4 / 4 - extra] * 2, [0.6 / 4] * 2], dtype=F64)
    assert torch.allclose(grad, expected, atol=1e-15)


def test_validation_names_bad_value():
    logp = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="-0.5"):
        conditional_kl(logp, logp, torch.ones(1, 1), torch.ones(1, dtype=torch.bool), t_kl=-0.5)
