"""What the tiny agent needs to learn a multi-turn toy task: ablation runs, one table.

    .venv/bin/python benchmarks/testbed.py [ROW ...] [--seeds 0] [--level 4] [--iterations 30]
                                           [--tiny KEY=VALUE ...] [--list]

Each row changes one thing of the default recipe (the tiny policy's build, ``TinyConfig``, or a
training flag, ``TrainConfig``) against the row ``teacher`` (the default), runs ``sampo-ref
train`` with it (preset ``sampo`` unless the row names another) on coin (level ``--level``) and
prints one markdown line: the warm-started policy's held-out success and valid-action ratio
(iteration 0, before RL), the same after RL, and the wall time. ``--iterations 0`` measures the
warm start alone; ``--tiny warm_start_lr=1e-3 seed=1`` adds ``TinyConfig`` changes to every
teacher row's ``tiny`` (a build of its own, cached under its own key). The table and its reading are in docs/results.md#what-the-tiny-agent-needed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sampo_ref import trainer
from sampo_ref.checks import ConfigError
from sampo_ref.presets import preset_config
from sampo_ref.tiny import tiny_config

# name → (what it tests, the tiny policy's recipe as TrainConfig.tiny's KEY=VALUE changes, TrainConfig overrides); every row trains with the
# project's defaults (the toy prompt without the room, c_adv = 0.1) unless it says otherwise
ROWS: dict[str, tuple[str, list[str], dict]] = {
    "random-6k": ("the variant test's start: imitate uniformly random actions, 6,000 examples from 16 games",
                  ["warm_start=random", "warm_start_games=16", "warm_start_examples=6000"], dict()),
    "random": ("imitate uniformly random actions, 18,000 examples from all 64 training games",
               ["warm_start=random"], dict()),
    "teacher-only": ("imitate the explorer's won episodes only (no random share)", ["random_share=0.0"], dict()),
    "teacher-only-lr3e-3": ("the earlier recipe: won episodes only, imitation at lr 3e-3",
                            ["random_share=0.0", "warm_start_lr=3e-3"], dict()),
    "teacher": ("the default: 18,000 examples from 64 games, half won episodes of the explorer, half random play; "
                "SAMPO, c_adv = 0.1", [], dict()),
    "teacher-build1": ("the default recipe, build seed 1 (TinyConfig.seed)", ["seed=1"], dict()),
    "teacher-build2": ("the default recipe, build seed 2", ["seed=2"], dict()),
    "teacher-no-cost": ("the default start, RL without any cost for invalid actions",
                        [], dict(invalid_adv_penalty=0.0)),
    "teacher-cinv": ("the default start, ARLArena's c_inv = 0.1 in the score (S1) instead of c_adv",
                     [], dict(invalid_adv_penalty=0.0, invalid_penalty=0.1)),
    "teacher-grpo": ("the default start and c_adv, GRPO instead of SAMPO",
                     [], dict(preset="grpo")),
    "teacher-grpo-cinv": ("GRPO with ARLArena's c_inv = 0.1 instead of c_adv",
                          [], dict(preset="grpo", invalid_adv_penalty=0.0, invalid_penalty=0.1)),
}


def run(row: str, seed: int, level: int, iterations: int, root: Path, extra: dict, tiny_extra: list[str]) -> dict:
    _, tiny, flags = ROWS[row]
    flags = dict(flags)
    preset = flags.pop("preset", "sampo")
    teacher = tiny_config(tiny).warm_start == "teacher"  # --tiny changes the teacher rows only
    cfg = preset_config(preset, family="coin", level=level, iterations=iterations, seed=seed, progress=False,
                        eval_every=0, save_every=0, tensorboard=False, run_dir=str(root / f"{row}-s{seed}"),
                        tiny=tiny + (tiny_extra if teacher else []), **{**flags, **extra})
    start = time.perf_counter()
    result = trainer.train(cfg)
    b, a = result.eval_before, result.eval_after
    return dict(row=row, seed=seed, before=b["eval/success"], valid_before=b["eval/valid_action"],
                after=a["eval/success"], valid_after=a["eval/valid_action"], minutes=(time.perf_counter() - start) / 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="*", default=list(ROWS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--level", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--eval-games", type=int, default=128)
    parser.add_argument("--tiny", nargs="+", default=[], metavar="KEY=VALUE",
                        help="changes to the recipe of every teacher row (TrainConfig.tiny), e.g. warm_start_lr=1e-3 seed=1")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args()
    if args.list:
        for name, (what, tiny, flags) in ROWS.items():
            print(f"{name:14s} {what}   tiny={tiny} flags={flags}")
        return
    try:
        tiny_config(args.tiny)  # a bad KEY=VALUE stops here, in one line
    except ConfigError as err:
        raise SystemExit(f"--{err}") from None
    Path("runs").mkdir(exist_ok=True)  # a folder of its own, even for two runs started in the same second
    root = Path(tempfile.mkdtemp(prefix=f"testbed-{time.strftime('%Y%m%d-%H%M%S')}-", dir="runs"))
    print("| row | seed | warm-start held-out success | valid | after RL | valid | minutes |")
    print("|---|---|---|---|---|---|---|")
    for row in args.rows:
        for seed in args.seeds:
            r = run(row, seed, args.level, args.iterations, root, dict(eval_games=args.eval_games), args.tiny)
            print(f"| {row} | {seed} | {r['before']:.1%} | {r['valid_before']:.1%} | {r['after']:.1%} "
                  f"| {r['valid_after']:.1%} | {r['minutes']:.1f} |", flush=True)
            with open(root / "results.jsonl", "a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
