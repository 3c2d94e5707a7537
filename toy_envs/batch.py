"""Text envs stepped in parallel worker processes, with the interface of the rollout loop's batch.

The rollout loop drives a batch of envs in lock-step (``sampo_ref.task.BatchEnv``: one action per
env, None for a finished one; it steps them one after the other in this process, and a TextWorld
step takes a few milliseconds, most of it computing the admissible commands). ``ProcessBatchEnv``
has the same interface but spreads the envs over worker processes that step their shares in
parallel. The games are deterministic, so both return the same results in the same order (a
rollout is bit-identical); only the wall time differs (``sampo-ref bench rollout`` measures it).
gymnasium's ``AsyncVectorEnv`` is not used: it runs one process per env and cannot skip the
finished ones.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any, Sequence

from toy_envs.env import TextGameEnv

StepResult = tuple[str, float, bool, bool, dict[str, Any]]


class ProcessBatchEnv:
    """The batch interface over ``workers`` processes; env i lives in worker i % workers.

    The envs are built inside the workers from ``env_fns`` (picklable factories, e.g.
    ``functools.partial(TextGameEnv, path, max_turns=10)``): a TextWorld engine cannot be pickled.
    Interleaving spreads each group's G copies, and so the still-active envs, over all workers.
    """

    def __init__(self, env_fns: Sequence[Callable[[], Any]], workers: int):
        if workers < 1:
            raise ValueError(f"workers={workers} is not allowed: expected ≥ 1")
        self._n = len(env_fns)
        self.workers = min(workers, self._n)
        ctx = mp.get_context("spawn")  # no fork of a process that holds torch threads and game engines
        self._conns = []
        for w in range(self.workers):
            parent, child = ctx.Pipe()
            ctx.Process(target=_serve, args=(child, list(env_fns[w :: self.workers])), daemon=True).start()
            child.close()
            self._conns.append(parent)
        self._gather()  # wait until every worker has built its envs (raises what a worker raised)

    @classmethod
    def from_files(cls, game_files: Sequence[str | os.PathLike], workers: int, max_turns: int | None = None,
                   win_reward: float = 1.0) -> "ProcessBatchEnv":
        """One `TextGameEnv` per entry of `game_files`, built in the workers."""
        return cls([partial(TextGameEnv, f, max_turns=max_turns, win_reward=win_reward) for f in game_files], workers)

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


def _serve(conn, env_fns: list[Callable[[], Any]]) -> None:
    """A worker: build its envs, then answer reset / step / close until closed."""
    try:
        envs = [fn() for fn in env_fns]
        conn.send(("ok", None))
        while True:
            command, actions = conn.recv()
            if command == "reset":
                conn.send(("ok", [env.reset() for env in envs]))
            elif command == "step":
                conn.send(("ok", [None if a is None else env.step(a) for env, a in zip(envs, actions)]))
            elif command == "close":
                for env in envs:
                    env.close()
                conn.send(("ok", None))
                return
    except Exception:  # the parent re-raises it with the worker's traceback
        conn.send(("error", traceback.format_exc()))
