"""The derivations of docs/background.md#2-baselines and #3-group-baselines-grpo, step by step, by exact enumeration on a softmax bandit.

A bandit with K arms and logits theta: pi = softmax(theta), grad log pi(a) = e_a - pi. Expectations
over a group of G independent draws are exact sums over all K^G tuples (no sampling), so every
claim of the page is checked to rounding: what a baseline changes, the (1 - 1/G) factor of the
mean-centred group baseline, and what the sigma-scaled (GRPO) estimator does instead.
The GRPO advantage is the project's own ``grpo_advantages`` (S2).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sampo_ref.algos.grpo import grpo_advantages

F64 = torch.float64
THETA = torch.tensor([0.3, -0.5, 0.1], dtype=F64)  # 3 arms


def _pi(theta: torch.Tensor) -> torch.Tensor:
    return torch.softmax(theta, 0)


def _score(theta: torch.Tensor) -> torch.Tensor:
    """grad_theta log pi(a) for every arm a, (K, K): row a is e_a - pi."""
    return torch.eye(len(theta), dtype=F64) - _pi(theta)[None, :]


def _grad_j(theta: torch.Tensor, reward: torch.Tensor) -> torch.Tensor:
    """The true gradient of J = E_pi[R], by autograd."""
    theta = theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((_pi(theta) * reward).sum(), theta)
    return grad


def _expected_group_update(theta: torch.Tensor, reward: torch.Tensor, G: int, advantage) -> torch.Tensor:
    """E over G independent draws of (1/G) sum_i A_i grad log pi(a_i), exactly; advantage(R (n, G)) -> A (n, G)."""
    pi, score = _pi(theta), _score(theta)
    tuples = torch.tensor(list(itertools.product(range(len(theta)), repeat=G)))  # (n, G)
    prob = pi[tuples].prod(1)  # (n,)
    adv = advantage(reward[tuples])  # (n, G)
    per_tuple = (adv[:, :, None] * score[tuples]).mean(1)  # (n, K)
    return (prob[:, None] * per_tuple).sum(0)


def _grpo(rewards: torch.Tensor) -> torch.Tensor:
    """(S2) on every group (row) of rewards (n, G): the project's function, one group id per row."""
    n, G = rewards.shape
    return grpo_advantages(rewards.reshape(-1), torch.arange(n).repeat_interleave(G)).reshape(n, G)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


# ------------------------------------------------------------------ sections 1-2: REINFORCE and baselines


def test_a_losing_sample_gets_zero_weight_without_a_baseline_and_is_pushed_down_with_one():
    """R in {0, 10}: R = 0 contributes exactly 0; with b = 5 it contributes -b grad log pi, lowering its arm."""
    reward = torch.tensor([10.0, 0.0, 0.0], dtype=F64)
    loser = 1
    assert torch.equal(reward[loser] * _score(THETA)[loser], torch.zeros(3, dtype=F64))
    step = (reward[loser] - 5.0) * _score(THETA)[loser]  # one REINFORCE sample with baseline 5
    assert _pi(THETA + 0.1 * step)[loser] < _pi(THETA)[loser], "the loser's probability must fall"
    winner_step = (reward[0] - 5.0) * _score(THETA)[0]
    assert _pi(THETA + 0.1 * winner_step)[0] > _pi(THETA)[0]


def test_a_baseline_does_not_change_the_expected_gradient():
    """E[b grad log pi] = b grad sum pi = 0, so E[(R - b) grad log pi] = grad J for any constant b."""
    reward = torch.tensor([10.0, 0.0, 3.0], dtype=F64)
    pi, score = _pi(THETA), _score(THETA)
    torch.testing.assert_close((pi[:, None] * score).sum(0), torch.zeros(3, dtype=F64))
    for b in (0.0, 5.0, -2.0):
        torch.testing.assert_close((pi[:, None] * (reward - b)[:, None] * score).sum(0), _grad_j(THETA, reward))


def test_a_baseline_near_the_mean_lowers_the_variance():
    """The per-sample second moment of (R - b) grad log pi is smaller with b = E[R] than with b = 0."""
    reward = torch.tensor([10.0, 0.0, 0.0], dtype=F64)
    pi, score = _pi(THETA), _score(THETA)

    def second_moment(b: float) -> float:
        return float((pi * ((reward - b)[:, None] * score).pow(2).sum(1)).sum())

    assert second_moment(float(pi @ reward)) < second_moment(0.0)


# ------------------------------------------------------------------ section 3: the mean-centred group baseline


@pytest.mark.parametrize("G", [2, 3, 4])
def test_mean_centred_group_estimator_is_one_minus_one_over_g_times_grad_j(G):
    """Steps 1-4: E[(R_i - mean R) grad log pi(y_i)] = (1 - 1/G) grad J, for any rewards."""
    reward = torch.tensor([10.0, 0.0, 3.0], dtype=F64)
    centred = _expected_group_update(THETA, reward, G, lambda r: r - r.mean(1, keepdim=True))
    torch.testing.assert_close(centred, (1 - 1 / G) * _grad_j(THETA, reward))
    # the leave-one-out baseline, (G / (G - 1)) times the centred advantage, is unbiased
    loo = _expected_group_update(THETA, reward, G, lambda r: r - (r.sum(1, keepdim=True) - r) / (G - 1))
    torch.testing.assert_close(loo, _grad_j(THETA, reward))


def test_step_3_the_other_samples_rewards_are_independent_of_y_i():
    """E[R_k grad log pi(y_i)] = E[R_k] E[grad log pi(y_i)] = 0 for k != i (G = 2, exact)."""
    reward = torch.tensor([10.0, 0.0, 3.0], dtype=F64)
    pi, score = _pi(THETA), _score(THETA)
    cross = sum(pi[a] * pi[b] * reward[b] * score[a] for a in range(3) for b in range(3))
    torch.testing.assert_close(cross, torch.zeros(3, dtype=F64))


# ------------------------------------------------------------------ section 3: the sigma-scaled (GRPO) estimator


def c_g(p: float, G: int) -> float:
    """Step 7: c_G(p) = E_n[a_win(n) - a_lose(n)], n ~ Bin(G - 1, p) winners among the others; reward 10/0."""
    def adv(winners: int, own: float) -> float:
        if winners in (0, G):
            return 0.0  # a constant group: A = 0 exactly
        mu = 10 * winners / G
        sigma = math.sqrt((winners * (10 - mu) ** 2 + (G - winners) * mu**2) / (G - 1))
        return (own - mu) / (sigma + 1e-6)

    return sum(math.comb(G - 1, n) * p**n * (1 - p) ** (G - 1 - n) * (adv(n + 1, 10.0) - adv(n, 0.0))
               for n in range(G))


@pytest.mark.parametrize("G", [3, 8])
def test_sigma_scaled_estimator_with_two_valued_rewards_is_c_g_of_p_times_grad_p(G):
    """Steps 5-7 by exact enumeration: E[A_i grad log pi(y_i)] = c_G(p) grad p, with grad J = 10 grad p."""
    reward = torch.tensor([10.0, 0.0, 0.0], dtype=F64)  # arm 0 wins
    p = float(_pi(THETA)[0])
    grad_p = _grad_j(THETA, reward) / 10
    # step 6: E[grad log pi(y) 1[win]] = grad p
    torch.testing.assert_close((_pi(THETA) * (reward > 0) @ _score(THETA)), grad_p)
    grpo = _expected_group_update(THETA, reward, G, _grpo)
    torch.testing.assert_close(grpo, c_g(p, G) * grad_p)
    assert _cosine(grpo, _grad_j(THETA, reward)) > 1 - 1e-12  # one prompt, two outcomes: parallel to grad J


def test_c_g_depends_on_p_the_numbers_on_the_page():
    """G = 8: c(0.5) = 1.74, c(0.25) = c(0.75) = 1.90, c(0.05) = c(0.95) = 2.31, c -> 2.47 at p -> 0."""
    assert round(c_g(0.5, 8), 2) == 1.74
    assert round(c_g(0.25, 8), 2) == round(c_g(0.75, 8), 2) == 1.90
    assert round(c_g(0.05, 8), 2) == round(c_g(0.95, 8), 2) == 2.31
    assert round(c_g(1e-9, 8), 2) == round(c_g(1 - 1e-9, 8), 2) == 2.47
    # the mean-centred factor would be the same constant (1 - 1/8) * 10 = 8.75 at every p
    assert c_g(0.05, 8) / c_g(0.5, 8) > 1.3


def test_sigma_scaled_estimator_over_two_prompts_is_not_a_multiple_of_the_summed_gradient():
    """Each prompt is weighted by its own c_G(p): the sum leaves the direction of sum_x grad J_x."""
    G = 4
    reward = torch.tensor([10.0, 0.0, 0.0], dtype=F64)
    # one parameter vector per prompt, stacked; win probabilities 0.5 and 0.05
    prompts = [torch.tensor([math.log(2.0), 0.0, 0.0], dtype=F64), torch.tensor([math.log(0.1 / 0.95), 0.0, 0.0], dtype=F64)]
    assert [round(float(_pi(t)[0]), 6) for t in prompts] == [0.5, 0.05]
    true = torch.cat([_grad_j(t, reward) for t in prompts])
    grpo = torch.cat([_expected_group_update(t, reward, G, _grpo) for t in prompts])
    centred = torch.cat([_expected_group_update(t, reward, G, lambda r: r - r.mean(1, keepdim=True)) for t in prompts])

    def off_direction(update: torch.Tensor) -> float:
        """Relative residual of the best multiple of the true gradient."""
        scale = update @ true / (true @ true)
        return float((update - scale * true).norm() / update.norm())

    assert off_direction(centred) < 1e-12  # the constant (1 - 1/G) keeps the direction
    assert off_direction(grpo) > 0.005, off_direction(grpo)  # 1.1 % of the update is off grad J here
    ratio = (grpo[:3].norm() / true[:3].norm()) / (grpo[3:].norm() / true[3:].norm())
    torch.testing.assert_close(ratio, torch.tensor(c_g(0.5, G) / c_g(0.05, G), dtype=F64))


def test_sigma_scaled_estimator_with_three_reward_values_is_not_parallel_to_grad_j():
    """A third reward value (as the invalid-action penalty adds) breaks steps 5-7 even for one prompt."""
    reward = torch.tensor([10.0, 0.0, -0.1], dtype=F64)
    grpo = _expected_group_update(THETA, reward, 4, _grpo)
    cosine = _cosine(grpo, _grad_j(THETA, reward))
    assert cosine < 1 - 1e-4, cosine


def test_sigma_scaled_advantage_is_scale_free_and_zero_on_constant_groups():
    rewards = torch.tensor([[10.0, 0.0, 0.0, 10.0], [3.0, 3.0, 3.0, 3.0]], dtype=F64)
    torch.testing.assert_close(_grpo(rewards / 10), _grpo(rewards), atol=1e-5, rtol=0)  # up to eps = 1e-6
    assert torch.equal(_grpo(rewards)[1], torch.zeros(4, dtype=F64))
