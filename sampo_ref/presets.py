"""How a config is made: one chain, and the named presets.

    base defaults      sampo_ref/config.py (TrainConfig's field defaults)
    → the method's     sampo_ref/algos/<algo>.py  DEFAULTS
    → the preset's     ROWS below: what a row of ARLArena's table changes on top of its method
    → the scale's      SCALES below: toy (the defaults of this machine's experiments) or ALFWorld
    → flags            the command line (``sampo-ref train --preset sampo --seed 2``)

``resolve`` is that chain. ``sampo-ref train --algo X`` and ``--preset X`` give the same config
for every algorithm X (a test holds them equal), and ``--preset alfworld-<row>`` is a row at the
paper's full scale on ALFWorld (docs/dimensions.md#presets).

Presets differ only on the four axes (advantage, ratio/clipping, aggregation, dynamic sampling)
and their own parameters; everything else (model, task, batch, optimiser, KL, entropy) is shared
within a scale, so runs of different presets are comparable.

Toy-scale values that differ from the paper's, and why (each is a project choice):
* GSPO / SAMPO clip ε = 3e-2 / 4e-2 ([ARL]'s WebShop GSPO value) instead of the ALFWorld 3e-3 / 4e-3:
  a toy answer has ~7 tokens, most of them fixed format tokens, so a turn ratio moves far less than
  on a 500-token ALFWorld answer; at 3e-3 a third of the turns were clipped.
* cold start of the filter: 2 iterations of 30 instead of 15 of 200 (about the same share).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sampo_ref.algos import ALGORITHMS, dynamic_sampling, seq_mask
from sampo_ref.config import ConfigError, TrainConfig

DEFAULT_PRESET = "sampo"  # what `sampo-ref train` runs: docs/results.md (SAMPO vs GRPO, 3 seeds each)

# ----------------------------------------------------------------------------- the preset's layer
# A row of ARLArena's main table (docs/dimensions.md#presets) = a method + what the row changes.
ROWS: dict[str, tuple[str, dict]] = {
    # the main table, in its order
    "grpo": ("grpo", {}),
    "grpo_st": ("grpo", dict(loss_agg="seq-mean-token-mean")),  # [ARL] train_grpo_seq_mean.sh
    "soft_sapo": ("soft_sapo", {}),
    "cispo": ("cispo", {}),
    "gspo": ("gspo", {}),
    "gigpo": ("gigpo", {}),
    "empg": ("empg", {}),
    "dapo_grpo": ("grpo", dynamic_sampling.ARL),  # [ARL] train_dapo.sh: plain GRPO + the filter
    "dapo_gigpo": ("gigpo", dynamic_sampling.ARL),  # no released script: GiGPO + the same filter (inferred)
    "sampo": ("sampo", {}),
    # extras: the sequence-masked rows (ARLArena's Finding 3) and Search-Agent SAPO
    "grpo_sm": ("grpo", seq_mask.ON),  # δ borrowed from the [ARL] soft SAPO / CISPO seq-mask scripts
    "soft_sapo_sm": ("soft_sapo", seq_mask.ON),  # [ARL] seq_mask/train_sapo_seq_mask.sh
    "cispo_sm": ("cispo", seq_mask.ON),  # [ARL] seq_mask/train_cispo_seq_mask.sh
    "sapo": ("sapo", {}),
}


# ----------------------------------------------------------------------------- the scale's layer
@dataclass(frozen=True)
class Scale:
    """What one scale sets on top of the method and the row."""

    common: dict  # every config at this scale
    methods: dict = field(default_factory=dict)  # per algorithm: values that differ at this scale
    filtered: dict = field(default_factory=dict)  # configs that run the DAPO filter

    def values(self, cfg: dict) -> dict:
        filtered = cfg["filter_groups"] or ALGORITHMS[cfg["algo"]].filter is not None
        return {**self.common, **self.methods.get(cfg["algo"], {}), **(self.filtered if filtered else {})}


TOY_TURN_CLIP = dict(clip_low=3e-2, clip_high=4e-2)  # GSPO's turn ratio on ~7-token answers (docstring)
SCALES: dict[str, Scale] = {
    # TrainConfig's base defaults are the toy experiment; the toy layer only adapts the methods to it
    "toy": Scale(common={}, methods={"gspo": TOY_TURN_CLIP, "sampo": TOY_TURN_CLIP},
                 filtered=dict(cold_start_steps=2)),
    # the paper's ALFWorld setting ([ARL] examples/embody_agent_trainer/Qwen3-4B/train_*.sh); the
    # methods' defaults are already its clip and filter values
    "alfworld": Scale(common=dict(
        env="alfworld", model="UCLA-SCAI/Qwen3-4B-rft-alfworld", iterations=200,
        train_games=0, eval_games=0, eval_split="valid_seen",  # all 3,553 training games; every valid_seen game once
        max_turns=50, history=2, win_reward=10.0, invalid_penalty=0.1, invalid_adv_penalty=0.0,
        tasks_per_iter=16, group_size=8, mini_batch_size=256, ppo_epochs=1,
        lr=1e-6, weight_decay=0.01, max_grad_norm=1.0, kl_coef=0.01, entropy_coef=0.001,
        max_new_tokens=512, temperature=1.0, top_p=1.0, top_k=0,  # <think> answers: [ARL] response length 512
        eval_temperature=0.6, eval_top_p=0.95, eval_top_k=20, eval_every=5, save_every=10,
        # memory knobs (not the mathematics): one 80 GB GPU instead of [ARL]'s 4 (docs/alfworld.md)
        dtype="bfloat16", gradient_checkpointing=True, micro_batch_size=8,
    )),
}

# every row at every scale: the toy rows by name, the full-scale ones as alfworld-<row>
PRESETS: dict[str, tuple[str, str]] = {  # preset -> (row, scale)
    **{name: (name, "toy") for name in ROWS},
    **{f"alfworld-{name}": (name, "alfworld") for name in ROWS},
}


# --8<-- [start:resolve]
def resolve(algo: str | None = None, preset: str | None = None, env: str | None = None, **flags) -> TrainConfig:
    """The one chain: base defaults → the method's → the preset's → the scale's → ``flags``.

    Give a ``preset``, or an ``algo`` (the preset of the same name), or neither (``DEFAULT_PRESET``);
    ``env`` picks the scale (toy, alfworld) when no preset names it.
    """
    if algo is not None and algo not in ALGORITHMS:
        raise ConfigError(f"algo={algo!r} is not allowed: expected one of {sorted(ALGORITHMS)}")
    if preset is None:
        row = algo or DEFAULT_PRESET
        preset = row if env in (None, "toy") else f"{env}-{row}"
    if preset not in PRESETS:
        raise ConfigError(f"preset={preset!r} is not allowed: expected one of {list(PRESETS)}")
    row, scale = PRESETS[preset]
    method, variant = ROWS[row]
    for name, given, implied in (("algo", algo, method), ("env", env, scale)):
        if given not in (None, implied):
            raise ConfigError(f"{name}={given!r} contradicts preset={preset!r}, whose {name} is {implied!r}: give one")
    values = asdict(TrainConfig())  # 1. base defaults (config.py)
    values |= ALGORITHMS[method].defaults | {"algo": method}  # 2. the method's (algos/<method>.py)
    values |= variant  # 3. the preset's (ROWS)
    values |= SCALES[scale].values(values)  # 4. the scale's (SCALES)
    return TrainConfig(**values | {"preset": preset} | flags)  # 5. flags
# --8<-- [end:resolve]


def preset_config(name: str, **overrides) -> TrainConfig:
    """The config of preset ``name`` with ``overrides`` applied (flags)."""
    return resolve(preset=name, **overrides)


def axes(cfg: TrainConfig) -> dict[str, str]:
    """A config's choice on the four ARLArena axes, in words, from its method's file."""
    algo = ALGORITHMS[cfg.algo]
    pg_agg = algo.pg_agg or cfg.loss_agg
    aggregation = pg_agg if pg_agg == cfg.loss_agg else f"PG {pg_agg}; KL/entropy {cfg.loss_agg}"
    filtered = algo.filter is not None or cfg.filter_groups
    sampling = f"filter: {cfg.max_num_gen_batches} batches, cold start {cfg.cold_start_steps}" if filtered else "none"
    surrogate = algo.surrogate.format(**asdict(cfg)) + (f" + seq mask δ {cfg.seq_mask_delta:g}" if cfg.seq_mask else "")
    return {"advantage": algo.advantage, "ratio / clipping": surrogate, "aggregation": aggregation,
            "dynamic sampling": sampling}


def table() -> str:
    """The presets and their four axes as a markdown table (``sampo-ref list``, docs/dimensions.md)."""
    lines = ["| preset | algo file | advantage | ratio / clipping | aggregation | dynamic sampling |",
             "|---|---|---|---|---|---|"]
    for name in PRESETS:
        cfg = preset_config(name)
        lines.append(f"| {name} | algos/{cfg.algo}.py | " + " | ".join(axes(cfg).values()) + " |")
    return "\n".join(lines)
