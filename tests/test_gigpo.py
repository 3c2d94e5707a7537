"""Maths tests for sampo_ref.algos.gigpo: step returns (S4), penalty (S5), anchor step groups,
the episode (S3) and step (S6) terms and the final advantage (S7).

Expected numbers are worked by hand (docs/algorithms/gigpo.md#key-equations, and the hand-built batch below, with each value
written as the arithmetic that gives it), never by the code under test.
"""

import math

import pytest
import torch

from sampo_ref.algos.common import row_scores
from sampo_ref.algos.gigpo import (
    discounted_step_returns,
    episode_advantages,
    gigpo_advantages,
    step_advantages,
    step_group_sizes,
    step_groups,
)
from sampo_ref.algos.grpo import grpo_advantages


F64 = torch.float64


def _t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def _partition(ids) -> set[frozenset[int]]:
    """Rows grouped by id, as a set of row sets (independent of how ids are numbered)."""
    blocks: dict[int, set[int]] = {}
    for row, i in enumerate(ids.tolist()):
        blocks.setdefault(i, set()).add(row)
    return {frozenset(b) for b in blocks.values()}


# ----------------------------------------------------------------------------- docs/algorithms/gigpo.md#key-equations

# rows: tau1 k0, tau1 k1 (wins), tau2 k0, tau2 k1 (invalid), tau2 k2; gamma 0.95, c_inv 0.1
EX = dict(
    episode_return=_t([10.0, 10.0, 0.0, 0.0, 0.0]),
    env_reward=_t([0.0, 10.0, 0.0, 0.0, 0.0]),
    valid=_t([1.0, 1.0, 1.0, 0.0, 1.0]),
    anchors=["intro", "t1 room", "intro", "t2 room", "t2 hall"],
    group_index=torch.zeros(5, dtype=torch.long),
    traj_index=torch.tensor([0, 0, 1, 1, 1]),
    turn_index=torch.tensor([0, 1, 0, 1, 2]),
)


@pytest.mark.equation("S4", "S5", "S6")
def test_worked_example_step_returns_and_step_term():
    """Checks (S4), (S5), (S6) on docs/algorithms/gigpo.md#key-equations: G~ = (9.5, 10, 0, -0.1, 0), A^S = (+-0.7071, 0, ...)."""
    g = discounted_step_returns(EX["env_reward"], EX["traj_index"], EX["turn_index"], gamma=0.95)
    assert torch.allclose(g, _t([9.5, 10.0, 0.0, 0.0, 0.0]), atol=1e-12)  # before the penalty
    g_pen = row_scores(g, EX["valid"], 0.1)  # (S5) has the form of (S1)
    assert torch.allclose(g_pen, _t([9.5, 10.0, 0.0, -0.1, 0.0]), atol=1e-12)
    a_s = step_advantages(g_pen, step_groups(EX["anchors"], EX["group_index"]), "mean_std_norm")
    # step group {9.5, 0}: mean 4.75, unbiased std 4.75 * sqrt(2); 4.75 / 6.7175 = 0.7071
    assert torch.allclose(a_s, _t([0.7071, 0.0, -0.7071, 0.0, 0.0]), atol=1e-4)
    assert a_s[1].item() == 0.0 and a_s[3].item() == 0.0 and a_s[4].item() == 0.0  # singletons


@pytest.mark.equation("S3", "S7")
def test_worked_example_gigpo_mean_std_norm_column():
    """Checks (S7) on docs/algorithms/gigpo.md#key-equations: GiGPO column = GRPO column + A^S."""
    adv = gigpo_advantages(**EX, gamma=0.95, mode="mean_std_norm", invalid_penalty=0.1)
    assert torch.allclose(adv, _t([1.8025, 1.0954, -1.4313, -0.7424, -0.7242]), atol=1e-4)


@pytest.mark.equation("S3")
def test_episode_term_over_rows_vs_the_papers_eq3_over_trajectory_returns():
    """(S3) takes the statistics over all turn-rows (ARLArena, verl-agent); GiGPO's Eq. 3 over the N returns.

    Worked example: rows give (1.0954, 1.0954, -0.7242, -0.7424, -0.7242); Eq. 3 on the returns
    (10, 0) gives mean 5, unbiased std 5 * sqrt(2), so +-0.7071 for every row of each trajectory.
    """
    scores = row_scores(EX["episode_return"], EX["valid"], 0.1)
    rows = episode_advantages(scores, EX["group_index"], "mean_std_norm")
    assert torch.allclose(rows, _t([1.0954, 1.0954, -0.7242, -0.7424, -0.7242]), atol=1e-4)
    returns = (10.0, 0.0)
    mu, sigma = 5.0, math.sqrt(((10 - 5) ** 2 + (0 - 5) ** 2) / 1)
    eq3 = _t([(returns[int(i)] - mu) / (sigma + 1e-6) for i in EX["traj_index"]])
    assert torch.allclose(eq3, _t([0.7071, 0.7071, -0.7071, -0.7071, -0.7071]), atol=1e-4)
    assert (rows - eq3).abs().max() > 0.3, "the two readings differ on trajectories of unequal length"
    # Equal lengths L and no penalty: the means agree, the unbiased stds differ by Bessel's correction,
    # so rows = Eq. 3 * sqrt((N L - 1) / (L (N - 1))).
    N, L = 3, 4
    ret = _t([10.0, 0.0, 4.0])
    traj = torch.arange(N).repeat_interleave(L)
    rows = episode_advantages(ret[traj], torch.zeros(N * L, dtype=torch.long), "mean_std_norm", eps=0.0)
    eq3 = ((ret - ret.mean()) / ret.std())[traj]  # torch's std is the unbiased one
    assert torch.allclose(rows, eq3 * math.sqrt((N * L - 1) / (L * (N - 1))), atol=1e-12)
    # mean_norm: no std, so the two readings agree exactly in this case
    assert torch.allclose(episode_advantages(ret[traj], torch.zeros(N * L, dtype=torch.long), "mean_norm"),
                          (ret - ret.mean())[traj], atol=1e-12)


@pytest.mark.equation("S3", "S6", "S7")
def test_worked_example_gigpo_mean_norm():
    """Checks (S3), (S6), (S7) without std, by hand: mu_g = 3.98, step-group mean 4.75.

    A^E = s - 3.98 = (6.02, 6.02, -3.98, -4.08, -3.98); A^S = (4.75, 0, -4.75, 0, 0).
    """
    adv = gigpo_advantages(**EX, gamma=0.95, mode="mean_norm", invalid_penalty=0.1)
    assert torch.allclose(adv, _t([10.77, 6.02, -8.73, -4.08, -3.98]), atol=1e-9)


# ----------------------------------------------------------------------------- hand-built batch
#
# gamma = 0.5, c_inv = 0.1. Group 7: tau0 wins 4 at k2 and sees "room" twice (repeated state);
# tau1 is invalid at k1 and ends in "hall" (a singleton). Group 3 reuses the strings "intro" and
# "room", which must not merge with group 7's.
#
# row  group traj k  anchor   r_env valid R   G (S4)            G~ (S5)
#  0     7    0   0  intro    0     1     4   0 + .5*0 + .25*4 = 1   1
#  1     7    0   1  room     0     1     4   .5 * 4 = 2             2
#  2     7    0   2  room     4     1     4   4                      4
#  3     7    1   0  intro    0     1     0   0                      0
#  4     7    1   1  room     0     0     0   0                      -0.1
#  5     7    1   2  hall     0     1     0   0                      0
#  6     3    2   0  intro    0     1     2   .5 * 2 = 1             1
#  7     3    2   1  room     2     1     2   2                      2
#  8     3    3   0  intro    0     1     0   0                      0
#  9     3    3   1  cellar   0     1     0   0                      0

HB = dict(
    episode_return=_t([4.0, 4.0, 4.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0]),
    env_reward=_t([0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0]),
    valid=_t([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    anchors=["intro", "room", "room", "intro", "room", "hall", "intro", "room", "intro", "cellar"],
    group_index=torch.tensor([7, 7, 7, 7, 7, 7, 3, 3, 3, 3]),
    traj_index=torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3]),
    turn_index=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 0, 1]),
)
HB_PARTITION = {frozenset(s) for s in [{0, 3}, {1, 2, 4}, {5}, {6, 8}, {7}, {9}]}

# Episode term (S3). Group 7 scores (4, 4, 4, 0, -0.1, 0): mean 11.9 / 6; deviations
# 12.1/6 (x3), -11.9/6 (x2), -12.5/6; unbiased var (3*12.1^2 + 2*11.9^2 + 12.5^2) / 36 / 5.
# Group 3 scores (2, 2, 0, 0): mean 1, unbiased var 4 / 3.
HB_AE_MEAN = [12.1 / 6] * 3 + [-11.9 / 6, -12.5 / 6, -11.9 / 6] + [1.0, 1.0, -1.0, -1.0]
SD7 = math.sqrt((3 * 12.1**2 + 2 * 11.9**2 + 12.5**2) / 36 / 5)
SD3 = math.sqrt(4 / 3)
HB_AE_STD = [a / SD7 for a in HB_AE_MEAN[:6]] + [a / SD3 for a in HB_AE_MEAN[6:]]

# Step term (S6). intro@7 {1, 0} and intro@3 {1, 0}: +-0.5, std sqrt(0.5).
# room@7 {2, 4, -0.1}: mean 5.9/3, deviations 0.1/3, 6.1/3, -6.2/3, var (0.01+37.21+38.44)/9/2.
# hall@7, room@3, cellar@3 are singletons: exactly 0 (room@3 has G~ = 2, so a wrong convention shows).
HB_AS_MEAN = [0.5, 0.1 / 3, 6.1 / 3, -0.5, -6.2 / 3, 0.0, 0.5, 0.0, -0.5, 0.0]
SD_ROOM = math.sqrt((0.01 + 37.21 + 38.44) / 9 / 2)
SD_INTRO = math.sqrt(0.5)
HB_AS_STD = [0.5 / SD_INTRO, (0.1 / 3) / SD_ROOM, (6.1 / 3) / SD_ROOM, -0.5 / SD_INTRO,
             (-6.2 / 3) / SD_ROOM, 0.0, 0.5 / SD_INTRO, 0.0, -0.5 / SD_INTRO, 0.0]


def test_hand_batch_step_groups():
    """Checks docs/algorithms/gigpo.md#key-equations: exact anchors inside a group; repeats in a trajectory join; no merging."""
    groups = step_groups(HB["anchors"], HB["group_index"])
    assert groups.dtype == torch.long
    assert _partition(groups) == HB_PARTITION
    assert sorted(step_group_sizes(groups).tolist()) == [1, 1, 1, 2, 2, 3]
    # exact equality: a trailing space or another case is another state
    near = step_groups(["intro", "intro ", "Intro"], torch.zeros(3, dtype=torch.long))
    assert len(set(near.tolist())) == 3


@pytest.mark.equation("S4")
def test_hand_batch_step_returns():
    """Checks (S4) with gamma = 0.5, the G column of the table above (before the penalty)."""
    g = discounted_step_returns(HB["env_reward"], HB["traj_index"], HB["turn_index"], gamma=0.5)
    assert torch.allclose(g, _t([1.0, 2.0, 4.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]), atol=1e-12)


@pytest.mark.equation("S3", "S4", "S5", "S6", "S7")
@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
@pytest.mark.parametrize("omega", [1.0, 0.5])
def test_hand_batch_gigpo(mode, omega):
    """Checks (S3)-(S7) on the hand-built batch, both modes, omega = 1 and 0.5."""
    adv = gigpo_advantages(**HB, gamma=0.5, step_adv_weight=omega, mode=mode, invalid_penalty=0.1)
    a_e, a_s = (HB_AE_MEAN, HB_AS_MEAN) if mode == "mean_norm" else (HB_AE_STD, HB_AS_STD)
    expected = _t([e + omega * s for e, s in zip(a_e, a_s)])
    assert torch.allclose(adv, expected, atol=1e-5)  # eps = 1e-6 in the std-normalised terms


@pytest.mark.equation("S6")
def test_singleton_step_rows_get_only_the_episode_term():
    """Checks (S6) singleton convention: rows 5, 7, 9 get A^S = 0 exactly, in both modes."""
    for mode in ("mean_norm", "mean_std_norm"):
        full = gigpo_advantages(**HB, gamma=0.5, mode=mode)
        episode_only = gigpo_advantages(**HB, gamma=0.5, mode=mode, step_adv_weight=0.0)
        assert torch.equal(full[[5, 7, 9]], episode_only[[5, 7, 9]])


def test_row_order_independence():
    """Permuting the rows permutes the advantages alike (step returns, groups, both terms)."""
    perm = torch.tensor([7, 2, 9, 0, 5, 3, 8, 1, 6, 4])
    shuffled = {k: ([v[i] for i in perm.tolist()] if isinstance(v, list) else v[perm]) for k, v in HB.items()}
    for mode in ("mean_norm", "mean_std_norm"):
        adv = gigpo_advantages(**HB, gamma=0.5, mode=mode)
        adv_shuffled = gigpo_advantages(**shuffled, gamma=0.5, mode=mode)
        assert torch.allclose(adv_shuffled, adv[perm], atol=1e-12)


@pytest.mark.equation("S4")
def test_discounted_returns_any_order():
    """Checks (S4) with gamma = 0.9 on shuffled rows: (1, 0, 2) -> G = (2.62, 1.8, 2); (3,) -> 3."""
    # rows: B k0, A k2, A k0, A k1
    reward = _t([3.0, 2.0, 1.0, 0.0])
    traj = torch.tensor([11, 4, 4, 4])
    turn = torch.tensor([0, 2, 0, 1])
    g = discounted_step_returns(reward, traj, turn, gamma=0.9)
    assert torch.allclose(g, _t([3.0, 2.0, 1.0 + 0.9 * 1.8, 1.8]), atol=1e-12)
    g1 = discounted_step_returns(reward, traj, turn, gamma=1.0)  # gamma = 1: plain suffix sums
    assert torch.allclose(g1, _t([3.0, 2.0, 3.0, 2.0]), atol=1e-12)
    with pytest.raises(ValueError, match="twice"):
        discounted_step_returns(reward, torch.tensor([4, 4, 4, 4]), torch.tensor([0, 1, 1, 2]))


@pytest.mark.equation("S3", "S7")
def test_no_repeated_states_reduces_to_grpo():
    """Checks docs/algorithms/gigpo.md#key-equations: A^S = 0, GiGPO = (S2) / mean-centred GRPO exactly."""
    batch = dict(
        episode_return=_t([1.0, 1.0, 0.0, 0.0, 0.0, 5.0, 5.0, 2.0]),
        env_reward=_t([0.0, 1.0, 0.0, 0.0, 0.0, 5.0, 5.0, 2.0]),  # any rewards: A^S must vanish
        valid=_t([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]),
        anchors=["a", "b", "c", "d", "e", "a", "b", "c"],  # distinct within each group
        group_index=torch.tensor([0, 0, 0, 0, 0, 1, 1, 1]),
        traj_index=torch.tensor([0, 0, 1, 1, 1, 2, 3, 4]),
        turn_index=torch.tensor([0, 1, 0, 1, 2, 0, 0, 0]),
    )
    scores = row_scores(batch["episode_return"], batch["valid"], 0.1)
    grpo = grpo_advantages(scores, batch["group_index"])
    dr_grpo = grpo_advantages(scores, batch["group_index"], norm_by_std=False)
    assert torch.equal(gigpo_advantages(**batch, mode="mean_std_norm"), grpo)
    assert torch.equal(gigpo_advantages(**batch, mode="mean_norm"), dr_grpo)


@pytest.mark.equation("S6")
def test_constant_step_group_is_exactly_zero():
    """Checks (S6): a step group with equal G~ (3 x 0.1, inexact float mean) gives A^S = 0 exactly."""
    a_s = step_advantages(torch.full((3,), 0.1), torch.tensor([2, 2, 2]), "mean_std_norm")
    assert torch.equal(a_s, torch.zeros(3))


def test_mode_validation():
    with pytest.raises(ValueError, match="GiGPO mode"):
        gigpo_advantages(**EX, mode="std_norm")
    with pytest.raises(ValueError, match="anchors"):
        step_groups(["a"], torch.zeros(2, dtype=torch.long))
