"""Trainer plumbing: micro-batching never changes the mathematics; same seed, same losses."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch

from sampo_ref.algos import ALGORITHMS
from sampo_ref.config import TrainConfig
from sampo_ref.rollout import RolloutConfig, TurnBatch, collect
from sampo_ref.trainer import fill_old_logprobs, minibatch_loss
from scripted import ScriptedEnv
from sampo_ref.task import BatchEnv


def prompt(p, rng):
    return f"goal: find the coin\nroom: {p.info['room']}\nactions: go east; look"


def rollout_batch(policy, seed=0) -> TurnBatch:
    torch.manual_seed(seed)
    trajs = collect(policy, BatchEnv([ScriptedEnv(max_turns=4) for _ in range(8)]), list("abcd"), 2, prompt,
                    RolloutConfig(max_turns=4, max_new_tokens=12), random.Random(seed))
    return TurnBatch.from_trajectories(trajs, policy.pad_id)


def prepared(policy, cfg, seed=0):
    batch = rollout_batch(policy, seed)
    lengths = 2 + torch.arange(len(batch)) % 10  # a random model rarely closes its tag: make rows ragged
    batch.response_mask = (torch.arange(batch.response_mask.shape[1]) < lengths[:, None]).float()  # (B, T)
    ref = copy.deepcopy(policy.model)
    with torch.no_grad():  # make the policy differ from π_old and π_ref, so ratios and KL are not trivial
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    fill_old_logprobs(policy, ref, batch, cfg)
    batch.logp_old = batch.logp_old + 0.1 * torch.randn_like(batch.logp_old)
    # the scripted game is never won, so real advantages are ~0: add mixed-sign noise so that every
    # branch (clipping, masking, A < 0 and A > 0) is exercised
    batch.adv = ALGORITHMS[cfg.algo].advantages(batch, cfg) + torch.randn(len(batch))
    return batch


def loss_and_grad(policy, batch, cfg):
    policy.model.zero_grad(set_to_none=True)
    stats = {k: v.value for k, v in minibatch_loss(policy, ALGORITHMS[cfg.algo], batch, cfg).items()}
    grads = torch.cat([p.grad.flatten() for p in policy.model.parameters() if p.grad is not None])
    return stats["loss/total"], grads, stats


CASES = [("grpo", agg, False) for agg in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                                          "seq-mean-token-sum-norm")]
CASES += [(name, "token-mean", False) for name in ALGORITHMS if name != "grpo"]
CASES += [(name, "token-mean", True) for name in ("grpo", "soft_sapo", "cispo")]  # with the sequence mask (S17)


@pytest.mark.parametrize("algo, loss_agg, seq_mask", CASES)
def test_micro_batching_does_not_change_loss_or_gradient(small_policy, algo, loss_agg, seq_mask):
    cfg = TrainConfig(algo=algo, loss_agg=loss_agg, seq_mask=seq_mask, seq_mask_delta=0.0, invalid_penalty=0.1,
                      mini_batch_size=1000, micro_batch_size=1000, max_new_tokens=12)
    batch = prepared(small_policy, cfg)
    assert len(batch) >= 8 and batch.response_mask.sum(1).unique().numel() > 1  # ragged rows
    full_loss, full_grad, stats = loss_and_grad(small_policy, batch, cfg)
    if seq_mask:  # the case must exercise the mask: some turns masked, not all
        assert 0 < stats["actor/seq_masked_rows"] < len(batch)
    for micro in (1, 3, 5):
        cfg.micro_batch_size = micro
        loss, grad, micro_stats = loss_and_grad(small_policy, batch, cfg)
        assert abs(loss - full_loss) < 1e-6
        torch.testing.assert_close(grad, full_grad, atol=1e-6, rtol=1e-5)
        assert micro_stats == pytest.approx(stats, rel=1e-5, abs=1e-7)  # the diagnostics pool exactly too
    assert full_grad.abs().sum() > 0


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_clip_low_that_validates_trains(small_policy, algo):
    """clip_low = 1 (lower bound 1 - ε_l = 0: no lower clipping, CISPO's ARLArena value) passes
    validation for every algorithm, so its loss must accept it too."""
    cfg = TrainConfig(algo=algo, clip_low=1.0, max_new_tokens=12, mini_batch_size=1000, micro_batch_size=1000)
    cfg.validate()
    loss, grads, _ = loss_and_grad(small_policy, prepared(small_policy, cfg), cfg)
    assert math.isfinite(loss) and grads.abs().sum() > 0


def test_same_seed_same_losses(small_policy):
    cfg = TrainConfig(max_new_tokens=12)
    a = loss_and_grad(small_policy, prepared(small_policy, cfg, seed=3), cfg)
    b = loss_and_grad(small_policy, prepared(small_policy, cfg, seed=3), cfg)
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_a_non_finite_gradient_is_skipped_and_counted(small_policy):
    """A NaN reaching the loss never reaches the weights: the step is skipped and counted."""
    from sampo_ref.trainer import update

    cfg = TrainConfig(max_new_tokens=12, mini_batch_size=1000, micro_batch_size=1000)
    batch = prepared(small_policy, cfg)
    batch.logp_old[0, 0] = float("nan")  # one poisoned token
    before = [p.detach().clone() for p in small_policy.model.parameters()]
    opt = torch.optim.AdamW(small_policy.model.parameters(), lr=1e-2)
    out = update(small_policy, ALGORITHMS["grpo"], opt, batch, cfg, torch.Generator().manual_seed(0))
    assert out["actor/skipped_steps"] == 1 and out["actor/optimizer_steps"] == 1
    assert all(torch.equal(a, b) for a, b in zip(before, small_policy.model.parameters()))


@pytest.mark.equation("S18", "S19", "S21")
@pytest.mark.parametrize("algo", ["grpo", "sampo"])
def test_total_loss_is_pg_minus_entropy_plus_kl(small_policy, algo):
    """Checks (S19) L = L_pg - c_H agg(H) + beta agg(k3), recomputed here from the formulas on the
    whole mini-batch, against the trainer's micro-batched value and gradient. GRPO: token-mean
    (sum / token count); SAMPO: every term seq-mean-token-mean (mean over rows of row means), (S21)."""
    from sampo_ref.policy import sequence_logprobs
    from sampo_ref.presets import preset_config

    cfg = preset_config(algo, max_new_tokens=12, mini_batch_size=1000, micro_batch_size=3,
                        kl_coef=0.5, entropy_coef=0.1)  # large coefficients: every term matters
    batch = prepared(small_policy, cfg)
    total, grads, stats = loss_and_grad(small_policy, batch, cfg)

    small_policy.model.zero_grad(set_to_none=True)
    mask = batch.response_mask  # (B, T)
    logp, ent = sequence_logprobs(small_policy.model, batch.prompt_ids, batch.prompt_mask, batch.response_ids,
                                  mask.long(), temperature=cfg.temperature, with_entropy=True)
    lengths = mask.sum(-1)  # (B,)

    def agg(x):  # aggregation by hand: token-mean for grpo, seq-mean-token-mean for sampo (all terms)
        if cfg.loss_agg == "token-mean":
            return (x * mask).sum() / mask.sum()
        return ((x * mask).sum(-1)[lengths > 0] / lengths[lengths > 0]).mean()

    assert (ALGORITHMS[algo].pg_agg or cfg.loss_agg) == cfg.loss_agg  # one mode for every term here
    terms, _ = ALGORITHMS[algo].policy_loss(logp, batch, {"policy": mask}, cfg)
    assert list(terms) == ["pg"]
    pg = terms["pg"].values  # (B, T)
    u = batch.logp_ref - logp  # (B, T)  small here: the clamps of (S18) are inactive
    assert u[mask.bool()].abs().max() < 20
    expected = agg(pg) - cfg.entropy_coef * agg(ent) + cfg.kl_coef * agg(torch.exp(u) - u - 1)  # (S19)
    expected.backward()
    expected_grads = torch.cat([p.grad.flatten() for p in small_policy.model.parameters() if p.grad is not None])
    assert total == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
    assert stats["loss/kl"] > 0 and stats["loss/entropy"] > 0
    assert torch.allclose(grads, expected_grads, rtol=1e-4, atol=1e-6)


RUN = dict(iterations=2, train_games=16, eval_games=2, tasks_per_iter=2, group_size=2, mini_batch_size=16,
           micro_batch_size=16, eval_every=0, save_every=0, progress=False, tensorboard=False)


@pytest.mark.slow  # trains
def test_a_run_whose_every_step_is_skipped_stops_and_says_why(tmp_path, user_cache, monkeypatch):
    """A non-finite loss never reaches the weights; when no step at all could be taken the run stops
    with one line instead of printing before/after figures as if it had trained."""
    from sampo_ref import trainer
    from sampo_ref.config import ConfigError

    monkeypatch.setattr(trainer, "k3_kl", lambda logp, logp_ref: torch.full_like(logp, float("nan")))
    with pytest.raises(ConfigError, match=r"every optimiser step so far was skipped \(iteration 1: loss/total=nan"):
        trainer.train(TrainConfig(**RUN, kl_coef=0.02, run_dir=str(tmp_path / "run")))


@pytest.mark.slow  # trains
def test_max_new_tokens_must_fit_the_shortest_answer(tmp_path, user_cache):
    from sampo_ref.config import ConfigError
    from sampo_ref.trainer import train

    with pytest.raises(ConfigError, match=r"max_new_tokens=3 is not allowed: expected ≥ \d+, the tokens of the shortest"):
        train(TrainConfig(**RUN, max_new_tokens=3, run_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()  # nothing written before the set-up succeeded


def test_env_workers_give_the_same_run(tmp_path, user_cache):
    """``env_workers``: the games stepped in 2 persistent processes give exactly the in-process run."""
    from sampo_ref.trainer import train

    small = dict(train_games=16, eval_games=2, tasks_per_iter=2, group_size=2, mini_batch_size=8, micro_batch_size=8,
                 iterations=2, eval_every=0, save_every=0, progress=False, tensorboard=False)
    runs = [train(TrainConfig(**small, env_workers=w, run_dir=str(tmp_path / f"w{w}"))).metrics for w in (0, 2)]
    local, remote = ([{k: v for k, v in m.items() if not k.startswith("time/")} for m in r] for r in runs)
    assert local == remote and any("rollout/success" in m for m in local)
