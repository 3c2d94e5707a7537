"""One flat training config. Each field's docstring is its ``--help`` line; symbols and equation
tags refer to the docs (docs/notation.md). Fields marked *memory* change memory use, never the mathematics.

The field defaults are the BASE layer of the one resolution chain (``sampo_ref.presets.resolve``):
base defaults → the method's (``algos/<algo>.py`` ``DEFAULTS``) → the preset's → the scale's (toy
or ALFWorld) → flags. A method's own knobs take their base value from the method's file, the
knobs several methods share (ε, c) GRPO's; ``TrainConfig(algo="gspo")`` alone is therefore not
GSPO's configuration: ``presets.resolve(algo="gspo")`` is.
"""

from __future__ import annotations

import json
import math
import os
import re
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from sampo_ref.algos import empg, gigpo, grpo, sapo, soft_sapo
from sampo_ref.algos import seq_mask as sequence_masking  # not "seq_mask": a field below has that name
from sampo_ref.algos.common import AGG_MODES
from sampo_ref.checks import HUB_ID, ConfigError, check_fields, model_problem  # noqa: F401 (re-exported)


CONFIG_VERSION = 2  # of a run's config.json (``config_version``); a reader refuses any other (2: the field tiny)


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
    """auto (CUDA if present, else CPU), cpu, cuda, cuda:N or mps."""
    progress: bool = True
    """Show progress bars."""

    # --- environment ---
    env: str = "toy"
    """Environment and scale: toy (TextWorld games of toy_envs) or alfworld (the real ALFWorld at the paper's scale, docs/alfworld.md)."""
    family: str = "coin"
    """Toy task family (toy_envs.FAMILIES)."""
    level: int = 4
    """Toy difficulty level (toy_envs.LEVELS). Default 4, a chain of 8 rooms: a uniformly random policy wins 1.6 % (docs/toy_baselines.md)."""
    alfworld_data: str = ""
    """ALFWorld game data (json_2.1.1/, logic/); empty = $ALFWORLD_DATA, else ~/.cache/alfworld."""
    eval_split: str = "valid_seen"
    """ALFWorld split of the held-out games: valid_seen (ARLArena's validation, docs/alfworld.md#2-the-testbed) or valid_unseen."""
    train_games: int = 64
    """Games in the training pool (toy: seeds 0 .. train_games-1; ALFWorld: the first of the train split, 0 = all)."""
    eval_games: int = 128
    """Held-out games (toy: unseen seeds, same family and level; ALFWorld: the first of eval_split, 0 = all); one episode each."""
    max_turns: int = 0
    """Turn limit per episode; 0 = the family/level default."""
    history: int = 2
    """H: earlier (observation, action) pairs shown in the prompt (docs/alfworld.md#2-the-testbed)."""
    win_reward: float = 1.0
    """r^env on the winning turn (ALFWorld uses 10)."""
    invalid_penalty: float = 0.0
    """c_inv in (S1), subtracted from an invalid turn's row score. ARLArena and every alfworld-* preset: 0.1 (at toy scale with --invalid-adv-penalty 0). Toy default 0: with GRPO's σ-normalisation any c_inv > 0 gives every valid turn of an all-fail group A > 0, and the tiny policy collapses into valid loops (docs/results.md)."""
    invalid_adv_penalty: float = 0.1
    """c_adv: an invalid turn's advantage becomes min(A_j, 0) - c_adv after the group normalisation: no credit from a win it did not help, and a cost the σ of an all-fail group cannot blow up (project choice, the toy default; docs/results.md#invalid-actions)."""
    env_workers: int = 0
    """Step the environments in this many persistent worker processes (toy_envs.batch.ProcessBatchEnv); 0 = in this process. Same results, only the wall time changes (an ALFWorld env steps ~10–15 times a second)."""
    norm_adv_by_std: bool = True
    """GRPO (S2) divides by the group's σ; False = Dr. GRPO's mean-centred advantage (docs/algorithms/grpo.md#key-equations)."""

    # --- policy and sampling ---
    model: str = "tiny"
    """'tiny' (built offline and cached), a local save_pretrained directory, or a hub id."""
    tiny: list[str] = field(default_factory=list)
    """With model=tiny: changes to the tiny policy's recipe (sampo_ref.tiny.TinyConfig) as KEY=VALUE, e.g. random_share=0.85 (the arena's weaker warm start) or warm_start=random seed=1; each recipe is built once and cached."""
    max_new_tokens: int = 16
    """Response token limit per turn."""
    temperature: float = 1.0
    """Rollout sampling temperature; old log-probs are recomputed at it."""
    top_p: float = 1.0
    """Rollout nucleus sampling."""
    top_k: int = 0
    """Rollout top-k (0 = off)."""
    engine: str = "hf"
    """Rollout generation: hf (model.generate) or vllm (vLLM in this process: pip install 'sampo-ref[vllm]'; docs/scaling.md). Old log-probs are recomputed by torch either way."""

    # --- memory (never the mathematics) ---
    dtype: str = "float32"
    """*memory* float32, or bfloat16: forward passes under bf16 autocast (weights and optimiser state stay float32), reference model stored in bf16."""
    gradient_checkpointing: bool = False
    """*memory* Recompute activations in the backward pass (Hugging Face gradient checkpointing)."""
    ref_device: str = "same"
    """*memory* Where the reference model lives: same (the policy's device), cpu, or a device such as cuda:1."""
    fsdp: bool = False
    """*memory* Under torchrun: shard parameters, gradients and optimiser state over the ranks (FSDP2 fully_shard per decoder layer) instead of a full copy per rank (DDP). Needs engine=vllm (generate would run the sharded model unevenly on the ranks)."""
    engine_memory: float = 0.4
    """*memory* With engine=vllm on CUDA: the share of the GPU's memory vLLM takes for its weights and KV cache (freed during each update)."""

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
    """Write a checkpoint (policy, optimiser, random states) every this many iterations and at the last one (so a finished run can be continued with a larger --iterations); 0 = never."""
    samples: int = 3
    """Trajectories written as text to samples.txt (first rollout and final held-out evaluation)."""
    tensorboard: bool = True
    """Also log every metric to TensorBoard (run_dir/tb; view with ``tensorboard --logdir runs``)."""
    wandb_project: str = ""
    """Also log to this Weights & Biases project (needs ``pip install wandb``); empty = off."""

    def validate(self) -> None:
        """Stop before any work, naming the field, the value and what is allowed."""
        from sampo_ref.algos import ALGORITHMS
        from sampo_ref.envs.toy import LEVELS

        toy = self.env == "toy"
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # every number is finite (NaN would pass no range check, but say so)
            value = getattr(self, f.name)
            if hints[f.name] is float and isinstance(value, (int, float)) and not math.isfinite(value):
                raise ConfigError(f"{f.name}={value!r} is not allowed: expected a finite number")
        checks = [
            ("algo", self.algo in ALGORITHMS, f"one of {sorted(ALGORITHMS)}"),
            ("env", self.env in ("toy", "alfworld"), "toy or alfworld"),
            ("family", not toy or self.family in LEVELS, f"one of {sorted(LEVELS)}"),
            ("level", not toy or self.level in LEVELS.get(self.family, {}), f"one of {sorted(LEVELS.get(self.family, {}))}"),
            ("eval_split", self.eval_split in ("valid_seen", "valid_unseen"), "valid_seen or valid_unseen"),
            ("dtype", self.dtype in ("float32", "bfloat16"), "float32 or bfloat16"),
            ("device", device_exists(self.device), f"a device of this machine: {devices_here()}"),
            ("ref_device", self.ref_device == "same" or self.ref_device != "auto" and device_exists(self.ref_device),
             f"same or a device of this machine: {devices_here().replace('auto, ', '')}"),
            ("run_dir", self.run_dir is None or writable_dir(self.run_dir), "a directory that can be created and written"),
            ("win_reward", self.win_reward > 0, "> 0 (the reward of a won episode)"),
            ("group_size", self.group_size >= 2, "≥ 2 (group advantages need at least two copies)"),
            ("tasks_per_iter", self.tasks_per_iter >= 1, "≥ 1"),
            ("train_games", self.train_games >= self.tasks_per_iter or (not toy and self.train_games == 0),
             f"≥ tasks_per_iter ({self.tasks_per_iter})" + ("" if toy else " or 0 (the whole train split)")),
            ("eval_games", self.eval_games >= 1 or (not toy and self.eval_games == 0),
             "≥ 1" + ("" if toy else " or 0 (the whole split)")),
            ("iterations", self.iterations >= 0, "≥ 0"),
            ("max_turns", self.max_turns >= 0, "≥ 0 (0 = family default)"),
            ("history", self.history >= 0, "≥ 0"),
            ("env_workers", self.env_workers >= 0, "≥ 0 (0 = in this process)"),
            ("max_new_tokens", self.max_new_tokens >= 1, "≥ 1"),
            ("temperature", self.temperature > 0, "> 0"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", self.top_k >= 0, "≥ 0"),
            ("engine", self.engine in ("hf", "vllm"), "hf or vllm"),
            ("engine_memory", 0 < self.engine_memory < 1, "in (0, 1)"),
            ("fsdp", not self.fsdp or self.engine == "vllm", "False unless engine='vllm' (docs/scaling.md)"),
            ("mini_batch_size", self.mini_batch_size >= 1, "≥ 1"),
            ("micro_batch_size", 1 <= self.micro_batch_size <= self.mini_batch_size, f"in [1, mini_batch_size={self.mini_batch_size}]"),
            ("mini_batch_size", self.mini_batch_size <= self.max_rows(),
             f"≤ {self.max_rows()}, the most turn-rows a rollout batch can hold (tasks_per_iter × group_size × turn limit)"),
            ("model", model_problem(self.model) is None, model_problem(self.model)),
            ("ppo_epochs", self.ppo_epochs >= 1, "≥ 1"),
            ("lr", 0 < self.lr < 1, "in (0, 1)"),
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
            ("empg_k", self.empg_k >= 0, "≥ 0"),
            ("empg_k_f", self.empg_k_f >= 0, "≥ 0"),
            ("empg_zeta", self.empg_zeta >= 0, "≥ 0"),
            ("tau_pos", self.tau_pos > 0, "> 0"),
            ("tau_neg", self.tau_neg > 0, "> 0"),
            ("sapo_t_kl", self.sapo_t_kl > 0, "> 0"),
            ("sapo_w_kl", self.sapo_w_kl >= 0, "≥ 0"),
            ("max_num_gen_batches", self.max_num_gen_batches >= 1, "≥ 1"),
            ("cold_start_steps", self.cold_start_steps >= 0, "≥ 0"),
            ("eval_temperature", self.eval_temperature >= 0, "≥ 0 (0 = greedy)"),
            ("save_every", self.save_every >= 0, "≥ 0 (0 = never)"),
            ("samples", self.samples >= 0, "≥ 0"),
            ("eval_top_p", 0 < self.eval_top_p <= 1, "in (0, 1]"),
            ("eval_top_k", self.eval_top_k >= 0, "≥ 0"),
        ]
        check_fields(self, checks)
        if self.tiny_config().warm_start != "random" and not toy:  # a bad KEY=VALUE is named by tiny_config
            raise ConfigError(f"tiny={self.tiny!r} is not allowed with env={self.env!r}: expected warm_start=random "
                              "(the teacher is an explorer of toy rooms)")
        if self.engine == "vllm":
            from sampo_ref import engine

            if not engine.available():
                raise ConfigError(engine.INSTALL_HINT)
        if self.env == "alfworld":
            from sampo_ref.envs.alfworld import data_problem

            problem = data_problem(self.alfworld_dir(), ("train", self.eval_split))
            if problem:
                raise ConfigError(problem)

    def tiny_config(self):
        """The tiny policy's recipe: ``TinyConfig``'s defaults (on ALFWorld random play: the teacher
        explores toy rooms and has no ALFWorld counterpart), changed by ``tiny``."""
        from sampo_ref.tiny import tiny_config

        return tiny_config(self.tiny, **({} if self.env == "toy" else {"warm_start": "random"}))

    def alfworld_dir(self) -> str:
        """The ALFWorld data folder: ``alfworld_data``, else $ALFWORLD_DATA, else alfworld's default."""
        from sampo_ref.envs.alfworld import default_data_dir

        return self.alfworld_data or default_data_dir()

    def max_rows(self) -> int:
        """The most turn-rows one rollout batch can hold: every episode running to the turn limit."""
        if self.env == "alfworld":
            from sampo_ref.envs.alfworld import MAX_TURNS as default_turns
        else:
            from sampo_ref.envs.toy import LEVELS

            level = LEVELS.get(self.family, {}).get(self.level)
            default_turns = level.max_turns if level else 0  # an unknown family or level fails its own check first
        return self.tasks_per_iter * self.group_size * (self.max_turns or default_turns)

    def to_dict(self) -> dict:
        """What a run's config.json holds: the format version and every field."""
        return {"config_version": CONFIG_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Exactly what ``to_dict`` wrote: this format version, every field, each of its own type (no
        default fills a gap, no string stands for a number or a bool)."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config is a JSON object of fields; got a {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known - {"config_version"})
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}")
        if d.get("config_version") != CONFIG_VERSION:
            raise ConfigError(f"config_version={d.get('config_version')!r} is not allowed: expected {CONFIG_VERSION} "
                              "(the config was written by another version of sampo_ref)")
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name not in d:
                raise ConfigError(f"field {f.name!r} is missing: a run's config names every field")
            if not _fits(d[f.name], hints[f.name]):
                raise ConfigError(f"{f.name}={d[f.name]!r} is not allowed: expected {_type_name(hints[f.name])}")
        return cls(**{f.name: float(d[f.name]) if hints[f.name] is float else d[f.name] for f in fields(cls)})

    @classmethod
    def read(cls, run_dir: Path) -> "TrainConfig":
        """The config of the run in ``run_dir``, read exactly; one line names what is wrong with it."""
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise ConfigError(f"{run_dir}: no config.json there; expected a run directory")
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ConfigError(f"{path}: not readable JSON ({err}); restore it, or start a new run") from None
        try:
            return cls.from_dict(d)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}; restore it, or start a new run") from None


def _fits(value, hint) -> bool:
    """Is the JSON ``value`` of the field type ``hint`` (bool, int, float, str, list[...], X | None)?"""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(_fits(v, typing.get_args(hint)[0]) for v in value)
    return any(_fits(value, h) for h in typing.get_args(hint))  # a union


def _type_name(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is list:
        return f"a list of {_type_name(typing.get_args(hint)[0]).removeprefix('a ').removeprefix('an ')}s"
    return " or ".join(_type_name(h) for h in typing.get_args(hint))


def devices_here() -> str:
    """The device names this machine has, in words."""
    import torch

    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = ["auto", "cpu"] + (["cuda", f"cuda:0..cuda:{cuda - 1}"] if cuda else []) + (
        ["mps"] if torch.backends.mps.is_available() else [])
    return ", ".join(names)


def device_exists(name: str) -> bool:
    """auto, cpu, or a CUDA / MPS device that this machine has."""
    import torch

    if name in ("auto", "cpu"):
        return True
    cuda = re.fullmatch(r"cuda(?::(\d+))?", name)
    if cuda:
        return torch.cuda.is_available() and int(cuda.group(1) or 0) < torch.cuda.device_count()
    return name == "mps" and torch.backends.mps.is_available()


def writable_dir(path: str) -> bool:
    """Can ``path`` be a run directory: an existing writable folder, or creatable in one?"""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p.is_dir() and os.access(p, os.W_OK | os.X_OK)
