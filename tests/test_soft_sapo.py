"""Maths tests for sampo_ref.algos.soft_sapo: the sigmoid-gate loss (S14), its kappa reference
table (docs/algorithms/soft_sapo.md#key-equations), the per-row temperature and the diagnostic clip fraction.

Gradient identity used throughout: d loss_{j,t} / d logp_{j,t} = -kappa_{j,t} * A_j.
"""

import math

import pytest
import torch

from sampo_ref.algos.soft_sapo import soft_sapo_loss

F64 = torch.float64

W_VALUES = [0.5, 0.8, 1.0, 1.2, 2.0, 3.0]
# docs/algorithms/soft_sapo.md#key-equations reference table
KAPPA_TAU_1 = [0.4700, 0.7921, 1.0, 1.1881, 1.5729, 1.2599]
KAPPA_TAU_105 = [0.4671, 0.7912, 1.0, 1.1869, 1.5362, 1.1663]


def _tokens(adv, ratios, logp_old=-1.3):
    """One row per (A, w): a single token with logp = logp_old + log w."""
    logp_old_t = torch.full((len(ratios), 1), logp_old, dtype=F64)
    log_w = torch.tensor([[math.log(w)] for w in ratios], dtype=F64)
    logp = (logp_old_t + log_w).requires_grad_(True)
    return logp, logp_old_t, torch.tensor(adv, dtype=F64), torch.ones_like(logp_old_t)


@pytest.mark.equation("S14")
@pytest.mark.parametrize(
    "sign, expected", [(1.0, KAPPA_TAU_1), (-1.0, KAPPA_TAU_105)], ids=["tau_pos=1", "tau_neg=1.05"]
)
def test_kappa_reference_table(sign, expected):
    """Checks (S14) kappa = 4 sigma (1 - sigma) w against the table of docs/algorithms/soft_sapo.md#key-equations, to 1e-4: A > 0 rows
    use tau_pos = 1.0, A < 0 rows tau_neg = 1.05 (the defaults)."""
    adv = [sign * 1.7] * len(W_VALUES)
    logp, logp_old, adv_t, mask = _tokens(adv, W_VALUES)
    loss, _ = soft_sapo_loss(logp, logp_old, adv_t, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    kappa = (-grad[:, 0] / adv_t).tolist()
    assert kappa == pytest.approx(expected, abs=1e-4)


@pytest.mark.equation("S14")
def test_hand_loss_values():
    """Checks (S14) values: loss = -(4 / tau) sigma(tau (w - 1)) A.

    (A = 2, w = 1, tau = 1):      -4 * 0.5 * 2                      = -4
    (A = -1, w = 1, tau = 1.05):  (4 / 1.05) * 0.5                  = 1.9047619 (2|A|/tau, not |A|)
    (A = 1, w = 2, tau = 1):      -4 sigma(1) = -4 * 0.7310586      = -2.9242343
    (A = -0.5, w = 0.5, tau=1.05): 0.5 (4 / 1.05) sigma(-0.525)
                                 = 0.5 * 3.8095238 * 0.3716838       = 0.7079692
    """
    logp, logp_old, adv, mask = _tokens([2.0, -1.0, 1.0, -0.5], [1.0, 1.0, 2.0, 0.5])
    loss, _ = soft_sapo_loss(logp, logp_old, adv, mask)
    expected = [-4.0, 1.9047619, -2.9242343, 0.7079692]
    assert loss[:, 0].tolist() == pytest.approx(expected, abs=1e-7)


@pytest.mark.equation("S14")
def test_temperature_per_row_by_mean_advantage():
    """Checks docs/algorithms/soft_sapo.md#key-equations: tau is chosen per ROW by the sign of the masked mean advantage.

    Row 0 adv [2, -1] (mean 0.5 > 0): the A = -1 token uses tau_pos = 1 -> kappa(2) = 1.5729.
    Row 1 adv [1, -3] (mean -1): the A = 1 token uses tau_neg = 1.05 -> kappa(2) = 1.5362.
    Row 2 adv [1, -1, padding 5] (mean over valid tokens 0, not > 0): tau_neg -> 1.5362.
    """
    logp_old = torch.full((3, 3), -0.7, dtype=F64)
    logp = (logp_old + math.log(2.0)).requires_grad_(True)  # w = 2 everywhere
    adv = torch.tensor([[2.0, -1.0, 0.0], [1.0, -3.0, 0.0], [1.0, -1.0, 5.0]], dtype=F64)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]], dtype=F64)
    loss, _ = soft_sapo_loss(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    kappa = -grad[:, :2] / adv[:, :2]
    assert kappa[0].tolist() == pytest.approx([1.5729, 1.5729], abs=1e-4)
    assert kappa[1].tolist() == pytest.approx([1.5362, 1.5362], abs=1e-4)
    assert kappa[2].tolist() == pytest.approx([1.5362, 1.5362], abs=1e-4)
    assert torch.equal(grad[:, 2], torch.zeros(3, dtype=F64))


@pytest.mark.equation("S14")
def test_kappa_never_zero():
    """Checks docs/algorithms/soft_sapo.md#key-equations: kappa > 0 for any w (here 0.01 .. 20) and A != 0; it is 0 only through
    the +-20 clamp (|lambda| = 25) or A = 0."""
    ratios = [0.01, 0.1, 0.3, 0.8, 1.0, 1.5, 4.0, 10.0, 20.0]
    adv = [1.0] * len(ratios) + [-1.0] * len(ratios)
    logp, logp_old, adv_t, mask = _tokens(adv, ratios * 2)
    loss, _ = soft_sapo_loss(logp, logp_old, adv_t, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert bool((grad != 0).all())
    # w = 10, tau = 1: kappa = 10 * 4 sigma(9)(1 - sigma(9)) = 0.0049352, small but not 0
    assert (-grad[7, 0]).item() == pytest.approx(0.0049352, abs=1e-7)

    logp, logp_old, adv_t, mask = _tokens([1.0, 0.0], [math.exp(-25.0), 1.5])
    loss, _ = soft_sapo_loss(logp, logp_old, adv_t, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_diagnostic_clipfrac_and_masking():
    """Checks docs/algorithms/soft_sapo.md#key-equations clip fraction: (A > 0, w > 1.2) or (A < 0, w < 0.8) over valid tokens.

    Valid tokens: (1, 1.3) yes, (1, 0.5) no, (-1, 0.7) yes, (-1, 1.5) no, (1, 1.1) no, (0, 0.5) no
    -> 2 / 6. A seventh, masked token (1, 2.0) would count: it must not, and its loss is 0.
    ppo_kl = -(ln 1.3 + ln 0.5 + ln 0.7 + ln 1.5 + ln 1.1 + ln 0.5) / 6
           = -(0.262364 - 0.693147 - 0.356675 + 0.405465 + 0.095310 - 0.693147) / 6 = 0.163305
    """
    adv = [1.0, 1.0, -1.0, -1.0, 1.0, 0.0, 1.0]
    logp, logp_old, adv_t, mask = _tokens(adv, [1.3, 0.5, 0.7, 1.5, 1.1, 0.5, 2.0])
    mask[6, 0] = 0.0
    loss, stats = soft_sapo_loss(logp, logp_old, adv_t, mask)
    assert stats["clipfrac"].item() == pytest.approx(2 / 6)
    assert stats["clipfrac_lower"].item() == 0.0
    assert stats["ppo_kl"].item() == pytest.approx(0.163305, abs=1e-6)
    assert loss[6, 0].item() == 0.0 and loss[5, 0].item() == 0.0
    assert all(not torch.as_tensor(v.total).requires_grad and torch.as_tensor(v.total).dim() == 0
               for v in stats.values())


def test_validation_names_bad_value():
    logp = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="-0.5"):
        soft_sapo_loss(logp, logp, torch.ones(1), torch.ones(1, 1), tau_neg=-0.5)


def test_temperature_is_exact_in_the_input_dtype():
    """One token, A = -1, w = 1, in float64: the loss is f_tau(1) = 2 / tau_neg = 2 / 1.05 exactly
    (the temperatures must not pass through a float32 tensor, which gives 1.0499999523)."""
    logp = torch.tensor([[-0.7]], dtype=F64)
    loss, _ = soft_sapo_loss(logp, logp.clone(), torch.tensor([-1.0], dtype=F64), torch.ones(1, 1, dtype=F64))
    assert loss.item() == 2 / 1.05
