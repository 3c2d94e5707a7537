# %% [markdown]
# # Tutorial 5 — GiGPO anchor states on a real rollout
#
# Tutorial 2 built GiGPO's step groups by hand. Here the rows come from a real rollout of the
# tiny policy on toy TextWorld games, and we look at what the anchor-state grouping finds:
#
# 1. roll out $N=2$ games × $G=8$ copies (the trainer's `make_task`, `make_policy`, `collect`);
# 2. group the rows by (group, exact anchor string) with `gigpo.step_groups`, and count them;
# 3. look inside the largest step groups: which turns share a state, and their step returns;
# 4. compare GiGPO's advantage (S7) with GRPO's (S2) on the same rows, and write a figure.
#
# About 15 s on a CPU once the games and the tiny policy are cached (tutorial 3 explains the
# cache). Figure: `$SAMPO_REF_TUTORIAL_OUT/05_gigpo/step_groups.png`.

# %%
import os
import random
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import torch

from sampo_ref.algos import ALGORITHMS
from sampo_ref.algos.common import row_scores
from sampo_ref.algos.gigpo import discounted_step_returns, episode_advantages, step_advantages, step_group_sizes, step_groups
from sampo_ref.config import TrainConfig
from sampo_ref.rollout import RolloutConfig, TurnBatch, collect
from sampo_ref.setup import make_policy, make_task

OUT = Path(os.environ.get("SAMPO_REF_TUTORIAL_OUT", "runs/tutorials")) / "05_gigpo"
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(1)
rng = random.Random(1)

# %% [markdown]
# ## 1. A rollout of 2 games × 8 copies
#
# The config is the `gigpo` preset's choice on the advantage axis (mode `mean_std_norm`,
# $\gamma=0.95$, $\omega=1$) with the toy defaults elsewhere, including the toy's invalid-action
# penalty $c_\text{inv}=0$ (`sampo-ref train --help` says why).

# %%
cfg = TrainConfig(algo="gigpo", train_games=16, eval_games=0)
task = make_task(cfg)
policy = make_policy(cfg, task, torch.device("cpu"))
G = 8
games = task.train_pool[2:4]
trajs = collect(policy, task.envs(games, G), [str(g) for g in games], G, task.prompt,
                RolloutConfig(max_turns=task.max_turns, max_new_tokens=cfg.max_new_tokens), rng)
batch = TurnBatch.from_trajectories(trajs, policy.pad_id)
for g, game in enumerate(games):
    group = trajs[g * G : (g + 1) * G]
    print(f"group {g} ({game.name}): {sum(t.won for t in group)}/{G} won, returns {[t.episode_return for t in group]}, "
          f"turns {[len(t.turns) for t in group]}")
print(f"{len(batch)} rows")

# %% [markdown]
# ## 2. Step groups
#
# Two rows share a step group iff they belong to the same group **and** their anchors (the raw
# observation of the state the turn acts in) are exactly equal. The anchor is the room name + the
# last observation text. `look` returns the room's description: right after walking into a room
# that is the text the agent already saw, so the anchor does not change (tutorial 2's `look`); on
# the first turn it replaces the intro text, a new anchor. `inventory` brings new text, so a new
# anchor without moving. An invalid action ("Nothing happens.") keeps the previous state's anchor.
# `tests/test_toy_envs.py::test_look_keeps_the_anchor_only_where_the_room_text_was_already_the_last_observation`
# checks each of these on a real game.

# %%
step_group = step_groups(batch.anchors, batch.group_index)  # (B,)
sizes = step_group_sizes(step_group)  # (n,)
in_shared = (sizes[step_group] > 1).float().mean()
print(f"{len(sizes)} step groups over {len(batch)} rows; sizes: {sorted(Counter(sizes.tolist()).items())} (size: count)")
print(f"rows in a step group with another row: {in_shared:.0%}")
for g in range(len(games)):
    rows = batch.group_index == g
    rooms = {a.split(chr(10), 1)[0] for a, r in zip(batch.anchors, rows.tolist()) if r}
    print(f"group {g}: {len(rooms)} rooms visited, {len(set(step_group[rows].tolist()))} distinct anchors")

# every copy of a game starts in the same state: the first turns of a group form one step group
for g in range(len(games)):
    first = step_group[(batch.group_index == g) & (batch.turn_index == 0)]
    assert len(first) == G and len(set(first.tolist())) == 1

# %% [markdown]
# The G first turns of each group always share a step group: every copy starts from the same
# intro text. Later turns meet again whenever two copies (or one copy twice) stand in the same
# state with the same last observation.
#
# ## 3. Inside the largest step groups
#
# The step return of a row is the discounted reward that followed it, $G_j=\sum_{k'\ge k}
# \gamma^{k'-k}r^\text{env}_{k'}$ (S4; with $c_\text{inv}=0$, S5 changes nothing). Inside a step
# group GiGPO z-scores these returns (S6): turns from which the episode went on to win sooner get
# $A^S>0$. A group in which no copy won has only zero returns, so all its step groups tie and get
# $A^S=0$; the largest step groups *with* differing returns are the instructive ones.

# %%
step_return = row_scores(discounted_step_returns(batch.env_reward, batch.traj_index, batch.turn_index, cfg.gamma),
                         batch.valid, cfg.invalid_penalty)  # (S4), (S5)
adv_step = step_advantages(step_return, step_group, cfg.gigpo_mode)  # (S6)
actions = [t.action for tau in trajs for t in tau.turns]
tied = [h for h in range(len(sizes)) if step_return[step_group == h].unique().numel() == 1]
tied_rows = int(sizes[tied].sum()) if tied else 0
print(f"{len(tied)} of {len(sizes)} step groups have equal returns on all their rows (A^S = 0 there): {tied_rows} rows")
informative = [h for h in sizes.argsort(descending=True).tolist() if h not in tied]
for h in informative[:3]:  # the largest step groups whose returns differ
    rows = (step_group == h).nonzero().squeeze(1)
    anchor = batch.anchors[int(rows[0])]
    print(f"\nstep group {h}: {len(rows)} rows from {len(set(batch.traj_index[rows].tolist()))} trajectories, "
          f"turns k = {sorted(set(batch.turn_index[rows].tolist()))}")
    print(f"  anchor: {anchor[:90].replace(chr(10), ' | ')}…")
    by_action: dict[str, list[int]] = {}
    for j in rows.tolist():
        by_action.setdefault(actions[j], []).append(j)
    for action, js in sorted(by_action.items(), key=lambda kv: -len(kv[1])):
        print(f"  {action!r:14s} x{len(js):2d}   mean G = {step_return[js].mean():.3f}   mean A^S = {adv_step[js].mean():+.3f}")

# %% [markdown]
# Read the printout action by action. Within one state, a move toward the coin reaches the reward
# sooner and so has the larger discounted return; `look` and `inventory` only spend a turn, and
# the discount charges them for it (when they change the anchor, the next turn is compared in
# another step group). GRPO cannot see any of this: it gives every turn of a
# trajectory the same advantage.

# %% [markdown]
# ## 4. GiGPO vs GRPO on the same rows
#
# The trainer calls `ALGORITHMS[name].advantages(batch, cfg)`. GiGPO's is $A^E+\omega A^S$, and in
# `mean_std_norm` mode $A^E$ is exactly GRPO's advantage, so the difference between the two is
# the step term alone.

# %%
adv_grpo = ALGORITHMS["grpo"].advantages(batch, cfg)
adv_gigpo = ALGORITHMS["gigpo"].advantages(batch, cfg)
adv_episode = episode_advantages(row_scores(batch.episode_return, batch.valid, cfg.invalid_penalty),
                                 batch.group_index, cfg.gigpo_mode)
assert torch.allclose(adv_episode, adv_grpo, atol=1e-6)
assert torch.allclose(adv_gigpo, adv_episode + cfg.step_adv_weight * adv_step, atol=1e-6)
assert torch.all(adv_step[sizes[step_group] == 1] == 0), "a singleton step group has A^S = 0 exactly (S6)"
flipped = (torch.sign(adv_gigpo) != torch.sign(adv_grpo)) & (adv_grpo != 0)
print(f"rows whose advantage changes: {(adv_step != 0).float().mean():.0%}; rows whose sign flips: {int(flipped.sum())}")
print(f"correlation GRPO vs GiGPO advantages: {torch.corrcoef(torch.stack([adv_grpo, adv_gigpo]))[0, 1]:.3f}")

tau_i = max(range(len(trajs)), key=lambda i: (trajs[i].won, -len(trajs[i].turns)))
rows = (batch.traj_index == tau_i).nonzero().squeeze(1)
print(f"\ntrajectory {tau_i} (won={trajs[tau_i].won}), row by row:")
print(f"{'k':>3} {'room':>12} {'action':>14} {'step group size':>15} {'G':>6} {'A_GRPO':>7} {'A^S':>7} {'A_GiGPO':>8}")
for j in rows.tolist():
    print(f"{int(batch.turn_index[j]):3d} {batch.anchors[j].split(chr(10), 1)[0]:>12} {actions[j]:>14} "
          f"{int(sizes[step_group[j]]):15d} {step_return[j]:6.3f} {adv_grpo[j]:+7.3f} {adv_step[j]:+7.3f} {adv_gigpo[j]:+8.3f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
counts = Counter(sizes.tolist())
axes[0].bar(list(counts), list(counts.values()), color="tab:blue")
axes[0].set(title="step-group sizes", xlabel="rows in the step group", ylabel="step groups")
for axis in (axes[0].xaxis, axes[0].yaxis):
    axis.set_major_locator(MaxNLocator(integer=True))  # counts: whole numbers only
shared = sizes[step_group] > 1
axes[1].scatter(adv_grpo[~shared], adv_gigpo[~shared], s=10, color="tab:grey", label="singleton step group (A^S = 0)")
axes[1].scatter(adv_grpo[shared], adv_gigpo[shared], s=10, color="tab:blue", label="shares its state with other rows")
lim = float(max(adv_grpo.abs().max(), adv_gigpo.abs().max())) * 1.05
axes[1].plot([-lim, lim], [-lim, lim], color="black", lw=0.5)
axes[1].set(title="per-row advantage", xlabel="GRPO (S2)", ylabel="GiGPO (S7)")
axes[1].legend(fontsize=8)
fig.suptitle(f"GiGPO on a real rollout: {len(games)} games x {G} copies, {len(batch)} rows")
fig.tight_layout()
fig.savefig(OUT / "step_groups.png", dpi=100)
print("wrote", OUT / "step_groups.png")

# %% [markdown]
# On the diagonal sit the rows GRPO and GiGPO treat alike: singleton step groups, and step groups
# whose returns tie. Off it, GiGPO moves credit between turns of the *same* trajectory according
# to how the episode continued from that state, which GRPO cannot do.
#
# **Aliasing.** The key is the observation text, not the hidden game state: two copies in the same
# room with different last observations (after `look` vs after `inventory`) are different anchors,
# and in ALFWorld every turn after an inadmissible command sees "Nothing happens." (docs/algorithms/gigpo.md#logged-metrics).
