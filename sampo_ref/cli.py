"""``sampo-ref``: the command line.

    sampo-ref train [--preset NAME | --algo NAME] [--FIELD VALUE …]   train (no arguments: the toy demo)
    sampo-ref train --resume RUN_DIR                   continue a run from its last checkpoint
    sampo-ref eval RUN_OR_MODEL [--family …] [--level …]  held-out success per task and category (JSON + table)
    sampo-ref list                                     presets and their choice on the four axes
    sampo-ref plot RUN [RUN …] [--out comparison.png]  learning curves side by side (mean ± std over seeds)
    sampo-ref bench [rollout|update|limits] [flags]    speed: rollout loops, update, GPU against its limits

Every flag of ``train`` is a field of ``sampo_ref.config.TrainConfig`` (``--help`` lists them with
their symbols and equations). The config is resolved by one chain (``sampo_ref.presets.resolve``):
base defaults → the method's → the preset's → the scale's (toy or ALFWorld, ``--env``) → flags;
``--preset NAME`` names a row of the table (``sampo-ref list``), ``--algo NAME`` the preset of that name.
``python -m toy_envs.baselines`` measures random and walkthrough success of the toy tasks.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import tyro

from sampo_ref.config import ConfigError, TrainConfig


def train(argv: list[str]) -> None:
    """Train a policy; writes config.json, metrics.jsonl, learning_curve.png, samples.txt and the policy."""
    from sampo_ref import checkpoint
    from sampo_ref.presets import DEFAULT_PRESET, PRESETS, resolve
    from sampo_ref.trainer import default_run_dir, train as run

    pre = argparse.ArgumentParser(add_help=False)  # the flags that choose the chain's layers
    for flag in ("--preset", "--algo", "--env", "--resume"):
        pre.add_argument(flag)
    known, rest = pre.parse_known_args(argv)
    try:
        if known.resume:  # the run's own config; flags may still change e.g. --iterations
            base = dataclasses.replace(TrainConfig.read(Path(known.resume)), run_dir=known.resume)
        else:
            base = resolve(algo=known.algo, preset=known.preset, env=known.env)
        cfg = tyro.cli(TrainConfig, default=base, args=rest, prog="sampo-ref train", description=(
            f"--preset NAME starts from a named preset (default {DEFAULT_PRESET}): {', '.join(PRESETS)}. "
            "--algo NAME starts from the preset of that name, --env toy|alfworld picks its scale; "
            "flags override the preset. --resume RUN_DIR continues a run from its last checkpoint."))
        cfg = dataclasses.replace(cfg, run_dir=cfg.run_dir or str(default_run_dir(cfg)))
        start = time.perf_counter()
        result = run(cfg, resume=bool(known.resume))
    except ConfigError as err:
        sys.exit(f"sampo-ref train: {err}")
    except KeyboardInterrupt:
        run_dir = Path(cfg.run_dir) if "cfg" in locals() else None
        if run_dir is None or not (run_dir / "config.json").exists():
            sys.exit("sampo-ref train: interrupted before the run started; nothing to resume")
        try:
            ckpt = checkpoint.latest(run_dir)
        except ConfigError:
            ckpt = None
        where = f"from its checkpoint {ckpt.name}" if ckpt else "from iteration 0 (no checkpoint yet)"
        sys.exit(f"sampo-ref train: interrupted; continue {where} with: sampo-ref train --resume {run_dir}")
    minutes = (time.perf_counter() - start) / 60
    if int(os.environ.get("RANK", "0")):  # under torchrun rank 0 reports
        return
    b, a = result.eval_before, result.eval_after
    tb, ta = result.train_before, result.train_after
    print(
        f"\n{cfg.preset or cfg.algo} ({cfg.algo}) on {cfg.family} level {cfg.level}, seed {cfg.seed}: "
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
    if argv[:1] in (["-h"], ["--help"]):
        print("usage: sampo-ref bench [NAME] [--FLAG VALUE …]   (sampo-ref bench NAME --help: its flags)\n")
        for name, (config_type, _) in benches.items():
            print(f"  {name:8} {config_type.__doc__.strip().splitlines()[0]}" + ("  (the default)" if name == "rollout" else ""))
        return
    name, args = (argv[0], argv[1:]) if argv and not argv[0].startswith("-") else ("rollout", argv)
    if name not in benches:
        sys.exit(f"sampo-ref bench: unknown benchmark {name!r}; expected one of {list(benches)}")
    config_type, run = benches[name]
    run(tyro.cli(config_type, args=args, prog=f"sampo-ref bench {name}"))


COMMANDS = {"train": train, "eval": evaluate, "list": list_presets, "plot": plot, "bench": bench}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)  # the help asked for: stdout, exit 0
        return
    if argv[0] not in COMMANDS:
        print(f"sampo-ref: unknown command {argv[0]!r}; expected one of {list(COMMANDS)} (sampo-ref --help)",
              file=sys.stderr)
        sys.exit(2)
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
