"""A batch of text envs that the rollout loop drives in lock-step.

Several entries may play the same game: a GRPO group plays G copies of one game, each in its own
engine. Steps run one after the other (a TextWorld step takes a few milliseconds). Any env with
gymnasium's ``reset() -> (obs, info)`` and ``step(action) -> (obs, reward, terminated, truncated,
info)`` can be batched, so the ALFWorld adapter and test doubles use the same interface.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from toy_envs.env import TextGameEnv

StepResult = tuple[str, float, bool, bool, dict[str, Any]]


class BatchEnv:
    """A list of envs; ``step`` takes one action per env, None for an env that is finished."""

    def __init__(self, envs: Sequence[Any]):
        """Batch existing env objects (they are reused, not copied)."""
        self.envs = list(envs)

    @classmethod
    def from_files(cls, game_files: Sequence[str | os.PathLike], max_turns: int | None = None,
                   win_reward: float = 1.0) -> "BatchEnv":
        """One new `TextGameEnv` per entry of `game_files` (≈10 ms each once TextWorld is warm)."""
        return cls([TextGameEnv(f, max_turns=max_turns, win_reward=win_reward) for f in game_files])

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
