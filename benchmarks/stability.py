"""A healthy run and a collapsing one, side by side (docs/stability.md).

    .venv/bin/python benchmarks/stability.py [--out runs/stability] [--figure docs/img/stability.png]

Both are the default toy experiment (GRPO, coin level 1, seed 0); the collapsing one adds
ARLArena's invalid-action penalty c_inv = 0.1, which with GRPO's σ-normalisation rewards every
valid turn of an all-fail group (docs/results.md) and drives the tiny policy into valid loops.
Finished runs are reused; then the figure is drawn and, per run, the first iteration at which
each collapse warning fired is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sampo_ref.checkpoint import read_metrics
from sampo_ref.diagnostics import KL_BINS
from sampo_ref.plots import plot_runs
from sampo_ref.presets import preset_config
from sampo_ref.trainer import train

RUNS = {"healthy": dict(), "collapse": dict(invalid_penalty=0.1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/stability"))
    parser.add_argument("--figure", type=Path, default=Path("docs/img/stability.png"))
    args = parser.parse_args()
    for name, overrides in RUNS.items():
        path = args.out / name
        if not any(r.get("final") for r in read_metrics(path / "metrics.jsonl")):
            train(preset_config("grpo", seed=0, run_dir=str(path), **overrides))
    print(plot_runs([args.out / name for name in RUNS], args.figure, "a healthy run and a collapsing one (GRPO, coin L1, seed 0)"))
    for name in RUNS:
        records = read_metrics(args.out / name / "metrics.jsonl")
        first = {}
        for r in records:
            for k in r:
                if k.startswith("warn/"):
                    first.setdefault(k[5:], r["iteration"])
        evals = [r["eval/success"] for r in records if "eval/success" in r]
        its = [r for r in records if "rollout/success" in r]

        def peak(key: str) -> float:
            return max(r[key] for r in its if key in r)

        print(f"{name}: held-out success {evals[0]:.1%} → {evals[-1]:.1%}; warnings (first iteration): "
              + (", ".join(f"{k} ({i})" for k, i in first.items()) or "none"))
        print(f"  groups with equal returns: max {peak('groups/uniform_return'):.1%}, last "
              f"{its[-1]['groups/uniform_return']:.1%}; entropy first → last {its[0]['actor/entropy_old']:.3f} → "
              f"{its[-1]['actor/entropy_old']:.3f}; valid actions last {its[-1]['rollout/valid_action']:.1%}")
        print("  largest KL to the reference per bin: " + ", ".join(f"{b} {peak(f'kl_ref/{b}'):.3f}" for b in KL_BINS))


if __name__ == "__main__":
    main()
