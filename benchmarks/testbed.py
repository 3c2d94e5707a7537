"""Why the tiny agent does (not) learn a multi-turn toy task: short ablation runs, one table.

    .venv/bin/python benchmarks/testbed.py [ROW ...] [--seeds 0] [--level 3] [--iterations 12] [--list]

Each row changes one thing of the recipe (the tiny policy's build, ``TinyConfig``, or a training
flag, ``TrainConfig``) against the row ``base``, runs ``sampo-ref train`` with it (preset ``sampo``
unless the row names another) on coin (level ``--level``) and prints one markdown line: the
warm-started policy's held-out success and valid-action ratio (iteration 0, before RL), the same
after RL, and the wall time. The table and its reading are in docs/results.md ("Why the tiny
agent does not learn a multi-turn task (yet)").
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from sampo_ref import setup, trainer
from sampo_ref.presets import preset_config
from sampo_ref.tiny import TinyConfig

# name → (what it tests, TinyConfig overrides, TrainConfig overrides)
ROWS: dict[str, tuple[str, dict, dict]] = {
    "base": ("the recipe before this study: random-action warm-start, no invalid cost",
             dict(warm_start="random"), dict()),
    "random-long": ("random warm-start trained 3× longer (is the copy task under-trained?)",
                    dict(warm_start="random", warm_start_examples=18000), dict()),
    "random-big": ("random warm-start, 4× the parameters (hidden 256, 3 layers)",
                   dict(warm_start="random", hidden_size=256, layers=3, intermediate_size=768), dict()),
    "teacher": ("warm-start on the won episodes of the explorer teacher",
                dict(warm_start="teacher"), dict()),
    "teacher-e6": ("teacher warm-start trained 3× longer (6 epochs)",
                   dict(warm_start="teacher", warm_start_epochs=6), dict()),
    "teacher-g64": ("teacher warm-start on all 64 training games instead of the first 16",
                    dict(warm_start="teacher", warm_start_games=64), dict()),
    "teacher-g64-e4": ("teacher warm-start on 64 games, 4 epochs",
                       dict(warm_start="teacher", warm_start_games=64, warm_start_epochs=4), dict()),
    "teacher-mix": ("64 games; half the examples from the teacher's won episodes, half from random play",
                    dict(warm_start="teacher", warm_start_games=64, random_share=0.5), dict()),
    "teacher-mix-12k": ("as teacher-mix with 12,000 examples (6,000 of each)",
                        dict(warm_start="teacher", warm_start_games=64, random_share=0.5, warm_start_examples=12000),
                        dict()),
    "teacher-g64-c_adv": ("teacher-g64 + c_adv = 0.1",
                          dict(warm_start="teacher", warm_start_games=64), dict(invalid_adv_penalty=0.1)),
    "teacher-g64-c_adv-t06": ("teacher-g64-c_adv, rollouts sampled at temperature 0.6 instead of 1.0",
                              dict(warm_start="teacher", warm_start_games=64),
                              dict(invalid_adv_penalty=0.1, temperature=0.6)),
    "teacher-g64-c_adv-grpo": ("teacher-g64-c_adv with GRPO (token clip 0.2, no filter) instead of SAMPO",
                               dict(warm_start="teacher", warm_start_games=64),
                               dict(preset="grpo", invalid_adv_penalty=0.1)),
    "teacher-g64-c_adv05-grpo": ("teacher-g64-c_adv-grpo with c_adv = 0.5",
                                 dict(warm_start="teacher", warm_start_games=64),
                                 dict(preset="grpo", invalid_adv_penalty=0.5)),
}


def run(row: str, seed: int, level: int, iterations: int, root: Path, extra: dict, tiny_extra: dict) -> dict:
    _, tiny, flags = ROWS[row]
    flags = dict(flags)
    preset = flags.pop("preset", "sampo")
    tiny = {**tiny, **(tiny_extra if tiny.get("warm_start") == "teacher" and "teacher_noise" not in tiny else {})}
    cfg = preset_config(preset, family="coin", level=level, iterations=iterations, seed=seed, progress=False,
                        eval_every=0, save_every=0, tensorboard=False, run_dir=str(root / f"{row}-s{seed}"),
                        **{**flags, **extra})
    start = time.perf_counter()
    original = setup.TinyConfig  # the tiny policy is built in set-up (sampo_ref/setup.py)
    setup.TinyConfig = functools.partial(TinyConfig, **tiny)
    try:
        result = trainer.train(cfg)
    finally:
        setup.TinyConfig = original
    b, a = result.eval_before, result.eval_after
    return dict(row=row, seed=seed, before=b["eval/success"], valid_before=b["eval/valid_action"],
                after=a["eval/success"], valid_after=a["eval/valid_action"], minutes=(time.perf_counter() - start) / 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="*", default=list(ROWS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--eval-games", type=int, default=64)
    parser.add_argument("--teacher-noise", type=float, default=None, help="the teacher rows' noise (default: TinyConfig's)")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args()
    if args.list:
        for name, (what, tiny, flags) in ROWS.items():
            print(f"{name:14s} {what}   tiny={tiny} flags={flags}")
        return
    root = Path("runs") / f"testbed-{time.strftime('%Y%m%d-%H%M%S')}"
    print("| row | seed | warm-start held-out success | valid | after RL | valid | minutes |")
    print("|---|---|---|---|---|---|---|")
    for row in args.rows:
        for seed in args.seeds:
            tiny_extra = {} if args.teacher_noise is None else {"teacher_noise": args.teacher_noise}
            r = run(row, seed, args.level, args.iterations, root, dict(eval_games=args.eval_games), tiny_extra)
            print(f"| {row} | {seed} | {r['before']:.1%} | {r['valid_before']:.1%} | {r['after']:.1%} "
                  f"| {r['valid_after']:.1%} | {r['minutes']:.1f} |", flush=True)
            with open(root / "results.jsonl", "a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
