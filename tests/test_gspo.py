"""Maths tests for sampo_ref.algos.gspo: the turn ratio (S11), the GSPO-token loss (S12) and its
sequence gradient (S13), the whole-turn kappa of docs/algorithms/gspo.md#key-equations, and its stats.

Gradient identity used throughout: d loss_{j,t} / d logp_{j,t} = -kappa_{j,t} * A_j.
"""

import math

import pytest
import torch

from sampo_ref.algos.common import aggregate
from sampo_ref.algos.gspo import PG_AGG, gspo_loss, seq_log_ratio

F64 = torch.float64


def _batch(log_ratios, adv, T=4, pad_value=7.0):
    """Rows of given token log-ratios (ragged), padded to T with a garbage log-ratio."""
    B = len(log_ratios)
    logp_old = -1.0 - 0.1 * torch.arange(B * T, dtype=F64).reshape(B, T)
    lam = torch.full((B, T), pad_value, dtype=F64)
    mask = torch.zeros(B, T, dtype=F64)
    for b, row in enumerate(log_ratios):
        lam[b, : len(row)] = torch.tensor(row, dtype=F64)
        mask[b, : len(row)] = 1.0
    logp = (logp_old + lam).requires_grad_(True)
    return logp, logp_old, torch.tensor(adv, dtype=F64), mask


# eps_l / eps_h = 3e-3 / 4e-3 (the defaults); no s at a clip boundary
HAND_ROWS = [[0.001, 0.003], [0.02, -0.01, 0.005], [-0.01, 0.002], [0.3, -0.1, -0.2, 0.02]]
HAND_ADV = [1.5, 2.0, -1.0, -0.5]


@pytest.mark.equation("S11", "S12")
def test_hand_example_values_and_gradient():
    """Checks (S11), (S12) on a hand-worked batch.

    row 0: A = 1.5,  log s = 0.004 / 2 = 0.002,  s = 1.0020020 <= 1.004: loss -A s = -1.5030030
    row 1: A = 2,    log s = 0.015 / 3 = 0.005,  s = 1.0050125 >  1.004: clipped, -2 * 1.004
    row 2: A = -1,   log s = -0.008 / 2 = -0.004, s = 0.9960080 < 0.997: clipped, 1 * 0.997
    row 3: A = -0.5, log s = 0.02 / 4 = 0.005,   s = 1.0050125: NOT clipped (no upper clip for
           A < 0, no dual clip): loss 0.5 * s = 0.5025063
    grad of loss.sum(): -A s per token of rows 0 and 3, exactly 0 for every token of rows 1 and 2.
    """
    logp, logp_old, adv, mask = _batch(HAND_ROWS, HAND_ADV)
    loss, stats = gspo_loss(logp, logp_old, adv, mask)
    expected = torch.tensor(
        [
            [-1.5030030, -1.5030030, 0, 0],
            [-2.008, -2.008, -2.008, 0],
            [0.997, 0.997, 0, 0],
            [0.5025063, 0.5025063, 0.5025063, 0.5025063],
        ],
        dtype=F64,
    )
    assert torch.allclose(loss.detach(), expected, atol=1e-7)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    expected_grad = torch.tensor(
        [[-1.5030030] * 2 + [0, 0], [0.0] * 4, [0.0] * 4, [0.5025063] * 4], dtype=F64
    )
    assert torch.allclose(grad, expected_grad, atol=1e-7)
    assert torch.equal(grad[1:3], torch.zeros(2, 4, dtype=F64))  # exactly zero, whole turns
    assert torch.equal(grad[mask == 0], torch.zeros(int((mask == 0).sum()), dtype=F64))


def test_hand_example_stats():
    """Checks docs/algorithms/gspo.md#key-equations clip fraction (length-weighted), lower clip fraction 0, ppo_kl, s stats."""
    logp, logp_old, adv, mask = _batch(HAND_ROWS, HAND_ADV)
    _, stats = gspo_loss(logp, logp_old, adv, mask)
    # clipped turns 1 and 2 hold 3 + 2 of 2 + 3 + 2 + 4 = 11 tokens (the row share would be 2/4)
    assert stats["clipfrac"].item() == pytest.approx(5 / 11)
    assert stats["clipfrac_lower"].item() == 0.0
    # -(0.004 + 0.015 - 0.008 + 0.02) / 11, padding excluded
    assert stats["ppo_kl"].item() == pytest.approx(-0.031 / 11)
    assert stats["seq_ratio_mean"].item() == pytest.approx(1.0020088, abs=1e-7)
    assert stats["seq_ratio_min"].item() == pytest.approx(0.9960080, abs=1e-7)
    assert stats["seq_ratio_max"].item() == pytest.approx(1.0050125, abs=1e-7)
    assert all(not torch.as_tensor(v.total).requires_grad and torch.as_tensor(v.total).dim() == 0
               for v in stats.values())


@pytest.mark.equation("S11")
def test_seq_log_ratio_is_unclamped_masked_mean():
    """Checks (S11): lambda is not clamped at +-20 and padding is ignored (log s = (30 + 0) / 2)."""
    logp, logp_old, _, mask = _batch([[30.0, 0.0], [-25.0, -1.0, 2.0]], [1.0, 1.0])
    log_s = seq_log_ratio(logp, logp_old, mask)
    assert torch.allclose(log_s, torch.tensor([15.0, -8.0], dtype=F64))


@pytest.mark.equation("S12")
@pytest.mark.parametrize(
    "adv, row, clipped",
    [
        (1.0, [0.02, -0.01], True),  # A > 0, s = e^0.005 > 1 + eps_h (a token ratio is < 1)
        (-1.0, [-0.02, 0.01], True),  # A < 0, s = e^-0.005 < 1 - eps_l (a token ratio is > 1)
        (1.0, [-0.02, 0.01], False),  # A > 0, s < 1 - eps_l: kappa = s
        (-1.0, [0.02, -0.01], False),  # A < 0, s > 1 + eps_h: kappa = s, no dual clip
        (1.0, [0.001, 0.0, 0.002], False),  # inside the band
    ],
)
def test_kappa_is_whole_turn(adv, row, clipped):
    """Checks docs/algorithms/gspo.md#key-equations kappa: s_j on every token of the turn, or exactly 0 for the whole turn."""
    logp, logp_old, adv_t, mask = _batch([row], [adv])
    loss, _ = gspo_loss(logp, logp_old, adv_t, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    n = len(row)
    s = math.exp(sum(row) / n)
    kappa = 0.0 if clipped else s
    assert torch.allclose(grad[0, :n], torch.full((n,), -kappa * adv, dtype=F64), atol=1e-12)
    if clipped:
        assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.equation("S12")
def test_log_seq_ratio_cap_kills_gradient():
    """Checks (S12) clamp min(10, .): A < 0 with log s = 11 is not clipped but gets kappa = 0."""
    logp, logp_old, adv, mask = _batch([[11.0, 11.0], [9.0, 9.0]], [-1.0, -1.0])
    loss, _ = gspo_loss(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert loss[0, 0].item() == pytest.approx(math.exp(10.0))
    assert torch.equal(grad[0], torch.zeros(4, dtype=F64))
    assert grad[1, 0].item() == pytest.approx(math.exp(9.0))


@pytest.mark.equation("S13")
def test_sequence_gradient_equals_adv_times_grad_s():
    """Checks (S13): under seq-mean-token-mean the gradient is -(1/|V|) sum_j A_j grad s_j, with
    s_j computed here directly as exp(sum_t m lambda / L_j) (unclipped rows)."""
    gen = torch.Generator().manual_seed(1)
    lengths = [3, 1, 4, 2]
    rows = [(1e-3 * torch.randn(n, generator=gen, dtype=F64)).tolist() for n in lengths]
    adv = torch.randn(len(rows), generator=gen, dtype=F64).tolist()
    logp, logp_old, adv_t, mask = _batch(rows, adv)
    loss, stats = gspo_loss(logp, logp_old, adv_t, mask, clip_low=0.5, clip_high=0.5)
    assert stats["clipfrac"].item() == 0.0
    assert PG_AGG == "seq-mean-token-mean"
    (grad,) = torch.autograd.grad(aggregate(loss, mask, PG_AGG), logp)

    logp_s = logp.detach().clone().requires_grad_(True)
    s = torch.exp(((logp_s - logp_old) * mask).sum(-1) / mask.sum(-1))  # (B,)  Eq. (S11)
    (grad_s,) = torch.autograd.grad((-adv_t * s).sum() / len(rows), logp_s)
    assert torch.allclose(grad, grad_s, atol=1e-14)


@pytest.mark.equation("S12")
def test_row_constant_2d_advantage_matches_1d():
    """Checks (S12) with adv given per token (row-constant): same loss as with adv (B,)."""
    logp, logp_old, adv, mask = _batch(HAND_ROWS, HAND_ADV)
    loss_1d, _ = gspo_loss(logp, logp_old, adv, mask)
    loss_2d, _ = gspo_loss(logp, logp_old, adv[:, None].expand(-1, 4), mask)
    assert torch.equal(loss_1d, loss_2d)


def test_validation_names_bad_value():
    logp = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="1.5"):
        gspo_loss(logp, logp, torch.ones(1), torch.ones(1, 1), clip_low=1.5)
