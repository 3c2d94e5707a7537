# %% [markdown]
# # Tutorial 2 — Group advantages: GRPO, Dr. GRPO and GiGPO's anchor-state step groups
#
# Tutorial 1 ended with a baseline estimated from a *group* of answers to the same task. In a
# multi-turn agent a trajectory has many turns, and each turn is one training row. This tutorial
# computes, on small hand-built batches and with the project's own functions
# (`sampo_ref.algos`):
#
# 1. the row score (S1) and GRPO's group z-score (S2), checked against the worked example of docs/algorithms/gigpo.md#key-equations;
# 2. Dr. GRPO's mean-centred advantage (no division by $\sigma$), and why the two react
#    differently to the reward scale and to the invalid-action penalty;
# 3. GiGPO (S3–S7): inside a group, turns that act in the **same state** form a step group and
#    are compared with each other by their discounted step returns.
#
# Runs in a few seconds. Figure: `$SAMPO_REF_TUTORIAL_OUT/02_group_advantages/advantages.png`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from sampo_ref.algos.common import row_scores
from sampo_ref.algos.gigpo import (
    discounted_step_returns,
    episode_advantages,
    gigpo_advantages,
    step_advantages,
    step_group_sizes,
    step_groups,
)
from sampo_ref.algos.grpo import grpo_advantages

OUT = Path(os.environ.get("SAMPO_REF_TUTORIAL_OUT", "runs/tutorials")) / "02_group_advantages"
OUT.mkdir(parents=True, exist_ok=True)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## 1. Rows, scores and GRPO's z-score
#
# docs/algorithms/gigpo.md#key-equations: one group of $G=2$ copies of a task. Turns are counted from $k=0$, as in the
# code. Trajectory 1 wins on its second turn, $k=1$ ($r^\text{env}=(0,10)$); trajectory 2 fails
# in three turns ($k=0,1,2$), and its turn $k=1$ is invalid.
# Every turn is a row. The row score is the episode return minus the invalid-action penalty on
# the row's own turn:
# $$q_j=R_{\tau(j)}-c_\text{inv}(1-v_j)\tag{S1}$$
# and GRPO's advantage is the z-score of the scores over **all rows of the group**
# (unbiased std; a singleton group uses $\mu=0,\sigma=1$):
# $$A_j=\frac{q_j-\mu_g}{\sigma_g+\epsilon}.\tag{S2}$$

# %%
episode_return = torch.tensor([10.0, 10.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # R of each row's trajectory
env_reward = torch.tensor([0.0, 10.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # reward after each row's action
valid = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)  # row 3 (tau2, k1) is invalid
group_index = torch.zeros(5, dtype=torch.long)  # one group
traj_index = torch.tensor([0, 0, 1, 1, 1])
turn_index = torch.tensor([0, 1, 0, 1, 2])

scores = row_scores(episode_return, valid, invalid_penalty=0.1)  # (S1)
adv_grpo = grpo_advantages(scores, group_index)  # (S2)
adv_vanilla = grpo_advantages(scores, group_index, traj_index, per_trajectory=True)  # docs/algorithms/grpo.md#key-equations alternative
print("scores q_j        ", scores)
print(f"group mean, std   {scores.mean():.4f}, {scores.std():.4f}   (worked example: 3.98, 5.4956)")
print("GRPO (S2)         ", adv_grpo)
print("vanilla (per-traj)", adv_vanilla)
assert torch.allclose(adv_grpo, torch.tensor([1.0954, 1.0954, -0.7242, -0.7424, -0.7242], dtype=torch.float64), atol=1e-4)
assert torch.allclose(adv_vanilla, torch.tensor([0.7071, 0.7071, -0.7024, -0.7165, -0.7024], dtype=torch.float64), atol=1e-4)

# %% [markdown]
# Every row of trajectory 1 gets the same advantage: GRPO cannot tell which turn mattered.
# The invalid turn scores $-0.1$ and so gets a slightly lower advantage than its neighbours.
# "Vanilla" GRPO first averages each trajectory's scores, so a long trajectory does not weigh
# more in $\mu_g,\sigma_g$; the row still uses its own score.
#
# ## 2. Dr. GRPO: mean-centred, no $\sigma$
#
# Dr. GRPO (arXiv 2503.20783) drops the division by $\sigma_g$: $A_j=q_j-\mu_g$
# (`norm_by_std=False`; `--norm-adv-by-std false` in the trainer). Three consequences:

# %%
adv_dr = grpo_advantages(scores, group_index, norm_by_std=False)
print("Dr. GRPO          ", adv_dr)

# (a) the reward scale: z-scores ignore it, Dr. GRPO's advantage scales with it
small = row_scores(episode_return / 10, valid, 0.01)  # the same task with win reward 1 and c_inv 0.01
print("\nwin reward 10 -> 1:")
print("  GRPO     ", grpo_advantages(small, group_index))
print("  Dr. GRPO ", grpo_advantages(small, group_index, norm_by_std=False))
assert torch.allclose(grpo_advantages(small, group_index), adv_grpo, atol=1e-5)
assert torch.allclose(grpo_advantages(small, group_index, norm_by_std=False), adv_dr / 10)

# (b) a group whose scores are all equal gets exactly zero advantage under both
constant = grpo_advantages(torch.full((6,), 0.7, dtype=torch.float64), torch.zeros(6, dtype=torch.long))
print("\nconstant group -> ", constant)
assert torch.equal(constant, torch.zeros(6, dtype=torch.float64))

# (c) a group where no trajectory wins: the scores differ only by the penalty
fail_scores = row_scores(torch.zeros(10, dtype=torch.float64), torch.tensor([1.0] * 9 + [0.0], dtype=torch.float64), 0.1)
fail_grpo = grpo_advantages(fail_scores, torch.zeros(10, dtype=torch.long))
fail_dr = grpo_advantages(fail_scores, torch.zeros(10, dtype=torch.long), norm_by_std=False)
print("\nall-fail group, one invalid turn in ten:")
print(f"  GRPO     valid turns {fail_grpo[0]:+.4f}, invalid turn {fail_grpo[-1]:+.4f}")
print(f"  Dr. GRPO valid turns {fail_dr[0]:+.4f}, invalid turn {fail_dr[-1]:+.4f}")
assert abs(fail_grpo[0] - 0.3162) < 1e-4 and abs(fail_grpo[-1] + 2.8460) < 1e-4

# %% [markdown]
# Case (c) is a teaching point measured in `docs/results.md`: $\sigma$-normalisation blows a
# tiny penalty up to the full scale of the advantage, so every *valid* turn of a failing episode
# (loops included) is reinforced as strongly as a win would be. Dr. GRPO keeps it small; the
# dynamic filter (DAPO, SAMPO) drops such groups, because it tests raw returns, which are all 0.
#
# ## 3. GiGPO: step groups by anchor state
#
# GiGPO keeps GRPO's episode term $A^E$ (S3) and adds a **step** term. Every row carries its
# *anchor*: the raw observation of the state the turn acts in. Inside one group, rows with
# exactly the same anchor form a step group; their **discounted step returns**
# $$G_{\tau,k}=\sum_{k'\ge k}\gamma^{k'-k}\,r^\text{env}_{\tau,k'}\tag{S4}$$
# (penalised like the score: $\tilde G_j=G_j-c_\text{inv}(1-v_j)$, S5) are z-scored inside the
# step group (S6; a singleton step group gets exactly 0), and
# $$\hat A_j=A^E_j+\omega A^S_j.\tag{S7}$$
#
# A hand-built group in a three-room corridor `hall → study → vault` (the coin is in the vault),
# $G=3$ copies, $\gamma=0.95$, win reward 1, $c_\text{inv}=0.1$. The anchors are written as
# the toy games make them (tutorial 5 shows a real rollout): the room plus the **last
# observation text**. Every copy's first turn acts on the game's intro text (`hall, intro`),
# which no later turn sees again; walking into a room shows its description (`study`), and a
# `look` right after that returns the same description, so the anchor does not change; coming
# back to the hall shows the hall's description (`hall`), a different text from the intro.
#
# * τ0 walks straight there: east, east, take coin (wins at turn $k=2$);
# * τ1 dithers: east, then `look` in the study (same text, same anchor), then back west, then
#   `dance` (invalid: "Nothing happens."), and the turn limit ends it;
# * τ2 goes east, back west, east, east, then takes the coin (wins at turn $k=4$).

# %%
ROWS = [  # (trajectory, anchor the turn acts in, action, valid, env reward after the action)
    (0, "hall, intro", "go east", 1, 0.0), (0, "study", "go east", 1, 0.0), (0, "vault", "take coin", 1, 1.0),
    (1, "hall, intro", "go east", 1, 0.0), (1, "study", "look", 1, 0.0), (1, "study", "go west", 1, 0.0),
    (1, "hall", "dance", 0, 0.0),
    (2, "hall, intro", "go east", 1, 0.0), (2, "study", "go west", 1, 0.0), (2, "hall", "go east", 1, 0.0),
    (2, "study", "go east", 1, 0.0), (2, "vault", "take coin", 1, 1.0),
]
traj = torch.tensor([r[0] for r in ROWS])
turn = torch.tensor([sum(1 for p in ROWS[:j] if p[0] == r[0]) for j, r in enumerate(ROWS)])  # k within its trajectory
anchors = [r[1] for r in ROWS]
valid = torch.tensor([float(r[3]) for r in ROWS], dtype=torch.float64)
env_reward = torch.tensor([r[4] for r in ROWS], dtype=torch.float64)
episode_return = torch.stack([env_reward[traj == t].sum() for t in traj.tolist()])  # R of each row's trajectory
group = torch.zeros(len(ROWS), dtype=torch.long)

step_return = row_scores(discounted_step_returns(env_reward, traj, turn, gamma=0.95), valid, 0.1)  # (S4), (S5)
step_group = step_groups(anchors, group)
adv_episode = episode_advantages(row_scores(episode_return, valid, 0.1), group)  # (S3) = (S2) here
adv_step = step_advantages(step_return, step_group)  # (S6)
adv_gigpo = gigpo_advantages(episode_return, env_reward, valid, anchors, group, traj, turn,
                             gamma=0.95, invalid_penalty=0.1)  # (S7), all in one call
assert torch.allclose(adv_gigpo, adv_episode + adv_step)

print(f"step groups: {len(step_group_sizes(step_group))} with sizes {step_group_sizes(step_group).tolist()}")
print(f"\n{'row':>3} {'traj':>4} {'k':>2} {'anchor':>11} {'action':>10} {'G~ (S5)':>8} {'A^E':>8} {'A^S':>8} {'A (S7)':>8}")
for j, (t, anchor, action, _, _) in enumerate(ROWS):
    print(f"{j:3d} {t:4d} {turn[j].item():2d} {anchor:>11} {action:>10} {step_return[j]:8.4f} "
          f"{adv_episode[j]:+8.4f} {adv_step[j]:+8.4f} {adv_gigpo[j]:+8.4f}")

# %% [markdown]
# Read the table. $A^E$ is GRPO's: one value per trajectory (the invalid row 6 a little lower,
# by its penalty). $A^S$ differs row by row:
#
# * **hall, intro** (rows 0, 3, 7): all three copies chose `go east`, yet τ0's (row 0, a win two
#   turns later) beats τ2's (row 7, a win four turns later): the discount $\gamma$ charges the
#   detour that came after. τ1's (row 3) never led to a win and gets a negative $A^S$.
# * **study** (5 rows): the `go east` moves toward the vault (rows 1, 10) get most; τ2's detour
#   `go west` (row 8) less, although it belongs to a winning trajectory; τ1's `look` and
#   `go west` (rows 4, 5) least.
# * **hall** (rows 6, 9, after coming back): τ2's `go east` beats τ1's invalid `dance`.
# * **vault** (2 rows): both took the coin at once; equal returns give exactly $A^S=0$.
# * A step return credits **what followed** the turn, not the action alone: τ1's `look`
#   (row 4) scores exactly like its `go west` (row 5), because τ1 never won.

# %%
# A^E: one value per trajectory (apart from the invalid row's own penalty)
assert all(len(set(adv_episode[(traj == t) & (valid == 1)].tolist())) == 1 for t in range(3))
assert step_group[0] == step_group[3] == step_group[7] != step_group[9], "the intro and the hall's description differ"
assert step_group[1] == step_group[4] == step_group[5], "`look` right after walking in keeps the anchor"
assert adv_step[0] > adv_step[7] > 0 > adv_step[3], "sooner win, larger discounted return"
assert adv_step[8] < min(adv_step[1], adv_step[10]), "the detour gets less credit than the direct move"
assert adv_step[9] > 0 > adv_step[6]
vault = [j for j, r in enumerate(ROWS) if r[1] == "vault"]
assert torch.equal(adv_step[vault], torch.zeros(2, dtype=torch.float64))
assert adv_step[4] == adv_step[5], "same state, same (zero) continuation: same credit"

fig, ax = plt.subplots(figsize=(11, 3.8))
x = torch.arange(len(ROWS))
ax.bar(x - 0.2, adv_episode, 0.4, label="GRPO = GiGPO's episode term $A^E$ (S2/S3)", color="tab:grey")
ax.bar(x + 0.2, adv_gigpo, 0.4, label=r"GiGPO $A^E+\omega A^S$ (S7)", color="tab:blue")
ax.set_xticks(x, [f"τ{r[0]} {r[1]}\n{r[2]}" for r in ROWS], fontsize=7)
ax.axhline(0, color="black", lw=0.5)
ax.set(ylabel="advantage", title="one group of three trajectories: episode-level vs anchor-state step credit")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "advantages.png", dpi=100)
print("wrote", OUT / "advantages.png")

# %% [markdown]
# ## Where this goes next
#
# * Tutorial 5 groups the rows of a **real** rollout of the tiny policy by anchor state.
# * The docs pages for GRPO and GiGPO derive these equations; `tests/test_grpo.py` and
#   `tests/test_gigpo.py` check them on hand-worked numbers.
