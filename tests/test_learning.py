"""Learning: the default toy experiment learns within 6 iterations, and every variant (one
preset per code path) improves within a few.

The default experiment (``sampo``, coin level 4, the default warm start): ``LEARN_RUN``, its first
6 iterations, run seed 3; "learning" = the success of the training rollouts (every generated
episode, sampled at temperature 1) rises by ``MIN_DEFAULT_GAIN`` from iterations 1-2 to 5-6,
and their valid-action ratio over 5-6 is ``MIN_DEFAULT_VALID`` or more. The margins come from run
seeds 0-2 and build seeds 1-2 (``benchmarks/seeds.py``, ``benchmarks/testbed.py``; table in
docs/results.md, "The learning test"), none of which the test runs.

The variant test: ``VARIANT_RUN``, 8 iterations of each preset on coin level 1 with a 10-turn
limit, run seed 0, from the random-action warm start (``VARIANT_RUN``'s ``tiny``) and without the
invalid-action cost (that start and c_adv together drift into valid no-op loops,
docs/results.md); "improving" = the success of the training rollouts rises by
``MIN_VARIANT_GAIN`` from iterations 1-2 to 7-8 (128 or more episodes each: a 32-game evaluation
before and after was too noisy to assert on). The margin comes from ``python tests/test_learning.py 1 2``
(every variant, seeds 1 and 2; table in docs/results.md).
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from sampo_ref.presets import DEFAULT_PRESET
from sampo_ref.presets import preset_config
from sampo_ref.trainer import train
from conftest import use_user_cache

# one preset per code path: each algorithm file, seq-mean aggregation, the DAPO filter, the sequence mask
VARIANTS = ["grpo", "grpo_st", "soft_sapo", "cispo", "gspo", "gigpo", "empg", "dapo_grpo", "sampo", "sapo", "grpo_sm"]
# the variants start from the cheap random-action warm start (6,000 examples, 16 games: built in
# under a minute), which wins few coin-1 games: room to improve in 8 iterations
VARIANT_RUN = dict(family="coin", level=1, max_turns=10, invalid_adv_penalty=0.0, iterations=8, train_games=32, eval_games=4, tasks_per_iter=8,
                   group_size=8, mini_batch_size=128, micro_batch_size=128, cold_start_steps=1, eval_every=0,
                   save_every=0, samples=0, tensorboard=False, progress=False,
                   tiny=["warm_start=random", "warm_start_games=16", "warm_start_examples=6000"])
MIN_VARIANT_GAIN = 0.10  # the smallest measured rise over seeds 1-2 was +0.26 (grpo), CISPO and soft SAPO aside
# (6 iterations were too few: seed 0 rose by 0.03-0.09 for three variants whose seeds 1-2 rose by 0.25 or more)
VARIANT_WINDOWS = range(1, 3), range(7, 9)  # iterations 1-2 and 7-8
# CISPO collapsed on seed 2 (rollout success 0.10 → 0.00) and soft SAPO fell on seed 1 (0.32 → 0.27):
# the tolerant-clipping collapse of the paper's Finding 1; no gain is asserted for them, only a finished run
NO_GAIN_ASSERTED = {"cispo", "soft_sapo"}


LEARN_RUN = dict(iterations=6, eval_games=16, eval_every=0, seed=3, progress=False)
MIN_DEFAULT_GAIN = 0.20  # the smallest measured rise over run seeds 0-2 and build seeds 1-2 was +0.355
MIN_DEFAULT_VALID = 0.85  # the lowest measured mean over iterations 5-6 was 0.904
DEFAULT_WINDOWS = range(1, 3), range(5, 7)  # iterations 1-2 and 5-6


def rollout_mean(metrics: list[dict], key: str, iterations: range) -> float:
    return sum(m[key] for m in metrics if m.get("iteration") in iterations and key in m) / len(iterations)


@pytest.mark.slow
def test_default_experiment_learns(tmp_path, user_cache):
    """6 iterations of ``sampo-ref train``'s configuration: the task of the docs, the run
    directory the README promises, and training rollouts that win more and name listed commands."""
    cfg = preset_config(DEFAULT_PRESET, **LEARN_RUN, run_dir=str(tmp_path / "run"))
    assert (cfg.algo, cfg.family, cfg.level, cfg.train_games) == ("sampo", "coin", 4, 64)
    result = train(cfg)
    for name in ("config.json", "metrics.jsonl", "learning_curve.png", "samples.txt", "policy/config.json"):
        assert (result.run_dir / name).exists(), name
    first, last = (rollout_mean(result.metrics, "rollout/success_all", its) for its in DEFAULT_WINDOWS)
    assert last - first >= MIN_DEFAULT_GAIN, f"rollout success, iterations 1-2 → 5-6: {first:.2f} → {last:.2f}"
    valid = rollout_mean(result.metrics, "rollout/valid_action", DEFAULT_WINDOWS[1])
    assert valid >= MIN_DEFAULT_VALID, f"rollout valid actions, iterations 5-6: {valid:.2f}"


def variant_gain(preset: str, seed: int, run_dir: str) -> tuple[float, float]:
    """Success of the training rollouts (every generated episode, 64 or more per iteration),
    iterations 1-2 and 7-8 of a short run."""
    result = train(preset_config(preset, **VARIANT_RUN, seed=seed, run_dir=run_dir))
    return tuple(rollout_mean(result.metrics, "rollout/success_all", its) for its in VARIANT_WINDOWS)


def variant_gains(seed: int, root: Path, workers: int = 2) -> dict[str, tuple[float, float]]:
    """``variant_gain`` of every variant, in ``workers`` fresh processes of one torch thread each
    (on 2 cores, about twice as fast as one process; each run is the same as it would be alone)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # read by torch when the spawned workers import it
        ctx = multiprocessing.get_context("spawn")  # never fork a process that has started OpenMP threads
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = {p: pool.submit(variant_gain, p, seed, str(root / f"{p}-s{seed}")) for p in VARIANTS}
            return {p: f.result() for p, f in futures.items()}


@pytest.fixture(scope="module")
def gains(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        use_user_cache(mp)
        return variant_gains(0, tmp_path_factory.mktemp("variants"))


@pytest.mark.slow
@pytest.mark.parametrize("preset", VARIANTS)
def test_variant_improves(preset, gains):
    first, last = gains[preset]
    if preset in NO_GAIN_ASSERTED:
        assert 0.0 <= first <= 1.0 and 0.0 <= last <= 1.0, f"{preset}: no success rate ({first}, {last})"
        return
    assert last - first >= MIN_VARIANT_GAIN, f"{preset}: rollout success, iterations 1-2 → 7-8: {first:.2f} → {last:.2f}"


if __name__ == "__main__":  # the margin's measurement: every variant × seeds 1-2 (or the seeds given)
    import tempfile

    seeds = [int(s) for s in sys.argv[1:]] or [1, 2]
    runs = {s: variant_gains(s, Path(tempfile.mkdtemp())) for s in seeds}
    print("| preset | " + " | ".join(f"seed {s}: iterations 1-2 → 7-8" for s in seeds) + " | smaller gain |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for p in VARIANTS:
        cells = [f"{runs[s][p][0]:.2f} → {runs[s][p][1]:.2f}" for s in seeds]
        print(f"| {p} | " + " | ".join(cells) + f" | {min(b - a for a, b in (runs[s][p] for s in seeds)):+.2f} |")
