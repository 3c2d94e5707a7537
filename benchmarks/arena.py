"""The arena at toy scale: the paper's main-table presets × several seeds on coin level 4, from a weaker warm start.

    .venv/bin/python benchmarks/arena.py                      # the arena of docs/arena.md (10 presets × 5 seeds)
    .venv/bin/python benchmarks/arena.py --presets grpo cispo --seeds 0 --iterations 2 --out runs/arena-dry --report runs/arena-dry/report

Each (preset, seed) trains in its own run directory ``OUT/<preset>-s<seed>`` through
``sampo_ref.presets.preset_config`` and ``sampo_ref.trainer.train``, in ``--workers`` processes of
``--threads`` torch threads each (default 2 × 1). A run whose directory already holds a finished run is skipped, so a killed
arena is resumed by running the same command again (an unfinished run restarts from its last
checkpoint, or from scratch if it has none).

Afterwards it writes, into ``--report`` (default docs/img/arena):

* ``results.md``: one row per preset (mean ± std over seeds) under the collapse rule of ``collapsed``,
  then each preset against GRPO (``versus_grpo``: the final held-out success difference, paired by seed,
  with a 95 % bootstrap interval) beside the direction of the paper's ALFWorld row;
* ``results.json``: the per-run summaries, the comparison, the arena config, the command and the wall time;
* ``success.png``: held-out and training-rollout success per preset, mean ± std over seeds;
* ``versus_grpo.png``: each preset's difference to GRPO with its interval, and the paper's direction;
* ``kl_split.png``: k3 KL to the reference split by advantage sign × ratio direction (Finding 2);
* ``stability.png``: the largest gradient norm of each rollout's updates and the valid-format ratio.

``--report-only`` rebuilds the report from the run directories without training.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

# The paper's table in its order (docs/dimensions.md#presets), then Search-Agent SAPO, then the sequence-masked extras (Finding 3).
PRESETS = ["grpo", "grpo_st", "soft_sapo", "cispo", "gspo", "gigpo", "empg", "dapo_grpo", "dapo_gigpo", "sampo",
           "sapo", "grpo_sm", "soft_sapo_sm", "cispo_sm"]
MAIN = PRESETS[:10]  # the rows of the paper's main table: the default arena

# The direction of each row's ALFWorld success against GRPO's in the paper's main table (arXiv 2602.21534,
# [ARL] public/table.png; relative change in %): what the arena's comparison is read against.
PAPER_VS_GRPO = {"grpo_st": 16.4, "soft_sapo": -59.7, "cispo": -12.7, "gspo": 26.1, "gigpo": 30.0, "empg": -7.1,
                 "dapo_grpo": -20.5, "dapo_gigpo": -2.9, "sampo": 48.7}

# Shared by every arena run on top of each preset (which sets only its four axes): the default toy
# experiment (coin level 4, 20-turn limit, 8 tasks × 8 copies, 128 held-out games, c_adv = 0.1) with
# 64-row mini-batches (twice the default's optimiser steps per rollout), shortened to ``iterations``
# and evaluated every 5, from a weaker warm start (``tiny``: 85 % of the imitation examples from
# random play instead of 50 %). Why, mechanism by mechanism, in docs/arena.md#the-setting-and-why.
ARENA = dict(iterations=20, eval_every=5, save_every=5, mini_batch_size=64, samples=1, progress=False, device="cpu",
             tiny=["random_share=0.85"])
# Finding 3: each sequence-masked preset against the same preset without the mask. The paper's main table
# has no masked rows; its Finding 3, "sequence masking → fix" for the tolerant surrogates, is the direction.
UNMASKED = {"grpo_sm": "grpo", "soft_sapo_sm": "soft_sapo", "cispo_sm": "cispo"}
PAPER_MASK = {"soft_sapo_sm": "↑", "cispo_sm": "↑"}
BOOTSTRAP = 10_000  # resamples of the seeds for each interval

KL_BINS = {  # metrics.jsonl key → bin of the KL-to-reference split of docs/metrics.md
    "kl_ref/pos_up": "A>0, ratio up",
    "kl_ref/pos_down": "A>0, ratio down",
    "kl_ref/neg_up": "A≤0, ratio up",
    "kl_ref/neg_down": "A≤0, ratio down",
}

# The collapse rule (docs/arena.md). A run collapsed when any of these holds:
# * fell: its final held-out success lies at least COLLAPSE_DROP below its best held-out success and
#   below COLLAPSE_SHARE of it (it learned, then lost most of it);
# * dead: its last COLLAPSE_LAST training rollouts won no episode at all (the arena's warm start wins
#   about 4 % of its training rollouts' episodes in iterations 1-2, ``first_rollouts_success`` in
#   docs/img/arena/results.json; a policy that still wins 3 % of them wins none of 3 × 64 with
#   probability ≈ 3e-3);
# * format: a training rollout's valid-format ratio fell below COLLAPSE_FORMAT.
COLLAPSE_DROP, COLLAPSE_SHARE, COLLAPSE_LAST, COLLAPSE_FORMAT = 0.2, 0.5, 3, 0.5


def run_dir(out: Path, preset: str, seed: int) -> Path:
    return out / f"{preset}-s{seed}"


def final_train_games(records: list[dict]) -> dict | None:
    """A run's last record, the final evaluation on the training games; None while it is unfinished."""
    return next((r for r in reversed(records) if r.get("final") and "train_games/success" in r), None)


def finished(records: list[dict]) -> bool:
    """A run is finished when its last record, the final evaluation on the training games, was written."""
    return final_train_games(records) is not None


def run_one(out: Path, preset: str, seed: int, overrides: dict) -> tuple[str, int, float, str]:
    """Train (preset, seed) in its directory; returns (preset, seed, seconds, 'trained' | 'resumed' | 'skipped')."""
    from sampo_ref import checkpoint
    from sampo_ref.presets import preset_config
    from sampo_ref.trainer import train

    start = time.perf_counter()
    path = run_dir(out, preset, seed)
    records = checkpoint.read_metrics(path / "metrics.jsonl")
    if finished(records):
        return preset, seed, 0.0, "skipped"
    resume = checkpoint.latest(path) is not None
    if path.exists() and not resume:  # killed before its first checkpoint: start again
        shutil.rmtree(path)
    train(preset_config(preset, **{**ARENA, **overrides, "seed": seed, "run_dir": str(path)}), resume=resume)
    return preset, seed, time.perf_counter() - start, "resumed" if resume else "trained"


def _init_worker(threads: int) -> None:
    """Worker initialiser: ``threads`` intra-op torch threads; no per-model progress bars under the arena's."""
    import torch
    from transformers.utils import logging

    torch.set_num_threads(threads)
    logging.disable_progress_bar()


def run_all(out: Path, presets: list[str], seeds: list[int], overrides: dict, workers: int,
            threads: int = 1) -> dict[tuple, float]:
    """Every (preset, seed) not yet finished, across ``workers`` processes of ``threads`` torch threads each,
    with a progress bar over runs; returns each run's seconds (0 for a run that was already finished)."""
    from tqdm import tqdm

    os.environ["OMP_NUM_THREADS"] = str(threads)  # inherited by the workers before they import torch
    jobs = [(p, s) for p in presets for s in seeds]  # in the order given: a stopped arena has its first presets
    seconds = {}
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(threads,)) as pool:
        # the workers are forked at the first submit, before the bar exists: a forked copy of the bar
        # would be redrawn, frozen at 0, whenever a worker prints a warning with tqdm.write
        futures = [pool.submit(run_one, out, p, s, overrides) for p, s in jobs]
        bar = tqdm(total=len(jobs), unit="run")
        for future in as_completed(futures):
            preset, seed, secs, how = future.result()
            seconds[(preset, seed)] = secs
            bar.set_postfix_str(f"{preset} s{seed} {how} {secs / 60:.1f} min")
            bar.update()
        bar.close()
    return seconds


# --- summaries ------------------------------------------------------------------------------------


def _series(records: list[dict], key: str) -> list[float]:
    return [r[key] for r in records if r.get(key) is not None and np.isfinite(r[key])]


def _finite_max(values) -> float:
    """The largest finite value, NaN when there is none (a KL bin can be empty in every iteration)."""
    return max((v for v in values if np.isfinite(v)), default=float("nan"))


def summarize(records: list[dict]) -> dict:
    """One run's row: held-out success (initial, final, best), stability extremes, KL split extremes."""
    evals = [r for r in records if "eval/success" in r]
    if not evals or not evals[-1].get("final"):
        raise ValueError(f"a run needs a final held-out evaluation; got {len(evals)} evaluation record(s) without one")
    best = max(r["eval/success"] for r in evals)
    final = evals[-1]["eval/success"]
    grad = _series(records, "actor/grad_norm_max")  # each iteration's largest step
    out = {
        "initial": evals[0]["eval/success"],
        "final": final,
        "best": best,
        "best_iteration": next(r["iteration"] for r in evals if r["eval/success"] == best),
        "drop": final - best,
        "grad_norm_max": _finite_max(grad),
        "grad_norm_median": float(np.median(grad or [float("nan")])),  # the typical iteration: a maximum can be one spike
        "skipped_steps": sum(_series(records, "actor/skipped_steps")),
        "valid_format_min": min(_series(records, "rollout/valid_format"), default=float("nan")),
        "last_rollouts_success": float(np.mean(_series(records, "rollout/success")[-COLLAPSE_LAST:] or [float("nan")])),
        "final_valid_action": evals[-1]["eval/valid_action"],
        # what the filter changes (Finding 5): every generated episode's success in the first two
        # iterations, and the share of trained groups whose returns were all equal
        "first_rollouts_success": float(np.mean(_series(records, "rollout/success_all")[:2] or [float("nan")])),
        "uniform_groups_mean": float(np.mean(_series(records, "groups/uniform_return") or [float("nan")])),
        "final_train_games": (final_train_games(records) or {}).get("train_games/success", float("nan")),
    }
    for key in KL_BINS:
        out[f"{key}_max"] = _finite_max(_series(records, key))
        out[f"{key}_mean"] = float(np.mean(_series(records, key) or [float("nan")]))
    out["collapsed"] = collapsed(out)
    return out


def collapsed(summary: dict) -> bool:
    """The collapse rule: success fell far from its peak, or the last rollouts won nothing, or the format broke."""
    fell = summary["best"] - summary["final"] >= COLLAPSE_DROP and summary["final"] < COLLAPSE_SHARE * summary["best"]
    dead = summary["last_rollouts_success"] == 0
    return bool(fell or dead or summary["valid_format_min"] < COLLAPSE_FORMAT)


def _count(runs: list[dict], predicate) -> str:
    """How many of the runs' summaries satisfy ``predicate``, as ``k/n``."""
    return f"{sum(bool(predicate(s)) for s in runs)}/{len(runs)}"


def _mean_std(values: list[float], fmt: str) -> str:
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return "–"
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{format(float(np.mean(values)), fmt)} ± {format(sd, fmt)}"


def table(summaries: dict[str, list[dict]]) -> str:
    """The results table in markdown: one row per preset, mean ± std over its seeds."""
    has_kl = any(np.isfinite(s["kl_ref/neg_down_max"]) for runs in summaries.values() for s in runs)
    head = ["preset", "seeds", "held-out success, final", "best", "final − best", "collapsed", "ended below start",
            "max grad norm", "max grad norm, median iteration", "min valid format", "valid actions, final"]
    if has_kl:
        head += ["max KL-ref, A≤0 & ratio down", "max KL-ref, other bins"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for preset, runs in summaries.items():
        cells = [preset, str(len(runs)),
                 _mean_std([s["final"] for s in runs], ".1%"),
                 _mean_std([s["best"] for s in runs], ".1%"),
                 _mean_std([100 * s["drop"] for s in runs], ".1f") + " pt",
                 _count(runs, lambda s: s["collapsed"]),
                 _count(runs, lambda s: s["final"] < s["initial"]),
                 _mean_std([s["grad_norm_max"] for s in runs], ".2f"),
                 _mean_std([s["grad_norm_median"] for s in runs], ".2f"),
                 _mean_std([s["valid_format_min"] for s in runs], ".1%"),
                 _mean_std([s["final_valid_action"] for s in runs], ".1%")]
        if has_kl:
            others = [_finite_max(s[f"{k}_max"] for k in KL_BINS if k != "kl_ref/neg_down") for s in runs]
            cells += [_mean_std([s["kl_ref/neg_down_max"] for s in runs], ".3f"), _mean_std(others, ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_bootstrap(diffs: list[float], resamples: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the per-seed differences and its 95 % percentile-bootstrap interval (seeds resampled
    with replacement, ``resamples`` times, from a fixed generator: the report is reproducible)."""
    d = np.asarray(diffs, dtype=float)
    means = np.random.default_rng(seed).choice(d, size=(resamples, len(d)), replace=True).mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(low), float(high)


def direction(low: float, high: float) -> str:
    """↑ when the whole interval lies above zero, ↓ when below, ≈ when it holds zero (not resolved)."""
    return "↑" if low > 0 else "↓" if high < 0 else "≈"


def compare(per_run: dict[str, dict[str, dict]], reference: dict[str, str], paper: dict[str, str]) -> dict[str, dict]:
    """Each preset's final held-out success minus its ``reference`` preset's on the seeds both ran, with
    its bootstrap interval, beside the paper's direction (``paper``: preset → ↑ or ↓); presets without a
    seed in common with their reference are left out."""
    out = {}
    for preset, base in reference.items():
        runs, base_runs = per_run.get(preset, {}), per_run.get(base, {})
        seeds = sorted(set(runs) & set(base_runs), key=lambda s: int(s[1:]))
        if not seeds:
            continue
        mean, low, high = paired_bootstrap([runs[s]["final"] - base_runs[s]["final"] for s in seeds])
        ours = direction(low, high)
        expected = paper.get(preset)
        out[preset] = {"reference": base, "seeds": seeds, "diff": mean, "low": low, "high": high, "ours": ours,
                       "paper": expected, "agrees": None if expected is None or ours == "≈" else ours == expected}
    return out


def versus_grpo(per_run: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """``compare`` against GRPO, next to the paper's ALFWorld direction and relative change."""
    out = compare(per_run, {p: "grpo" for p in per_run if p != "grpo"},
                  {p: "↑" if r > 0 else "↓" for p, r in PAPER_VS_GRPO.items()})
    for preset, c in out.items():
        c["paper_relative"] = PAPER_VS_GRPO.get(preset)
    return out


def versus_unmasked(per_run: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """``compare`` of each sequence-masked preset against its unmasked one (Finding 3)."""
    return compare(per_run, UNMASKED, PAPER_MASK)


def _agrees(c: dict) -> str:
    return {None: "not resolved" if c["paper"] else "–", True: "yes", False: "**no**"}[c["agrees"]]


def versus_table(per_run: dict[str, dict[str, dict]], comparison: dict[str, dict]) -> str:
    """The comparison in markdown, presets ranked by mean final held-out success (GRPO included)."""
    mean = {p: float(np.mean([s["final"] for s in runs.values()])) for p, runs in per_run.items()}
    lines = ["| rank | preset | held-out success, final | − GRPO (paired by seed) | 95 % bootstrap interval "
             "| ours | paper (ALFWorld success vs GRPO) | agrees |", "|---|---|---|---|---|---|---|---|"]
    for rank, preset in enumerate(sorted(mean, key=mean.get, reverse=True), 1):
        c = comparison.get(preset)
        if c is None:
            lines.append(f"| {rank} | {preset} | {mean[preset]:.1%} | – | – | – | – | – |")
            continue
        paper = "–" if c["paper"] is None else f"{c['paper']} {c['paper_relative']:+.1f} %"
        lines.append(f"| {rank} | {preset} | {mean[preset]:.1%} | {100 * c['diff']:+.1f} pt | "
                     f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}] pt | {c['ours']} | {paper} | {_agrees(c)} |")
    rows = [c for c in comparison.values() if c["paper"] is not None]
    resolved = [c for c in rows if c["agrees"] is not None]
    lines.append(f"\nThe paper's direction is reproduced on {sum(c['agrees'] for c in resolved)} of {len(rows)} rows "
                 f"against GRPO; {len(resolved)} of the {len(rows)} intervals exclude zero.")
    return "\n".join(lines)


def unmasked_table(per_run: dict[str, dict[str, dict]], comparison: dict[str, dict]) -> str:
    """Finding 3 in markdown: each masked preset beside its unmasked one (final success, collapsed runs)."""
    def cells(preset):
        runs = list(per_run[preset].values())
        return _mean_std([s["final"] for s in runs], ".1%"), _count(runs, lambda s: s["collapsed"])

    lines = ["| preset | held-out success, final | collapsed | without the mask | final | collapsed "
             "| mask − no mask (paired by seed) | 95 % bootstrap interval | ours | paper (Finding 3) | agrees |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for preset, c in comparison.items():
        lines.append(f"| {preset} | {' | '.join(cells(preset))} | {c['reference']} | {' | '.join(cells(c['reference']))} "
                     f"| {100 * c['diff']:+.1f} pt | [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}] pt | {c['ours']} "
                     f"| {c['paper'] or '–'} | {_agrees(c)} |")
    return "\n".join(lines)


# --- figures --------------------------------------------------------------------------------------


def _curves(runs: list[list[dict]], key: str) -> tuple[list[int], np.ndarray]:
    """Iterations every seed logged ``key`` at, and the values as (seeds, iterations)."""
    per_run = [{r["iteration"]: r[key] for r in records if r.get(key) is not None and np.isfinite(r[key])}
               for records in runs]
    iters = sorted(set.intersection(*(set(c) for c in per_run))) if per_run else []
    return iters, np.array([[c[i] for i in iters] for c in per_run]).reshape(len(per_run), len(iters))


def _band(ax, runs: list[list[dict]], key: str, label: str, spread: str = "std", **style) -> None:
    """Mean over seeds with a band: ± std (``spread="std"``) or the seeds' min to max (``"range"``, for
    log scales, where mean − std can be negative); nothing when no seed logged ``key``."""
    iters, values = _curves(runs, key)
    if not iters:
        return
    mean = values.mean(0)
    low, high = (mean - values.std(0), mean + values.std(0)) if spread == "std" else (values.min(0), values.max(0))
    line, = ax.plot(iters, mean, label=label, **style)
    ax.fill_between(iters, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def _grid(n: int, title: str, sharey: bool = False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-n // 5)  # at most 5 panels a row, the rows filled evenly (6 presets: 2 × 3)
    cols = -(-n // rows)
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), sharex=True, sharey=sharey, squeeze=False)
    axes.flat[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations (shared x): whole numbers
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    return plt, fig, list(axes.flat)


def _save(plt, fig, axes, path: Path) -> None:
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_success(runs: dict[str, list[list[dict]]], path: Path, subtitle: str) -> None:
    """One panel per preset: held-out and training-rollout success (mean ± std), GRPO's held-out for reference."""
    plt, fig, axes = _grid(len(runs), f"Success per preset, mean ± std over seeds — {subtitle}")
    for ax, (preset, seeds) in zip(axes, runs.items()):
        if "grpo" in runs and preset != "grpo":
            iters, values = _curves(runs["grpo"], "eval/success")
            ax.plot(iters, values.mean(0), color="0.6", linestyle="--", label="grpo, held-out")
        _band(ax, seeds, "rollout/success", "training rollouts", color="tab:blue")
        _band(ax, seeds, "eval/success", "held-out games", color="tab:red", marker="o", markersize=3)
        ax.set(title=f"{preset} ({len(seeds)} seed{'s' * (len(seeds) > 1)})", ylim=(-0.02, 1.02), xlabel="iteration")
    _save(plt, fig, axes, path)


def plot_versus(comparison: dict[str, dict], path: Path, title: str) -> None:
    """Each preset's difference to its reference (points, 95 % bootstrap intervals) and the paper's direction (arrows)."""
    plt, fig, axes = _grid(1, title)
    fig.set_size_inches(8, 0.45 * len(comparison) + 1.6)
    ax = axes[0]
    names = list(comparison)[::-1]
    for y, preset in enumerate(names):
        c = comparison[preset]
        ax.errorbar(100 * c["diff"], y, xerr=[[100 * (c["diff"] - c["low"])], [100 * (c["high"] - c["diff"])]],
                    fmt="o", color="tab:blue", capsize=3, label="ours: mean, 95 % interval" if y == 0 else None)
        if c["paper"] is not None:
            ax.annotate(c["paper"], (1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=11,
                        color="tab:green" if c["paper"] == "↑" else "tab:red")
    ax.axvline(0, color="0.5", linewidth=1)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("percentage points (right margin: the paper's direction)")
    ax.xaxis.set_major_locator(plt.MaxNLocator())
    _save(plt, fig, axes, path)


def plot_kl_split(runs: dict[str, list[list[dict]]], path: Path, subtitle: str) -> None:
    """One panel per preset: k3 KL to the reference in the four bins of docs/metrics.md (mean, seeds' range, log scale)."""
    plt, fig, axes = _grid(len(runs), f"k3 KL to the reference by advantage sign × ratio direction (mean, band: "
                                      f"seeds' min–max) — {subtitle}",
                           sharey=True)
    colors = ["tab:green", "tab:olive", "tab:purple", "tab:red"]
    for ax, (preset, seeds) in zip(axes, runs.items()):
        for (key, name), color in zip(KL_BINS.items(), colors):
            _band(ax, seeds, key, name, spread="range", color=color)
        ax.set(title=preset, yscale="log", xlabel="iteration")
    _save(plt, fig, axes, path)


def plot_stability(runs: dict[str, list[list[dict]]], path: Path, subtitle: str) -> None:
    """Per-iteration extremes that announce a collapse in the paper: gradient norm and valid-format ratio."""
    plt, fig, axes = _grid(len(runs), f"Max gradient norm (left; band: seeds' min–max) and valid format "
                                      f"(right; ± std) — {subtitle}", sharey=True)
    for ax, (preset, seeds) in zip(axes, runs.items()):
        _band(ax, seeds, "actor/grad_norm_max", "max grad norm (before clipping)", spread="range", color="tab:orange")
        ax.set(title=preset, xlabel="iteration", yscale="log")
        twin = ax.twinx()
        _band(twin, seeds, "rollout/valid_format", "valid-format ratio", color="tab:gray")
        twin.set_ylim(0, 1.05)
        if ax is axes[0]:
            (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
            fig.legend(h1 + h2, l1 + l2, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- command line ---------------------------------------------------------------------------------


def report(out: Path, presets: list[str], seeds: list[int], overrides: dict, report_dir: Path, extra: dict) -> str:
    """Read every finished run, write the table, the JSON summary and the figures; returns the table."""
    from sampo_ref.checkpoint import read_metrics

    runs, per_run = {}, {}
    for preset in sorted(presets, key=PRESETS.index):  # the paper's order, whatever order they ran in
        by_seed = {s: read_metrics(run_dir(out, preset, s) / "metrics.jsonl") for s in seeds}
        by_seed = {s: records for s, records in by_seed.items() if finished(records)}
        if by_seed:
            runs[preset] = list(by_seed.values())
            per_run[preset] = {f"s{s}": summarize(records) for s, records in by_seed.items()}
    if not runs:
        raise SystemExit(f"no finished run under {out} for presets {presets} and seeds {seeds}")
    report_dir.mkdir(parents=True, exist_ok=True)
    cfg = {**ARENA, **overrides}
    preset, seed = next((p, s) for p, r in per_run.items() for s in r)
    trained = json.loads((run_dir(out, preset, int(seed[1:])) / "config.json").read_text())  # the task the runs had
    subtitle = f"{trained['family']} L{trained['level']}, {trained['iterations']} iterations"
    comparison, masked = versus_grpo(per_run), versus_unmasked(per_run)
    text = table({p: list(r.values()) for p, r in per_run.items()})
    if comparison:
        text += "\n\n" + versus_table(per_run, comparison)
    if masked:
        text += "\n\n" + unmasked_table(per_run, masked)
    (report_dir / "results.md").write_text(text + "\n")
    (report_dir / "results.json").write_text(json.dumps(
        {"arena": cfg, **extra, "collapse_rule": {"drop": COLLAPSE_DROP, "share": COLLAPSE_SHARE,
                                                  "last": COLLAPSE_LAST, "format": COLLAPSE_FORMAT},
         "bootstrap": {"resamples": BOOTSTRAP, "interval": "95 % percentile, seeds resampled", "seed": 0},
         "versus_grpo": comparison, "versus_unmasked": masked, "runs": per_run}, indent=1))
    plot_success(runs, report_dir / "success.png", subtitle)
    if comparison:
        plot_versus(comparison, report_dir / "versus_grpo.png",
                    f"Final held-out success minus GRPO's, paired by seed — {subtitle}")
    if masked:
        plot_versus(masked, report_dir / "versus_unmasked.png",
                    f"Final held-out success, sequence mask minus no mask, paired by seed — {subtitle}")
    plot_stability(runs, report_dir / "stability.png", subtitle)
    if any(k in r for seeds_ in runs.values() for records in seeds_ for r in records for k in KL_BINS):
        plot_kl_split(runs, report_dir / "kl_split.png", subtitle)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=MAIN, help=f"presets to run (default: the main table's; "
                        f"all: {' '.join(PRESETS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--workers", type=int, default=2, help="parallel runs (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--out", type=Path, default=Path("runs/arena"), help="parent of the run directories")
    parser.add_argument("--report", type=Path, default=Path("docs/img/arena"), help="where the table and figures go")
    parser.add_argument("--iterations", type=int, help=f"override ARENA iterations ({ARENA['iterations']})")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from finished runs")
    args = parser.parse_args(argv)
    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        raise SystemExit(f"--presets {unknown} is not allowed: expected names from {PRESETS}")
    overrides = {} if args.iterations is None else {"iterations": args.iterations}
    extra = {"command": shlex.join(["python", "benchmarks/arena.py", *(sys.argv[1:] if argv is None else argv)])}
    previous = args.report / "results.json"
    if args.report_only:
        if previous.exists():  # keep the command and wall time of the arena that trained the runs
            extra = {k: v for k, v in json.loads(previous.read_text()).items()
                     if k not in ("arena", "collapse_rule", "runs")}
    else:
        start = time.perf_counter()
        seconds = run_all(args.out, args.presets, args.seeds, overrides, args.workers, args.threads)
        trained = [s for s in seconds.values() if s > 0]
        extra.update(wall_minutes=(time.perf_counter() - start) / 60, runs_trained=len(trained),
                     run_minutes_mean=float(np.mean(trained)) / 60 if trained else None, workers=args.workers,
                     threads=args.threads, cpu_count=os.cpu_count())
        print(f"{len(trained)} runs trained in {extra['wall_minutes']:.1f} min wall "
              f"({args.workers} workers × {args.threads} threads; {len(seconds) - len(trained)} already finished)")
    print(report(args.out, args.presets, args.seeds, overrides, args.report, extra))


if __name__ == "__main__":
    main()
