"""Checkpoint and resume: 2 + 2 iterations with a resume equal 4 straight ones; a killed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import USER_CACHE
from sampo_ref.checkpoint import read_metrics
from sampo_ref.config import TrainConfig
from sampo_ref.trainer import train

TRAINS = pytest.mark.slow  # the tests that train (minutes on CPU); the checks of checkpoint files run in seconds

SMALL = dict(train_games=16, eval_games=4, tasks_per_iter=2, group_size=4, mini_batch_size=32, micro_batch_size=16,
             eval_every=0, progress=False, seed=1)


@pytest.fixture
def built(user_cache):
    """The games and the tiny policy of SMALL, made (or waited for, when another worker is making
    them) before a test starts a timed subprocess that needs them."""
    from sampo_ref.trainer import make_policy, make_task

    cfg = TrainConfig(**SMALL)
    make_policy(cfg, make_task(cfg), torch.device("cpu"))


def comparable(metrics: list[dict]) -> list[dict]:
    """Everything but wall-clock times."""
    return [{k: v for k, v in m.items() if not k.startswith("time/")} for m in metrics]


@TRAINS
def test_two_plus_two_with_resume_equals_four(tmp_path, user_cache, monkeypatch):
    """Also: resuming a finished run does nothing; a run killed before its first checkpoint restarts."""
    from sampo_ref import checkpoint

    straight = train(TrainConfig(**SMALL, iterations=4, run_dir=str(tmp_path / "straight")))
    split = tmp_path / "split"
    train(TrainConfig(**SMALL, iterations=2, save_every=2, run_dir=str(split)))
    files = {name: (split / name).read_bytes() for name in ("metrics.jsonl", "samples.txt")}
    again = train(TrainConfig(**SMALL, iterations=2, save_every=2, run_dir=str(split)), resume=True)  # finished
    assert {name: (split / name).read_bytes() for name in files} == files and again.eval_after
    resumed = train(TrainConfig(**SMALL, iterations=4, save_every=2, run_dir=str(split)), resume=True)
    a = load_file(tmp_path / "straight" / "policy" / "model.safetensors")
    b = load_file(split / "policy" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert comparable(read_metrics(split / "metrics.jsonl")) == comparable(straight.metrics)
    assert comparable(resumed.metrics) == comparable(straight.metrics)
    assert (split / "samples.txt").read_text() == (tmp_path / "straight" / "samples.txt").read_text()  # once each

    killed = tmp_path / "killed"

    def kill(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(checkpoint, "save", kill)
        with pytest.raises(KeyboardInterrupt):
            train(TrainConfig(**SMALL, iterations=2, save_every=2, run_dir=str(killed)))
    assert (killed / "metrics.jsonl").exists() and not (killed / "checkpoints").exists()
    restarted = train(TrainConfig(**SMALL, iterations=2, save_every=2, run_dir=str(killed)), resume=True)
    assert comparable(restarted.metrics) == comparable(read_metrics(killed / "metrics.jsonl"))
    assert (killed / "metrics.jsonl").read_text().count('"final": true') == 2  # each record once
    assert (killed / "samples.txt").read_bytes() == files["samples.txt"]


@TRAINS
def test_ctrl_c_says_how_to_resume(tmp_path, built):
    run_dir = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items() if k != "progress"]
    cmd = [sys.executable, "-m", "sampo_ref.cli", "train", *flags, "--no-progress", "--iterations=20",
           "--save-every=1", f"--run-dir={run_dir}"]
    # a shell's background job inherits SIGINT ignored, and Python then keeps ignoring it: restore it
    proc = subprocess.Popen(cmd, env=_user_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "checkpoints" / "latest").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"with: sampo-ref train --resume {run_dir}")


def _user_env() -> dict:
    """The environment of a subprocess that uses the user's cache, as the fixture does."""
    env = dict(os.environ)
    if USER_CACHE is None:
        env.pop("SAMPO_REF_CACHE", None)
    else:
        env["SAMPO_REF_CACHE"] = USER_CACHE
    return env


@TRAINS
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


@TRAINS
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, built):
    run_dir = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items() if k != "progress"]
    cmd = [sys.executable, "-m", "sampo_ref.cli", "train", *flags, "--no-progress", "--iterations=5",
           "--save-every=1", f"--run-dir={run_dir}"]
    env = _user_env()
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


class _Payload:
    """Unpickling this runs code (it creates a file): what weights_only=True must never do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _saved(tmp_path, small_policy) -> tuple[Path, torch.optim.Optimizer]:
    import random

    from sampo_ref import checkpoint

    optimizer = torch.optim.AdamW(small_policy.model.parameters(), lr=1e-3)
    checkpoint.save(tmp_path, 3, small_policy, optimizer, random.Random(5), torch.Generator().manual_seed(5))
    return tmp_path / "checkpoints" / "it-000003", optimizer


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path, small_policy):
    import random

    from sampo_ref import checkpoint

    ckpt, optimizer = _saved(tmp_path, small_policy)
    assert checkpoint.latest(tmp_path) == ckpt
    torch.load(ckpt / "state.pt", weights_only=True)  # loadable without unpickling code
    rng, gen = random.Random(0), torch.Generator().manual_seed(0)
    assert checkpoint.restore(ckpt, optimizer, rng, gen) == 3
    assert rng.random() == random.Random(5).random()
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=torch.Generator().manual_seed(5)))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, small_policy):
    import random

    from sampo_ref import checkpoint
    from sampo_ref.config import ConfigError
    from sampo_ref.manifest import write_manifest

    ckpt, optimizer = _saved(tmp_path, small_policy)
    marker = tmp_path / "payload-ran"
    torch.save({"iteration": 3, "optimizer": _Payload(marker)}, ckpt / "state.pt")
    write_manifest(ckpt)  # as a crafted checkpoint would come, hashes and all
    with pytest.raises(ConfigError, match=r"state.pt: not a readable checkpoint state \(UnpicklingError"):
        checkpoint.restore(checkpoint.latest(tmp_path), optimizer, random.Random(0), torch.Generator())
    assert not marker.exists()


@pytest.mark.parametrize("pointer", ["../../elsewhere", "/tmp", "it-000003/../../..", "it-1"])
def test_latest_never_leads_outside_the_run_directory(tmp_path, small_policy, pointer):
    from sampo_ref import checkpoint
    from sampo_ref.config import ConfigError

    _saved(tmp_path, small_policy)
    (tmp_path / "checkpoints" / "latest").write_text(pointer)
    with pytest.raises(ConfigError, match="expected a checkpoint folder it-NNNNNN inside"):
        checkpoint.latest(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
@pytest.mark.parametrize("name", ["state.pt", "policy/model.safetensors", "policy/tokenizer.json"])
def test_a_damaged_checkpoint_file_is_named_in_one_line(tmp_path, small_policy, name, damage):
    from sampo_ref import checkpoint
    from sampo_ref.config import ConfigError

    ckpt, _ = _saved(tmp_path, small_policy)
    path = ckpt / name
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garble":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    with pytest.raises(ConfigError) as err:
        checkpoint.latest(tmp_path)
    message = str(err.value)
    assert name in message and "delete its checkpoints/ folder" in message and "\n" not in message


def test_leftovers_of_a_killed_save_are_removed(tmp_path, small_policy):
    (tmp_path / "checkpoints" / ".tmp-killed").mkdir(parents=True)
    (tmp_path / "checkpoints" / ".latest.tmp").write_text("it-000001")
    _saved(tmp_path, small_policy)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["it-000003", "latest"]


@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", b'{"iteration": 0}\nnot json\n{"iteration": 1}\n'])
def test_a_damaged_metrics_log_is_named_in_one_line(tmp_path, content):
    from sampo_ref.config import ConfigError

    (tmp_path / "metrics.jsonl").write_bytes(content)
    with pytest.raises(ConfigError, match=r"metrics.jsonl: .*the metrics log is damaged"):
        read_metrics(tmp_path / "metrics.jsonl")


def test_a_resume_without_the_metrics_log_is_refused(tmp_path):
    from sampo_ref.checkpoint import trim_metrics
    from sampo_ref.config import ConfigError

    with pytest.raises(ConfigError, match="metrics.jsonl: missing, though the checkpoint is at iteration 2"):
        trim_metrics(tmp_path / "metrics.jsonl", 2)
