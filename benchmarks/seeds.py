"""Run the default toy experiment for several seeds and print the results table.

    .venv/bin/python benchmarks/seeds.py [--seeds 0 1 2] [--preset NAME] [extra sampo-ref train flags]

The preset defaults to the one ``sampo-ref train`` runs (``sampo``).

Prints one row per seed and the mean ± std, in markdown (the table in docs/results.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import tyro

from sampo_ref.presets import DEFAULT_PRESET
from sampo_ref.config import TrainConfig
from sampo_ref.presets import preset_config
from sampo_ref.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    args, extra = parser.parse_known_args()
    base = tyro.cli(TrainConfig, default=preset_config(args.preset), args=[a for a in extra if a != "--"])
    rows = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for seed in args.seeds:
        start = time.perf_counter()
        cfg = dataclasses.replace(base, seed=seed, progress=False,
                                  run_dir=f"runs/seeds-{stamp}/{args.preset}-{base.family}-L{base.level}-s{seed}")
        r = train(cfg)
        rows.append((seed, r.eval_before["eval/success"], r.eval_after["eval/success"],
                     r.eval_before["eval/valid_action"], r.eval_after["eval/valid_action"],
                     r.train_before["eval/success"], r.train_after["eval/success"], (time.perf_counter() - start) / 60))
        print(f"seed {seed} done: held-out {rows[-1][1]:.3f} -> {rows[-1][2]:.3f}", flush=True)
    print(f"\n{args.preset} ({base.algo}) on {base.family} level {base.level}, {base.iterations} iterations, "
          f"{base.train_games} training games, {base.eval_games} held-out games\n")
    print("| seed | held-out before | after | held-out valid actions before | after | training games before | after "
          "| minutes |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, *values, minutes in rows:
        print(f"| {seed} | " + " | ".join(f"{v:.1%}" for v in values) + f" | {minutes:.1f} |")

    def ms(i):
        values = [row[i] for row in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1%} ± {sd:.1%}"

    print("| mean ± std | " + " | ".join(ms(i) for i in range(1, 7)) + f" | {statistics.mean(r[7] for r in rows):.1f} |")


if __name__ == "__main__":
    main()
