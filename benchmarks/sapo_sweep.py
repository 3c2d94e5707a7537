"""Search-Agent SAPO: a sweep of its two free parameters, t_kl and w_kl (Eq. S16).

    .venv/bin/python benchmarks/sapo_sweep.py [--t 0.5 0.8 0.95] [--w 0.01 0.1 1.0] [--seeds 0 1]

Neither value is given in any source the project has (docs/algorithms/sapo.md#key-equations), so the defaults in
``TrainConfig`` (t_kl = 0.8, w_kl = 0.1) are a project choice; this sweep is the evidence for it
(docs/algorithms/sapo.md). Every point trains the ``sapo`` preset on the arena's toy setting
(benchmarks/arena.py: the same task, batch and aggressive off-policy update), so the conditional
KL term has drift to act on. Runs go to ``--out/t<t>-w<w>/sapo-s<seed>``; finished runs are
skipped, so the command resumes. Prints a markdown table: held-out success (final, best), the
share of P's tokens the KL term touched (``actor/ckl_frac``) and the largest gradient norm.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import arena  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def point_dir(out: Path, t: float, w: float) -> Path:
    return out / f"t{t:g}-w{w:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t", type=float, nargs="+", default=[0.5, 0.8, 0.95], help="t_kl values")
    parser.add_argument("--w", type=float, nargs="+", default=[0.01, 0.1, 1.0], help="w_kl values")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/sapo-sweep"))
    args = parser.parse_args()
    grid = list(itertools.product(args.t, args.w))
    os.environ["OMP_NUM_THREADS"] = "1"
    start = time.perf_counter()
    from tqdm import tqdm

    with (ProcessPoolExecutor(args.workers, initializer=arena._init_worker, initargs=(1,)) as pool,
          tqdm(total=len(grid) * len(args.seeds), unit="run") as bar):
        futures = [pool.submit(arena.run_one, point_dir(args.out, t, w), "sapo", s, {"sapo_t_kl": t, "sapo_w_kl": w})
                   for s in args.seeds for t, w in grid]
        for future in as_completed(futures):
            future.result()
            bar.update()
    minutes = (time.perf_counter() - start) / 60

    from sampo_ref.checkpoint import read_metrics

    lines = ["| t_kl | w_kl | held-out success, final | best | KL term's share of P's tokens | max grad norm |",
             "|---|---|---|---|---|---|"]
    def cell(values: list[float], fmt: str) -> str:  # one seed: the value; several: mean ± std
        return format(values[0], fmt) if len(values) == 1 else arena._mean_std(values, fmt)

    for t, w in grid:
        runs = [read_metrics(arena.run_dir(point_dir(args.out, t, w), "sapo", s) / "metrics.jsonl") for s in args.seeds]
        sums = [arena.summarize(r) for r in runs]
        frac = [np.mean([m["actor/ckl_frac"] for m in r if "actor/ckl_frac" in m]) for r in runs]
        lines.append(f"| {t:g} | {w:g} | {cell([s['final'] for s in sums], '.1%')} | "
                     f"{cell([s['best'] for s in sums], '.1%')} | {cell(frac, '.1%')} | "
                     f"{cell([s['grad_norm_max'] for s in sums], '.2f')} |")
    print(f"\nSearch-Agent SAPO sweep on the arena setting, seeds {args.seeds}, {minutes:.1f} min wall "
          f"({args.workers} workers × 1 thread)\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
