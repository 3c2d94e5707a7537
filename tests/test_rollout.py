"""The rollout loop: exact rows from a scripted policy, determinism, and robustness."""

from __future__ import annotations

import random

import torch

from sampo_ref.policy import Generation
from sampo_ref.rollout import RolloutConfig, TurnBatch, collect
from sampo_ref.task import BatchEnv, PromptInput
from scripted import ScriptedEnv
from toy_envs import TextGameEnv


class ScriptedPolicy:
    """Answers turn k with script[k], one text per still-active env (in env order)."""

    pad_id = 0

    def __init__(self, script):
        self.script, self.calls, self.prompts = script, 0, []

    def generate(self, prompts, *args, **kwargs):
        texts = self.script[self.calls]
        assert len(texts) == len(prompts), "the loop must ask only for the active envs"
        self.calls += 1
        self.prompts.append(prompts)
        return [Generation(list(p.encode()[:4]), list(t.encode()) or [1], t, None, False)
                for p, t in zip(prompts, texts)]


def prompt(p: PromptInput, rng) -> str:
    hist = ",".join(a for _, _, a in p.history[-2:])
    return f"k={p.turn} obs={p.obs} hist={hist}"


def test_scripted_policy_gives_exact_rows():
    # one task, G = 2. Copy 0 wins at once; copy 1: garbage (invalid), look, look → truncated at 3.
    script = [["<action>go east</action>", "garbage"], ["<action>look</action>"], ["<action>look</action>"]]
    policy = ScriptedPolicy(script)
    cfg = RolloutConfig(max_turns=3)
    trajs = collect(policy, BatchEnv([ScriptedEnv(), ScriptedEnv()]), ["game"], 2, prompt, cfg, random.Random(0))
    assert [len(t.turns) for t in trajs] == [1, 3]
    assert trajs[0].group_id == trajs[1].group_id and trajs[0].traj_id != trajs[1].traj_id
    assert [t.won for t in trajs] == [True, False]
    assert [t.episode_return for t in trajs] == [1.0, 0.0]
    # the invalid turn still stepped the env (with the projected action) and got a row
    t = trajs[1].turns
    assert [x.action for x in t] == ["garbage", "look", "look"]
    assert [x.valid for x in t] == [False, True, True]
    assert [x.format_valid for x in t] == [False, True, True]
    assert [x.observation for x in t] == ["Nothing happens.", "The hall.", "The hall."]
    # history window: turn 2 sees the last two actions
    assert policy.prompts[2] == ["k=2 obs=The hall. hist=garbage,look"]
    # anchors are the observation each turn acts in
    assert [x.anchor for x in t] == ["hall\nintro", "hall\nturn1", "hall\nturn2"]

    batch = TurnBatch.from_trajectories(trajs, pad_id=0)
    assert len(batch) == 4
    assert batch.group_index.tolist() == [0, 0, 0, 0]
    assert batch.traj_index.tolist() == [0, 1, 1, 1]
    assert batch.turn_index.tolist() == [0, 0, 1, 2]
    assert batch.env_reward.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert batch.valid.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert batch.episode_return.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert batch.won.tolist() == [1.0, 0.0, 0.0, 0.0]
    lengths = [len(s.encode()) for s in ["<action>go east</action>", "garbage", "<action>look</action>",
                                          "<action>look</action>"]]
    assert batch.response_mask.sum(1).tolist() == lengths
    assert batch.response_ids.shape == (4, max(lengths))
    # right padding for responses, left padding for prompts
    for row, n in enumerate(lengths):
        assert batch.response_mask[row, :n].all() and not batch.response_mask[row, n:].any()
    assert batch.prompt_mask[:, -1].all()


def test_groups_get_distinct_ids_and_copies_share_them():
    script = [["<action>go east</action>"] * 4]
    trajs = collect(ScriptedPolicy(script), BatchEnv([ScriptedEnv() for _ in range(4)]), ["a", "b"], 2, prompt,
                    RolloutConfig(max_turns=3), random.Random(1))
    assert trajs[0].group_id == trajs[1].group_id != trajs[2].group_id == trajs[3].group_id
    assert len({t.traj_id for t in trajs}) == 4
    batch = TurnBatch.from_trajectories(trajs, pad_id=0)
    assert batch.group_index.tolist() == [0, 0, 1, 1]


def test_same_seed_same_trajectories(small_policy):
    def run():
        torch.manual_seed(0)
        return collect(small_policy, BatchEnv([ScriptedEnv() for _ in range(4)]), ["a", "b"], 2, prompt,
                       RolloutConfig(max_turns=3, max_new_tokens=12), random.Random(0))

    a, b = run(), run()
    assert [[t.response_ids for t in tau.turns] for tau in a] == [[t.response_ids for t in tau.turns] for tau in b]
    assert [tau.group_id for tau in a] == [tau.group_id for tau in b]


def test_random_model_output_never_raises(small_policy):
    """An untrained model emits garbage: every row still comes back, marked invalid."""
    torch.manual_seed(0)
    trajs = collect(small_policy, BatchEnv([ScriptedEnv(max_turns=4) for _ in range(6)]), ["a", "b", "c"], 2, prompt,
                    RolloutConfig(max_turns=4, max_new_tokens=20), random.Random(0))
    turns = [t for tau in trajs for t in tau.turns]
    assert len(turns) >= 6
    assert all(t.response_ids for t in turns)
    assert all(len(t.response_ids) <= 20 for t in turns)


MALFORMED = ["", "no tags", "<action>go east</action><action>look</action>", "<action>unclosed",
             "\x00\ufffd ÿ\u2603 garbage", "z" * 10_000, "<action>\\\\</action>"]


def test_malformed_outputs_through_a_real_game(coin_games):
    """Every malformed output is one invalid row: the env answers as for an unknown command."""
    script = [[text] for text in MALFORMED]
    env = TextGameEnv(coin_games[0], max_turns=len(MALFORMED))
    trajs = collect(ScriptedPolicy(script), BatchEnv([env]), ["g"], 1, prompt,
                    RolloutConfig(max_turns=len(MALFORMED)), random.Random(0))
    turns = trajs[0].turns
    assert len(turns) == len(MALFORMED)
    assert not any(t.valid for t in turns) and not trajs[0].won
    assert all(t.observation == "Nothing happens." for t in turns)


def test_walkthrough_through_the_loop_wins(coin_games):
    env = TextGameEnv(coin_games[0])
    walkthrough = env.reset()[1]["walkthrough"]
    script = [[f"<action>{cmd}</action>"] for cmd in walkthrough]
    trajs = collect(ScriptedPolicy(script), BatchEnv([env]), ["g"], 1, prompt, RolloutConfig(max_turns=20),
                    random.Random(0))
    assert trajs[0].won and len(trajs[0].turns) == len(walkthrough)
    assert all(t.valid for t in trajs[0].turns)
    assert trajs[0].episode_return == 1.0 and trajs[0].turns[-1].env_reward == 1.0
