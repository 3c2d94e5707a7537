# %% [markdown]
# # Tutorial 3 — The multi-turn rollout: from a text game to a batch of turn-rows
#
# Every algorithm in `sampo_ref` trains on the same data: the rows of a multi-turn rollout. This
# tutorial plays a few toy TextWorld games with the tiny default policy and follows the data
# through the project's own functions:
#
# 1. the task and the policy (`ToyTask`, `setup.make_policy`: the cached games and tiny policy);
# 2. the prompt the policy reads, through its chat template;
# 3. `rollout.collect`: $N$ tasks × $G$ copies in lock-step, one batched `generate` per turn;
# 4. `TurnBatch`: one row per turn, left-padded prompts, right-padded responses, and the masks;
# 5. old log-probs recomputed by the trainer (`fill_old_logprobs`) against the ones recorded while
#    sampling: they agree on the response tokens, and the padding is garbage that the mask removes.
#
# About 10 s on a CPU once the games and the tiny policy are cached (`~/.cache/sampo_ref`, or
# `$SAMPO_REF_CACHE`); on an empty cache the first run generates the 64 games of the warm start
# and builds the policy (a few minutes). Figure: `$SAMPO_REF_TUTORIAL_OUT/03_rollout/masks.png`.

# %%
import os
import random
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.patches import Patch
import torch

from sampo_ref.algos.common import masked_mean
from sampo_ref.config import TrainConfig
from sampo_ref.rollout import RolloutConfig, TurnBatch, collect
from sampo_ref.setup import make_policy, make_task
from sampo_ref.trainer import fill_old_logprobs

OUT = Path(os.environ.get("SAMPO_REF_TUTORIAL_OUT", "runs/tutorials")) / "03_rollout"
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
rng = random.Random(0)

# %% [markdown]
# ## 1. The task and the policy
#
# The default toy task: the **coin** family, level 4 (a chain of eight rooms; find the coin and
# take it). `make_task` generates the games offline (TextWorld) or reuses the cache. The tiny policy
# is a 2-layer Llama-architecture transformer with its own byte-level BPE, warm-started to answer
# `<action>…</action>` by imitating the won episodes of a generic explorer (it never walks
# straight back, and half its moves are random), mixed half and half with random play: it knows
# the format and some of the way.
# `make_policy` builds it from the task's first 64 training games (generated if this config's
# pool of 16 is smaller), the same policy `sampo-ref train` uses, and caches it.

# %%
cfg = TrainConfig(train_games=16, eval_games=0)  # toy defaults: coin level 4, 16 new tokens per turn, temperature 1
task = make_task(cfg)
policy = make_policy(cfg, task, torch.device("cpu"))
n_params = sum(p.numel() for p in policy.model.parameters())
print(f"task: {cfg.family} level {cfg.level}, {len(task.train_pool)} games, turn limit {task.max_turns}")
print(f"policy: {n_params / 1e6:.2f}M parameters, vocabulary {len(policy.tokenizer)}")

# %% [markdown]
# ## 2. The prompt
#
# Each turn the prompt is rebuilt from scratch: the goal, the last $H=2$ actions and the
# admissible actions in a fresh random order (docs/alfworld.md#2-the-testbed). It goes
# through the tokenizer's chat template as one user message. Here is a first-turn prompt:

# %%
collect_cfg = RolloutConfig(max_turns=task.max_turns, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
games = task.train_pool[:2]  # N = 2 tasks
G = 4  # copies of each: one group per task
trajs = collect(policy, task.envs(games, G), [str(g) for g in games], G, task.prompt, collect_cfg, rng)
first = trajs[0].turns[0]
print(first.prompt)
print(f"\n-> {len(first.prompt_ids)} prompt tokens after the chat template; the policy answered {first.response!r}")

# %% [markdown]
# ## 3. What `collect` returned
#
# `collect` played $N\cdot G=8$ environments in lock-step: each turn it built one prompt per
# still-active environment, ran **one** batched `generate` over all of them, parsed each answer
# with the strict rule (malformed output or an action that is not admissible makes the turn
# invalid, never an exception) and stepped every environment. Copies of one game share a
# `group_id`; each copy has its own `traj_id` (random 62-bit ids, fresh at every reset; the
# last four hex digits are shown).

# %%
for tau in trajs:
    print(f"group_id …{tau.group_id & 0xFFFF:04x}  traj_id …{tau.traj_id & 0xFFFF:04x}  {Path(tau.task).name:10s} "
          f"won={tau.won!s:5}  turns={len(tau.turns):2d}  return R={tau.episode_return:g}")
success = sum(t.won for t in trajs) / len(trajs)
print(f"\nsuccess {success:.0%}; random admissible play wins 1.6% of coin level 4 within 20 turns (docs/toy_baselines.md)")

tau = max(trajs, key=lambda t: (t.won, -len(t.turns)))  # a short won episode, if there is one
print(f"\none trajectory, turn by turn (won={tau.won}):")
for t in tau.turns:
    room = t.anchor.split("\n", 1)[0]
    print(f"  k={t.turn_index:2d}  room {room:13s} {t.response!r:40s} -> action {t.action!r:14s} valid={t.valid!s:5}  r={t.env_reward:g}")

# %% [markdown]
# The *anchor* of a turn is the raw observation of the state it acts in (room + text). It is
# GiGPO's state key (tutorial 5); an invalid action leaves the state, and so the anchor, unchanged.
#
# ## 4. The TurnBatch: one row per turn
#
# `TurnBatch.from_trajectories` stacks every turn of every trajectory into padded tensors:
# prompts are **left**-padded (so all prompts end at the same column, where generation starts)
# and responses **right**-padded. The masks say which positions are real tokens.

# %%
batch = TurnBatch.from_trajectories(trajs, policy.pad_id)
B, P = batch.prompt_ids.shape
T = batch.response_ids.shape[1]
print(f"B = {B} rows (turns) from {len(trajs)} trajectories; P = {P} prompt columns, T = {T} response columns")
for name in ("prompt_ids", "prompt_mask", "response_ids", "response_mask", "group_index", "traj_index",
             "turn_index", "env_reward", "valid", "episode_return"):
    value = getattr(batch, name)
    print(f"  {name:15s} {tuple(value.shape)!s:10s} {value.dtype}")
assert B == sum(len(t.turns) for t in trajs)
assert torch.equal(batch.response_mask.sum(1).long(), torch.tensor([len(t.response_ids) for tau in trajs for t in tau.turns]))

rows = (batch.traj_index == batch.traj_index[0]).nonzero().squeeze(1)[:4]
print("\nfirst rows of trajectory 0:")
print("  group_index   ", batch.group_index[rows].tolist())
print("  turn_index    ", batch.turn_index[rows].tolist())
print("  env_reward    ", batch.env_reward[rows].tolist())
print("  episode_return", batch.episode_return[rows].tolist(), " (R of the trajectory, on every one of its rows)")
print("  valid         ", batch.valid[rows].tolist())
j = int(rows[0])
print(f"\nrow {j}: prompt mask starts {batch.prompt_mask[j, :6].tolist()} … ends {batch.prompt_mask[j, -4:].tolist()}")
print(f"row {j}: response mask {batch.response_mask[j].int().tolist()}")
print(f"row {j}: response tokens {[policy.tokenizer.decode([i]) for i in batch.response_ids[j][batch.response_mask[j].bool()].tolist()]}")

# %% [markdown]
# ## 5. Old log-probs, and why the mask matters
#
# Before the update the trainer recomputes $\log\pi_\text{old}$ of every response token in one
# forward pass over prompt + response (`fill_old_logprobs`, phase 2 of the training loop). They
# must equal the log-probs recorded while sampling (`Turn.sample_logp`) on the real tokens. At
# padded positions the recomputed numbers are meaningless: every loss multiplies by the mask.

# %%
fill_old_logprobs(policy, None, batch, cfg)  # no reference model here: fills logp_old and entropy_old
mask = batch.response_mask.bool()
sampled = torch.tensor([lp for tau in trajs for t in tau.turns for lp in t.sample_logp])
mismatch = (batch.logp_old[mask] - sampled).abs()
print(f"|log pi_old - log pi_sample| on the {int(mask.sum())} response tokens: mean {mismatch.mean():.2e}, max {mismatch.max():.2e}")
print(f"mean log pi_old over response tokens   {masked_mean(batch.logp_old, batch.response_mask):.4f}")
print(f"mean log pi_old over padded positions  {batch.logp_old[~mask].mean():.4f}   (meaningless, masked out)")
print(f"mean entropy of pi_old per token       {masked_mean(batch.entropy_old, batch.response_mask):.4f} nats")
assert mismatch.max() < 1e-3, "recomputed and sampled log-probs disagree"

fig, axes = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [P, 3 * T]})
shown = slice(0, min(B, 40))
axes[0].imshow(batch.prompt_mask[shown], aspect="auto", cmap="Greys", interpolation="nearest")
axes[0].set(title="prompt_mask (left-padded)", xlabel="prompt column", ylabel="row (one turn)")
axes[1].imshow(batch.response_mask[shown], aspect="auto", cmap="Blues", interpolation="nearest")
axes[1].set(title="response_mask (right-padded)", xlabel="response column")
legend = [Patch(facecolor="black", edgecolor="0.5", label="prompt token (mask 1)"),
          Patch(facecolor=plt.get_cmap("Blues")(1.0), edgecolor="0.5", label="response token (mask 1)"),
          Patch(facecolor="white", edgecolor="0.5", label="padding (mask 0)")]
fig.legend(handles=legend, loc="lower center", ncol=3, frameon=False)
for r in range(shown.stop):  # mark where each trajectory starts
    if r and batch.traj_index[r] != batch.traj_index[r - 1]:
        for ax in axes:
            ax.axhline(r - 0.5, color="tab:red", lw=0.8)
fig.suptitle("the first rows of the TurnBatch; red lines separate trajectories")
fig.tight_layout(rect=(0, 0.06, 1, 1))
fig.savefig(OUT / "masks.png", dpi=100)
print("wrote", OUT / "masks.png")

# %% [markdown]
# ## What the trainer does next
#
# `batch` is exactly what `sampo_ref.trainer.train` builds in its phase 1. Phase 3 computes one
# advantage per row (tutorials 2 and 5), phase 4 the surrogate per token (tutorial 4), which the
# chosen aggregation mode averages over the response mask.
