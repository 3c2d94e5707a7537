"""SAMPO is a composition: its file gives exactly the numbers of GiGPO + GSPO + the DAPO filter (S21)."""

from __future__ import annotations

import random

import pytest
import torch

from sampo_ref.algos import ALGORITHMS, gigpo, gspo
from sampo_ref.algos.dynamic_sampling import dynamic_sample
from sampo_ref.presets import preset_config
from sampo_ref.rollout import Trajectory, Turn, TurnBatch



def make_group(seed: int, wins: list[bool]) -> list[Trajectory]:
    """G trajectories of one task, with shared and distinct anchors and some invalid turns."""
    rng = random.Random(seed)
    group_id = rng.getrandbits(30)
    trajs = []
    for won in wins:
        tau = Trajectory(group_id, rng.getrandbits(30), f"task{seed}")
        n = rng.randint(1, 4)
        for k in range(n):
            reward = 1.0 if (won and k == n - 1) else 0.0
            anchor = f"room{min(k, 1)}" if k < 2 else f"room{rng.randint(2, 5)}"
            tau.turns.append(Turn(k, "p", [1, 2], [3, 4, 5][: rng.randint(1, 3)], "r", "a", anchor, reward,
                                  True, rng.random() > 0.3, "o"))
        tau.won = won
        trajs.append(tau)
    return trajs


@pytest.mark.equation("S7", "S12", "S21")
def test_sampo_equals_gspo_loss_on_gigpo_advantages_of_a_filtered_batch():
    cfg = preset_config("sampo", invalid_penalty=0.1)
    rollouts = iter([[make_group(1, [True] * 4), make_group(2, [True, False, False, True])],
                     [make_group(3, [False] * 4), make_group(4, [False, True, True, True])]])
    groups, info = ALGORITHMS["sampo"].filter(lambda: next(rollouts), 8, 4, 3,
                                             returns_of=lambda g: [t.episode_return for t in g])
    # the uniform groups (all won, all lost) are dropped, the two mixed ones kept
    assert info["tries"] == 2 and [g[0].task for g in groups] == ["task2", "task4"]
    assert ALGORITHMS["sampo"].filter is dynamic_sample

    batch = TurnBatch.from_trajectories([t for g in groups for t in g], pad_id=0)
    adv = ALGORITHMS["sampo"].advantages(batch, cfg)
    expected_adv = gigpo.gigpo_advantages(batch.episode_return, batch.env_reward, batch.valid, batch.anchors,
                                          batch.group_index, batch.traj_index, batch.turn_index, gamma=0.95,
                                          step_adv_weight=1.0, mode="mean_std_norm", invalid_penalty=0.1)
    assert torch.equal(adv, expected_adv) and adv.abs().sum() > 0

    batch.adv = adv
    torch.manual_seed(0)
    batch.logp_old = -torch.rand(batch.response_ids.shape)
    logp = (batch.logp_old + 0.02 * torch.randn_like(batch.logp_old)).requires_grad_()
    mask = batch.response_mask
    terms, _ = ALGORITHMS["sampo"].policy_loss(logp, batch, {"policy": mask}, cfg)
    expected, _ = gspo.gspo_loss(logp, batch.logp_old, adv, mask, 3e-2, 4e-2)
    assert list(terms) == ["pg"] and torch.equal(terms["pg"].values, expected)
    assert (terms["pg"].mask, terms["pg"].mode, terms["pg"].coef) == ("policy", "seq-mean-token-mean", 1.0)
    assert ALGORITHMS["sampo"].pg_agg == "seq-mean-token-mean" == cfg.loss_agg  # every term (docs/algorithms/sampo.md)
