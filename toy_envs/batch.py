"""A batch of `TextGameEnv`s that the rollout loop drives in lock-step.

Several entries may point to the same game file: a GRPO group plays G copies of one game, each in
its own engine. Steps run one after the other (a TextWorld step takes a few milliseconds).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from toy_envs.env import TextGameEnv

StepResult = tuple[str, float, bool, bool, dict[str, Any]]


class BatchEnv:
    """One `TextGameEnv` per game file; `step` takes one action per env, None for an env that is finished."""

    def __init__(self, game_files: Sequence[str | os.PathLike], max_turns: int | None = None,
                 win_reward: float = 1.0):
        """Start one engine per entry of `game_files` (≈10 ms each once TextWorld is warm)."""
        self.envs = [TextGameEnv(f, max_turns=max_turns, win_reward=win_reward) for f in game_files]

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
