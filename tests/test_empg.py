"""Maths tests for sampo_ref.algos.empg: turn entropy, batch min-max normalisation, the scaling g
and next-turn bonus f (S8), and the re-centring (S9).

Expected numbers are worked by hand (math.exp of the hand-normalised entropies), never by the
code under test.
"""

import math

import pytest
import torch

from sampo_ref.algos.empg import (
    empg_advantages,
    entropy_scale,
    minmax_normalise,
    next_turn_row,
    turn_entropy,
)


F64 = torch.float64

# Rows deliberately out of order:
# row traj turn  H   H~ = (H - 1) / 4   next row
#  0   5    1    1   0                  none (last turn of traj 5)
#  1   2    0    3   0.5                3
#  2   5    0    2   0.25               0
#  3   2    1    5   1                  none (last turn of traj 2)
#  4   9    0    3   0.5                none (one-turn trajectory)
TRAJ = torch.tensor([5, 2, 5, 2, 9])
TURN = torch.tensor([1, 0, 0, 1, 0])
H = torch.tensor([1.0, 3.0, 2.0, 5.0, 3.0], dtype=F64)
H_NORM = [0.0, 0.5, 0.25, 1.0, 0.5]
ADV = torch.tensor([1.0, -1.0, 0.5, 0.0, 2.0], dtype=F64)


def _expected(adv, k=1.0, k_f=1.0, zeta=0.05):
    """(S8)-(S9) by hand for the table above."""
    w = [math.exp(-k * h) for h in H_NORM]
    g = [x / (sum(w) / 5) for x in w]
    bonus = [0.0, math.exp(-k_f * 1.0), math.exp(-k_f * 0.0), 0.0, 0.0]  # f of rows 3 and 0
    a1 = [gi * a + zeta * b for gi, a, b in zip(g, adv, bonus)]
    mean = sum(a1) / 5
    return torch.tensor([a - mean for a in a1], dtype=F64)


def test_turn_entropy_masked_mean():
    entropy = torch.tensor([[1.0, 2.0, 9.0], [4.0, 9.0, 9.0], [9.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert torch.allclose(turn_entropy(entropy, mask), torch.tensor([1.5, 4.0, 0.0]))


def test_minmax_normalisation():
    """Checks docs/algorithms/empg.md#key-equations step 3 over the batch; equal entropies give 0 (the 1e-8 guard)."""
    assert torch.allclose(minmax_normalise(H), torch.tensor(H_NORM, dtype=F64), atol=1e-8)
    assert torch.equal(minmax_normalise(torch.full((4,), 0.7)), torch.zeros(4))


@pytest.mark.equation("S8")
def test_scale_has_batch_mean_one():
    """Checks g of (S8) [EMPG paper, Eq. 10]: hand values, and batch mean ~ 1 for any k."""
    w = [math.exp(-h) for h in H_NORM]
    g = entropy_scale(torch.tensor(H_NORM, dtype=F64), k=1.0)
    assert torch.allclose(g, torch.tensor([x / (sum(w) / 5) for x in w], dtype=F64), atol=1e-7)
    gen = torch.Generator().manual_seed(0)
    for k in (0.0, 0.5, 1.0, 3.0):
        h_norm = minmax_normalise(torch.rand(50, generator=gen, dtype=F64) * 4)
        assert entropy_scale(h_norm, k).mean().item() == pytest.approx(1.0, abs=1e-7)
    assert g[0] > 1 > g[3]  # confident turns amplified, uncertain ones damped


def test_next_turn_row_shuffled():
    assert next_turn_row(TRAJ, TURN).tolist() == [-1, 3, 0, -1, -1]
    with pytest.raises(ValueError, match="twice"):
        next_turn_row(torch.tensor([1, 1]), torch.tensor([0, 0]))


@pytest.mark.equation("S8", "S9")
def test_worked_example():
    """Checks (S8), (S9) with k = k_f = 1, zeta = 0.05 on the table above."""
    out = empg_advantages(ADV, H, TRAJ, TURN)
    assert torch.allclose(out, _expected(ADV.tolist()), atol=1e-7)


@pytest.mark.equation("S8")
def test_bonus_goes_to_the_previous_turn_of_the_same_trajectory():
    """Checks (S8): with A = 0 and k = 0 (g = 1) only the bonus is left: rows 1 and 2 get it."""
    out = empg_advantages(torch.zeros(5, dtype=F64), H, TRAJ, TURN, k=0.0, zeta=0.05)
    bonus = [0.0, math.exp(-1.0), 1.0, 0.0, 0.0]  # f(row 3) = e^-1, f(row 0) = e^0
    expected = [0.05 * (b - sum(bonus) / 5) for b in bonus]
    assert torch.allclose(out, torch.tensor(expected, dtype=F64), atol=1e-9)
    # last turns (rows 0, 3) and the one-turn trajectory (row 4) got no bonus: all equal
    assert out[0] == out[3] == out[4]


@pytest.mark.equation("S9")
def test_recentred_mean_zero_and_no_std():
    """Checks (S9): batch mean 0; a constant shift of A cancels; no division by a std."""
    gen = torch.Generator().manual_seed(1)
    adv = torch.randn(5, generator=gen, dtype=F64)
    out = empg_advantages(adv, H, TRAJ, TURN)
    assert abs(out.mean().item()) < 1e-12
    # k = 0: g is the same for all rows, so A + 7 gives the same result as A
    assert torch.allclose(empg_advantages(adv + 7.0, H, TRAJ, TURN, k=0.0),
                          empg_advantages(adv, H, TRAJ, TURN, k=0.0), atol=1e-6)
    # zeta = 0: the result is linear in A (a std normalisation would undo the factor 2)
    assert torch.allclose(empg_advantages(2 * adv, H, TRAJ, TURN, zeta=0.0),
                          2 * empg_advantages(adv, H, TRAJ, TURN, zeta=0.0), atol=1e-12)


@pytest.mark.equation("S8", "S9")
@pytest.mark.parametrize("k, k_f, zeta", [(0.0, 1.0, 0.05), (2.0, 1.0, 0.05), (1.0, 0.0, 0.05),
                                          (1.0, 3.0, 0.05), (1.0, 1.0, 0.0), (1.0, 1.0, 0.1)])
def test_k_kf_zeta(k, k_f, zeta):
    """Checks (S8) for other k, k_f, zeta against the hand formula."""
    out = empg_advantages(ADV, H, TRAJ, TURN, k=k, k_f=k_f, zeta=zeta)
    assert torch.allclose(out, _expected(ADV.tolist(), k, k_f, zeta), atol=1e-7)


def test_k_zero_is_recentred_grpo():
    """k = 0, zeta = 0: g = 1 / (1 + 1e-8), so EMPG is A - mean(A) (up to 1e-8)."""
    out = empg_advantages(ADV, H, TRAJ, TURN, k=0.0, zeta=0.0)
    assert torch.allclose(out, ADV - ADV.mean(), atol=1e-7)
