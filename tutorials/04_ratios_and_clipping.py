# %% [markdown]
# # Tutorial 4 — Ratios and clipping: token clip, GSPO's turn ratio, soft SAPO's gate, CISPO
#
# After the first optimiser step on a batch, the policy $\pi_\theta$ is no longer the policy
# $\pi_\text{old}$ that sampled it. Every surrogate in this project reweights each token's
# REINFORCE gradient by a function of the importance ratio $w=\pi_\theta/\pi_\text{old}$. Write the
# gradient of the per-token loss as
# $$\nabla_\theta\ell_{j,t}=-\kappa_{j,t}\,A_j\,\nabla_\theta\log\pi_\theta(y_{j,t})$$
# (docs/dimensions.md#which-tokens-get-exactly-zero-gradient): $\kappa$ is the **per-token gradient weight**. On-policy ($w=1$) every surrogate has
# $\kappa=1$ (REINFORCE); the methods differ in what $\kappa$ does as $w$ moves away from 1.
#
# We measure $\kappa$ with autograd on the project's loss functions, for a positive and a negative
# advantage, and draw it against the ratio:
#
# * **token clip** with dual clip (GRPO, S10): $\kappa=w$ inside the trust region, exactly 0 outside;
# * **GSPO** (S11–S12): one ratio per *turn*, the geometric mean $s_j$ of its token ratios;
# * **soft SAPO** (S14): a sigmoid gate, $\kappa=4\sigma(1-\sigma)w$, never exactly 0;
# * **CISPO** (S15): the clipped ratio as a stop-gradient weight, $\kappa=\min(w,1.2)$, never 0.
#
# A few seconds on a CPU. Figures: `$SAMPO_REF_TUTORIAL_OUT/04_ratios/kappa.png` and
# `token_vs_turn.png`.

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from sampo_ref.algos.cispo import cispo_loss
from sampo_ref.algos.grpo import token_clip_loss
from sampo_ref.algos.gspo import gspo_loss
from sampo_ref.algos.soft_sapo import soft_sapo_loss
from sampo_ref.presets import preset_config

OUT = Path(os.environ.get("SAMPO_REF_TUTORIAL_OUT", "runs/tutorials")) / "04_ratios"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Measuring $\kappa$
#
# Give each row one response token with $\log\pi_\text{old}=\log 0.5$ and
# $\log\pi_\theta=\log\pi_\text{old}+\log w$. The loss functions return the per-token loss
# $\ell$ (B, T); its gradient with respect to $\log\pi_\theta$ is $-\kappa A$, so
# $\kappa=-\partial\ell/\partial\log\pi_\theta\,/\,A$. The hyper-parameters are the toy presets'
# (`sampo_ref/presets.py`), the same as ARLArena's ALFWorld values except GSPO's $\varepsilon$
# (toy 3e-2/4e-2, ALFWorld 3e-3/4e-3; the preset file says why).

# %%
SURROGATES = {  # name -> per-token loss (logp, logp_old, adv, mask) -> (B, T), with the preset's parameters
    "token clip (S10), ε 0.2, dual c 3": lambda lp, old, a, m: token_clip_loss(lp, old, a, m, 0.2, 0.2, 3.0)[0],
    "GSPO turn ratio (S12), ε 3e-2/4e-2": lambda lp, old, a, m: gspo_loss(
        lp, old, a, m, preset_config("gspo").clip_low, preset_config("gspo").clip_high)[0],
    "soft SAPO gate (S14), τ 1/1.05": lambda lp, old, a, m: soft_sapo_loss(
        lp, old, a, m, preset_config("soft_sapo").tau_pos, preset_config("soft_sapo").tau_neg)[0],
    "CISPO (S15), ε_l 1, ε_h 0.2": lambda lp, old, a, m: cispo_loss(
        lp, old, a, m, preset_config("cispo").clip_low, preset_config("cispo").clip_high)[0],
}


def kappa(loss_fn, log_ratio: torch.Tensor, adv: float) -> torch.Tensor:
    """Per-token gradient weight kappa for rows of tokens with the given log-ratios (B, T)."""
    logp_old = torch.full_like(log_ratio, math.log(0.5))
    logp = (logp_old + log_ratio).requires_grad_(True)
    adv_rows = torch.full((log_ratio.shape[0],), adv, dtype=log_ratio.dtype)
    loss = loss_fn(logp, logp_old, adv_rows, torch.ones_like(log_ratio))  # (B, T)
    (grad,) = torch.autograd.grad(loss.sum(), logp)  # each token's own loss: d l_t / d logp_t
    return -grad / adv


ratios = torch.linspace(0.02, 4.0, 500, dtype=torch.float64)  # avoids the exact boundaries (ties, docs/algorithms/grpo.md#key-equations)
one_token = ratios.log().unsqueeze(1)  # (B, 1): one token per row, so GSPO's s equals w
curves = {(name, a): kappa(fn, one_token, a).squeeze(1) for name, fn in SURROGATES.items() for a in (1.0, -1.0)}

probe = [0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 3.5]
print("kappa at ratio w (one-token rows, so GSPO's turn ratio s = w):")
for a in (1.0, -1.0):
    print(f"\nA = {a:+g}   " + "".join(f"{w:>8g}" for w in probe))
    for name, fn in SURROGATES.items():
        values = kappa(fn, torch.tensor(probe, dtype=torch.float64).log().unsqueeze(1), a).squeeze(1)
        print(f"  {name:36s}" + "".join(f"{v + 0.0:8.4f}" for v in values))  # + 0.0: print -0 as 0

# %% [markdown]
# Checks against the tables of docs/dimensions.md#which-tokens-get-exactly-zero-gradient: the token clip's zero regions, and soft SAPO's reference
# values (which were worked out independently of the code).

# %%
token = "token clip (S10), ε 0.2, dual c 3"
on_policy = torch.tensor([[0.0]], dtype=torch.float64)
for (name, a), values in curves.items():
    assert abs(kappa(SURROGATES[name], on_policy, a).item() - 1.0) < 1e-9, f"{name}: kappa(w=1) must be 1"
k_pos, k_neg = curves[token, 1.0], curves[token, -1.0]
assert torch.all(k_pos[ratios > 1.2] == 0) and torch.allclose(k_pos[ratios < 1.2], ratios[ratios < 1.2])
assert torch.all(k_neg[ratios < 0.8] == 0) and torch.all(k_neg[ratios > 3.0] == 0)  # clip and dual clip
inside = (ratios > 0.8) & (ratios < 3.0)
assert torch.allclose(k_neg[inside], ratios[inside])
sapo_w = torch.tensor([0.5, 0.8, 1.0, 1.2, 2.0, 3.0], dtype=torch.float64)
sapo_pos = kappa(SURROGATES["soft SAPO gate (S14), τ 1/1.05"], sapo_w.log().unsqueeze(1), 1.0).squeeze(1)
sapo_neg = kappa(SURROGATES["soft SAPO gate (S14), τ 1/1.05"], sapo_w.log().unsqueeze(1), -1.0).squeeze(1)
assert torch.allclose(sapo_pos, torch.tensor([0.4700, 0.7921, 1, 1.1881, 1.5729, 1.2599], dtype=torch.float64), atol=1e-4)
assert torch.allclose(sapo_neg, torch.tensor([0.4671, 0.7912, 1, 1.1869, 1.5362, 1.1663], dtype=torch.float64), atol=1e-4)
cispo = curves["CISPO (S15), ε_l 1, ε_h 0.2", 1.0]
assert torch.allclose(cispo, ratios.clamp(max=1.2)) and torch.all(cispo > 0)
print("checked: kappa(1) = 1 for all; token-clip zero regions; soft SAPO = docs/algorithms/soft_sapo.md#key-equations table; CISPO = min(w, 1.2)")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
for ax, a in zip(axes, (1.0, -1.0)):
    ax.plot(ratios, ratios, color="lightgrey", ls="--", label="w (unclipped importance weight)")
    for (name, sign), values in curves.items():
        if sign == a:
            ax.plot(ratios, values, label=name, lw=1.6)
    ax.axvline(1.0, color="black", lw=0.5)
    ax.set(title=f"A {'> 0' if a > 0 else '< 0'}", xlabel="ratio w = π_θ / π_old  (GSPO: turn ratio s)",
           ylabel="per-token gradient weight κ", ylim=(-0.05, 2.2))
axes[0].legend(fontsize=8, loc="upper left")
fig.suptitle("how far each surrogate lets a token's gradient through, as the policy drifts")
fig.tight_layout()
fig.savefig(OUT / "kappa.png", dpi=100)
print("wrote", OUT / "kappa.png")

# %% [markdown]
# Read the figure:
#
# * **Token clip.** For $A>0$, $\kappa=w$ up to $1+\varepsilon_h$, then 0: once a good token's
#   probability has risen 20 %, it stops pushing. For $A<0$, 0 below $1-\varepsilon_l$ (already
#   pushed down enough) and, through the **dual clip**, 0 above $c=3$: a bad token whose
#   probability has tripled no longer gets a gradient $\propto w$ that grows without bound.
# * **GSPO.** The token clip's shape, but on the turn's ratio $s$, in a band a few percent wide,
#   and with **no dual clip**: for $A<0$ the weight $\kappa=s$ keeps growing with the ratio.
# * **Soft SAPO.** No cliff: $\kappa$ rises with $w$, peaks and decays smoothly, never exactly 0.
#   ARLArena calls such schemes "tolerant".
# * **CISPO.** $\kappa=\min(w,1.2)$: the weight is bounded, but no token with $A\neq0$ ever loses its
#   gradient.
#
# ## Token vs turn: one drifting token in a turn of eight
#
# GSPO's ratio is the geometric mean over the turn,
# $\log s_j=\frac1{L_j}\sum_t\log w_{j,t}$ (S11), and every token of the turn gets $\kappa=s_j$ or
# 0 together. Take a turn of 8 tokens where seven stay near ratio 1 and token 0 drifts to $w_0$:

# %%
L = 8
gen = torch.Generator().manual_seed(0)
others = 0.005 * torch.randn(L - 1, generator=gen, dtype=torch.float64)  # log-ratios of tokens 1..7, near 0
w0 = torch.linspace(0.3, 3.0, 271, dtype=torch.float64)
rows = torch.cat([w0.log().unsqueeze(1), others.expand(len(w0), L - 1)], dim=1)  # (B, L)
turn_kappa = {name: kappa(SURROGATES[name], rows, 1.0) for name in (token, "GSPO turn ratio (S12), ε 3e-2/4e-2")}
seq_ratio = rows.mean(1).exp()  # s_j of each row (S11)

print(f"A = +1, a turn of {L} tokens; token 0 at ratio w0, tokens 1-7 within 1 ± 1%:")
print(f"{'w0':>5} {'s (S11)':>8}   {'token clip κ_0':>14} {'κ_1..7 mean':>11}   {'GSPO κ_0':>9} {'κ_1..7 mean':>11}")
for target in (0.5, 1.1, 1.3, 2.0):
    i = int((w0 - target).abs().argmin())
    tc, gs = turn_kappa[token][i], turn_kappa["GSPO turn ratio (S12), ε 3e-2/4e-2"][i]
    print(f"{w0[i]:5.2f} {seq_ratio[i]:8.4f}   {tc[0] + 0.0:14.4f} {tc[1:].mean():11.4f}   {gs[0] + 0.0:9.4f} "
          f"{gs[1:].mean() + 0.0:11.4f}")
i = int((w0 - 2.0).abs().argmin())
assert turn_kappa[token][i, 0] == 0 and turn_kappa[token][i, 1:].min() > 0.95  # token clip: only token 0 stops
assert torch.all(turn_kappa["GSPO turn ratio (S12), ε 3e-2/4e-2"][i] == 0)  # GSPO: the whole turn stops
i = int((w0 - 1.3).abs().argmin())
assert turn_kappa[token][i, 0] == 0 and turn_kappa["GSPO turn ratio (S12), ε 3e-2/4e-2"][i, 0] > 1  # and vice versa

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, name in zip(axes, turn_kappa):
    ax.plot(w0, turn_kappa[name][:, 0], label="token 0 (drifting)", lw=1.8)
    ax.plot(w0, turn_kappa[name][:, 1:].mean(1), label="tokens 1-7 (mean)", lw=1.8, ls="--")
    ax.set(title=name.split(",")[0], xlabel="ratio of token 0, w0", ylabel="κ (A > 0)")
    ax.legend(fontsize=8)
ax_s = axes[1].twiny()  # the turn ratio that GSPO actually clips on
ax_s.set_xlim(*axes[1].get_xlim())
ticks = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
ax_s.set_xticks(ticks, [f"{t ** (1 / L) * math.exp(others.sum() / L):.3f}" for t in ticks], fontsize=7)
ax_s.set_xlabel("turn ratio s (S11)", fontsize=8)
fig.suptitle(f"one drifting token in a turn of {L}: the token clip stops that token, GSPO the whole turn")
fig.tight_layout()
fig.savefig(OUT / "token_vs_turn.png", dpi=100)
print("wrote", OUT / "token_vs_turn.png")

# %% [markdown]
# The geometric mean dilutes one token's drift by $1/L$: at $w_0=1.3$ the turn ratio is only
# $1.3^{1/8}\approx1.033$, inside GSPO's band, so token 0 keeps its gradient where the token clip
# already stopped it. At $w_0=2$ the turn ratio leaves the band and GSPO stops **all eight**
# tokens, while the token clip stops token 0 alone. Because the turn ratio of a long answer moves
# so little, GSPO's $\varepsilon$ is one to two orders of magnitude smaller than the token clip's.
#
# **The loss value means nothing here.** Soft SAPO's value at $w=1$ is $-2A/\tau$ and CISPO's is
# $-A\log\pi$; only the gradient is comparable across surrogates (docs/algorithms/soft_sapo.md#key-equations, docs/algorithms/cispo.md#key-equations).
