"""``sampo-ref``: the command line.

    sampo-ref train [--algo grpo] [--family coin] [--level 1] …   train (no arguments: the toy demo)
    sampo-ref bench [--envs 64]                                  rollout speed: batched vs one env at a time
    sampo-ref baselines [--games 32]                             random / walkthrough success per toy task

Every flag of ``train`` is a field of ``sampo_ref.config.TrainConfig``; ``--help`` lists them.
"""

from __future__ import annotations

import sys
import time

import tyro

from sampo_ref.config import ConfigError, TrainConfig


def train(cfg: TrainConfig) -> None:
    """Train a policy; writes config.json, metrics.jsonl, learning_curve.png, samples.txt and the policy."""
    from sampo_ref.trainer import train as run

    start = time.perf_counter()
    try:
        result = run(cfg)
    except ConfigError as err:
        sys.exit(f"sampo-ref train: {err}")
    minutes = (time.perf_counter() - start) / 60
    b, a = result.eval_before, result.eval_after
    tb, ta = result.train_before, result.train_after
    print(
        f"\n{cfg.algo} on {cfg.family} level {cfg.level}, seed {cfg.seed}: {cfg.iterations} iterations in {minutes:.1f} min\n"
        f"  held-out success   {b['eval/success']:6.1%} → {a['eval/success']:6.1%}   ({cfg.eval_games} unseen games)\n"
        f"  training games     {tb['eval/success']:6.1%} → {ta['eval/success']:6.1%}   ({cfg.train_games} games)\n"
        f"  valid actions      {b['eval/valid_action']:6.1%} → {a['eval/valid_action']:6.1%}\n"
        f"  run directory      {result.run_dir}"
    )


def main(argv: list[str] | None = None) -> None:
    from sampo_ref.bench import bench

    tyro.extras.subcommand_cli_from_dict(
        {"train": train, "bench": bench}, args=argv, config=(tyro.conf.OmitArgPrefixes,)
    )


if __name__ == "__main__":
    main()
