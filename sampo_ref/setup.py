"""Set-up and evaluation: the task, the policy and the reference of a config, and held-out episodes.

Shared by the training loop (``trainer.py``), ``sampo-ref eval`` (``evaluation.py``), the
benchmarks and the tutorials, so that none of them imports the trainer for its set-up
(docs/architecture.md). The only module that knows every environment adapter.
"""

from __future__ import annotations

import contextlib
import copy
import random
from pathlib import Path

import numpy as np
import torch

from sampo_ref import cache
from sampo_ref.config import TrainConfig
from sampo_ref.envs.toy import ToyTask, teacher_play
from sampo_ref.policy import Policy, load_policy
from sampo_ref.rollout import RolloutConfig, Trajectory, TurnBatch, collect
from sampo_ref.task import Task, random_play
from sampo_ref.tiny import build_tiny


def make_task(cfg: TrainConfig) -> Task:
    """The task of ``cfg.env``: game pools (``train_pool``, ``eval_pool``, ``train_panel``),
    ``envs(games, copies)``, ``prompt``, ``max_turns``, ``think``, ``data_id``."""
    if cfg.env == "alfworld":
        from sampo_ref.envs.alfworld import AlfworldTask

        return AlfworldTask(cfg.alfworld_dir(), cfg.train_games, cfg.eval_games, cfg.eval_split, cfg.max_turns,
                            cfg.win_reward, cfg.history, think="required" if cfg.model != "tiny" else "none")
    return ToyTask(cfg.family, cfg.level, cfg.train_games, cfg.eval_games, cfg.max_turns, cfg.win_reward,
                   cfg.history, instruction=cfg.model != "tiny", progress=cfg.progress)


def task_label(cfg: TrainConfig) -> str:
    """The task in a run name: ``alfworld`` or ``<family>-L<level>``."""
    return "alfworld" if cfg.env == "alfworld" else f"{cfg.family}-L{cfg.level}"


def make_policy(cfg: TrainConfig, task, device: torch.device, path: Path | None = None) -> Policy:
    """The policy with ``cfg``'s memory knobs: ``path`` (a checkpoint's policy) if given; else for
    ``tiny`` build (or reuse) the warm-started toy model for this task; else load ``cfg.model``."""
    if path is None and cfg.model == "tiny":
        tiny = cfg.tiny_config()  # on ALFWorld the tiny policy learns the format only (random play)
        games = task.warm_start_pool(tiny.warm_start_games)  # fixed games: every run of this task shares the cache
        data_id = {**task.data_id, "games": len(games)}

        def examples():
            if tiny.warm_start == "random":
                return random_play(task, games, tiny.warm_start_examples, tiny.seed), {"source": "random"}
            n_random = round(tiny.random_share * tiny.warm_start_examples)  # warm_start == "teacher"
            pairs, success = teacher_play(task, games, tiny.warm_start_examples - n_random, tiny.seed, tiny.teacher_noise)
            pairs += random_play(task, games, n_random, tiny.seed) if n_random else []
            return pairs, {"source": "teacher", "teacher_success": success, "random_examples": n_random}

        path = build_tiny(tiny, examples, data_id, cache.policies(), cfg.progress)
    policy = load_policy(str(path or cfg.model), device)
    if cfg.gradient_checkpointing:
        policy.model.gradient_checkpointing_enable()
    return policy


def make_reference(cfg: TrainConfig, policy: Policy):
    """The frozen reference π_ref (a copy of the initial policy) on ``ref_device``, in bf16 with ``dtype=bfloat16``."""
    if cfg.kl_coef == 0:
        return None
    ref = copy.deepcopy(policy.model).eval().requires_grad_(False)
    return ref.to(device=policy.device if cfg.ref_device == "same" else torch.device(cfg.ref_device),
                  dtype=torch.bfloat16 if cfg.dtype == "bfloat16" else None)


def precision(cfg: TrainConfig, device: torch.device):
    """bf16 autocast for ``dtype=bfloat16`` (float32 weights and optimiser state stay), else nothing."""
    if cfg.dtype == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def episode_metrics(trajs: list[Trajectory]) -> dict[str, float]:
    """Success, return and turns per episode; valid-format and valid-action ratios per turn."""
    turns = [t for tau in trajs for t in tau.turns]
    return {
        "success": float(np.mean([tau.won for tau in trajs])),
        "return": float(np.mean([tau.episode_return for tau in trajs])),
        "turns": float(np.mean([len(tau.turns) for tau in trajs])),
        "valid_format": float(np.mean([t.format_valid for t in turns])),
        "valid_action": float(np.mean([t.valid for t in turns])),
    }


def rollout_metrics(trajs: list[Trajectory], batch: TurnBatch, prefix: str) -> dict:
    """``episode_metrics`` and the response length of a list of trajectories, keys ``prefix/…``."""
    metrics = {**episode_metrics(trajs), "response_len": float(batch.response_mask.sum(1).mean()),
               "response_at_limit": float(np.mean([t.hit_limit for tau in trajs for t in tau.turns]))}
    return {f"{prefix}/{k}": v for k, v in metrics.items()}


def evaluate(policy: Policy, task, games: list[Path], cfg: TrainConfig, seed: int) -> tuple[dict, list[Trajectory]]:
    """One episode per game with the evaluation sampling settings (group size 1, no training)."""
    rc = RolloutConfig(max_turns=task.max_turns, max_new_tokens=cfg.max_new_tokens, temperature=cfg.eval_temperature or 1.0,
                       top_p=cfg.eval_top_p, top_k=cfg.eval_top_k, do_sample=cfg.eval_temperature > 0,
                       think=task.think, record_logp=False)
    with torch.random.fork_rng(devices=[policy.device] if policy.device.type == "cuda" else []):
        torch.manual_seed(seed)  # every evaluation samples alike; training's random stream is left untouched
        with precision(cfg, policy.device):
            trajs = collect(policy, task.envs(games, 1), [str(g) for g in games], 1, task.prompt, rc, random.Random(seed))
    return rollout_metrics(trajs, TurnBatch.from_trajectories(trajs, policy.pad_id), "eval"), trajs
