"""The ALFWorld task: the real ``alfworld`` package (0.4.2, ``AlfredTWEnv``) and ARLArena's testbed.

docs/alfworld.md#2-the-testbed. What comes from ``alfworld`` unchanged:

* the game pools: ``AlfredTWEnv(config, split).game_files`` (its loader's filters: no
  ``movable``/``Sliced`` trials, the six task types, ``solvable`` games only);
* the environment of one game: the split's ``AlfredTWEnv`` narrowed to that game, then its own
  ``init_env(batch_size=1)`` (demangler, game-file info, step limit; TextWorld's PDDL engine runs
  it in-process), one per group copy, as [ARL] runs one batch-1 env per worker;
* with ``expert=…``, ALFWorld's expert wrapper (``training_method: dagger``) adds ``expert_plan``.

What this module adds is ARLArena's side of the testbed: the prompt of docs/alfworld.md#2-the-testbed word for
word, reward 10·won on the winning turn, the 50-turn limit, the history window, and the task
type of each game (``category``). Actions are sent to the game as parsed (docs/alfworld.md#2-the-testbed); the game
answers "Nothing happens." to anything that is not an admissible command (docs/alfworld.md#2-the-testbed).

Game data: ``$ALFWORLD_DATA`` (or ``--alfworld-data``) must hold ``json_2.1.1/<split>/`` and
``logic/``; ``alfworld-download`` writes them on a machine with internet access. Offline,
``sampo_ref.envs.alfworld_synth`` writes small synthetic games in the same format.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import random
from pathlib import Path
from typing import Any

from sampo_ref.task import BatchEnv, EnvCache, PromptInput
from toy_envs.batch import ProcessBatchEnv

# split name → AlfredTWEnv's train_eval argument (docs/alfworld.md#2-the-testbed)
SPLITS = {"train": "train", "valid_seen": "eval_in_distribution", "valid_unseen": "eval_out_of_distribution"}
TASK_TYPES = ("pick_and_place_simple", "look_at_obj_in_light", "pick_clean_then_place_in_recep",
              "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep", "pick_two_obj_and_place")
MAX_TURNS = 50
WIN_REWARD = 10.0
DOWNLOAD_HINT = ("download it on a machine with internet access (pip install alfworld==0.4.2, then "
                 "`alfworld-download`, which writes ~/.cache/alfworld) and copy that folder here, "
                 "or write small synthetic games with `python -m sampo_ref.envs.alfworld_synth DIR`")

# ARLArena's prompt (docs/alfworld.md#2-the-testbed; [ARL] agent_system/environments/prompts/alfworld.py), word for word,
# including the source's "observaitons" and the space after "tags.".
_INSTRUCTIONS = """Your admissible actions of the current situation are: [{admissible_actions}].

Now it's your turn to take an action.
You should first reason step-by-step about the current situation. This reasoning process MUST be enclosed within <think> </think> tags. 
Once you've finished your reasoning, you should choose an admissible action for current step and present it within <action> </action> tags.
"""
TEMPLATE_NO_HISTORY = """
You are an expert agent operating in the ALFRED Embodied Environment.
Your current observation is: {current_observation}
""" + _INSTRUCTIONS
TEMPLATE = """
You are an expert agent operating in the ALFRED Embodied Environment. Your task is to: {task_description}
Prior to this step, you have already taken {step_count} step(s). Below are the most recent {history_length} observaitons and the corresponding actions you took: {action_history}
You are now at step {current_step} and your current observation is: {current_observation}
""" + _INSTRUCTIONS


def data_problem(data_dir: str | os.PathLike, splits: tuple[str, ...] = ("train",)) -> str | None:
    """What is missing for ALFWorld in ``data_dir`` (one line), or None when it is usable."""
    root = Path(data_dir).expanduser()
    if importlib.util.find_spec("alfworld") is None:  # found, not imported: importing creates $ALFWORLD_DATA
        return "env='alfworld' needs the alfworld package: pip install 'sampo-ref[alfworld]' (alfworld==0.4.2)"
    for name in [*(f"json_2.1.1/{s}" for s in splits), "logic/alfred.pddl", "logic/alfred.twl2"]:
        if not (root / name).exists():
            return f"alfworld_data={str(data_dir)!r} has no {name}: the ALFWorld game data is missing; {DOWNLOAD_HINT}"
    return None


def default_data_dir() -> str:
    """``$ALFWORLD_DATA``, else alfworld's own default (~/.cache/alfworld)."""
    return os.environ.get("ALFWORLD_DATA") or os.path.expanduser("~/.cache/alfworld")


def alfworld_config(data_dir: str | os.PathLike, max_turns: int = MAX_TURNS, expert: str | None = None) -> dict:
    """The minimal ``AlfredTWEnv`` config (docs/alfworld.md#2-the-testbed, docs/alfworld.md#1-install-and-get-the-data): paths under ``data_dir``, all six task
    types, no domain randomisation, templated goals; ``expert`` (handcoded or planner) adds
    ALFWorld's expert wrapper on the train split (``training_method: dagger``)."""
    root = Path(data_dir).expanduser()
    return {
        "dataset": {"data_path": str(root / "json_2.1.1" / "train"),
                    "eval_id_data_path": str(root / "json_2.1.1" / "valid_seen"),
                    "eval_ood_data_path": str(root / "json_2.1.1" / "valid_unseen"),
                    "num_train_games": -1, "num_eval_games": -1},
        "logic": {"domain": str(root / "logic" / "alfred.pddl"), "grammar": str(root / "logic" / "alfred.twl2")},
        "env": {"type": "AlfredTWEnv", "domain_randomization": False, "task_types": [1, 2, 3, 4, 5, 6],
                "expert_timeout_steps": 150, "expert_type": expert or "handcoded", "goal_desc_human_anns_prob": 0.0},
        "general": {"training_method": "dagger" if expert else "dqn"},
        "rl": {"training": {"max_nb_steps_per_episode": max_turns}},
        "dagger": {"training": {"max_nb_steps_per_episode": max_turns}},
    }


def task_description(intro: str) -> str:
    """The task: the text after "Your task is to: " in the first observation (docs/alfworld.md#2-the-testbed)."""
    return intro.partition("Your task is to: ")[2].strip()


def admissible_text(admissible: list[str]) -> str:
    """Each command in single quotes, joined by a newline and a space, ``help`` removed (docs/alfworld.md#2-the-testbed)."""
    return "\n ".join(f"'{a}'" for a in admissible if a != "help")


def arlarena_prompt(p: PromptInput, history: int = 2) -> str:
    """ARLArena's ALFWorld prompt for one turn (docs/alfworld.md#2-the-testbed)."""
    actions = admissible_text(p.info["admissible_commands"])
    if p.turn == 0 or history <= 0:
        return TEMPLATE_NO_HISTORY.format(current_observation=p.obs, admissible_actions=actions)
    shown = p.history[-history:]
    first = len(p.history) - len(shown) + 1  # records are numbered by turn, from 1
    records = "\n".join(f"[Observation {n}: '{obs}', Action {n}: '{action}']"
                        for n, (obs, _, action) in enumerate(shown, start=first))
    return TEMPLATE.format(task_description=task_description(p.intro), step_count=p.turn, history_length=len(shown),
                           action_history=records, current_step=p.turn + 1, current_observation=p.obs,
                           admissible_actions=actions)


class AlfworldEnv:
    """One ALFWorld game as a gymnasium-style env (the ``BatchEnv`` interface).

    ``reset() -> (obs, info)``, ``step(action) -> (obs, reward, terminated, truncated, info)``;
    obs is ALFWorld's raw text. ``info``: admissible_commands (as the game lists them, ``help``
    included), won, anchor (the raw observation: GiGPO's state key, docs/rollout.md#from-trajectories-to-rows), gamefile, turn, and
    expert_plan when the expert wrapper is on. reward = ``win_reward`` on the winning turn;
    terminated = won; truncated = ``max_turns`` reached first.
    """

    def __init__(self, tw_env, max_turns: int = MAX_TURNS, win_reward: float = WIN_REWARD):
        self._env = tw_env  # TextWorld's batch-1 gym env from AlfredTWEnv.init_env
        self.max_turns, self.win_reward = max_turns, win_reward
        self._turn, self._done = 0, True

    def reset(self) -> tuple[str, dict[str, Any]]:
        obs, infos = self._env.reset()
        self._turn, self._done = 0, False
        return obs[0], self._info(obs[0], infos)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("episode is over (or not started): call reset() before step()")
        obs, _, _, infos = self._env.step([action])
        self._turn += 1
        info = self._info(obs[0], infos)
        terminated = info["won"]
        truncated = not terminated and self._turn >= self.max_turns
        self._done = terminated or truncated
        return obs[0], self.win_reward if terminated else 0.0, terminated, truncated, info

    def close(self) -> None:
        self._env.close()

    def _info(self, obs: str, infos: dict) -> dict[str, Any]:
        info = {"admissible_commands": list(infos["admissible_commands"][0]), "won": bool(infos["won"][0]),
                "anchor": obs, "gamefile": infos["extra.gamefile"][0], "turn": self._turn}
        if "extra.expert_plan" in infos:
            info["expert_plan"] = list(infos["extra.expert_plan"][0])
        return info


class AlfworldTask:
    """Game pools (train split; ``eval_split`` for evaluation) and envs, the ARLArena prompt.

    ``train_games`` / ``eval_games``: the first that many games of the sorted split (0 = all).
    ``think``: "required" is the strict <think>/<action> rule of docs/alfworld.md#2-the-testbed (real LLMs); the tiny policy
    answers <action> only (docs/architecture.md#the-toy-prompt).
    """

    def __init__(self, data_dir: str | os.PathLike, train_games: int = 0, eval_games: int = 0,
                 eval_split: str = "valid_seen", max_turns: int = MAX_TURNS, win_reward: float = WIN_REWARD,
                 history: int = 2, think: str = "required", expert: str | None = None):
        if eval_split not in SPLITS:
            raise ValueError(f"eval_split={eval_split!r} is not allowed: expected one of {sorted(SPLITS)}")
        problem = data_problem(data_dir, ("train", eval_split))
        if problem:
            raise FileNotFoundError(problem)
        os.environ.setdefault("ALFWORLD_DATA", str(data_dir))  # else importing alfworld creates ~/.cache/alfworld
        from alfworld.agents.environment import get_environment

        self.data_dir, self.eval_split = Path(data_dir).expanduser(), eval_split
        self.max_turns, self.win_reward, self.history = max_turns or MAX_TURNS, win_reward, history
        self.think = think
        self.config, self.expert = alfworld_config(self.data_dir, self.max_turns, expert), expert
        self.data_id = {"env": "alfworld", "data": str(self.data_dir), "history": history}
        self._split_envs = {split: get_environment("AlfredTWEnv")(self.config, SPLITS[split])
                            for split in dict.fromkeys(["train", eval_split])}
        self.train_pool = self._pool("train", train_games)
        self.eval_pool = self._pool(eval_split, eval_games)
        self.train_panel = self.train_pool[: len(self.eval_pool)]  # training games evaluated before/after
        self.env_cache = EnvCache(self.new_env)  # each new env registers a TextWorld gym id: reuse them
        self.workers: ProcessBatchEnv | None = None

    def warm_start_pool(self, n: int) -> list[Path]:
        """The first ``n`` games of this run's training pool."""
        return self.train_pool[:n]

    def start_workers(self, workers: int) -> None:
        """From now on ``envs`` plays in ``workers`` persistent processes (same results, in parallel:
        an ``AlfredTWEnv`` steps ~10–15 times a second, alfworld issue #23)."""
        self.workers = ProcessBatchEnv(functools.partial(_worker_env, self.data_dir, self.eval_split, self.max_turns,
                                                         self.win_reward, self.expert), workers)

    def _pool(self, split: str, n: int) -> list[Path]:
        games = sorted(Path(g) for g in self._split_envs[split].game_files)
        if n > len(games) or not games:
            raise ValueError(f"{split} split of {self.data_dir} has {len(games)} games; asked for {n or 'all'}")
        return games[: n or len(games)]

    def new_env(self, game: Path) -> AlfworldEnv:
        """A fresh env on ``game``: the split's ``AlfredTWEnv`` narrowed to it, then ``init_env(1)``."""
        split = "train" if game in set(self.train_pool) else self.eval_split
        one = copy.copy(self._split_envs[split])
        one.game_files, one.num_games = [str(game)], 1
        return AlfworldEnv(one.init_env(batch_size=1), self.max_turns, self.win_reward)

    def envs(self, games: list[Path], copies: int) -> BatchEnv | ProcessBatchEnv:
        """``copies`` envs per game, game-major (env i plays games[i // copies]); reused while the
        cache holds them (``sampo_ref.task.EnvCache``: the least recently used dropped beyond 512),
        in this process or in the workers of ``start_workers``."""
        if self.workers is not None:
            return self.workers.select(games, copies)
        return self.env_cache.batch(games, copies)

    def prompt(self, p: PromptInput, rng: random.Random) -> str:
        return arlarena_prompt(p, self.history)

    def category(self, game: str | os.PathLike) -> str:
        """The ALFWorld task type of a game, from its trial folder's name (docs/alfworld.md#2-the-testbed)."""
        kind = Path(game).parent.parent.name.split("-")[0]
        if kind not in TASK_TYPES:
            raise ValueError(f"{game}: its folder name does not start with one of the task types {TASK_TYPES}")
        return kind


@functools.lru_cache(maxsize=None)
def _worker_task(data_dir: Path, eval_split: str, max_turns: int, win_reward: float, expert: str | None
                 ) -> AlfworldTask:
    """The task inside an env worker, built once per worker (both splits, every game)."""
    return AlfworldTask(data_dir, eval_split=eval_split, max_turns=max_turns, win_reward=win_reward, expert=expert)


def _worker_env(data_dir: Path, eval_split: str, max_turns: int, win_reward: float, expert: str | None,
                game: Path) -> AlfworldEnv:
    """A new env on ``game`` inside an env worker (``AlfworldTask.start_workers``)."""
    return _worker_task(data_dir, eval_split, max_turns, win_reward, expert).new_env(game)
