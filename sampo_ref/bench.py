"""Rollout benchmark: the batched loop against one environment at a time, side by side.

    sampo-ref bench [--envs 64] [--family coin] [--level 1]

Both loops run the same policy on the same games with the same sampling settings; the only
difference is how many environments share one ``generate`` call. Printed: wall time, turns/s,
generated tokens/s, and the speed ratio. Absolute numbers are machine-dependent; the ratio is
the claim (measured in one run, interleaved, best of ``repeats``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch

from sampo_ref.config import TrainConfig
from sampo_ref.envs.toy import ToyTask
from sampo_ref.policy import pick_device
from sampo_ref.rollout import RolloutConfig, collect
from toy_envs import BatchEnv


@dataclass
class BenchConfig:
    envs: int = 64
    """Environments played at once by the batched loop (one episode each)."""
    family: str = "coin"
    """Toy task family."""
    level: int = 1
    """Toy difficulty level."""
    repeats: int = 2
    """Runs of each loop; the best time counts."""
    device: str = "auto"
    """auto, cpu or cuda."""
    model: str = "tiny"
    """Policy to benchmark (as in train)."""


def _timed(fn) -> tuple[float, list]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench(cfg: BenchConfig) -> dict:
    """Run both loops and print the comparison; returns the figures."""
    from sampo_ref.trainer import make_policy

    torch.set_grad_enabled(False)
    task = ToyTask(cfg.family, cfg.level, train_games=cfg.envs, eval_games=0)
    policy = make_policy(TrainConfig(model=cfg.model, family=cfg.family, level=cfg.level, train_games=cfg.envs),
                         task, pick_device(cfg.device))
    rc = RolloutConfig(max_turns=task.max_turns, max_new_tokens=16, record_logp=False)
    games = task.train_pool
    envs = task.envs(games, 1)
    names = [str(g) for g in games]

    def batched():
        torch.manual_seed(0)
        return collect(policy, envs, names, 1, task.prompt, rc, random.Random(0))

    def one_at_a_time():
        torch.manual_seed(0)
        return [tau for env, name in zip(envs.envs, names) for tau in collect(policy, BatchEnv([env]), [name], 1, task.prompt, rc, random.Random(0))]

    results = {}
    for _ in range(cfg.repeats):
        for name, fn in [("batched", batched), ("one-at-a-time", one_at_a_time)]:
            seconds, trajs = _timed(fn)
            turns = sum(len(t.turns) for t in trajs)
            tokens = sum(len(x.response_ids) for t in trajs for x in t.turns)
            if name not in results or seconds < results[name]["seconds"]:
                results[name] = {"seconds": seconds, "turns": turns, "tokens": tokens}
    print(f"rollout benchmark: {cfg.envs} envs, {cfg.family} level {cfg.level}, device {policy.device}, best of {cfg.repeats}")
    print(f"| loop | wall s | turns | turns/s | generated tokens/s |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']:.2f} | {r['turns']} | {r['turns'] / r['seconds']:.1f} | {r['tokens'] / r['seconds']:.0f} |")
    b, o = results["batched"], results["one-at-a-time"]
    ratio = (b["turns"] / b["seconds"]) / (o["turns"] / o["seconds"])
    print(f"speed-up of the batched loop (turns/s ratio): {ratio:.1f}x")
    results["ratio"] = ratio
    return results
