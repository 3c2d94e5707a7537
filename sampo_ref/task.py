"""The env/task contract: what the rollout loop drives and what an environment adapter provides.

The bottom layer of the project (docs/architecture.md): it imports nothing of the project. The
rollout loop (``rollout.py``) and the adapters (``envs/toy.py`` over ``toy_envs``,
``envs/alfworld.py`` over ``alfworld``) import it; none of them imports another.

* ``PromptInput``: what a prompt builder may read for one turn;
* ``BatchEnv``: envs stepped in lock-step, one action each; any env with gymnasium's
  ``reset() -> (obs, info)`` and ``step(action) -> (obs, reward, terminated, truncated, info)``
  can be batched, ``info`` holding ``admissible_commands``, ``won`` and ``anchor`` (the raw
  observation GiGPO groups by). ``toy_envs.batch.ProcessBatchEnv`` has the same interface over
  worker processes;
* ``EnvCache``: envs kept for reuse across rollouts, at most a bounded number, handed out as a ``BatchEnv``;
* ``Task``: game pools, envs and prompts of one environment (``ToyTask``, ``AlfworldTask``);
* ``play`` / ``random_play``: episodes of a scripted actor on any task (the tiny policy's
  warm-start data).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

StepResult = tuple[str, float, bool, bool, dict[str, Any]]
MAX_CACHED_ENVS = 512  # envs an EnvCache keeps: a TextWorld engine holds ≈1.7 MiB (toy), 2-10 MiB (ALFWorld)


@dataclass
class PromptInput:
    """What a prompt builder may read for one turn."""

    intro: str  # the reset observation (it states the task)
    obs: str  # the observation this turn acts in
    info: dict  # its info: admissible_commands, anchor, …
    history: list[tuple[str, dict, str]]  # earlier (observation, info, action), oldest first
    turn: int  # k


PromptFn = Callable[[PromptInput, random.Random], str]


class BatchEnv:
    """A list of envs; ``step`` takes one action per env, None for an env that is finished.

    Several entries may play the same game: a GRPO group plays G copies of one game, each in its
    own engine. The envs are stepped one after the other in this process.
    """

    def __init__(self, envs: Sequence[Any]):
        """Batch existing env objects (they are reused, not copied)."""
        self.envs = list(envs)

    def __len__(self) -> int:
        return len(self.envs)

    def reset(self) -> list[tuple[str, dict[str, Any]]]:
        """Reset every env (the engines are reused); return one (obs, info) per env."""
        return [env.reset() for env in self.envs]

    def step(self, actions: Sequence[str | None]) -> list[StepResult | None]:
        """Step env i with actions[i]; None skips env i and yields None in its place."""
        if len(actions) != len(self.envs):
            raise ValueError(f"got {len(actions)} actions for {len(self.envs)} envs")
        return [None if action is None else env.step(action) for env, action in zip(self.envs, actions)]

    def close(self) -> None:
        """Stop every engine."""
        for env in self.envs:
            env.close()


class EnvCache:
    """Envs kept for reuse across rollouts (starting a game costs ≈10-60 ms), at most ``limit`` of them.

    ``batch(games, copies)`` returns ``copies`` envs per game, game-major (env i plays
    games[i // copies]). Beyond ``limit`` envs the least recently used games' envs are closed and
    dropped; the games are deterministic, so an env made again plays exactly as the one dropped.
    """

    def __init__(self, new_env: Callable[[Any], Any], limit: int = MAX_CACHED_ENVS):
        self.new_env, self.limit = new_env, limit
        self._envs: dict[Any, list[Any]] = {}  # game → its envs, least recently used first

    def __len__(self) -> int:
        return sum(map(len, self._envs.values()))

    def batch(self, games: Sequence[Any], copies: int) -> BatchEnv:
        if len(set(games)) != len(games):
            raise ValueError("a game appears twice in one batch; sample games without replacement")
        out = []
        for game in games:
            pool = self._envs.pop(game, [])
            while len(pool) < copies:
                pool.append(self.new_env(game))
            self._envs[game] = pool  # most recently used last
            out.extend(pool[:copies])
        while len(self) > self.limit and next(iter(self._envs)) not in games:  # never an env of this batch
            for env in self._envs.pop(next(iter(self._envs))):
                env.close()
        return BatchEnv(out)


class Task(Protocol):
    """One environment's games and prompts, as the trainer and the evaluation use them."""

    train_pool: list[Path]  # training games
    eval_pool: list[Path]  # held-out games
    train_panel: list[Path]  # training games evaluated before and after training
    max_turns: int  # turn limit per episode
    require_think: bool  # the strict <think>/<action> answer format (real LLMs), else <action> only
    data_id: dict  # names the tiny policy's warm-start data (its cache key)

    def warm_start_pool(self, n: int) -> list[Path]:
        """The training games the tiny policy's warm start plays: the first ``n`` of the task's own
        ordering, however large the run's pool is (every run of the task shares one build)."""

    def envs(self, games: list[Path], copies: int) -> BatchEnv:
        """``copies`` envs per game, game-major (env i plays games[i // copies])."""

    def prompt(self, p: PromptInput, rng: random.Random) -> str:
        """The prompt of one turn."""

    def category(self, game: str | Path) -> str:
        """The reporting category of a game (evaluation breaks success down by it)."""


def play(task: Task, games: list[Path], examples: int, act, seed: int = 0, won_only: bool = False):
    """Play episodes of ``act(info, past, rng)`` on random ``games`` until ``examples`` (prompt,
    action) pairs are collected (with ``won_only``, only from won episodes). Returns the pairs and
    the success rate of all episodes played."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    episodes = wins = 0
    while len(pairs) < examples:
        env = task.envs([rng.choice(games)], 1).envs[0]
        obs, info = env.reset()
        intro, past, done, k, episode = obs, [], False, 0, []
        while not done:
            action = act(info, past, rng)
            episode.append((task.prompt(PromptInput(intro, obs, info, past, k), rng), action))
            past.append((obs, info, action))
            obs, _, terminated, truncated, info = env.step(action)
            done, k = terminated or truncated, k + 1
        episodes, wins = episodes + 1, wins + bool(info["won"])
        if won_only and not wins and episodes >= 1000:
            raise RuntimeError(f"the warm-start teacher won none of {episodes} episodes on {len(games)} games; "
                               "expected a task it can solve sometimes (or use the random warm-start)")
        if info["won"] or not won_only:
            pairs.extend(episode)
    return pairs[:examples], wins / episodes


def random_play(task: Task, games: list[Path], examples: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, action) pairs from uniformly random admissible play on ``games`` of any ``task``.

    The ``random`` warm-start imitates these: the format, not the solution.
    """
    pairs, _ = play(task, games, examples, lambda info, past, rng: rng.choice(info["admissible_commands"]), seed)
    return pairs
