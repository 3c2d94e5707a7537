"""The toy task: TextWorld games from ``toy_envs`` and the compact prompt the tiny policy reads.

The prompt keeps ARLArena's fields (task, last H actions, admissible actions;
docs/alfworld.md#2-the-testbed) in a compact form a 0.5M-parameter model can read in ~30 tokens:

    goal: find the coin and take it
    history: go south | go east
    actions: go north; go east; look; inventory

Project choices, each documented in docs/environments.md:
* the observation is not shown: its flavour text carries nothing the admissible list does not
  (the exits are the ``go`` commands, the objects in reach the ``take`` ones), and its room name
  is a handle to memorise by: a student imitating its teacher on the training games learns
  "in the laundromat, go east" instead of reading the list, and names exits that do not exist
  on unseen games (docs/results.md#what-the-tiny-agent-needed: with the room in the prompt the
  same warm start wins 3 % of the held-out games instead of 47 %). GiGPO's anchor still carries
  the full observation and its room;
* the admissible actions are listed in a fresh random order every turn, so no positional
  shortcut ("always the first action") exists.
"""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

from sampo_ref.task import BatchEnv, EnvCache, PromptInput, play
from toy_envs import LEVELS, TextGameEnv, ensure_games
from toy_envs.baselines import explorer_action
from toy_envs.batch import ProcessBatchEnv

HELD_OUT_SEED = 1_000_000  # held-out games use seeds HELD_OUT_SEED + i, never seen in training


def goal_of(intro: str, family: str) -> str:
    """The task, from the reset text's first paragraph. Coin collector's objective spells out the
    route ("move south, then east, …"), so that family's goal is the bare task instead."""
    if family == "coin":
        return "find the coin and take it"
    return intro.strip().split("\n\n")[0].lower()


INSTRUCTION = ("Choose one of the actions and answer with it inside <action> </action> tags; "
               "you may think first inside <think> </think> tags.")


def toy_prompt(p: PromptInput, rng: random.Random, family: str, history: int = 2, instruction: bool = False) -> str:
    """The compact toy prompt; ``instruction`` adds one line stating the answer format (for real
    LLMs; the tiny policy learns the format in its warm-start and reads no instruction)."""
    actions = list(p.info["admissible_commands"])
    rng.shuffle(actions)
    lines = [f"goal: {goal_of(p.intro, family)}"]
    if history and p.history:
        lines.append("history: " + " | ".join(action for _, _, action in p.history[-history:]))
    lines.append("actions: " + "; ".join(actions))
    if instruction:
        lines.append(INSTRUCTION)
    return "\n".join(lines)


class ToyTask:
    """Game pools (training seeds and held-out seeds) and envs for one family and level."""

    def __init__(self, family: str, level: int, train_games: int, eval_games: int, max_turns: int = 0,
                 win_reward: float = 1.0, history: int = 2, instruction: bool = False, progress: bool = True):
        self.family, self.level, self.history, self.win_reward = family, level, history, win_reward
        self.instruction, self.progress = instruction, progress
        # the tiny policy answers <action> only; real LLMs may think first (docs/architecture.md#the-toy-prompt)
        self.think = "optional" if instruction else "none"
        self.max_turns = max_turns or LEVELS[family][level].max_turns
        seeds = list(range(train_games)) + [HELD_OUT_SEED + i for i in range(eval_games)]
        paths = ensure_games(family, level, seeds, progress=progress)
        self.train_pool: list[Path] = paths[:train_games]
        self.eval_pool: list[Path] = paths[train_games:]
        self.train_panel = self.train_pool  # training games evaluated before and after training
        # names the tiny policy's warm-start data; "prompt" versions toy_prompt's layout (2: no room)
        self.data_id = dict(family=family, level=level, history=history, prompt=2)
        self.env_cache = EnvCache(partial(TextGameEnv, max_turns=self.max_turns, win_reward=self.win_reward))
        self.workers: ProcessBatchEnv | None = None

    def warm_start_pool(self, n: int) -> list[Path]:
        """Training seeds 0 .. n-1, generated if this run's pool is smaller: a 16-game run and the
        default 64-game run start from the same tiny policy (never a held-out seed)."""
        if n <= len(self.train_pool):
            return self.train_pool[:n]
        return ensure_games(self.family, self.level, range(n), progress=self.progress)

    def start_workers(self, workers: int) -> None:
        """From now on ``envs`` plays in ``workers`` persistent processes (same results, in parallel)."""
        self.workers = ProcessBatchEnv(self.env_cache.new_env, workers)

    def envs(self, games: list[Path], copies: int) -> BatchEnv | ProcessBatchEnv:
        """``copies`` envs per game, game-major (env i plays games[i // copies]); reused while the
        cache holds them (``sampo_ref.task.EnvCache``: at most 512 envs, ≈0.9 GiB), in this
        process or in the workers of ``start_workers``."""
        if self.workers is not None:
            return self.workers.select(games, copies)
        return self.env_cache.batch(games, copies)

    def category(self, game: str | Path) -> str:
        """The reporting category of a game (evaluation breaks success down by it)."""
        return f"{self.family}-L{self.level}"

    def prompt(self, p: PromptInput, rng: random.Random) -> str:
        return toy_prompt(p, rng, self.family, self.history, self.instruction)


def teacher_play(task, games: list[Path], examples: int, seed: int = 0, noise: float = 0.5):
    """Rejection-sampled imitation data, ARLArena's RFT cold start in miniature (docs/results.md):
    the ``toy_envs.baselines.explorer_action`` teacher plays ``games``; only the turns of the episodes it **won** are
    kept. Returns the (prompt, action) pairs and the teacher's own success rate on these games."""
    def act(info, past, rng):
        return explorer_action(info["admissible_commands"], past[-1][2] if past else None, rng, noise)

    pairs, success = play(task, games, examples, act, seed, won_only=True)
    return pairs, success
