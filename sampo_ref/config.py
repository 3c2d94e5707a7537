"""One flat training config. Each field's docstring is its ``--help`` line; symbols and equation
tags refer to the docs (docs/notation.md). Fields marked *memory* change memory use, never the mathematics.

The field defaults are the BASE layer of the one resolution chain (``sampo_ref.presets.resolve``):
base defaults → the method's (``algos/<algo>.py`` ``DEFAULTS``) → the preset's → the scale's (toy
or ALFWorld) → flags. A method's own knobs take their base value from the method's file, the
knobs several methods share (ε, c) GRPO's; ``TrainConfig(algo="gspo")`` alone is therefore not
GSPO's configuration: ``presets.resolve(algo="gspo")`` is.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from sampo_ref.algos import empg, gigpo, grpo, sapo, soft_sapo
from sampo_ref.algos import seq_mask as sequence_masking  # not "seq_mask": a field below has that name
from sampo_ref.algos.common import AGG_MODES


HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")  # a Hugging Face hub id, owner/name


@dataclass
class TrainConfig:
    # --- experiment ---
    algo: str = "grpo"
    """Algorithm (a file under sampo_ref/algos/). As a flag: start from the preset of that name, the method's own defaults."""
    preset: str = ""
    """Named preset to start from (sampo-ref list); flags override it. Recorded in config.json; '' = base defaults only."""
    seed: int = 0
    """Seed of the RL run: task sampling, rollout sampling, mini-batch order. The game pools do not depend on it."""
    iterations: int = 30
    """Training iterations (one rollout batch and its mini-batch updates each)."""
    run_dir: str | None = None
    """Where to write config, metrics.jsonl, plots and samples. Default: runs/<algo>-<family>-L<level>-s<seed>-<time>."""
    device: str = "auto"
    """auto (CUDA if present, else CPU), cpu, cuda or mps."""
    progress: bool = True
    """Show progress bars."""

    # --- environment ---
    env: str = "toy"
    """Environment and scale: toy (TextWorld games of toy_envs) or alfworld (the real ALFWorld at the paper's scale, docs/alfworld.md)."""
    family: str = "coin"
    """Toy task family (toy_envs.FAMILIES)."""
    level: int = 1
    """Toy difficulty level (toy_envs.LEVELS)."""
    alfworld_data: str = ""
    """ALFWorld game data (json_2.1.1/, logic/); empty = $ALFWORLD_DATA, else ~/.cache/alfworld."""
    eval_split: str = "valid_seen"
    """ALFWorld split of the held-out games: valid_seen (ARLArena's validation, docs/alfworld.md#2-the-testbed) or valid_unseen."""
    train_games: int = 64
    """Games in the training pool (toy: seeds 0 .. train_games-1; ALFWorld: the first of the train split, 0 = all)."""
    eval_games: int = 64
    """Held-out games (toy: unseen seeds, same family and level; ALFWorld: the first of eval_split, 0 = all); one episode each."""
    max_turns: int = 0
    """Turn limit per episode; 0 = the family/level default."""
    history: int = 2
    """H: earlier (observation, action) pairs shown in the prompt (docs/alfworld.md#2-the-testbed)."""
    win_reward: float = 1.0
    """r^env on the winning turn (ALFWorld uses 10)."""
    invalid_penalty: float = 0.0
    """c_inv in (S1), subtracted from an invalid turn's row score. ARLArena: 0.1. Toy default 0: with GRPO's σ-normalisation any c_inv > 0 gives every valid turn of an all-fail group A > 0, and the tiny policy collapses into valid loops (docs/results.md)."""
    invalid_adv_penalty: float = 0.0
    """c_adv: subtracted from an invalid turn's advantage after the group normalisation, A_j - c_adv (1 - v_j): a cost the σ of an all-fail group cannot blow up (project option, docs/results.md "Invalid actions")."""
    norm_adv_by_std: bool = True
    """GRPO (S2) divides by the group's σ; False = Dr. GRPO's mean-centred advantage (docs/algorithms/grpo.md#key-equations)."""

    # --- policy and sampling ---
    model: str = "tiny"
    """'tiny' (built offline and cached), a local save_pretrained directory, or a hub id."""
    max_new_tokens: int = 16
    """Response token limit per turn."""
    temperature: float = 1.0
    """Rollout sampling temperature; old log-probs are recomputed at it."""
    top_p: float = 1.0
    """Rollout nucleus sampling."""
    top_k: int = 0
    """Rollout top-k (0 = off)."""

    # --- memory (never the mathematics) ---
    dtype: str = "float32"
    """*memory* float32, or bfloat16: forward passes under bf16 autocast (weights and optimiser state stay float32), reference model stored in bf16."""
    gradient_checkpointing: bool = False
    """*memory* Recompute activations in the backward pass (Hugging Face gradient checkpointing)."""
    ref_device: str = "same"
    """*memory* Where the reference model lives: same (the policy's device), cpu, or a device such as cuda:1."""

    # --- batch ---
    tasks_per_iter: int = 8
    """N: tasks (games) per iteration."""
    group_size: int = 8
    """G: copies of each task; one group (docs/rollout.md#from-trajectories-to-rows)."""
    mini_batch_size: int = 128
    """Rows per optimiser step. Several mini-batches per rollout make every step after the first off-policy."""
    micro_batch_size: int = 64
    """Rows per forward/backward (memory). The loss does not depend on it: aggregation uses mini-batch denominators."""
    ppo_epochs: int = 1
    """Passes over the rollout batch."""

    # --- optimiser ---
    lr: float = 5e-4
    """AdamW learning rate (constant)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip; non-finite steps are skipped."""

    # --- loss ---
    clip_low: float = grpo.DEFAULTS["clip_low"]
    """ε_l of (S10)."""
    clip_high: float = grpo.DEFAULTS["clip_high"]
    """ε_h of (S10)."""
    dual_clip: float = grpo.DEFAULTS["dual_clip"]
    """c of (S10), > 1."""
    loss_agg: str = "token-mean"
    """Aggregation mode (docs/dimensions.md#loss-aggregation): token-mean, seq-mean-token-mean, seq-mean-token-sum, seq-mean-token-sum-norm."""
    kl_coef: float = 0.02
    """β of (S19): k3 KL to the reference (the initial policy), in the loss. ARLArena: 0.01."""
    entropy_coef: float = 0.001
    """c_H of (S19): entropy bonus."""
    seq_mask: bool = False
    """Sequence (turn) masking (S17) on the policy term: token clip, soft SAPO and CISPO only."""
    seq_mask_delta: float = sequence_masking.ON["seq_mask_delta"]
    """δ of (S17): mask A<0 turns whose ratio s_j < e^-δ ([ARL] seq-mask scripts: 3e-3)."""

    # --- advantage knobs ---
    gamma: float = gigpo.DEFAULTS["gamma"]
    """γ of (S4): GiGPO's discount of step returns."""
    step_adv_weight: float = gigpo.DEFAULTS["step_adv_weight"]
    """ω of (S7): weight of GiGPO's step advantage."""
    gigpo_mode: str = gigpo.DEFAULTS["gigpo_mode"]
    """GiGPO normalisation (S3, S6): mean_std_norm ('w/ std') or mean_norm ('w/o std')."""
    empg_k: float = empg.DEFAULTS["empg_k"]
    """k of EMPG's self-calibrating scaling (S8)."""
    empg_k_f: float = empg.DEFAULTS["empg_k_f"]
    """k_f of EMPG's future-clarity bonus (S8)."""
    empg_zeta: float = empg.DEFAULTS["empg_zeta"]
    """ζ of EMPG's future-clarity bonus (S8)."""

    # --- surrogate knobs ---
    tau_pos: float = soft_sapo.DEFAULTS["tau_pos"]
    """τ of soft SAPO's gate (S14) on rows with A > 0."""
    tau_neg: float = soft_sapo.DEFAULTS["tau_neg"]
    """τ of soft SAPO's gate (S14) on rows with A ≤ 0."""
    sapo_t_kl: float = sapo.DEFAULTS["sapo_t_kl"]
    """t_kl of Search-Agent SAPO (S16): ratio threshold below which positive tokens get the KL term (project choice)."""
    sapo_w_kl: float = sapo.DEFAULTS["sapo_w_kl"]
    """w_kl of Search-Agent SAPO (S16): weight of the conditional KL term (project choice)."""
    sapo_include_zero_adv: bool = sapo.DEFAULTS["sapo_include_zero_adv"]
    """Search-Agent SAPO (S16): P includes A = 0 rows, as in the published listing."""

    # --- dynamic sampling (DAPO filter, docs/algorithms/dynamic_sampling.md#the-rule) ---
    filter_groups: bool = False
    """Drop groups whose episode returns are all equal and roll out again (always on for SAMPO)."""
    max_num_gen_batches: int = 3
    """Rollouts per iteration at most when filtering; the last one fills the batch (docs/algorithms/dynamic_sampling.md#the-rule)."""
    cold_start_steps: int = 0
    """Iterations before the filter starts (filter active from iteration cold_start_steps + 1)."""

    # --- evaluation and output ---
    eval_temperature: float = 0.6
    """Evaluation sampling temperature; 0 = greedy. Default: ARLArena's validation protocol (docs/alfworld.md#2-the-testbed)."""
    eval_top_p: float = 0.95
    """Evaluation nucleus sampling (docs/alfworld.md#2-the-testbed)."""
    eval_top_k: int = 20
    """Evaluation top-k (docs/alfworld.md#2-the-testbed)."""
    eval_every: int = 10
    """Evaluate on held-out games every this many iterations (and always before and after)."""
    save_every: int = 10
    """Write a checkpoint (policy, optimiser, random states) every this many iterations; 0 = never."""
    samples: int = 3
    """Trajectories written as text to samples.txt (first rollout and final held-out evaluation)."""
    tensorboard: bool = True
    """Also log every metric to TensorBoard (run_dir/tb; view with ``tensorboard --logdir runs``)."""
    wandb_project: str = ""
    """Also log to this Weights & Biases project (needs ``pip install wandb``); empty = off."""

    def validate(self) -> None:
        """Stop before any work, naming the field, the value and what is allowed."""
        from sampo_ref.algos import ALGORITHMS
        from toy_envs import LEVELS

        toy = self.env == "toy"
        checks = [
            ("algo", self.algo in ALGORITHMS, f"one of {sorted(ALGORITHMS)}"),
            ("env", self.env in ("toy", "alfworld"), "toy or alfworld"),
            ("family", not toy or self.family in LEVELS, f"one of {sorted(LEVELS)}"),
            ("level", not toy or self.level in LEVELS.get(self.family, {}), f"one of {sorted(LEVELS.get(self.family, {}))}"),
            ("eval_split", self.eval_split in ("valid_seen", "valid_unseen"), "valid_seen or valid_unseen"),
            ("dtype", self.dtype in ("float32", "bfloat16"), "float32 or bfloat16"),
            ("ref_device", self.ref_device in ("same", "cpu", "cuda", "mps") or self.ref_device.startswith("cuda:"),
             "same, cpu, cuda, cuda:N or mps"),
            ("group_size", self.group_size >= 2, "≥ 2 (group advantages need at least two copies)"),
            ("tasks_per_iter", self.tasks_per_iter >= 1, "≥ 1"),
            ("train_games", self.train_games >= self.tasks_per_iter or (not toy and self.train_games == 0),
             f"≥ tasks_per_iter ({self.tasks_per_iter})" + ("" if toy else " or 0 (the whole train split)")),
            ("eval_games", self.eval_games >= 0, "≥ 0"),
            ("iterations", self.iterations >= 0, "≥ 0"),
            ("max_turns", self.max_turns >= 0, "≥ 0 (0 = family default)"),
            ("history", self.history >= 0, "≥ 0"),
            ("max_new_tokens", self.max_new_tokens >= 1, "≥ 1"),
            ("temperature", self.temperature > 0, "> 0"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", self.top_k >= 0, "≥ 0"),
            ("mini_batch_size", self.mini_batch_size >= 1, "≥ 1"),
            ("micro_batch_size", 1 <= self.micro_batch_size <= self.mini_batch_size, f"in [1, mini_batch_size={self.mini_batch_size}]"),
            ("mini_batch_size", self.mini_batch_size <= self.max_rows(),
             f"≤ {self.max_rows()}, the most turn-rows a rollout batch can hold (tasks_per_iter × group_size × turn limit)"),
            ("model", self.model == "tiny" or Path(self.model).expanduser().is_dir()
             or (not self.model.startswith((".", "/", "~")) and HUB_ID.fullmatch(self.model) is not None),
             "'tiny', an existing save_pretrained directory, or a hub id 'owner/name'"),
            ("ppo_epochs", self.ppo_epochs >= 1, "≥ 1"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, "≥ 0"),
            ("max_grad_norm", self.max_grad_norm > 0, "> 0"),
            ("clip_low", 0 <= self.clip_low <= 1, "in [0, 1]"),
            ("clip_high", self.clip_high >= 0, "≥ 0"),
            ("dual_clip", self.dual_clip > 1, "> 1"),
            ("loss_agg", self.loss_agg in AGG_MODES, f"one of {list(AGG_MODES)}"),
            ("kl_coef", self.kl_coef >= 0, "≥ 0"),
            ("entropy_coef", self.entropy_coef >= 0, "≥ 0"),
            ("invalid_penalty", self.invalid_penalty >= 0, "≥ 0"),
            ("invalid_adv_penalty", self.invalid_adv_penalty >= 0, "≥ 0"),
            ("eval_every", self.eval_every >= 0, "≥ 0 (0 = only before and after)"),
            ("seq_mask", not self.seq_mask or ALGORITHMS.get(self.algo) is None or ALGORITHMS[self.algo].seq_mask,
             f"False for algo={self.algo!r} (the sequence mask applies to token clip, soft SAPO and CISPO)"),
            ("seq_mask_delta", self.seq_mask_delta >= 0, "≥ 0"),
            ("gamma", 0 <= self.gamma <= 1, "in [0, 1]"),
            ("step_adv_weight", self.step_adv_weight >= 0, "≥ 0"),
            ("gigpo_mode", self.gigpo_mode in ("mean_norm", "mean_std_norm"), "mean_norm or mean_std_norm"),
            ("empg_zeta", self.empg_zeta >= 0, "≥ 0"),
            ("tau_pos", self.tau_pos > 0, "> 0"),
            ("tau_neg", self.tau_neg > 0, "> 0"),
            ("sapo_t_kl", self.sapo_t_kl > 0, "> 0"),
            ("sapo_w_kl", self.sapo_w_kl >= 0, "≥ 0"),
            ("max_num_gen_batches", self.max_num_gen_batches >= 1, "≥ 1"),
            ("cold_start_steps", self.cold_start_steps >= 0, "≥ 0"),
            ("eval_temperature", self.eval_temperature >= 0, "≥ 0 (0 = greedy)"),
            ("save_every", self.save_every >= 0, "≥ 0 (0 = never)"),
            ("eval_top_p", 0 < self.eval_top_p <= 1, "in (0, 1]"),
            ("eval_top_k", self.eval_top_k >= 0, "≥ 0"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not allowed: expected {allowed}")
        if self.env == "alfworld":
            from sampo_ref.envs.alfworld import data_problem

            problem = data_problem(self.alfworld_dir(), ("train", self.eval_split))
            if problem:
                raise ConfigError(problem)

    def alfworld_dir(self) -> str:
        """The ALFWorld data folder: ``alfworld_data``, else $ALFWORLD_DATA, else alfworld's default."""
        from sampo_ref.envs.alfworld import default_data_dir

        return self.alfworld_data or default_data_dir()

    def max_rows(self) -> int:
        """The most turn-rows one rollout batch can hold: every episode running to the turn limit."""
        if self.env == "alfworld":
            from sampo_ref.envs.alfworld import MAX_TURNS as default_turns
        else:
            from toy_envs import LEVELS

            level = LEVELS.get(self.family, {}).get(self.level)
            default_turns = level.max_turns if level else 0  # an unknown family or level fails its own check first
        return self.tasks_per_iter * self.group_size * (self.max_turns or default_turns)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}")
        return cls(**d)


class ConfigError(ValueError):
    """A bad config value; the message names the field, the value and what is allowed."""
