# %% [markdown]
# # Tutorial 6 — GRPO vs GSPO vs SAMPO: a small side-by-side run
#
# The previous tutorials took the methods apart; this one runs three of them end to end with the
# real trainer (`sampo_ref.trainer.train`) and draws their curves with `sampo_ref.plots`:
#
# * **GRPO**: group z-score advantage (S2), token clip with dual clip (S10), token-mean;
# * **GSPO**: the same advantage, one clipped ratio per turn (S11–S12), seq-mean-token-mean;
# * **SAMPO**: GiGPO's anchor-state advantage (S7) + GSPO's turn ratio + the DAPO filter that
#   drops groups whose returns are all equal (docs/algorithms/dynamic_sampling.md#the-rule), seq-mean-token-mean.
#
# **This is a demonstration, not a measurement.** Each run is tiny: 3 iterations of 4 games × 4
# copies, one seed. The whole tutorial costs about 80 s of CPU time on one core (79.9 s user +
# system, timed with `/usr/bin/time -v python tutorials/06_grpo_gspo_sampo.py` on a 2-core x86_64
# CPU, games and tiny policy cached); its wall time grows with whatever else the machine runs
# (17 min there, with other jobs at a load average of about 13). At this size the
# differences between the three are mostly noise; the runs show *how* to compare methods (same
# task, same seed, same budget, only the four axes differ), not which one wins. Measured
# comparisons (longer runs, several seeds, mean ± std) are made with `benchmarks/` and reported in
# `docs/results.md`.
#
# Needs the cached games and tiny policy (tutorial 3). Output: `$SAMPO_REF_TUTORIAL_OUT/06_comparison/`
# (a run directory per method and `comparison.png`).

# %%
import os
import time
from pathlib import Path

from sampo_ref.plots import plot_runs
from sampo_ref.presets import axes, preset_config
from sampo_ref.trainer import train

OUT = Path(os.environ.get("SAMPO_REF_TUTORIAL_OUT", "runs/tutorials")) / "06_comparison"
RUNS = OUT / time.strftime("%Y%m%d-%H%M%S")  # a fresh folder: the trainer never overwrites a run

# %% [markdown]
# ## The three presets
#
# A preset (`sampo_ref/presets.py`, `sampo-ref list`) fixes a method's choice on ARLArena's four
# axes; everything else (task, model, batch, optimiser, KL and entropy terms) is shared, so runs
# of different presets are comparable. We shrink the shared part only.

# %%
METHODS = ["grpo", "gspo", "sampo"]
SMALL = dict(iterations=3, tasks_per_iter=4, group_size=4, train_games=16, eval_games=8,
             eval_every=0, save_every=0, progress=False, seed=0)
configs = {name: preset_config(name, run_dir=str(RUNS / name), **SMALL) for name in METHODS}
for name, cfg in configs.items():
    print(f"{name}:")
    for axis, choice in axes(cfg).items():
        print(f"  {axis:17s} {choice}")

# %% [markdown]
# SAMPO's filter waits for a cold start of 2 iterations (the toy preset's share of ARLArena's
# 15 of 200), so in a 3-iteration run it acts on the last iteration only.
#
# ## Three short runs
#
# Each run evaluates the policy on its 16 training games and on 8 held-out games (unseen seeds)
# before and after training, and logs every iteration to `metrics.jsonl`.

# %%
results = {}
for name, cfg in configs.items():
    start = time.perf_counter()
    results[name] = train(cfg)
    print(f"{name}: {time.perf_counter() - start:.0f} s")

print(f"\n{'preset':6s} {'training games':>22s} {'held-out games':>22s} {'rollout success by iteration':>30s}")
for name, result in results.items():
    curve = [m["rollout/success"] for m in result.metrics if "rollout/success" in m]
    print(f"{name:6s} {result.train_before['eval/success']:10.0%} -> {result.train_after['eval/success']:4.0%}      "
          f"{result.eval_before['eval/success']:10.0%} -> {result.eval_after['eval/success']:4.0%}      "
          + " ".join(f"{s:.0%}" for s in curve))
    assert len(curve) == SMALL["iterations"]
    assert (result.run_dir / "metrics.jsonl").exists() and (result.run_dir / "learning_curve.png").exists()

# every run starts from the same tiny policy and is evaluated alike, so the "before" numbers agree
assert len({r.train_before["eval/success"] for r in results.values()}) == 1
assert len({r.eval_before["eval/success"] for r in results.values()}) == 1

filtered = [m for m in results["sampo"].metrics if any(k.startswith("filter/") for k in m)]
print("\nSAMPO's filter, per iteration where it acted:")
for m in filtered:
    print(f"  iteration {m['iteration']}: " + ", ".join(f"{k[7:]}={v:g}" for k, v in m.items() if k.startswith("filter/")))

# %% [markdown]
# ## When a run ends worse than it started
#
# A run can end *below* where it started, and at this size it sometimes does. On the machine this
# tutorial was written on (seed 0), GRPO ended at 12 % on its training games and 0 % held-out,
# from 50 % and 25 %, while GSPO and SAMPO rose. Two numbers per iteration say what happened:
# the share of answers in the `<action>…</action>` format, and the KL to the starting policy.

# %%
print(f"{'preset':6s} {'valid format by iteration':>28s} {'after (held-out)':>17s} {'k3 KL to the reference':>26s}")
for name, result in results.items():
    fmt = [m["rollout/valid_format"] for m in result.metrics if "rollout/valid_format" in m]
    kl = [m["loss/kl"] for m in result.metrics if "loss/kl" in m]
    print(f"{name:6s} {' '.join(f'{v:4.0%}' for v in fmt):>28s} {result.eval_after['eval/valid_format']:17.0%} "
          f"{' '.join(f'{v:.3f}' for v in kl):>26s}")

# %% [markdown]
# In that run GRPO's last update broke the answer format: the valid-format share fell from 98 % to
# 76 % in the last rollout and to 38 % at the final evaluation, and the KL to the reference jumped
# from 0.02 to 0.30 nats per token in one iteration. A malformed answer is an invalid turn, and a
# game of invalid turns is never won: that, not forgetting how to find the coin, is the 0 %.
#
# Why GRPO and not the others: with only 16 trajectories per iteration, a few optimiser steps at
# the toy learning rate can move the tokens of a turn far, and GRPO's token clip ($\varepsilon$ =
# 0.2, per token) lets each token's probability move by 20 % per step before it stops pushing.
# GSPO and SAMPO clip the *turn* ratio in a band 30× narrower ($3\cdot10^{-2}$ / $4\cdot10^{-2}$), so
# a whole turn stops moving as soon as its geometric-mean ratio leaves the band; their format
# stayed near 100 % and their KL below 0.07.
#
# This is the collapse pattern of the Troubleshooting page ("Training collapsed": valid format
# drops, KL to the reference climbs), seen in miniature. One seed of 3 iterations proves nothing
# about which method is better; what it teaches is what to look at when a run goes down: the
# valid-format ratio and the KL first, success last. On another machine the numbers differ
# (see the README on reproducibility), and GRPO may not fall at all; the printout above is this
# run's.
#
# ## Curves
#
# `plot_runs` draws the logged metrics side by side: success on training rollouts and held-out
# games, the valid-action ratio, the policy entropy, the gradient norm, the clip fraction and the
# KL to the reference. (`sampo-ref plot RUN RUN …` does the same from the command line, and with
# several seeds of one setting draws their mean ± std.)

# %%
figure = plot_runs([r.run_dir for r in results.values()], OUT / "comparison.png",
                   title="GRPO vs GSPO vs SAMPO, coin level 4: a 3-iteration demonstration, one seed")
print("wrote", figure)
try:  # in a notebook, show the saved figure inline (plot_runs draws off-screen, for the command line too)
    from IPython.display import Image, display
    display(Image(filename=str(figure)))
except ImportError:  # a plain script without IPython: the path above is the figure
    pass

# %% [markdown]
# What to look at, even in a run this short:
#
# * **Clip fraction.** GRPO's token clip and GSPO's turn clip count different things (tokens vs
#   whole turns), and GSPO's band is far narrower (tutorial 4). The first mini-batch of each
#   iteration is exactly on-policy (every ratio is 1, nothing is clipped); only the later ones,
#   taken after an optimiser step, can be clipped.
# * **SAMPO's filter.** When a group's 4 returns are all equal, its advantages are all zero and it
#   carries no policy gradient; the filter replaces it by rolling out again (logged as `filter/…`).
#
# To measure instead of demonstrate: `sampo-ref train --preset <name> --seed <s>` for several
# seeds at the default size (30 iterations of 8 × 8), then `sampo-ref plot` on the run directories.
