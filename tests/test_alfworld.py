"""ALFWorld through the real ``alfworld`` package (AlfredTWEnv) on synthetic games in its own format.

ALFWORLD_DATA points at a temporary folder before anything imports alfworld (importing it
creates that folder). Resetting an ALFWorld game costs ~1 s (PDDL and grammar parsing), so each
test plays as few episodes as its claim needs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sampo_ref.config import ConfigError
from sampo_ref.rollout import RolloutConfig, TurnBatch, collect
from sampo_ref.task import PromptInput
from test_rollout import ScriptedPolicy

EXPERT_TYPES = ["pick_and_place_simple", "look_at_obj_in_light", "pick_clean_then_place_in_recep",
                "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One synthetic game of each task type in each split."""
    root = tmp_path_factory.mktemp("alfworld")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALFWORLD_DATA", str(root))
        from sampo_ref.envs.alfworld_synth import write_games

        write_games(root, 1)
        yield root


@pytest.fixture(scope="module")
def task(data):
    from sampo_ref.envs.alfworld import AlfworldTask

    return AlfworldTask(data, expert="planner")


def test_synthetic_games_are_loaded_by_alfworld_per_split(data, task):
    trials = sorted((data / "json_2.1.1" / "train").glob("*/trial_*"))
    assert len(trials) == 6 and (data / "logic" / "alfred.twl2").exists()
    for trial in trials:
        assert {p.name for p in trial.iterdir()} == {"initial_state.pddl", "traj_data.json", "game.tw-pddl"}
        game = json.loads((trial / "game.tw-pddl").read_text())
        assert game["solvable"] is True and game["walkthrough"] is None and "UNKNOWN GOAL" not in game["grammar"]
        assert "(:domain alfred)" in game["pddl_problem"]
    # AlfredTWEnv's own loader found every game of the train split and of valid_seen (the default eval split)
    assert [p.parent for p in task.train_pool] == trials
    assert all("valid_seen" in str(p) for p in task.eval_pool) and len(task.eval_pool) == 6


def test_the_same_arguments_write_the_same_game(tmp_path, data):
    from sampo_ref.envs.alfworld_synth import write_game

    a = write_game(tmp_path / "a", "train", "pick_and_place_simple", 0, seed=3).read_bytes()
    b = write_game(tmp_path / "b", "train", "pick_and_place_simple", 0, seed=3).read_bytes()
    assert a == b


@pytest.mark.slow
@pytest.mark.parametrize("task_type", EXPERT_TYPES)
def test_expert_actions_win_with_reward_10(task, task_type):
    game = next(g for g in task.train_pool if task.category(g) == task_type)
    env = task.envs([game], 1).envs[0]
    obs, info = env.reset()
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-") and "Your task is to: " in obs
    rewards, done = [], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(info["expert_plan"][0])
        rewards.append(reward)
        done = terminated or truncated
    assert info["won"] and terminated and not truncated
    assert rewards[-1] == 10.0 and set(rewards[:-1]) <= {0.0}
    assert json.loads((game.parent / "traj_data.json").read_text())["task_type"] == task_type


@pytest.mark.slow
def test_invalid_actions_change_nothing_and_are_penalised(task):
    game = task.train_pool[0]
    envs = task.envs([game], 2)
    # copy 0: an inadmissible command in strict form; copy 1: no <think> (invalid for a real LLM)
    script = [["<think>hm</think><action>fly to the moon</action>", "<action>go to cabinet 1</action>"]]
    trajs = collect(ScriptedPolicy(script), envs, [str(game)], 2, task.prompt,
                    RolloutConfig(max_turns=1, think=task.think), random.Random(0))
    (bad,), (no_think,) = trajs[0].turns, trajs[1].turns
    assert bad.observation == "Nothing happens." and bad.format_valid and not bad.valid
    assert no_think.action == "go to cabinet 1" and not no_think.format_valid and not no_think.valid
    assert no_think.observation.startswith("You arrive at cabinet 1")  # sent as parsed (docs/alfworld.md#2-the-testbed)
    assert envs.envs[0]._env is not envs.envs[1]._env
    batch = TurnBatch.from_trajectories(trajs, pad_id=0)
    from sampo_ref.algos.common import row_scores

    assert row_scores(batch.episode_return, batch.valid, 0.1).tolist() == pytest.approx([-0.1, -0.1])
    # and a strict, admissible answer is valid
    ok = collect(ScriptedPolicy([["<think>go</think> <action>go to cabinet 1</action>"]]), task.envs([game], 1),
                 [str(game)], 1, task.prompt, RolloutConfig(max_turns=1, think="required"), random.Random(0))
    assert ok[0].turns[0].valid


def test_task_type_of_every_game(task):
    kinds = sorted(task.category(g) for g in task.train_pool)
    assert kinds == sorted(EXPERT_TYPES + ["pick_two_obj_and_place"])


def instructions(admissible: list[str]) -> str:
    """The end of every ARLArena prompt, typed out from docs/alfworld.md#2-the-testbed."""
    listed = "\n ".join(f"'{a}'" for a in admissible if a != "help")
    return (f"Your admissible actions of the current situation are: [{listed}].\n\n"
            "Now it's your turn to take an action.\n"
            "You should first reason step-by-step about the current situation. This reasoning process MUST be "
            "enclosed within <think> </think> tags. \n"
            "Once you've finished your reasoning, you should choose an admissible action for current step and "
            "present it within <action> </action> tags.\n")


def test_prompt_is_arlarena_word_for_word(task):
    from sampo_ref.envs.alfworld import arlarena_prompt

    game = next(g for g in task.train_pool if task.category(g) == "pick_and_place_simple")
    env = task.envs([game], 1).envs[0]
    intro, info0 = env.reset()
    first = arlarena_prompt(PromptInput(intro, intro, info0, [], 0))
    assert first == ("\nYou are an expert agent operating in the ALFRED Embodied Environment.\n"
                     f"Your current observation is: {intro}\n" + instructions(info0["admissible_commands"]))
    assert "'help'" not in first and "help" in info0["admissible_commands"]
    history, obs, info = [], intro, info0
    for action in ["look", "go to cabinet 1", "inventory"]:
        history.append((obs, info, action))
        obs, _, _, _, info = env.step(action)
    later = arlarena_prompt(PromptInput(intro, obs, info, history, 3), history=2)
    task_text = intro.split("Your task is to: ")[1].strip()
    assert task_text.startswith("put ") and task_text.endswith(".")
    assert later == (
        "\nYou are an expert agent operating in the ALFRED Embodied Environment. "
        f"Your task is to: {task_text}\n"
        "Prior to this step, you have already taken 3 step(s). Below are the most recent 2 observaitons and the "
        f"corresponding actions you took: [Observation 2: '{history[1][0]}', Action 2: 'go to cabinet 1']\n"
        f"[Observation 3: '{history[2][0]}', Action 3: 'inventory']\n"
        f"You are now at step 4 and your current observation is: {obs}\n" + instructions(info["admissible_commands"]))


def test_every_alfworld_preset_stops_without_data_and_validates_with_it(tmp_path, data):
    from sampo_ref.presets import PRESETS, preset_config

    names = [n for n in PRESETS if n.startswith("alfworld-")]
    assert len(names) == 14
    for name in names:
        with pytest.raises(ConfigError, match="alfworld-download"):
            preset_config(name, alfworld_data=str(tmp_path / "nothing")).validate()
        preset_config(name, alfworld_data=str(data)).validate()
    sampo = preset_config("alfworld-sampo")
    assert (sampo.model, sampo.lr, sampo.kl_coef, sampo.entropy_coef, sampo.invalid_penalty) == \
        ("UCLA-SCAI/Qwen3-4B-rft-alfworld", 1e-6, 0.01, 0.001, 0.1)
    assert (sampo.clip_low, sampo.clip_high, sampo.cold_start_steps, sampo.max_num_gen_batches) == (3e-3, 4e-3, 15, 3)
    assert (sampo.tasks_per_iter, sampo.group_size, sampo.mini_batch_size, sampo.iterations) == (16, 8, 256, 200)
    assert (sampo.eval_temperature, sampo.eval_top_p, sampo.eval_top_k, sampo.win_reward) == (0.6, 0.95, 20, 10.0)


def test_cli_train_without_data_says_how_to_get_it(tmp_path, capsys):
    from sampo_ref.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "--preset", "alfworld-sampo", "--alfworld-data", str(tmp_path / "missing")])
    message = str(stop.value)
    assert "alfworld-download" in message and "json_2.1.1/train" in message and len(message.splitlines()) == 1


@pytest.mark.slow
def test_tiny_policy_trains_end_to_end_on_synthetic_games(tmp_path, data, monkeypatch):
    from sampo_ref.cli import main

    monkeypatch.setenv("SAMPO_REF_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    # a smaller warm start than the default tiny policy's (test speed only; the path is the same)
    main(["train", "--preset", "alfworld-sampo", "--model", "tiny", "--alfworld-data", str(data),
          "--tiny", "hidden_size=32", "heads=2", "intermediate_size=64", "vocab_size=400", "warm_start_games=1",
          "warm_start_examples=4", "warm_start_epochs=1", "warm_start_batch=4",
          "--train-games", "2", "--eval-games", "1", "--tasks-per-iter", "1", "--group-size", "2",
          "--max-turns", "2", "--iterations", "1", "--max-new-tokens", "12", "--mini-batch-size", "4",
          "--micro-batch-size", "4", "--dtype", "float32", "--no-gradient-checkpointing", "--no-progress",
          "--save-every", "0", "--no-tensorboard", "--run-dir", str(run)])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in records if r["iteration"] == 1 and "rollout/success" in r)
    assert step["rows"] == 4 and step["actor/optimizer_steps"] == 1  # 2 copies × 2 turns: no game is won in 2
    assert (run / "policy" / "config.json").exists()
    samples = (run / "samples.txt").read_text()
    assert "You are an expert agent operating in the ALFRED Embodied Environment." in samples


@pytest.mark.slow
def test_gpu_benchmark_code_path_on_cpu_with_a_tiny_architecture(tmp_path, data):
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / "alfworld_gpu.py"
    spec = importlib.util.spec_from_file_location("alfworld_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--arch", "tiny", "--device", "cpu", "--dtype", "float32", "--engine", "hf", "--limits-model",
                      "smoke", "--tasks", "1", "--copies", "2",
                      "--turns", "1", "--max-new-tokens", "4", "--iterations", "1", "--alfworld-data", str(data),
                      "--out", str(tmp_path)])
    assert json.loads((tmp_path / "alfworld_gpu.json").read_text()) == out
    limits = json.loads((tmp_path / "limits.json").read_text())
    assert [r["cache"] for r in limits["rows"] if "cache" in r] == ["dynamic"] and 0 < limits["rows"][-1]["mfu"] < 1
    (it,) = out["iterations"]
    assert it["rows"] == 2 and it["generated_tokens"] == 8 and it["optimizer_steps"] == 1  # random: never stops early
    assert out["estimate_200_steps_hours"]["50_turns_per_episode"] > 0


def test_env_workers_play_exactly_like_in_process_envs(data, task):
    """``start_workers``: the same games in persistent processes answer exactly as in this process."""
    from sampo_ref.envs.alfworld import AlfworldTask

    remote = AlfworldTask(data, expert="planner")  # as the task fixture: its infos carry the expert's plan
    remote.start_workers(2)
    try:
        games = task.train_pool[:2]
        for _ in range(2):  # the second rollout reuses the workers' envs
            local_envs, remote_envs = task.envs(games, 2), remote.envs(games, 2)
            states = local_envs.reset()
            assert remote_envs.reset() == states
            actions = [info["admissible_commands"][-1] for _, info in states]
            actions[1] = None  # a finished env is skipped
            assert remote_envs.step(actions) == local_envs.step(actions)
    finally:
        remote.workers.close()
