"""Learning curves of one or several runs, side by side (``sampo-ref plot RUN [RUN …]``).

Runs whose configs differ only in the seed are one *setting*: drawn as the mean across seeds
with a ± std band. Every run's own ``learning_curve.png`` is the same figure for that run alone.
"""

from __future__ import annotations

import json
import textwrap
from collections import defaultdict
from pathlib import Path

import numpy as np

from sampo_ref.checkpoint import read_metrics

PANELS = [  # (metric key, title)
    ("rollout/success", "success, training rollouts"),
    ("eval/success", "success, held-out games"),
    ("rollout/return", "episode return, training rollouts"),
    ("groups/uniform_return", "groups with equal returns (no signal)"),
    ("rollout/valid_action", "valid-action ratio"),
    ("actor/entropy_old", "policy entropy (nats/token)"),
    ("actor/grad_norm", "gradient norm (before clipping)"),
    ("actor/clipfrac", "clip fraction"),
    ("loss/kl", "k3 KL to the reference"),
]
NOT_SETTING = ("seed", "run_dir", "progress", "device", "config_version")  # fields that do not make a different setting


def _setting(run_dir: Path) -> dict:
    """A run's setting: its config without the seed and bookkeeping fields."""
    cfg = json.loads((run_dir / "config.json").read_text())
    return {k: v for k, v in cfg.items() if k not in NOT_SETTING}


def _labels(settings: list[dict]) -> list[str]:
    """'algo · family Ln' plus the fields in which the settings differ."""
    keys = dict.fromkeys(k for s in settings for k in s)  # runs of older versions may lack new fields
    differ = [k for k in keys if len({json.dumps(s.get(k)) for s in settings}) > 1
              and k not in ("algo", "family", "level")]
    return [f"{s['algo']} · {s['family']} L{s['level']}" + "".join(f", {k}={s.get(k)}" for k in differ)
            for s in settings]


def _curve(records: list[dict], key: str) -> dict[int, float]:
    return {r["iteration"]: r[key] for r in records if key in r and r[key] is not None and np.isfinite(r[key])}


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    """Draw the panels for ``run_dirs`` into ``out`` (PNG); returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw_runs(run_dirs, title)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def draw_runs(run_dirs: list[Path], title: str | None = None):
    """The figure of ``plot_runs``: nine metric panels, one line (or mean ± std band) per setting."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    settings: dict[str, list[list[dict]]] = defaultdict(list)  # setting → the metrics of its seeds
    for run_dir in run_dirs:
        if not (run_dir / "metrics.jsonl").exists() or not (run_dir / "config.json").exists():
            raise FileNotFoundError(f"{run_dir}: no metrics.jsonl and config.json; expected a run directory")
        settings[json.dumps(_setting(run_dir), sort_keys=True)].append(read_metrics(run_dir / "metrics.jsonl"))
    labels = dict(zip(settings, _labels([json.loads(k) for k in settings])))
    # 3 x 3 panels of 4.4 in each: readable at page width, full size on click (docs); legend below
    fig, axes = plt.subplots(3, 3, figsize=(13.2, 11))
    for ax, (metric, name) in zip(axes.flat, PANELS):
        for key, runs in settings.items():
            curves = [_curve(records, metric) for records in runs]
            iters = sorted(set.intersection(*(set(c) for c in curves)))
            if not iters:
                continue
            values = np.array([[c[i] for i in iters] for c in curves])  # (seeds, iterations)
            label = labels[key] + (f" ({len(runs)} seeds)" if len(runs) > 1 else "")
            line, = ax.plot(iters, values.mean(0), "o-" if metric.startswith("eval/") else "-", label=label,
                            markersize=3)
            if len(runs) > 1:
                ax.fill_between(iters, values.mean(0) - values.std(0), values.mean(0) + values.std(0),
                                color=line.get_color(), alpha=0.2)
        ax.set(title=name, xlabel="iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations are whole numbers
        low, high = ax.dataLim.intervalx
        if ax.lines and high - low < 2:  # one or two points: widen, or the locator falls back to fractions
            ax.set_xlim(low - 1, high + 1)
        if metric.endswith("success"):
            ax.set_ylim(-0.02, 1.02)
    handles, names = axes.flat[0].get_legend_handles_labels()
    # wrapped: a label listing several differing fields must not widen the figure
    legend = fig.legend(handles, [textwrap.fill(n, 60) for n in names], loc="lower center",
                        ncol=min(len(names), 3) or 1, fontsize=10, frameon=False)
    fig.suptitle(title or ", ".join(dict.fromkeys(labels.values())), fontsize=12)
    fig.canvas.draw()  # the legend's height, to leave room for it below the panels
    bottom = legend.get_window_extent().height / fig.get_window_extent().height + 0.01
    fig.tight_layout(rect=(0, bottom, 1, 0.98))
    return fig
