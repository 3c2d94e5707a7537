"""Maths tests for sampo_ref.algos.cispo: the stop-gradient clipped-weight loss (S15), its kappa
(docs/algorithms/cispo.md#key-equations) and its clip fraction.

Gradient identity used throughout: d loss_{j,t} / d logp_{j,t} = -kappa_{j,t} * A_j.
"""

import math

import pytest
import torch

from sampo_ref.algos.cispo import cispo_loss

F64 = torch.float64


def _tokens(adv, ratios, logp_old=-1.0):
    """One row per (A, w): a single token with logp = logp_old + log w."""
    logp_old_t = torch.full((len(ratios), 1), logp_old, dtype=F64)
    log_w = torch.tensor([[math.log(w)] for w in ratios], dtype=F64)
    logp = (logp_old_t + log_w).requires_grad_(True)
    return logp, logp_old_t, torch.tensor(adv, dtype=F64), torch.ones_like(logp_old_t)


@pytest.mark.equation("S15")
def test_hand_example():
    """Checks (S15) with the defaults eps_l = 1, eps_h = 0.2 (w_hat = min(w, 1.2)), logp_old = -1.

    (A = 2, w = 0.5):  logp = -1.6931472, loss = -0.5 * 2 * logp = 1.6931472,   grad = -1.0
    (A = 1, w = 1.5):  logp = -0.5945349, loss = -1.2 * 1 * logp = 0.7134419,   grad = -1.2
    (A = -1, w = 0.1): logp = -3.3025851, loss = 0.1 * logp = -0.3302585,       grad = 0.1
    (A = -1, w = 3):   logp = 0.0986123,  loss = 1.2 * logp = 0.1183347,        grad = 1.2
    (A = 0, w = 1):    loss 0, grad 0
    clip fraction: w = 1.5 and w = 3 are clipped -> 2 / 5.
    """
    logp, logp_old, adv, mask = _tokens([2.0, 1.0, -1.0, -1.0, 0.0], [0.5, 1.5, 0.1, 3.0, 1.0])
    loss, stats = cispo_loss(logp, logp_old, adv, mask)
    assert loss[:, 0].tolist() == pytest.approx(
        [1.6931472, 0.7134419, -0.3302585, 0.1183347, 0.0], abs=1e-7
    )
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert grad[:, 0].tolist() == pytest.approx([-1.0, -1.2, 0.1, 1.2, 0.0], abs=1e-12)
    assert stats["clipfrac"].item() == pytest.approx(2 / 5)
    assert stats["clipfrac_lower"].item() == 0.0
    assert all(not torch.as_tensor(v.total).requires_grad and torch.as_tensor(v.total).dim() == 0
               for v in stats.values())


RATIOS = [1e-3, 0.1, 0.5, 0.9, 1.0, 1.1, 1.19, 1.21, 2.0, 50.0]


@pytest.mark.equation("S15")
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_kappa_is_min_w_and_never_zero(sign):
    """Checks docs/algorithms/cispo.md#key-equations: with eps_l = 1, eps_h = 0.2, kappa = min(w, 1.2) > 0 for A != 0."""
    adv = [sign * 0.7] * len(RATIOS)
    logp, logp_old, adv_t, mask = _tokens(adv, RATIOS)
    loss, _ = cispo_loss(logp, logp_old, adv_t, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    kappa = (-grad[:, 0] / adv_t).tolist()
    assert kappa == pytest.approx([min(w, 1.2) for w in RATIOS], rel=1e-12)
    assert bool((grad != 0).all())


@pytest.mark.equation("S15")
def test_gradient_survives_the_log_ratio_clamp():
    """Checks (S15): the +-20 clamp only bounds w_hat (kappa = e^-20 at lambda = -25), the
    gradient flows through logp itself, so it is still not zero."""
    logp, logp_old, adv, mask = _tokens([1.0], [math.exp(-25.0)])
    loss, _ = cispo_loss(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert grad[0, 0].item() == pytest.approx(-math.exp(-20.0), rel=1e-9)


@pytest.mark.equation("S15")
def test_lower_clip_when_set():
    """Checks (S15) with eps_l = 0.2: w = 0.5 -> w_hat = 0.8 = kappa; it counts as clipped."""
    logp, logp_old, adv, mask = _tokens([1.0, 1.0, 1.0], [0.5, 1.0, 1.1])
    loss, stats = cispo_loss(logp, logp_old, adv, mask, clip_low=0.2, clip_high=0.2)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert grad[:, 0].tolist() == pytest.approx([-0.8, -1.0, -1.1], abs=1e-12)
    assert stats["clipfrac"].item() == pytest.approx(1 / 3)


def test_masked_tokens_and_stats():
    """Checks docs/dimensions.md#which-tokens-get-exactly-zero-gradient "all" for (S15): padding has loss 0 and gradient 0; stats skip it.
    ppo_kl = -(ln 2 + ln 0.5) / 2 = 0 over the two valid tokens (the masked w = 5 is ignored)."""
    logp, logp_old, adv, mask = _tokens([1.0, -1.0, 1.0], [2.0, 0.5, 5.0])
    mask[2, 0] = 0.0
    loss, stats = cispo_loss(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert loss[2, 0].item() == 0.0 and grad[2, 0].item() == 0.0
    assert stats["clipfrac"].item() == pytest.approx(1 / 2)
    assert stats["ppo_kl"].item() == pytest.approx(0.0, abs=1e-12)


def test_validation_names_bad_value():
    logp = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="1.5"):
        cispo_loss(logp, logp, torch.ones(1), torch.ones(1, 1), clip_low=1.5)
