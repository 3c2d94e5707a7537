"""``sampo-ref``: the command line.

    sampo-ref train [--preset NAME] [--FIELD VALUE …]   train (no arguments: the toy demo)
    sampo-ref train --resume RUN_DIR                   continue a run from its last checkpoint
    sampo-ref eval RUN_OR_MODEL [--family …] [--level …]  held-out success per task and category (JSON + table)
    sampo-ref list                                     presets and their choice on the four axes
    sampo-ref plot RUN [RUN …] [--out comparison.png]  learning curves side by side (mean ± std over seeds)
    sampo-ref bench [rollout|update|limits] [flags]    speed: rollout loops, update, GPU against its limits

Every flag of ``train`` is a field of ``sampo_ref.config.TrainConfig`` (``--help`` lists them with
their symbols and equations); ``--preset`` starts from a named preset and the flags override it.
``python -m toy_envs.baselines`` measures random and walkthrough success of the toy tasks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import tyro

from sampo_ref.config import ConfigError, TrainConfig

DEFAULT_PRESET = "sampo"  # the default run: docs/results.md "The default: SAMPO vs GRPO" (3 seeds each)


def train(argv: list[str]) -> None:
    """Train a policy; writes config.json, metrics.jsonl, learning_curve.png, samples.txt and the policy."""
    from sampo_ref.presets import PRESETS, preset_config
    from sampo_ref.trainer import train as run

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default=DEFAULT_PRESET)
    pre.add_argument("--resume", default=None)
    known, rest = pre.parse_known_args(argv)
    try:
        if known.resume:  # the run's own config; flags may still change e.g. --iterations
            config_file = Path(known.resume) / "config.json"
            if not config_file.exists():
                raise ConfigError(f"resume={known.resume!r}: no config.json there; expected a run directory")
            base = TrainConfig.from_dict({**json.loads(config_file.read_text()), "run_dir": known.resume})
        else:
            base = preset_config(known.preset)
        cfg = tyro.cli(TrainConfig, default=base, args=rest, prog="sampo-ref train",
                       description=f"Presets (--preset, default {DEFAULT_PRESET}): {', '.join(PRESETS)}. "
                                   "--resume RUN_DIR continues a run from its last checkpoint.")
        start = time.perf_counter()
        result = run(cfg, resume=bool(known.resume))
    except ConfigError as err:
        sys.exit(f"sampo-ref train: {err}")
    minutes = (time.perf_counter() - start) / 60
    b, a = result.eval_before, result.eval_after
    tb, ta = result.train_before, result.train_after
    print(
        f"\n{known.preset} ({cfg.algo}) on {cfg.family} level {cfg.level}, seed {cfg.seed}: "
        f"{cfg.iterations} iterations in {minutes:.1f} min\n"
        f"  held-out success   {b['eval/success']:6.1%} → {a['eval/success']:6.1%}   ({cfg.eval_games} unseen games)\n"
        f"  training games     {tb['eval/success']:6.1%} → {ta['eval/success']:6.1%}   ({cfg.train_games} games)\n"
        f"  valid actions      {b['eval/valid_action']:6.1%} → {a['eval/valid_action']:6.1%}\n"
        f"  run directory      {result.run_dir}"
    )


def list_presets(argv: list[str]) -> None:
    """Print every preset's choice on the four ARLArena axes."""
    from sampo_ref.presets import table

    print(table())


def plot(argv: list[str]) -> None:
    """Plot several runs side by side; runs differing only in the seed become mean ± std."""
    from sampo_ref.plots import plot_runs

    parser = argparse.ArgumentParser(prog="sampo-ref plot", description=plot.__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--out", type=Path, default=Path("comparison.png"), help="PNG to write")
    args = parser.parse_args(argv)
    try:
        print(plot_runs(args.runs, args.out))
    except FileNotFoundError as err:
        sys.exit(f"sampo-ref plot: {err}")


def evaluate(argv: list[str]) -> None:
    """Evaluate a run or a model on held-out games, per task and category (sampo_ref/evaluation.py)."""
    from sampo_ref.evaluation import EvalConfig, main as run

    try:
        run(tyro.cli(EvalConfig, args=argv, prog="sampo-ref eval"))
    except ConfigError as err:
        sys.exit(f"sampo-ref eval: {err}")


def bench(argv: list[str]) -> None:
    """Speed benchmarks (docs/performance.md): ``rollout`` (the default), ``update`` or ``limits``."""
    from sampo_ref.bench import RolloutBench, UpdateBench, bench_rollout, bench_update
    from sampo_ref.bench_limits import LimitsBench, bench_limits

    benches = {"rollout": (RolloutBench, bench_rollout), "update": (UpdateBench, bench_update),
               "limits": (LimitsBench, bench_limits)}
    name, args = (argv[0], argv[1:]) if argv and not argv[0].startswith("-") else ("rollout", argv)
    if name not in benches:
        sys.exit(f"sampo-ref bench: unknown benchmark {name!r}; expected one of {list(benches)}")
    config_type, run = benches[name]
    run(tyro.cli(config_type, args=args, prog=f"sampo-ref bench {name}"))


COMMANDS = {"train": train, "eval": evaluate, "list": list_presets, "plot": plot, "bench": bench}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        sys.exit(__doc__ if not argv or argv[0] in ("-h", "--help") else
                 f"sampo-ref: unknown command {argv[0]!r}; expected one of {list(COMMANDS)}\n{__doc__}")
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
