"""The exercise checkers teach: each typical wrong answer fails with a message naming the property it breaks.

Every bug below is one a student writes (Bessel forgotten, no dual clip, GSPO without the
stop-gradient, ...). Each is put in place of the reference function and the checker named for it
must fail with the property in its message, expected and actual values side by side.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tutorials"))
from exercises import solutions  # noqa: E402
from exercises import test_exercises as checks  # noqa: E402


def grpo_biased_std(scores, group_index, eps=1e-6):
    out = torch.empty_like(scores)
    for g in group_index.unique():
        rows = group_index == g
        s = scores[rows]
        out[rows] = (s - s.mean()) / (s.std(unbiased=False) + eps) if rows.sum() > 1 else s / (1 + eps)
    return out


def token_clip_no_dual(logp, logp_old, adv, mask, clip_low=0.2, clip_high=0.2, dual_clip=3.0):
    return solutions.token_clip_loss(logp, logp_old, adv, mask, clip_low, clip_high, dual_clip=1e9)


def seq_log_ratio_over_t(logp, logp_old, mask):
    return ((logp - logp_old) * mask).sum(1) / mask.shape[1]


def gspo_plain_sequence_ratio(logp, logp_old, adv, mask, clip_low=3e-3, clip_high=4e-3):
    s = torch.exp(solutions.seq_log_ratio(logp, logp_old, mask))[:, None].expand_as(logp)  # no stop-gradient
    a = adv[:, None]
    return torch.maximum(-a * s, -a * torch.clamp(s, 1 - clip_low, 1 + clip_high)) * mask


def returns_by_position(env_reward, traj_index, turn_index, gamma=0.95):
    rank = torch.empty_like(turn_index)  # the turn's position in its trajectory, gaps ignored
    for tau in traj_index.unique():
        rows = (traj_index == tau).nonzero().squeeze(1)
        rank[rows[turn_index[rows].argsort()]] = torch.arange(len(rows))
    return solutions.discounted_step_returns(env_reward, traj_index, rank, gamma)


def step_groups_anchor_only(anchors, group_index):
    return solutions.step_groups(anchors, torch.zeros_like(group_index))


def step_advantages_grpo_singletons(step_return, step_group, mode="mean_std_norm", eps=1e-6):
    return solutions.grpo_advantages(step_return, step_group, eps) if mode == "mean_std_norm" else \
        solutions.step_advantages(step_return, step_group, mode, eps)


def aggregate_sum_over_valid_rows(loss, mask, mode, max_len=None):
    if mode == "seq-mean-token-sum":
        valid = (mask.sum(1) > 0).sum().clamp(min=1)
        return torch.where(mask > 0, loss, 0).sum() / valid
    return solutions.aggregate(loss, mask, mode, max_len)


def k3_no_clamp(logp, logp_ref):
    u = logp_ref - logp
    return torch.exp(u) - u - 1


BUGS = [  # (function, the wrong version, the checker that must catch it, words of its message)
    ("grpo_advantages", grpo_biased_std, "test_grpo_worked_example", "unbiased std"),
    ("token_clip_loss", token_clip_no_dual, "test_token_clip_hand_worked", "dual clip"),
    ("seq_log_ratio", seq_log_ratio_over_t, "test_seq_log_ratio_hand_worked", "own L_j tokens"),
    ("gspo_loss", gspo_plain_sequence_ratio, "test_gspo_each_token_has_only_its_own_gradient", "per-token gradient"),
    ("discounted_step_returns", returns_by_position, "test_discounted_step_returns_hand_worked", "gap"),
    ("step_groups", step_groups_anchor_only, "test_step_groups_hand_worked", "same group id"),
    ("step_advantages", step_advantages_grpo_singletons, "test_step_advantages_hand_worked", "singleton step group"),
    ("aggregate", aggregate_sum_over_valid_rows, "test_aggregate_hand_worked", "seq-mean-token-sum"),
    ("k3_kl", k3_no_clamp, "test_k3_hand_worked", "clamp"),
]


@pytest.mark.parametrize("name, wrong, checker, words", BUGS, ids=[b[0] for b in BUGS])
def test_a_wrong_answer_fails_naming_the_property_with_expected_and_actual(name, wrong, checker, words):
    impl = types.SimpleNamespace(**{n: getattr(solutions, n) for n in checks.NAMES})
    setattr(impl, name, wrong)
    test = getattr(checks, checker)
    kwargs = {"impl": impl}
    if "ref" in test.__code__.co_varnames[: test.__code__.co_argcount]:
        kwargs["ref"] = checks.reference_for(checker)
    with pytest.raises((AssertionError, pytest.fail.Exception)) as failure:
        test(**kwargs)
    message = str(failure.value)
    assert words in message, message
    if name != "step_groups":
        assert "expected:" in message and "actual:" in message, message


def test_the_plain_sequence_ratio_passes_the_value_checks_but_not_the_per_token_one():
    """Why the per-token checker exists: without the stop-gradient, values and turn-summed gradients agree."""
    impl = types.SimpleNamespace(**{n: getattr(solutions, n) for n in checks.NAMES})
    impl.gspo_loss = gspo_plain_sequence_ratio
    checks.test_gspo_hand_worked(impl)
    checks.test_gspo_matches_reference_on_random_rows(impl, checks.reference_for("test_gspo_matches_reference_on_random_rows"))
