# %% [markdown]
# # Tutorial 1 — Policy gradient by hand on a bandit
#
# Before turns, tokens and groups, the one idea every method in `sampo_ref` shares: the
# **score-function (REINFORCE) gradient**. We work it out on the smallest problem that has it, a
# five-armed bandit with a softmax policy, and check every step with numbers:
#
# 1. the gradient of $\log\pi$ for a softmax policy, by hand and by autograd;
# 2. REINFORCE is unbiased: its average equals the exact gradient;
# 3. a **baseline** leaves the mean unchanged and cuts the variance, most of all when rewards
#    carry a constant offset;
# 4. a **group baseline** (the mean reward of the other samples drawn for the same task) is what
#    GRPO uses; including the sample itself shrinks the gradient by $(G-1)/G$;
# 5. learning curves with and without a baseline (a figure).
#
# Runs in a few seconds on a CPU. Figures go to `$SAMPO_REF_TUTORIAL_OUT/01_bandit`
# (default `runs/tutorials/01_bandit`).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

OUT = Path(os.environ.get("SAMPO_REF_TUTORIAL_OUT", "runs/tutorials")) / "01_bandit"
OUT.mkdir(parents=True, exist_ok=True)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The bandit
#
# Arm $a$ pays $R=1$ with probability $p_a$, else 0. The policy is a softmax over logits
# $\theta\in\mathbb R^5$: $\pi_\theta(a)=e^{\theta_a}/\sum_b e^{\theta_b}$. The objective is the
# expected reward $J(\theta)=\sum_a\pi_\theta(a)\,p_a$.

# %%
P_WIN = np.array([0.2, 0.4, 0.5, 0.6, 0.8])  # p_a
K = len(P_WIN)


def softmax(theta: np.ndarray) -> np.ndarray:
    z = np.exp(theta - theta.max())
    return z / z.sum()


theta = np.array([0.5, 0.3, 0.0, -0.2, -0.5])  # a policy that prefers the worse arms
pi = softmax(theta)
print("pi(a)       ", pi)
print("J(theta)    ", f"{pi @ P_WIN:.4f}   (best arm pays {P_WIN.max()})")

# %% [markdown]
# ## Step 1: the score function
#
# $\log\pi_\theta(a)=\theta_a-\log\sum_b e^{\theta_b}$, so
# $\nabla_\theta\log\pi_\theta(a)=e_a-\pi_\theta$ (one-hot minus the probabilities).
# Autograd agrees:

# %%
for a in range(K):
    t = torch.tensor(theta, requires_grad=True)
    (grad,) = torch.autograd.grad(torch.log_softmax(t, 0)[a], t)
    by_hand = np.eye(K)[a] - pi
    assert np.allclose(grad.numpy(), by_hand, atol=1e-12)
print("grad log pi(a) = e_a - pi: autograd and hand agree for every arm")

# %% [markdown]
# ## Step 2: the exact gradient and the REINFORCE estimate
#
# Because $\sum_a\pi(a)(e_a-\pi)=0$,
# $$\nabla J=\sum_a\pi(a)\,p_a\,(e_a-\pi)=\mathbb E_{a\sim\pi,\,R}\big[(R-b)\,\nabla\log\pi(a)\big]
# \quad\text{for any constant } b.$$
# With $b=0$ this is REINFORCE; with $b\ne0$ it is REINFORCE **with a baseline**. Same mean;
# the variance is what changes. For a finite bandit both moments are exact sums:
# $\mathbb E\|g\|^2=\sum_a\pi(a)\,\mathbb E[(R-b)^2\mid a]\,\|e_a-\pi\|^2$.

# %%
SCORE = np.eye(K) - pi  # row a: e_a - pi
GRAD_J = (pi * P_WIN) @ SCORE  # exact gradient


def exact_moments(baseline: float, offset: float = 0.0) -> tuple[np.ndarray, float]:
    """Mean and total variance (trace of the covariance) of g = (R + offset - b) (e_a - pi)."""
    lo, hi = offset - baseline, 1.0 + offset - baseline  # R - b when R = 0 and R = 1
    second = P_WIN * hi**2 + (1 - P_WIN) * lo**2  # E[(R - b)^2 | a]
    mean = (pi * (P_WIN + offset - baseline)) @ SCORE
    total_var = float((pi * second) @ (SCORE**2).sum(1) - mean @ mean)
    return mean, total_var


def sample_estimates(n: int, baseline: float, offset: float, rng: np.random.Generator) -> np.ndarray:
    """n single-sample estimates g = (R + offset - b) (e_a - pi), shape (n, K)."""
    arms = rng.choice(K, size=n, p=pi)
    rewards = (rng.random(n) < P_WIN[arms]).astype(float) + offset
    return (rewards - baseline)[:, None] * SCORE[arms]


rng = np.random.default_rng(0)
print("exact grad J:", GRAD_J)
print(f"\n{'offset':>6} {'baseline':>9} {'MC mean of g':>44} {'Var exact':>10} {'Var MC':>8}")
rows = []
for offset in (0.0, 10.0):
    for name, b in (("none", 0.0), ("E[R]", pi @ P_WIN + offset)):
        mean, var = exact_moments(b, offset)
        g = sample_estimates(200_000, b, offset, rng)
        var_mc = float(g.var(0).sum())
        rows.append((offset, name, var))
        print(f"{offset:6.0f} {name:>9} {np.array2string(g.mean(0), precision=4):>44} {var:10.4f} {var_mc:8.4f}")
        assert np.allclose(mean, GRAD_J), "any constant baseline leaves the mean unchanged"
        std_err = np.sqrt(g.var(0) / len(g))  # Monte Carlo error of each coordinate of the mean
        assert np.all(np.abs(g.mean(0) - GRAD_J) < 5 * std_err), "Monte Carlo mean differs from the exact gradient"
        assert abs(var_mc - var) < 0.05 * var + 1e-3

# %% [markdown]
# Read the table: every row has the same mean (the exact gradient), but
#
# * with rewards in $\{0,1\}$ the baseline $b=\mathbb E[R]$ already cuts the variance;
# * add 10 to every reward (nothing about the problem changes, the gradient is the same) and
#   plain REINFORCE's variance grows by two orders of magnitude, while the baseline version
#   does not move at all: the baseline absorbs the offset.
#
# This is why every method in this project subtracts *something* from the return.

# %%
var = {(o, n): v for o, n, v in rows}
print(f"variance ratio without/with baseline: offset 0 -> {var[0.0, 'none'] / var[0.0, 'E[R]']:.1f}x,"
      f" offset 10 -> {var[10.0, 'none'] / var[10.0, 'E[R]']:.0f}x")
assert var[0.0, "E[R]"] < var[0.0, "none"] and var[10.0, "none"] > 50 * var[10.0, "E[R]"]
assert abs(var[10.0, "E[R]"] - var[0.0, "E[R]"]) < 1e-9  # the baseline absorbs the offset exactly

# %% [markdown]
# ## Step 3: a group baseline
#
# We rarely know $\mathbb E[R]$. GRPO estimates it from a **group**: draw $G$ answers to the same
# task and use the group's mean reward. Two versions:
#
# * **leave-one-out**: sample $i$'s baseline is the mean of the *other* $G-1$ rewards. It does not
#   depend on sample $i$, so the estimate stays unbiased;
# * **group mean** (GRPO's, Eq. S2 without the division by $\sigma$): the mean of all $G$ rewards,
#   sample $i$ included. Then $R_i-\bar R=\frac{G-1}G\,(R_i-\text{leave-one-out mean})$: the same
#   direction, scaled by $(G-1)/G$.

# %%
G = 4


def group_estimates(n_groups: int, leave_one_out: bool, rng: np.random.Generator) -> np.ndarray:
    """One gradient estimate per group of G samples: the mean over the group of (R_i - b_i)(e_a_i - pi)."""
    arms = rng.choice(K, size=(n_groups, G), p=pi)
    rewards = (rng.random((n_groups, G)) < P_WIN[arms]).astype(float)
    total = rewards.sum(1, keepdims=True)
    baseline = (total - rewards) / (G - 1) if leave_one_out else total / G
    return ((rewards - baseline)[..., None] * SCORE[arms]).mean(1)


g_loo = group_estimates(200_000, True, rng)
g_mean = group_estimates(200_000, False, rng)
print("exact grad J            ", GRAD_J)
print("leave-one-out, MC mean  ", g_loo.mean(0))
print(f"group mean, MC mean     {g_mean.mean(0)}   (exact x (G-1)/G = {GRAD_J * (G - 1) / G})")
assert np.allclose(g_loo.mean(0), GRAD_J, atol=0.01)
assert np.allclose(g_mean.mean(0), GRAD_J * (G - 1) / G, atol=0.01)

# %% [markdown]
# ## Step 4: learning with and without a baseline
#
# Gradient ascent on $\theta$ with batches of $G=4$ samples, 20 seeds each, plain REINFORCE
# against the leave-one-out baseline (unbiased, so both follow the same expected gradient and
# only the noise differs). The printed table says how much the baseline buys at each offset.

# %%
def learn(baseline: bool, offset: float, seed: int, steps: int = 150, lr: float = 1.0) -> np.ndarray:
    """Expected reward J after each step of stochastic gradient ascent from the same start."""
    rng = np.random.default_rng(seed)
    th = theta.copy()
    curve = []
    for _ in range(steps):
        p = softmax(th)
        arms = rng.choice(K, size=G, p=p)
        rewards = (rng.random(G) < P_WIN[arms]).astype(float) + offset
        b = (rewards.sum() - rewards) / (G - 1) if baseline else 0.0  # leave-one-out baseline
        th = th + lr * ((rewards - b)[:, None] * (np.eye(K)[arms] - p)).mean(0)
        curve.append(softmax(th) @ P_WIN)
    return np.array(curve)


fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
final = {}
for ax, offset in zip(axes, (0.0, 10.0)):
    for baseline, colour in ((False, "tab:red"), (True, "tab:blue")):
        curves = np.stack([learn(baseline, offset, seed) for seed in range(20)])
        final[offset, baseline] = curves[:, -1]
        label = "leave-one-out baseline" if baseline else "no baseline"
        ax.plot(curves.mean(0), color=colour, label=label)
        ax.fill_between(range(curves.shape[1]), curves.min(0), curves.max(0), color=colour, alpha=0.15)
    ax.axhline(P_WIN.max(), color="grey", ls=":", lw=1)
    ax.set(title=f"rewards + {offset:g}", xlabel="step", ylabel="expected reward J (mean, min-max of 20 seeds)")
    ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(OUT / "bandit_learning.png", dpi=100)
print("wrote", OUT / "bandit_learning.png")
print(f"\nJ after 150 steps (mean ± std over 20 seeds; start {pi @ P_WIN:.3f}, best {P_WIN.max()}):")
for (offset, baseline), values in final.items():
    print(f"  offset {offset:4.0f}  {'baseline' if baseline else 'no baseline':12s} {values.mean():.3f} ± {values.std():.3f}")
assert final[0.0, True].std() < final[0.0, False].std()  # the baseline: less spread across seeds
assert final[10.0, True].mean() > final[10.0, False].mean() + 0.1  # the offset ruins plain REINFORCE

# %% [markdown]
# ## What carries over to LLM agents
#
# * The "arm" becomes a whole response, and $\nabla\log\pi$ of a response is the sum of
#   $\nabla\log\pi$ of its tokens: the same score function, one term per token.
# * The group of $G$ answers to one task, and its mean (and standard deviation) as the baseline,
#   is GRPO's advantage, Eq. (S2): tutorial 2.
# * Taking several gradient steps on one batch needs the importance ratio $w=\pi_\theta/\pi_\text{old}$
#   and a clip, whose effect on the per-token gradient weight is tutorial 4.
