"""The multi-turn rollout loop shared by every algorithm, and the turn-row batch it produces.

docs/rollout.md. ``collect`` plays N tasks × G copies (copies of a task are the same game from
the same start: one *group*) in lock-step:

    for turn k = 0 .. max_turns-1:
        prompts  ← build_prompt(task intro, current observation, last H (observation, action))
        texts    ← ONE batched generate over all still-active environments
        actions  ← parse_action(text)           (strict rule; never raises)
        env.step(action) for each active env    (invalid → env answers as for an unknown command)
        record one Turn per active env

Every active turn becomes one row (docs/rollout.md#from-trajectories-to-rows): a "sequence" in GSPO, seq-mean aggregation
and sequence masking is one turn's response. ``TurnBatch.from_trajectories`` stacks the rows into
padded tensors. Shapes: B rows, P prompt tokens (left-padded), T response tokens (right-padded).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from sampo_ref.parsing import parse_action
from sampo_ref.policy import Policy, left_pad, right_pad
from sampo_ref.task import BatchEnv, PromptFn, PromptInput


@dataclass
class Turn:
    """One agent turn = one training row."""

    turn_index: int  # k: earlier turns in this trajectory (0 for the first)
    prompt: str
    prompt_ids: list[int]
    response_ids: list[int]
    response: str
    action: str  # what the environment received
    anchor: str  # raw observation identifying the state this turn acts in (GiGPO key)
    env_reward: float  # reward the environment returned after this turn's action
    format_valid: bool
    valid: bool  # v_j of (S1): strict format and an admissible action
    observation: str  # the environment's answer to the action
    sample_logp: list[float] | None = None  # sampling-time log-probs (mismatch diagnostic only)
    hit_limit: bool = False  # the response reached max_new_tokens


@dataclass
class Trajectory:
    group_id: int  # shared by the G copies of one task; fresh at every reset (docs/rollout.md#from-trajectories-to-rows)
    traj_id: int  # unique per copy per reset
    task: str  # which game
    turns: list[Turn] = field(default_factory=list)
    won: bool = False

    @property
    def episode_return(self) -> float:
        """R_τ = Σ_k r^env_k over active turns, no penalty (docs/rollout.md#from-trajectories-to-rows)."""
        return sum(t.env_reward for t in self.turns)


@dataclass
class RolloutConfig:
    max_turns: int = 20
    max_new_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    do_sample: bool = True
    think: str = "none"  # the think block of the answer format: required, optional or none (parsing.THINK_RULES)
    record_logp: bool = True
    use_cache: bool = True  # KV cache in generate; off only to measure what it saves (sampo-ref bench rollout)


def collect(
    policy: Policy,
    envs: BatchEnv,
    tasks: Sequence[str],
    group_size: int,
    build_prompt: PromptFn,
    cfg: RolloutConfig,
    rng: random.Random,
) -> list[Trajectory]:
    """Play ``envs`` (len = len(tasks) · G; env i plays task i // G) to the end, batched.

    Each env answers gymnasium-style, with ``info["admissible_commands"]``, ``info["won"]`` and
    ``info["anchor"]``; ``BatchEnv.step`` skips the finished ones (action None).
    """
    if len(envs) != len(tasks) * group_size:
        raise ValueError(f"got {len(envs)} envs for {len(tasks)} tasks × group_size {group_size}")
    group_ids = [rng.getrandbits(62) for _ in tasks]
    trajs = [Trajectory(group_ids[i // group_size], rng.getrandbits(62), tasks[i // group_size]) for i in range(len(envs))]
    states = envs.reset()  # (obs, info) per env
    intros = [obs for obs, _ in states]
    history: list[list[tuple[str, dict, str]]] = [[] for _ in states]
    active = list(range(len(envs)))
    for k in range(cfg.max_turns):
        if not active:
            break
        # one prompt per active env → ONE batched generate → one parsed action per env
        prompts = [build_prompt(PromptInput(intros[i], *states[i], history[i], k), rng) for i in active]
        gens = policy.generate(
            prompts, cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k, cfg.do_sample, cfg.record_logp,
            cfg.use_cache,
        )
        parsed = {i: parse_action(g.text, states[i][1]["admissible_commands"], cfg.think)
                  for i, g in zip(active, gens)}
        results = envs.step([parsed[i].action if i in parsed else None for i in range(len(envs))])
        still_active = []
        for i, prompt, gen in zip(active, prompts, gens):
            (obs, info), p = states[i], parsed[i]
            next_obs, reward, terminated, truncated, next_info = results[i]
            trajs[i].turns.append(
                Turn(k, prompt, gen.prompt_ids, gen.response_ids, gen.text, p.action, info["anchor"],
                     float(reward), p.format_valid, p.valid, next_obs, gen.sample_logp, gen.hit_limit)
            )
            history[i].append((obs, info, p.action))
            states[i] = (next_obs, next_info)
            trajs[i].won = bool(next_info["won"])
            if not (terminated or truncated or k + 1 == cfg.max_turns):
                still_active.append(i)
        active = still_active
    return trajs


@dataclass
class TurnBatch:
    """All turn-rows of a rollout as padded tensors (docs/rollout.md#from-trajectories-to-rows)."""

    prompt_ids: torch.Tensor  # (B, P) left-padded
    prompt_mask: torch.Tensor  # (B, P)
    response_ids: torch.Tensor  # (B, T) right-padded
    response_mask: torch.Tensor  # (B, T) 1 on response tokens
    group_index: torch.Tensor  # (B,) dense group number
    traj_index: torch.Tensor  # (B,) dense trajectory number
    turn_index: torch.Tensor  # (B,) k
    env_reward: torch.Tensor  # (B,)
    valid: torch.Tensor  # (B,) v_j ∈ {0, 1}
    format_valid: torch.Tensor  # (B,)
    episode_return: torch.Tensor  # (B,) R_τ of the row's trajectory
    won: torch.Tensor  # (B,) the row's trajectory was won
    anchors: list[str]
    # filled by the trainer after the rollout (no grad):
    logp_old: torch.Tensor | None = None  # (B, T) log π_old, recomputed at the sampling temperature
    entropy_old: torch.Tensor | None = None  # (B, T) full-vocabulary entropy of π_old
    logp_ref: torch.Tensor | None = None  # (B, T) log π_ref
    adv: torch.Tensor | None = None  # (B,) one advantage per row

    def __len__(self) -> int:
        return self.response_ids.shape[0]

    @classmethod
    def from_trajectories(cls, trajs: Sequence[Trajectory], pad_id: int) -> "TurnBatch":
        rows = [(tau, t) for tau in trajs for t in tau.turns]
        group_number = {g: n for n, g in enumerate(dict.fromkeys(tau.group_id for tau in trajs))}
        traj_number = {id(tau): n for n, tau in enumerate(trajs)}
        prompt_ids, prompt_mask = left_pad([t.prompt_ids for _, t in rows], pad_id)
        response_ids, response_mask = right_pad([t.response_ids for _, t in rows], pad_id)

        def col(values, dtype=torch.float32):
            return torch.tensor(list(values), dtype=dtype)

        return cls(
            prompt_ids, prompt_mask, response_ids, response_mask.float(),
            group_index=col((group_number[tau.group_id] for tau, _ in rows), torch.long),
            traj_index=col((traj_number[id(tau)] for tau, _ in rows), torch.long),
            turn_index=col((t.turn_index for _, t in rows), torch.long),
            env_reward=col(t.env_reward for _, t in rows),
            valid=col(float(t.valid) for _, t in rows),
            format_valid=col(float(t.format_valid) for _, t in rows),
            episode_return=col(tau.episode_return for tau, _ in rows),
            won=col(float(tau.won) for tau, _ in rows),
            anchors=[t.anchor for _, t in rows],
        )

    def select(self, index: torch.Tensor) -> "TurnBatch":
        """The rows ``index`` (a 1-D long tensor), every field sliced alike."""
        def pick(v):
            if v is None or isinstance(v, torch.Tensor):
                return None if v is None else v[index]
            return [v[i] for i in index.tolist()]

        fields = {k: pick(v) for k, v in vars(self).items()}
        return TurnBatch(**fields)
