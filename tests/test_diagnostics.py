"""Diagnostics: the KL-to-reference split (Finding 2), the collapse warning and the metric sinks."""

from __future__ import annotations

import builtins
import json
import math

import pytest
import torch

from sampo_ref.config import ConfigError
from sampo_ref.diagnostics import CollapseWatch, kl_split
from sampo_ref.runlog import RunLog

L = math.log


def test_kl_split_by_hand():
    # row 0: A > 0, π_θ 0.5 > π_old 0.4 on both tokens → "pos_up";
    #   k3 = π_ref/π_θ − ln(π_ref/π_θ) − 1: token 0 0.5 + ln 2 − 1 = 0.193147, token 1 0 → row mean 0.0965736
    # row 1: A = 0 counts as ≤ 0, π_θ 0.2 < π_old 0.3 → "neg_down"; one token, ratio 2: 2 − ln 2 − 1 = 0.306853
    #   its second token is padding with nonsense values, which must not count
    # row 2: A > 0 but no response token → in no bin
    logp = torch.tensor([[L(0.5), L(0.5)], [L(0.2), 3.0], [L(0.5), L(0.5)]])
    logp_old = torch.tensor([[L(0.4), L(0.4)], [L(0.3), -7.0], [L(0.1), L(0.1)]])
    logp_ref = torch.tensor([[L(0.25), L(0.5)], [L(0.4), 2.0], [L(0.9), L(0.9)]])
    adv = torch.tensor([1.0, 0.0, 2.0])
    mask = torch.tensor([[1, 1], [1, 0], [0, 0]])
    out = kl_split(logp, logp_old, logp_ref, adv, mask)
    assert out["kl_ref/pos_up"].count == 1 and out["kl_ref/pos_up"].value == pytest.approx((0.5 + L(2) - 1) / 2, abs=1e-6)
    assert out["kl_ref/neg_down"].count == 1 and out["kl_ref/neg_down"].value == pytest.approx(2 - L(2) - 1, abs=1e-6)
    assert out["kl_ref/pos_down"].count == 0 and out["kl_ref/neg_up"].count == 0
    # shares over ALL rows, the one without tokens included; pooled over the iteration, not per step
    assert [out[f"kl_ref/{b}_share"].value for b in ("pos_up", "pos_down", "neg_up", "neg_down")] == [1 / 3, 0, 0, 1 / 3]
    assert all(s.over == "iteration" for s in out.values())


def test_kl_split_direction_is_the_token_mean_of_probability_change():
    # token 0 goes up by 0.3 in probability, token 1 down by 0.1: the mean is up
    logp = torch.tensor([[L(0.6), L(0.1)]])
    logp_old = torch.tensor([[L(0.3), L(0.2)]])
    out = kl_split(logp, logp_old, logp.clone(), torch.tensor([-1.0]), torch.ones(1, 2))
    assert out["kl_ref/neg_up"].count == 1 and out["kl_ref/neg_up"].value == pytest.approx(0.0)


def record(success=0.5, fmt=1.0, grad=0.3, entropy=0.25):
    return {"rollout/success": success, "rollout/valid_format": fmt, "actor/grad_norm_max": grad,
            "actor/entropy_old": entropy}


def test_collapse_watch_quiet_on_a_healthy_run():
    watch = CollapseWatch()
    for i in range(20):  # success climbing, small noise everywhere
        assert watch.update(record(success=0.2 + 0.03 * i, grad=0.3 + 0.05 * (i % 3), entropy=0.25 - 0.002 * i)) == {}


@pytest.mark.parametrize("bad, kind", [
    (dict(fmt=0.5), "format_drop"),
    (dict(grad=5.0), "grad_spike"),
    (dict(entropy=0.1), "entropy_collapse"),
    (dict(success=0.1), "success_drop"),
])
def test_collapse_watch_names_each_signal(bad, kind):
    watch = CollapseWatch()
    for _ in range(5):
        assert watch.update(record(success=0.6)) == {}
    warnings = watch.update(record(**{"success": 0.6, **bad}))
    assert list(warnings) == [kind]
    assert "usual" in warnings[kind] or "check" in warnings[kind] or "raise" in warnings[kind]


def test_collapse_watch_waits_for_its_warmup():
    watch = CollapseWatch(warmup=3)
    watch.update(record(fmt=1.0))
    assert watch.update(record(fmt=0.1)) == {}  # one earlier iteration is not enough to judge


def test_runlog_writes_jsonl_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLog(tmp_path, {}, start=0, tensorboard=True)
    log.write({"iteration": 1, "rollout/success": 0.25, "final": True, "note": "x", "adv/min": float("nan")})
    log.write({"iteration": 2, "rollout/success": 0.5})
    log.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["rollout/success"] for r in rows] == [0.25, 0.5]
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert acc.Tags()["scalars"] == ["rollout/success"]  # numbers only: no bool, string or nan
    assert [(e.step, e.value) for e in acc.Scalars("rollout/success")] == [(1, 0.25), (2, 0.5)]


def test_wandb_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(ConfigError, match=r"wandb_project='proj' needs the wandb package"):
        RunLog(tmp_path, {}, start=0, tensorboard=False, wandb_project="proj")


def test_over_steps_averages_steps_or_pools_the_iteration():
    """Per-step diagnostics: the mean of the steps' values; ``over="iteration"``: one pool of every
    step's rows (the KL split: 3 + 1 rows, 10 + 2 total -> 12 / 4), and a mean over nothing is no key."""
    from sampo_ref.algos.common import Stat
    from sampo_ref.diagnostics import over_steps

    steps = [{"actor/clipfrac": Stat(3.0, 10), "kl_ref/pos_up": Stat(10.0, 3, over="iteration"),
              "kl_ref/neg_up": Stat(0.0, 0, over="iteration")},
             {"actor/clipfrac": Stat(1.0, 2), "kl_ref/pos_up": Stat(2.0, 1, over="iteration"),
              "kl_ref/neg_up": Stat(0.0, 0, over="iteration")}]
    assert over_steps(steps) == {"actor/clipfrac": pytest.approx((0.3 + 0.5) / 2), "kl_ref/pos_up": 3.0}
