"""``sampo-ref eval``: evaluate a trained run or a model on held-out games, per task and category.

    sampo-ref eval runs/grpo-coin-L1-s0-…                 the run's final policy (else its last checkpoint)
    sampo-ref eval tiny --family coin treasure --level 1 2  the warm-started tiny policy, per family × level
    sampo-ref eval ./my-model --games 128 --temperature 0   any save_pretrained model, greedy
    sampo-ref eval Qwen/Qwen3-0.6B --family coin            a hub id (cached or reachable)
    sampo-ref eval runs/alfworld-sampo-… --split valid_unseen  ALFWorld, success per task type

One episode per held-out game (group size 1), with sampling settings of its own (default: the
validation protocol of docs/alfworld.md#2-the-testbed, temperature 0.6, top-p 0.95, top-k 20). Results: a markdown
table on stdout and a JSON file (default ``eval.json`` in the run directory, or ``--out``).
The held-out games are those of training (same seeds), so a run and its evaluation agree.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from sampo_ref.config import ConfigError, TrainConfig, model_problem


@dataclass
class EvalConfig:
    target: tyro.conf.Positional[str]
    """A run directory (holding config.json), 'tiny', a save_pretrained directory or a hub id."""
    family: list[str] = field(default_factory=list)
    """Toy families to evaluate; default: the run's own (or coin for a model)."""
    level: list[int] = field(default_factory=list)
    """Toy levels to evaluate; default: the run's own (or 1 for a model)."""
    split: str = ""
    """ALFWorld: valid_seen or valid_unseen; default: the run's eval_split."""
    games: int = 0
    """Held-out games per task; 0 = the run's eval_games (64 for a model; ALFWorld: 0 = the whole split)."""
    temperature: float = 0.6
    """Sampling temperature; 0 = greedy."""
    top_p: float = 0.95
    """Nucleus sampling."""
    top_k: int = 20
    """Top-k sampling (0 = off)."""
    seed: int | None = None
    """Seed of the evaluation's sampling; default: the run's seed (so a run's final held-out figure is reproduced), else 0."""
    out: str = ""
    """JSON file to write; default: <run>/eval.json for a run, else eval.json."""
    device: str = "auto"
    """auto, cpu, cuda or mps."""


def run_config(target: str) -> TrainConfig | None:
    """The config of ``target`` if it is a run directory; None if it is a model ('tiny', a
    save_pretrained folder, a hub id). A folder is a model when its config.json names a model_type."""
    if model_problem(target) is None:
        return None
    if (Path(target) / "config.json").is_file():
        return TrainConfig.read(Path(target))
    raise ConfigError(f"target={target!r} is not allowed: expected a run directory (it holds config.json), "
                      f"or a model: {model_problem(target)}")


def _policy_dir(run_dir: Path) -> Path:
    """A run's final policy, else the policy of its last checkpoint."""
    from sampo_ref import checkpoint

    if (run_dir / "policy" / "config.json").exists():
        return run_dir / "policy"
    ckpt = checkpoint.latest(run_dir)
    if ckpt is None:
        raise ConfigError(f"target={str(run_dir)!r} holds no policy/ and no checkpoint; expected a run that trained")
    return ckpt / "policy"


def summarise(trajs: list, categories: list[str]) -> dict[str, dict]:
    """Success, return, turns and valid-action ratio over all trajectories and, if there are
    several categories (ALFWorld's task types), per category."""
    from sampo_ref.setup import episode_metrics

    def stats(ts: list) -> dict:
        m = episode_metrics(ts)
        return {"episodes": len(ts), **{k: m[k] for k in ("success", "return", "turns", "valid_action")}}

    out = {"all": stats(trajs)}
    for cat in sorted(set(categories)) if len(set(categories)) > 1 else ():
        out[cat] = stats([tau for tau, c in zip(trajs, categories) if c == cat])
    return out


def run_eval(ec: EvalConfig) -> dict:
    """Evaluate ``ec.target`` on every requested family × level; returns the JSON-able results."""
    from sampo_ref.policy import load_policy, pick_device
    from sampo_ref.setup import evaluate, make_policy, make_task

    target = Path(ec.target)
    run = run_config(ec.target)
    is_run = run is not None
    base = run or TrainConfig(model=ec.target, eval_games=64)
    settings = dict(eval_temperature=ec.temperature, eval_top_p=ec.top_p, eval_top_k=ec.top_k, device=ec.device,
                    eval_games=ec.games or base.eval_games, run_dir=None)  # eval writes no run files
    if base.env == "alfworld":  # one task, broken down by task type
        splits = {f"alfworld-{ec.split or base.eval_split}": dict(eval_split=ec.split or base.eval_split)}
    else:
        splits = {f"{f}-L{lv}": dict(family=f, level=lv) for f in ec.family or [base.family] for lv in ec.level or [base.level]}
    seed = base.seed if ec.seed is None and is_run else ec.seed or 0
    dataclasses.replace(base, **settings).validate()  # the device and sampling settings, before any work
    device = pick_device(ec.device)
    policy_path = str(_policy_dir(target)) if is_run else ec.target
    policy = load_policy(policy_path, device) if is_run else None
    results = {"target": ec.target, "run": is_run, "policy": policy_path,
               "sampling": {"temperature": ec.temperature, "top_p": ec.top_p, "top_k": ec.top_k, "seed": seed},
               "tasks": {}}
    for name, where in splits.items():
        cfg = dataclasses.replace(base, **settings, **where)
        cfg.validate()
        task = make_task(cfg)
        pol = policy or make_policy(cfg, task, device)
        _, trajs = evaluate(pol, task, task.eval_pool, cfg, seed=seed)
        results["tasks"][name] = summarise(trajs, [task.category(tau.task) for tau in trajs])
    return results


def table(results: dict) -> str:
    """The results as a markdown table, one row per task and category."""
    lines = ["| task | category | episodes | success | return | turns | valid actions |", "|---|---|---|---|---|---|---|"]
    for task, cats in results["tasks"].items():
        for cat, s in cats.items():
            lines.append(f"| {task} | {cat} | {s['episodes']} | {s['success']:.1%} | {s['return']:.3g} | "
                         f"{s['turns']:.1f} | {s['valid_action']:.1%} |")
    return "\n".join(lines)


def main(ec: EvalConfig) -> Path:
    """Evaluate, print the table, write the JSON; returns the JSON path."""
    results = run_eval(ec)
    target = Path(ec.target)
    out = Path(ec.out) if ec.out else (target / "eval.json" if results["run"] else Path("eval.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\nresults: {out}")
    return out
