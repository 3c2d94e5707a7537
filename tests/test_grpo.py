"""Maths tests for sampo_ref.algos.grpo: the GRPO advantage (S2) on the worked example of docs/algorithms/gigpo.md#key-equations and
its conventions, and the token-clip surrogate (S10) through its kappa table (docs/algorithms/grpo.md#key-equations).

Gradient identity used throughout: d loss_{j,t} / d logp_{j,t} = -kappa_{j,t} * A_j.
"""

import math

import pytest
import torch

from sampo_ref.algos.common import AGG_MODES, aggregate, penalise_invalid_advantage, row_scores
from sampo_ref.algos.grpo import grpo_advantages, token_clip_loss


# ----------------------------------------------------------------------------- advantages (S2)

# docs/algorithms/gigpo.md#key-equations: rows tau1 k0, tau1 k1, tau2 k0, tau2 k1 (invalid), tau2 k2
EXAMPLE_RETURN = [10.0, 10.0, 0.0, 0.0, 0.0]
EXAMPLE_VALID = [True, True, True, False, True]
EXAMPLE_TRAJ = [0, 0, 1, 1, 1]
GRPO_COLUMN = [1.0954, 1.0954, -0.7242, -0.7424, -0.7242]
VANILLA_COLUMN = [0.7071, 0.7071, -0.7024, -0.7165, -0.7024]


def _example_scores():
    episode_return = torch.tensor(EXAMPLE_RETURN, dtype=torch.float64)
    return row_scores(episode_return, torch.tensor(EXAMPLE_VALID))


@pytest.mark.equation("S1", "S2")
def test_worked_example_grpo_column():
    """Checks (S1), (S2): docs/algorithms/gigpo.md#key-equations GRPO column (mu = 3.98, sigma = 5.4956 over 5 rows)."""
    scores = _example_scores()
    adv = grpo_advantages(scores, torch.zeros(5, dtype=torch.long))
    assert torch.allclose(adv, torch.tensor(GRPO_COLUMN, dtype=torch.float64), atol=1e-4)
    # the same column from the intermediate values, by hand
    assert (10 - 3.98) / 5.4956 == pytest.approx(1.0954, abs=1e-4)


@pytest.mark.equation("S2")
def test_worked_example_vanilla_column():
    """Checks the per-trajectory ("vanilla") GRPO of docs/algorithms/grpo.md#key-equations: trajectory means (10, -0.0333), mu 4.9833, sigma 7.0946."""
    scores = _example_scores()
    groups = torch.zeros(5, dtype=torch.long)
    adv = grpo_advantages(scores, groups, torch.tensor(EXAMPLE_TRAJ), per_trajectory=True)
    assert torch.allclose(adv, torch.tensor(VANILLA_COLUMN, dtype=torch.float64), atol=1e-4)
    assert (-0.1 - 4.9833) / 7.0946 == pytest.approx(-0.7165, abs=1e-4)


@pytest.mark.equation("S2")
def test_worked_example_without_std():
    """Checks the Dr. GRPO form of (S2): A = s - mu, mu = 3.98 over the 5 rows of docs/algorithms/gigpo.md#key-equations."""
    adv = grpo_advantages(_example_scores(), torch.zeros(5, dtype=torch.long), norm_by_std=False)
    expected = [10 - 3.98, 10 - 3.98, 0 - 3.98, -0.1 - 3.98, 0 - 3.98]
    assert torch.allclose(adv, torch.tensor(expected, dtype=torch.float64), atol=1e-9)


@pytest.mark.equation("S2")
def test_singleton_group():
    """Checks (S2) singleton convention: mu = 0, sigma = 1, so A = s / (1 + eps), not 0."""
    adv = grpo_advantages(torch.tensor([7.0, 1.0, 3.0]), torch.tensor([5, 9, 9]))
    assert adv[0].item() == pytest.approx(7.0 / (1 + 1e-6), rel=1e-7)
    assert adv[0].item() != 0.0


@pytest.mark.equation("S2")
def test_constant_group_is_exactly_zero():
    """Checks (S2) "constant scores" in both forms, with 7 x 0.1 (whose float32 mean is inexact)."""
    scores = torch.full((7,), 0.1)
    groups = torch.zeros(7, dtype=torch.long)
    traj = torch.tensor([0, 0, 0, 1, 1, 1, 1])  # unequal lengths
    assert torch.equal(grpo_advantages(scores, groups), torch.zeros(7))
    assert torch.equal(grpo_advantages(scores, groups, traj, per_trajectory=True), torch.zeros(7))


@pytest.mark.equation("S2")
def test_unbiased_std():
    """Checks (S2) Bessel's correction: {0, 2} has sigma = sqrt(2), so A = -+1/sqrt(2), not -+1."""
    adv = grpo_advantages(torch.tensor([0.0, 2.0]), torch.tensor([3, 3]), eps=0.0)
    assert torch.allclose(adv, torch.tensor([-1 / math.sqrt(2), 1 / math.sqrt(2)]))


@pytest.mark.equation("S2")
def test_groups_do_not_mix():
    """Checks (S2): statistics are per group, with interleaved arbitrary ids."""
    scores = torch.tensor([0.0, 100.0, 2.0, -50.0, 4.0])
    groups = torch.tensor([42, 8, 42, 8, 42])
    adv = grpo_advantages(scores, groups, eps=0.0)
    # group 42 = {0, 2, 4}: mean 2, std 2; group 8 = {100, -50}: mean 25, std 150/sqrt(2)
    expected = torch.tensor([-1.0, 75 / (150 / math.sqrt(2)), 0.0, -75 / (150 / math.sqrt(2)), 1.0])
    assert torch.allclose(adv, expected)


def test_advantage_validation():
    scores, groups = torch.zeros(3), torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="traj_index"):
        grpo_advantages(scores, groups, per_trajectory=True)
    with pytest.raises(ValueError, match="two different group"):
        grpo_advantages(scores, groups, torch.tensor([0, 0, 0]), per_trajectory=True)


# ----------------------------------------------------------------------------- token clip (S10)

# (A, w, kappa) for each row of the table of docs/algorithms/grpo.md#key-equations, eps_l = eps_h = 0.2, c = 3; no exact boundaries
KAPPA_CASES = [
    (2.0, 1.1, 1.1),  # A > 0, w <= 1 + eps_h
    (2.0, 0.5, 0.5),  # A > 0, low ratio: not clipped
    (2.0, 1.5, 0.0),  # A > 0, w > 1 + eps_h: clipped
    (-1.5, 0.5, 0.0),  # A < 0, w < 1 - eps_l: clipped
    (-1.5, 0.9, 0.9),  # A < 0, 1 - eps_l <= w <= c
    (-1.5, 2.0, 2.0),  # A < 0, 1 + eps_h < w <= c: still kappa = w
    (-1.5, 4.0, 0.0),  # A < 0, w > c: dual clip
    (0.0, 1.3, 0.0),  # A = 0: loss 0
]


def _rows(cases, logp_old=-1.0):
    """One token per row: logp = logp_old + log w."""
    adv = torch.tensor([a for a, _, _ in cases], dtype=torch.float64)
    logp_old_t = torch.full((len(cases), 1), logp_old, dtype=torch.float64)
    log_w = torch.tensor([[math.log(w)] for _, w, _ in cases], dtype=torch.float64)
    logp = (logp_old_t + log_w).requires_grad_(True)
    return logp, logp_old_t, adv, torch.ones_like(logp_old_t)


@pytest.mark.equation("S10")
def test_kappa_table():
    """Checks (S10) and the kappa table of docs/algorithms/grpo.md#key-equations via autograd: grad = -kappa * A."""
    logp, logp_old, adv, mask = _rows(KAPPA_CASES)
    loss, _ = token_clip_loss(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    kappa = torch.tensor([[k] for _, _, k in KAPPA_CASES], dtype=torch.float64)
    assert torch.allclose(grad, -kappa * adv[:, None], atol=1e-12)
    zero = kappa == 0
    assert torch.equal(grad[zero], torch.zeros(int(zero.sum()), dtype=torch.float64))
    # loss values of the clipped rows, by hand: -A(1 + eps_h), -A(1 - eps_l), -cA, 0
    assert loss[2, 0].item() == pytest.approx(-2.4)
    assert loss[3, 0].item() == pytest.approx(1.2)
    assert loss[6, 0].item() == pytest.approx(4.5)
    assert loss[7, 0].item() == 0.0


@pytest.mark.equation("S10")
def test_dual_clip_only_for_negative_advantage():
    """Checks (S10): the dual clip caps only A < 0; None disables it."""
    cases = [(2.0, 4.0, 0.0), (-1.5, 4.0, 4.0)]  # kappa with dual_clip=None
    logp, logp_old, adv, mask = _rows(cases)
    loss, stats = token_clip_loss(logp, logp_old, adv, mask, dual_clip=None)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert torch.allclose(grad[:, 0], torch.tensor([0.0, -4.0 * -1.5], dtype=torch.float64))
    assert loss[1, 0].item() == pytest.approx(6.0)  # -A w, uncapped
    assert stats["clipfrac_lower"].item() == 0.0
    # with c = 3, A > 0 and w = 4 keeps -A(1 + eps_h) = -2.4, it is not capped to -cA = -6
    loss_c, _ = token_clip_loss(logp, logp_old, adv, mask, dual_clip=3.0)
    assert loss_c[0, 0].item() == pytest.approx(-2.4)
    assert loss_c[1, 0].item() == pytest.approx(4.5)


@pytest.mark.equation("S10")
def test_log_ratio_clamp_kills_gradient():
    """Checks docs/algorithms/grpo.md#key-equations note: |lambda| > 20 gives zero gradient through the clamp."""
    cases = [(2.0, math.exp(-25.0), 0.0), (2.0, math.exp(-19.0), math.exp(-19.0))]
    logp, logp_old, adv, mask = _rows(cases)
    loss, _ = token_clip_loss(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    assert grad[0, 0].item() == 0.0
    assert grad[1, 0].item() == pytest.approx(-2.0 * math.exp(-19.0), rel=1e-9)


LENGTHS = [4, 2, 0, 1, 3]  # ragged rows, one fully masked


@pytest.mark.equation("S10")
@pytest.mark.parametrize("mode", AGG_MODES)
def test_on_policy_gradient_is_reinforce(mode):
    """Checks docs/dimensions.md#which-tokens-get-exactly-zero-gradient conventions: with w == 1, kappa = 1, so each valid token's gradient is the
    REINFORCE weight -A_j times the aggregation weight (docs/dimensions.md#loss-aggregation); masked tokens get exactly 0."""
    gen = torch.Generator().manual_seed(0)
    B, T, max_len = len(LENGTHS), 4, 8
    mask = torch.tensor([[1.0 if t < n else 0.0 for t in range(T)] for n in LENGTHS])
    adv = torch.randn(B, generator=gen, dtype=torch.float64)
    logp_old = -torch.rand(B, T, generator=gen, dtype=torch.float64)
    logp = logp_old.clone().requires_grad_(True)
    loss, _ = token_clip_loss(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(aggregate(loss, mask, mode, max_len=max_len), logp)

    n_tokens, n_nonempty = sum(LENGTHS), sum(1 for n in LENGTHS if n)
    for b, n in enumerate(LENGTHS):
        weight = {
            "token-mean": 1 / n_tokens,
            "seq-mean-token-mean": 1 / (n_nonempty * n) if n else 0.0,
            "seq-mean-token-sum": 1 / B,
            "seq-mean-token-sum-norm": 1 / max_len,
        }[mode]
        for t in range(T):
            expected = -adv[b].item() * weight if t < n else 0.0
            assert grad[b, t].item() == pytest.approx(expected, abs=1e-12)
    assert torch.equal(grad[mask == 0], torch.zeros(int((mask == 0).sum()), dtype=torch.float64))


@pytest.mark.equation("S10")
def test_masked_tokens_get_exactly_zero():
    """Checks docs/dimensions.md#which-tokens-get-exactly-zero-gradient "all": padding gets zero loss and zero gradient, whatever its ratio."""
    logp_old = torch.zeros(2, 3, dtype=torch.float64)
    logp = torch.tensor([[0.1, 50.0, -50.0], [0.05, 3.0, 0.0]], dtype=torch.float64)
    logp.requires_grad_(True)
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    loss, _ = token_clip_loss(logp, logp_old, torch.tensor([-1.0, 1.0], dtype=torch.float64), mask)
    (grad,) = torch.autograd.grad(aggregate(loss, mask, "token-mean"), logp)
    assert torch.equal(loss[mask == 0], torch.zeros(3, dtype=torch.float64))
    assert torch.equal(grad[mask == 0], torch.zeros(3, dtype=torch.float64))
    assert grad[0, 0].item() != 0.0


def test_clip_stats_hand_example():
    """Checks docs/algorithms/grpo.md#key-equations clip fraction, lower clip fraction (over all valid tokens) and ppo_kl."""
    # 5 valid tokens: upper clip, lower clip, dual clip, none, none; 1 masked token (would clip)
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    ratios = [1.5, 0.5, 4.0, 1.0, 1.1, 2.0]
    logp_old = torch.full((6, 1), -2.0, dtype=torch.float64)
    logp = (logp_old + torch.tensor([[math.log(w)] for w in ratios], dtype=torch.float64))
    logp.requires_grad_(True)
    mask = torch.tensor([[1.0], [1.0], [1.0], [1.0], [1.0], [0.0]])
    _, stats = token_clip_loss(logp, logp_old, adv, mask)
    assert stats["clipfrac"].item() == pytest.approx(2 / 5)
    assert stats["clipfrac_lower"].item() == pytest.approx(1 / 5)
    # -(ln 1.5 + ln 0.5 + ln 4 + ln 1 + ln 1.1) / 5
    #   = -(0.405465 - 0.693147 + 1.386294 + 0 + 0.095310) / 5
    assert stats["ppo_kl"].item() == pytest.approx(-1.193922 / 5, abs=1e-6)
    assert all(not torch.as_tensor(v.total).requires_grad and torch.as_tensor(v.total).dim() == 0
               for v in stats.values())


def test_token_clip_validation_names_bad_value():
    logp = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="dual_clip.*1.0"):
        token_clip_loss(logp, logp, torch.ones(1), torch.ones(1, 1), dual_clip=1.0)
    with pytest.raises(ValueError, match="0.5"):
        token_clip_loss(logp, logp, torch.ones(1), torch.ones(1, 1), dual_clip=0.5)
    with pytest.raises(ValueError, match="1.5"):
        token_clip_loss(logp, logp, torch.ones(1), torch.ones(1, 1), clip_low=1.5)


@pytest.mark.equation("S1", "S2")
def test_penalty_only_group_is_scale_free():
    """(S1)+(S2) in a group that never wins: one invalid turn in ten gives A = +0.316 to every valid
    turn and -2.846 to the invalid one, whatever c_inv > 0 (docs/results.md, "teaching point")."""
    valid = torch.tensor([True] * 9 + [False])
    # by hand: mean -0.1/10 = -0.01; unbiased std sqrt((9 * 0.01^2 + 0.09^2) / 9) = sqrt(0.001)
    std = math.sqrt(0.001)
    for c_inv in (0.1, 0.01, 1.0):
        scores = row_scores(torch.zeros(10, dtype=torch.float64), valid, c_inv)
        adv = grpo_advantages(scores, torch.zeros(10, dtype=torch.long))
        # (up to the eps = 1e-6 added to sigma, which matters only as c_inv * sigma approaches it)
        assert adv[0].item() == pytest.approx(0.01 / std, rel=1e-3)  # +0.316
        assert adv[-1].item() == pytest.approx(-0.09 / std, rel=1e-3)  # -2.846


def test_invalid_cost_on_the_advantage_is_not_rescaled():
    """c_adv after the normalisation, min(A, 0) - c_adv on invalid rows: the same all-fail group
    gives valid turns exactly 0 and the invalid turn exactly -c_adv; in a group that won, only the
    invalid rows move: a failed episode's by exactly -c_adv, a won episode's (A > 0) to exactly -c_adv."""
    valid = torch.tensor([True] * 9 + [False])
    group = torch.zeros(10, dtype=torch.long)
    for c_adv in (0.1, 0.5):
        adv = penalise_invalid_advantage(grpo_advantages(torch.zeros(10), group), valid, c_adv)
        assert adv[:9].tolist() == [0.0] * 9
        assert adv[9].item() == pytest.approx(-c_adv)
    returns = torch.tensor([1.0] * 5 + [0.0] * 5)
    plain = grpo_advantages(returns, group)
    moved = penalise_invalid_advantage(plain, valid, 0.1)
    assert torch.equal(moved[:9], plain[:9])
    assert moved[9].item() == pytest.approx(plain[9].item() - 0.1)
    won_invalid = torch.tensor([False] + [True] * 9)  # row 0 is an invalid turn of a won episode
    assert plain[0] > 0
    moved = penalise_invalid_advantage(plain, won_invalid, 0.1)
    assert moved[0].item() == pytest.approx(-0.1) and torch.equal(moved[1:], plain[1:])
