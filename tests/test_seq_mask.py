"""Maths tests for sampo_ref.algos.seq_mask: the turn mask (S17), its sign convention, its
unclamped inputs and its effect on a policy loss (docs/algorithms/seq_mask.md#key-equations).
"""

import math

import pytest
import torch

from sampo_ref.algos.common import aggregate
from sampo_ref.algos.grpo import token_clip_loss
from sampo_ref.algos.seq_mask import apply_sequence_mask, sequence_mask

F64 = torch.float64


def _rows(adv, log_ratios, T=3, pad_value=-9.0):
    """Rows of given token log-ratios (ragged), padded with a garbage log-ratio."""
    B = len(log_ratios)
    logp_old = torch.full((B, T), -1.5, dtype=F64)
    lam = torch.full((B, T), pad_value, dtype=F64)
    mask = torch.zeros(B, T, dtype=F64)
    for b, row in enumerate(log_ratios):
        lam[b, : len(row)] = torch.tensor(row, dtype=F64)
        mask[b, : len(row)] = 1.0
    return logp_old + lam, logp_old, torch.tensor(adv, dtype=F64), mask


@pytest.mark.equation("S17")
def test_spec_example():
    """Checks (S17), the test of docs/algorithms/seq_mask.md#key-equations with delta = 0.223: (A < 0, s = 0.5) masked;
    (A < 0, s = 2) and (A > 0, s = 0.5) kept. Each s is made of two unequal token ratios."""
    ln_half, ln_two = math.log(0.5), math.log(2.0)
    logp, logp_old, adv, mask = _rows(
        [-1.0, -1.0, 1.0],
        [[ln_half - 0.1, ln_half + 0.1], [ln_two + 0.3, ln_two - 0.3], [ln_half, ln_half]],
    )
    keep, stats = sequence_mask(logp, logp_old, adv, mask, delta=0.223)
    assert keep.tolist() == [False, True, True]
    assert stats["seq_masked_rows"].item() == 1.0
    assert stats["seq_masked_frac"].item() == pytest.approx(1 / 3)


@pytest.mark.equation("S17")
def test_sign_convention():
    """Checks (S17)'s sign, log(pi_old / pi_theta) <= delta, against [ARL]'s docstring's opposite:
    A < 0 with s = 0.79 (-ln s = 0.2357 > 0.223) is masked; s = 0.81 (0.2107) is kept; s = 1.3
    (ln s = 0.2624 > 0.223, which the reversed sign would mask) is kept; A = 0 with s = 0.5 kept."""
    rows = [[math.log(0.79)], [math.log(0.81)], [math.log(1.3)], [math.log(0.5)]]
    logp, logp_old, adv, mask = _rows([-1.0, -1.0, -1.0, 0.0], rows)
    keep, _ = sequence_mask(logp, logp_old, adv, mask, delta=0.223)
    assert keep.tolist() == [False, True, True, True]


@pytest.mark.equation("S17")
def test_unclamped_row_mean_and_padding():
    """Checks docs/algorithms/seq_mask.md#key-equations inputs: the row mean of the UNCLAMPED log-ratio over valid tokens only.
    lambda = (-30, 29.5): mean -0.25, -mean 0.25 > 0.223 -> masked (a +-20 clamp would give 0,
    kept). Row 1: lambda = (-0.1) and padding -9 (which would mask it): -mean 0.1 -> kept."""
    logp, logp_old, adv, mask = _rows([-1.0, -1.0], [[-30.0, 29.5], [-0.1]])
    keep, _ = sequence_mask(logp, logp_old, adv, mask, delta=0.223)
    assert keep.tolist() == [False, True]


@pytest.mark.equation("S17")
def test_row_mean_advantage():
    """Checks docs/algorithms/seq_mask.md#key-equations: A-bar_j is the masked row mean of a (B, T) advantage.
    Row 0 adv (1, -3): mean -1 < 0 -> masked at s = 0.5; row 1 adv (-1, 3): mean 1 -> kept;
    row 2 adv (-1, padding 50): mean -1 -> masked."""
    ln_half = math.log(0.5)
    logp, logp_old, _, mask = _rows([0.0] * 3, [[ln_half, ln_half], [ln_half, ln_half], [ln_half]])
    adv = torch.tensor([[1.0, -3.0, 0.0], [-1.0, 3.0, 0.0], [-1.0, 50.0, 0.0]], dtype=F64)
    keep, _ = sequence_mask(logp, logp_old, adv, mask, delta=0.223)
    assert keep.tolist() == [False, True, False]


@pytest.mark.equation("S17")
def test_default_delta_is_released_script_value():
    """Checks docs/algorithms/seq_mask.md#key-equations delta = 3e-3 ([ARL] scripts): A < 0 turns with s < 0.997 are masked.
    s = 0.996 (-ln s = 0.004008) masked; s = 0.998 (0.002002) kept."""
    logp, logp_old, adv, mask = _rows([-1.0, -1.0], [[math.log(0.996)], [math.log(0.998)]])
    keep, _ = sequence_mask(logp, logp_old, adv, mask)
    assert keep.tolist() == [False, True]


@pytest.mark.equation("S17")
def test_masked_turn_gets_zero_gradient_and_leaves_denominator():
    """Checks docs/algorithms/seq_mask.md#key-equations scope: applied to the token clip's mask, every token of a masked turn has
    zero gradient (the token clip alone gives kappa = 0.9 to its w = 0.9 token) and the
    token-mean denominator shrinks from 4 to 2 tokens.
    Row 0: A = -1, w = (0.9, 0.7), s = sqrt(0.63) = 0.7937 < 0.8 -> masked at delta = 0.223.
    Row 1: A = 2, w = (1.1, 0.9): grad -A w / 2 = (-1.1, -0.9)."""
    logp, logp_old, adv, mask = _rows(
        [-1.0, 2.0], [[math.log(0.9), math.log(0.7)], [math.log(1.1), math.log(0.9)]]
    )
    logp = logp.requires_grad_(True)
    keep, _ = sequence_mask(logp, logp_old, adv, mask, delta=0.223)
    assert not keep.requires_grad
    pg_mask = apply_sequence_mask(mask, keep)
    assert pg_mask.tolist() == [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    loss, stats = token_clip_loss(logp, logp_old, adv, pg_mask)
    (grad,) = torch.autograd.grad(aggregate(loss, pg_mask, "token-mean"), logp)
    expected = torch.tensor([[0.0, 0.0, 0.0], [-1.1, -0.9, 0.0]], dtype=F64)
    assert torch.allclose(grad, expected, atol=1e-12)
    assert torch.equal(grad[0], torch.zeros(3, dtype=F64))
    assert stats["clipfrac"].item() == 0.0  # over the post-mask tokens (docs/algorithms/grpo.md#key-equations)
