"""Named presets: one per row of ARLArena's main table (docs/dimensions.md#presets), plus the extras, at toy scale,
and the same rows at the paper's full scale on ALFWorld (``alfworld-<row>``, docs/dimensions.md#presets).

A preset is a set of config overrides on top of the toy defaults of ``TrainConfig``; flags given
on the command line override the preset (``sampo-ref train --preset sampo --seed 2``). Presets
differ only on the four axes (advantage, ratio/clipping, aggregation, dynamic sampling) and their
own parameters; everything else (model, task, batch, optimiser, KL, entropy) is shared, so runs of
different presets are comparable.

Toy-scale values that differ from the paper's, and why (each is a project choice):
* GSPO / SAMPO clip ε = 3e-2 / 4e-2 ([ARL]'s WebShop GSPO value) instead of the ALFWorld 3e-3 / 4e-3:
  a toy answer has ~7 tokens, most of them fixed format tokens, so a turn ratio moves far less than
  on a 500-token ALFWorld answer; at 3e-3 a third of the turns were clipped (issue #2 notes).
* cold start of the filter: 2 iterations of 30 instead of 15 of 200 (about the same share).
"""

from __future__ import annotations

from sampo_ref.config import ConfigError, TrainConfig

TOY_FILTER = dict(filter_groups=True, max_num_gen_batches=3, cold_start_steps=2)
TOY_GSPO_CLIP = dict(clip_low=3e-2, clip_high=4e-2)
SEQ_MASK = dict(seq_mask=True, seq_mask_delta=3e-3)  # δ of [ARL] seq_mask/train_*_seq_mask.sh

# Full scale (docs/dimensions.md#presets, [ARL] examples/embody_agent_trainer/Qwen3-4B/train_*.sh): the paper's clip and filter
ALFWORLD_FILTER = dict(filter_groups=True, max_num_gen_batches=3, cold_start_steps=15)
ALFWORLD_GSPO_CLIP = dict(clip_low=3e-3, clip_high=4e-3)
ALFWORLD = dict(
    env="alfworld", model="UCLA-SCAI/Qwen3-4B-rft-alfworld", iterations=200,
    train_games=0, eval_games=0, eval_split="valid_seen",  # all 3,553 training games; every valid_seen game once
    max_turns=50, history=2, win_reward=10.0, invalid_penalty=0.1,
    tasks_per_iter=16, group_size=8, mini_batch_size=256, ppo_epochs=1,
    lr=1e-6, weight_decay=0.01, max_grad_norm=1.0, kl_coef=0.01, entropy_coef=0.001, gamma=0.95,
    max_new_tokens=512, temperature=1.0, top_p=1.0, top_k=0,  # <think> answers: [ARL] response length 512
    eval_temperature=0.6, eval_top_p=0.95, eval_top_k=20, eval_every=5, save_every=10,
    # memory knobs (not the mathematics): one 80 GB GPU instead of [ARL]'s 4 (docs/alfworld.md)
    dtype="bfloat16", gradient_checkpointing=True, micro_batch_size=8,
)


def table_rows(gspo_clip: dict, dynamic_filter: dict) -> dict[str, dict]:
    """the rows and extras of docs/dimensions.md#presets; the clip of the turn-ratio rows and the filter's schedule depend on the scale."""
    return {
        # ARLArena main table (docs/dimensions.md#presets), in the table's order
        "grpo": dict(algo="grpo"),
        "grpo_st": dict(algo="grpo", loss_agg="seq-mean-token-mean"),
        "soft_sapo": dict(algo="soft_sapo", tau_pos=1.0, tau_neg=1.05),
        "cispo": dict(algo="cispo", clip_low=1.0, clip_high=0.2),
        "gspo": dict(algo="gspo", **gspo_clip),
        "gigpo": dict(algo="gigpo", gigpo_mode="mean_std_norm", step_adv_weight=1.0),
        "empg": dict(algo="empg"),
        "dapo_grpo": dict(algo="grpo", **dynamic_filter),
        "dapo_gigpo": dict(algo="gigpo", **dynamic_filter),
        "sampo": dict(algo="sampo", loss_agg="seq-mean-token-mean", **gspo_clip, **dynamic_filter),
        # extras (docs/dimensions.md#presets, second table)
        "grpo_sm": dict(algo="grpo", **SEQ_MASK),
        "soft_sapo_sm": dict(algo="soft_sapo", **SEQ_MASK),
        "cispo_sm": dict(algo="cispo", clip_low=1.0, clip_high=0.2, **SEQ_MASK),
        "sapo": dict(algo="sapo", clip_low=0.2, clip_high=0.2),
    }


PRESETS: dict[str, dict] = {
    **table_rows(TOY_GSPO_CLIP, TOY_FILTER),  # toy scale: the defaults of TrainConfig
    **{f"alfworld-{name}": {**ALFWORLD, **row} for name, row in table_rows(ALFWORLD_GSPO_CLIP, ALFWORLD_FILTER).items()},
}

ADVANTAGE = {"grpo": "GRPO (S2)", "gspo": "GRPO (S2)", "soft_sapo": "GRPO (S2)", "cispo": "GRPO (S2)",
             "sapo": "GRPO (S2)", "gigpo": "GiGPO (S7)", "sampo": "GiGPO (S7)", "empg": "GRPO → EMPG (S8–S9)"}


def preset_config(name: str, **overrides) -> TrainConfig:
    """The toy config of preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ConfigError(f"preset={name!r} is not allowed: expected one of {sorted(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})


def surrogate(cfg: TrainConfig) -> str:
    """The ratio / clipping axis of a config, in words."""
    text = {
        "grpo": f"token clip ε {cfg.clip_low:g}/{cfg.clip_high:g}, dual c {cfg.dual_clip:g}",
        "gigpo": f"token clip ε {cfg.clip_low:g}/{cfg.clip_high:g}, dual c {cfg.dual_clip:g}",
        "empg": f"token clip ε {cfg.clip_low:g}/{cfg.clip_high:g}, dual c {cfg.dual_clip:g}",
        "gspo": f"turn ratio (GSPO) ε {cfg.clip_low:g}/{cfg.clip_high:g}",
        "sampo": f"turn ratio (GSPO) ε {cfg.clip_low:g}/{cfg.clip_high:g}",
        "soft_sapo": f"soft gate τ {cfg.tau_pos:g}/{cfg.tau_neg:g}",
        "cispo": f"CISPO weight clip ε {cfg.clip_low:g}/{cfg.clip_high:g}",
        "sapo": f"token clip ε {cfg.clip_low:g} + cond. KL t {cfg.sapo_t_kl:g}, w {cfg.sapo_w_kl:g}",
    }[cfg.algo]
    return text + (f" + seq mask δ {cfg.seq_mask_delta:g}" if cfg.seq_mask else "")


def axes(cfg: TrainConfig) -> dict[str, str]:
    """A config's choice on the four ARLArena axes."""
    from sampo_ref.algos import ALGORITHMS

    algo = ALGORITHMS[cfg.algo]
    pg_agg = algo.pg_agg or cfg.loss_agg
    aggregation = pg_agg if pg_agg == cfg.loss_agg else f"PG {pg_agg}; KL/entropy {cfg.loss_agg}"
    filtered = algo.filter is not None or cfg.filter_groups
    sampling = f"filter: {cfg.max_num_gen_batches} batches, cold start {cfg.cold_start_steps}" if filtered else "none"
    return {"advantage": ADVANTAGE[cfg.algo], "ratio / clipping": surrogate(cfg), "aggregation": aggregation,
            "dynamic sampling": sampling}


def table() -> str:
    """The presets and their four axes as a markdown table (``sampo-ref list``)."""
    lines = ["| preset | algo file | advantage | ratio / clipping | aggregation | dynamic sampling |",
             "|---|---|---|---|---|---|"]
    for name in PRESETS:
        cfg = preset_config(name)
        lines.append(f"| {name} | algos/{cfg.algo}.py | " + " | ".join(axes(cfg).values()) + " |")
    return "\n".join(lines)
