"""Checkpoint and resume: 2 + 2 iterations with a resume equal 4 straight ones; a killed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import USER_CACHE
from sampo_ref.checkpoint import read_metrics
from sampo_ref.config import TrainConfig
from sampo_ref.trainer import train

SMALL = dict(train_games=16, eval_games=4, tasks_per_iter=2, group_size=4, mini_batch_size=32, micro_batch_size=16,
             eval_every=0, progress=False, seed=1)


def comparable(metrics: list[dict]) -> list[dict]:
    """Everything but wall-clock times."""
    return [{k: v for k, v in m.items() if not k.startswith("time/")} for m in metrics]


def test_two_plus_two_with_resume_equals_four(tmp_path, user_cache):
    straight = train(TrainConfig(**SMALL, iterations=4, run_dir=str(tmp_path / "straight")))
    train(TrainConfig(**SMALL, iterations=2, save_every=2, run_dir=str(tmp_path / "split")))
    resumed = train(TrainConfig(**SMALL, iterations=4, save_every=2, run_dir=str(tmp_path / "split")), resume=True)
    a = load_file(tmp_path / "straight" / "policy" / "model.safetensors")
    b = load_file(tmp_path / "split" / "policy" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert comparable(read_metrics(tmp_path / "split" / "metrics.jsonl")) == comparable(straight.metrics)
    assert comparable(resumed.metrics) == comparable(straight.metrics)


def test_a_resumed_run_keeps_the_memory_knobs(tmp_path, user_cache, monkeypatch):
    """The policy reloaded from a checkpoint gets the run's memory knobs again (gradient
    checkpointing: the ALFWorld presets turn it on)."""
    from sampo_ref import trainer

    cfg = dict(SMALL, gradient_checkpointing=True, save_every=1, run_dir=str(tmp_path / "run"))
    train(TrainConfig(**cfg, iterations=1))
    seen, update = [], trainer.update
    monkeypatch.setattr(trainer, "update", lambda policy, *args: seen.append(policy.model.is_gradient_checkpointing)
                        or update(policy, *args))
    train(TrainConfig(**cfg, iterations=2), resume=True)
    assert seen == [True]


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items() if k != "progress"]
    cmd = [sys.executable, "-m", "sampo_ref.cli", "train", *flags, "--no-progress", "--iterations=5",
           "--save-every=1", f"--run-dir={run_dir}"]
    env = dict(os.environ)  # the user's cache, as in the fixture above
    if USER_CACHE is None:
        env.pop("SAMPO_REF_CACHE", None)
    else:
        env["SAMPO_REF_CACHE"] = USER_CACHE
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run_dir / "checkpoints" / "latest"
    deadline = time.time() + 300
    while time.time() < deadline and not (latest.exists() and latest.read_text().strip() == "it-000002"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-iteration 3
    proc.wait()
    assert latest.read_text().strip() in ("it-000002", "it-000003")
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"iteration": 3, "rollout/succ')  # as if killed in the middle of a write
    subprocess.run([*cmd[:3], "train", f"--resume={run_dir}"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    records = read_metrics(run_dir / "metrics.jsonl")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # every line parses
    assert [r["iteration"] for r in records if "rollout/success" in r] == [1, 2, 3, 4, 5]  # each exactly once
    assert (run_dir / "policy" / "model.safetensors").exists() and Path(run_dir / "learning_curve.png").exists()
