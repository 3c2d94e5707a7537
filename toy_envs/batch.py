"""Text envs stepped in parallel worker processes, with the interface of the rollout loop's batch.

The rollout loop drives a batch of envs in lock-step (``sampo_ref.task.BatchEnv``: one action per
env, None for a finished one; it steps them one after the other in this process, and a TextWorld
step takes a few milliseconds, most of it computing the admissible commands). ``ProcessBatchEnv``
has the same interface but spreads the envs over persistent worker processes that step their
shares in parallel (``sampo-ref train --env-workers N``). The games are deterministic, so both
return the same results in the same order (a rollout is bit-identical); only the wall time differs
(``sampo-ref bench rollout`` measures it). gymnasium's ``AsyncVectorEnv`` is not used: it runs one
process per env and cannot skip the finished ones.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any, Sequence

from toy_envs.env import TextGameEnv

StepResult = tuple[str, float, bool, bool, dict[str, Any]]


def game_major(games: Sequence[Any], copies: int) -> list[Any]:
    """``copies`` entries per game, game-major: [g0, g0, …, g1, g1, …]."""
    if len(set(games)) != len(games):
        raise ValueError("a game appears twice in one batch; sample games without replacement")
    return [game for game in games for _ in range(copies)]


class ProcessBatchEnv:
    """The batch interface over ``workers`` persistent processes; env i lives in worker i % workers.

    The envs are built inside the workers by ``new_env(game)``, a picklable function such as
    ``functools.partial(TextGameEnv, max_turns=10)`` (a TextWorld engine cannot be pickled).
    ``select(games, copies)`` says what the batch plays, as ``sampo_ref.task.EnvCache.batch``; each
    worker keeps the envs it built (at most ``limit``, the least recently used games' dropped) and
    reuses them when a game comes back, so the same processes serve every rollout of a run.
    Interleaving spreads each group's G copies, and so the still-active envs, over all workers.
    """

    def __init__(self, new_env: Callable[[Any], Any], workers: int, limit: int = 512):
        if workers < 1:
            raise ValueError(f"workers={workers} is not allowed: expected ≥ 1")
        self.workers, self._n = workers, 0
        ctx = mp.get_context("spawn")  # no fork of a process that holds torch threads and game engines
        self._conns = []
        for _ in range(workers):
            parent, child = ctx.Pipe()
            ctx.Process(target=_serve, args=(child, new_env, limit), daemon=True).start()
            child.close()
            self._conns.append(parent)
        self._gather()  # wait until every worker runs (raises what a worker raised)

    @classmethod
    def from_files(cls, game_files: Sequence[str | os.PathLike], workers: int, max_turns: int | None = None,
                   win_reward: float = 1.0) -> "ProcessBatchEnv":
        """One `TextGameEnv` per entry of `game_files` (entries may repeat), built in the workers."""
        return cls(partial(TextGameEnv, max_turns=max_turns, win_reward=win_reward), workers)._assign(list(game_files))

    def select(self, games: Sequence[Any], copies: int) -> "ProcessBatchEnv":
        """Play ``copies`` envs per game, game-major, from now on; returns self."""
        return self._assign(game_major(games, copies))

    def _assign(self, keys: list[Any]) -> "ProcessBatchEnv":
        for w, conn in enumerate(self._conns):
            conn.send(("take", keys[w :: self.workers]))
        self._n = len(keys)
        self._gather()
        return self

    def __len__(self) -> int:
        return self._n

    def reset(self) -> list[tuple[str, dict[str, Any]]]:
        """Reset every env; one (obs, info) per env, in env order."""
        for conn in self._conns:
            conn.send(("reset", None))
        return self._gather()

    def step(self, actions: Sequence[str | None]) -> list[StepResult | None]:
        """Step env i with actions[i] (None skips it and yields None); all workers step at once."""
        if len(actions) != self._n:
            raise ValueError(f"got {len(actions)} actions for {self._n} envs")
        for w, conn in enumerate(self._conns):
            conn.send(("step", list(actions[w :: self.workers])))
        return self._gather()

    def close(self) -> None:
        """Stop every engine and every worker."""
        for conn in self._conns:
            conn.send(("close", None))
        self._gather()
        for conn in self._conns:
            conn.close()
        self._conns = []

    def _gather(self) -> list:
        """Each worker's answer, re-interleaved into env order."""
        out: list = [None] * self._n
        for w, conn in enumerate(self._conns):
            status, payload = conn.recv()
            if status == "error":
                raise RuntimeError(f"env worker {w} failed:\n{payload}")
            if payload is not None:
                out[w :: self.workers] = payload
        return out


def _serve(conn, new_env: Callable[[Any], Any], limit: int) -> None:
    """A worker: answer take / reset / step / close until closed, keeping the envs it built."""
    try:
        cache: dict[Any, list] = {}  # game → its envs, least recently used first
        envs: list = []
        conn.send(("ok", None))
        while True:
            command, arg = conn.recv()
            if command == "take":  # the k-th entry of a game gets that game's k-th env
                envs, uses = [], Counter()
                for game in arg:
                    pool = cache.pop(game, [])
                    while len(pool) <= uses[game]:
                        pool.append(new_env(game))
                    cache[game] = pool  # most recently used last
                    envs.append(pool[uses[game]])
                    uses[game] += 1
                while sum(map(len, cache.values())) > limit and next(iter(cache)) not in uses:
                    for env in cache.pop(next(iter(cache))):
                        env.close()
                conn.send(("ok", None))
            elif command == "reset":
                conn.send(("ok", [env.reset() for env in envs]))
            elif command == "step":
                conn.send(("ok", [None if a is None else env.step(a) for env, a in zip(envs, arg)]))
            elif command == "close":
                for pool in cache.values():
                    for env in pool:
                        env.close()
                conn.send(("ok", None))
                return
    except Exception:  # the parent re-raises it with the worker's traceback
        conn.send(("error", traceback.format_exc()))
