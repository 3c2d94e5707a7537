"""SAMPO: Stable Agentic Multi-turn Policy Optimization (ARLArena, X. Wang et al., arXiv 2602.21534).

SAMPO is not a new formula but a composition, "Sequence-level Clipping + Turn-level Advantage +
Dynamic Filtering" (ARLArena's overview figure, Part 4). This file therefore only imports:

* advantage: GiGPO (S3–S7), ``mean_std_norm``, ω = 1, γ = 0.95 — ``gigpo.advantages``;
* ratio / clipping: GSPO's turn-level ratio, token form (S11–S12), no dual clip — ``gspo.policy_loss``;
* aggregation: ``seq-mean-token-mean`` for every term (policy, KL, entropy; docs/algorithms/sampo.md);
* dynamic sampling: the DAPO filter (docs/algorithms/dynamic_sampling.md#the-rule) — ``dynamic_sampling.dynamic_sample``, always on
  (after ``cold_start_steps``).

Objective (S21): the GSPO surrogate on GiGPO advantages of the groups the filter keeps, minus
β·k3 plus c_H·entropy, all seq-mean-token-mean. ``tests/test_sampo.py`` checks that this file
gives exactly the numbers of its parts.

Docs page: ``docs/algorithms/sampo.md``.

Defaults and their sources (docs/algorithms/sampo.md, ``[ARL] examples/embody_agent_trainer/Qwen3-4B/train_sampo.sh``):
ε_l/ε_h = 3e-3/4e-3 (full scale; the toy preset uses wider values, see ``sampo_ref/presets.py``),
GiGPO mean_std_norm, ω = 1, γ = 0.95, β = 0.01, c_H = 0.001, filter with 3 batches and cold
start 15. The released ALFWorld script cannot run as released (no ``sampo`` estimator mapping in
the world-agent trainer); the definition follows ``[ARL] recipe/shop_agent/ppo/ray_trainer.py``.
"""

from sampo_ref.algos import dynamic_sampling, gigpo, gspo
from sampo_ref.algos.dynamic_sampling import dynamic_sample

# --8<-- [start:composition]
advantages, ADVANTAGE = gigpo.advantages, gigpo.ADVANTAGE  # turn-level (anchor-state) advantage
policy_loss, SURROGATE = gspo.policy_loss, gspo.SURROGATE  # sequence- (turn-) level clipping
PG_AGG = gspo.PG_AGG  # seq-mean-token-mean; DEFAULTS set the same mode for the KL and entropy terms
SEQ_MASK = False  # GSPO already clips whole turns
FILTER = dynamic_sample  # dynamic filtering is part of the definition: always on after the cold start
DEFAULTS = {**gigpo.DEFAULTS, **gspo.DEFAULTS, **dynamic_sampling.ARL, "loss_agg": "seq-mean-token-mean"}
# --8<-- [end:composition]
