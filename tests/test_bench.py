"""Benchmark accounting (bounds, FLOPs, memory, token counts) and the benchmarks' code paths; no timing."""

from __future__ import annotations

import math
import random
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from sampo_ref.bench import PeakMemory, RolloutBench, UpdateBench, bench_rollout, bench_update, token_counts
from sampo_ref.bench_limits import (
    LimitsBench, bench_limits, decode_bound, kv_bytes_per_token, matmul_params, model_config, train_flops_per_row,
)
from sampo_ref.rollout import RolloutConfig, TurnBatch, collect
from sampo_ref.task import BatchEnv
from toy_envs import TextGameEnv
from toy_envs.batch import ProcessBatchEnv


def meta_model(name: str):
    with torch.device("meta"):  # shapes only: no memory, no time
        return AutoModelForCausalLM.from_config(model_config(name))


@pytest.mark.parametrize("name, published", [("0.5b", 494_032_768), ("1.5b", 1_543_714_304), ("4b", 4_022_468_096)])
def test_model_sizes_match_the_published_qwen_models(name, published):
    """Qwen2.5-0.5B, Qwen2.5-1.5B and Qwen3-4B (tied embeddings: every parameter is read per token)."""
    assert matmul_params(meta_model(name)) == published


def test_matmul_params_by_hand():
    # smoke: V=512, d=64, I=128, L=2, H=4, KV=2, d_h=32, tied; Qwen3 has q/k norms, no biases
    d, v, i, layers, q, kv, dh = 64, 512, 128, 2, 4 * 32, 2 * 32, 32
    per_layer = d * q + 2 * d * kv + q * d + 3 * d * i + 2 * d + 2 * dh  # q,k,v,o; MLP; 2 norms; q,k norms
    assert matmul_params(meta_model("smoke")) == v * d + layers * per_layer + d  # + final norm
    untied = AutoModelForCausalLM.from_config(model_config("smoke").__class__(
        **{**model_config("smoke").to_dict(), "tie_word_embeddings": False}))
    total = sum(p.numel() for p in untied.parameters())
    assert matmul_params(untied) == total - v * d  # the input embedding is gathered, not multiplied


def test_kv_bytes_and_decode_bound_by_hand():
    # Qwen2.5-0.5B: 24 layers × 2 KV heads × head_dim 64 × (K and V) × 2 bytes (bf16)
    assert kv_bytes_per_token(model_config("0.5b"), 2) == 24 * 2 * 64 * 2 * 2 == 12_288
    # 1000 weight bytes + 4 sequences × 25 positions × 10 bytes = 2000 bytes per step; at 2000 B/s one
    # step per second, and each step yields 4 tokens
    assert decode_bound(1000, 10, batch=4, context=25, bandwidth=2000) == pytest.approx(4.0)
    # weights dominate at batch 1: 0.5B in bf16 at 4.8 TB/s (H200) ≈ 4.86 thousand tokens/s
    n = 494_032_768
    assert decode_bound(2 * n, 12_288, 1, 0, 4.8e12) == pytest.approx(4.8e12 / (2 * n))


def test_train_flops_by_hand():
    config = model_config("smoke")
    n, head = 106_880, 512 * 64
    p, t = 10, 6
    attention = 12 * 2 * 4 * 32 * 16 * 16  # 12 · L · H · d_h · S² with d_h = 32, S = 16
    assert train_flops_per_row(config, n, p, t) == 6 * (n - head) * 16 + 6 * head * 7 + attention


def test_token_counts_by_hand():
    ids = torch.zeros(3, 4, dtype=torch.long)
    batch = TurnBatch(ids, torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1]]), ids[:, :2],
                      torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), *([torch.zeros(3)] * 8), anchors=[""] * 3)
    assert token_counts(batch) == {"real": 9 + 4, "padded": 3 * 6}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_peak_memory_sees_a_64_mib_tensor():
    with PeakMemory(torch.device("cpu")) as peak:
        x = torch.ones(64 * 2**20, dtype=torch.uint8)  # touched pages: resident
        del x
    assert 63 * 2**20 <= peak.bytes < 256 * 2**20  # the tensor, to within the pages the allocator reused


@pytest.mark.slow
def test_worker_processes_play_exactly_like_in_process_envs(coin_games, small_policy):
    files = [f for f in coin_games for _ in range(2)]  # 2 games × G = 2
    local = BatchEnv([TextGameEnv(f, max_turns=4) for f in files])
    remote = ProcessBatchEnv.from_files(files, workers=2, max_turns=4)
    try:
        assert remote.reset() == local.reset()
        actions = ["go east", None, "look", "take coin"]
        assert remote.step(actions) == local.step(actions)
        runs = []
        for envs in (local, remote):
            torch.manual_seed(0)
            runs.append(collect(small_policy, envs, [str(f) for f in coin_games], 2, lambda p, rng: p.obs,
                                RolloutConfig(max_turns=4, max_new_tokens=6), random.Random(0)))
        assert [[(t.response_ids, t.observation, t.env_reward) for t in tau.turns] for tau in runs[0]] == \
               [[(t.response_ids, t.observation, t.env_reward) for t in tau.turns] for tau in runs[1]]
        with pytest.raises(ValueError, match="got 3 actions for 4 envs"):
            remote.step(["look"] * 3)
    finally:
        remote.close()
        local.close()
    with pytest.raises(ValueError, match="workers=0"):
        ProcessBatchEnv(TextGameEnv, workers=0)


@pytest.fixture
def toy_setup(coin_games, small_policy, tmp_path, monkeypatch):
    """The session's two coin games as the toy task's pool, and the small policy saved as a model dir."""
    monkeypatch.setenv("SAMPO_REF_CACHE", str(coin_games[0].parents[2]))
    small_policy.save(tmp_path / "policy")
    return str(tmp_path / "policy")


@pytest.mark.slow
def test_rollout_bench_runs_and_its_worker_rollout_is_identical(toy_setup):
    out = bench_rollout(RolloutBench(envs=2, workers=2, max_new_tokens=4, repeats=1, device="cpu", model=toy_setup))
    assert out["identical"]
    loops = out["loops"]
    assert len(loops) == 4
    for r in loops.values():
        assert r["generate"] + r["env"] <= r["seconds"]
        assert r["tokens"] <= r["turns"] * 4  # at most max_new_tokens per turn


@pytest.mark.slow
def test_update_bench_runs(toy_setup):
    out = bench_update(UpdateBench(rows=8, games=2, micro=[2, 8], repeats=1, device="cpu", model=toy_setup))
    assert set(out["micro"]) == {2, 8}
    assert all(r["tokens_per_s"] > 0 for r in out["micro"].values())
    with pytest.raises(ValueError, match=r"micro=\[9\]"):
        bench_update(UpdateBench(rows=8, games=2, micro=[9], device="cpu", model=toy_setup))


def test_limits_bench_code_path_on_cpu():
    """The GPU command's code path with a tiny Qwen3 config (the GPU run itself is not testable here)."""
    out = bench_limits(LimitsBench(models=["smoke"], caches=["dynamic", "static"], batch=2, prompt_len=16,
                                   new_tokens=4, train_batch=2, dtype="float32", device="cpu", peak_tflops=1.0,
                                   repeats=1, copy_mib=8))
    decode = [r for r in out["rows"] if "cache" in r]
    assert [r["cache"] for r in decode] == ["dynamic", "static"]
    assert all(math.isfinite(r["decode_tokens_per_s"]) and r["bound_tokens_per_s"] > 0 for r in decode)
    assert 0 < out["rows"][-1]["mfu"] < 1
    with pytest.raises(ValueError, match="models='7b'"):
        bench_limits(LimitsBench(models=["7b"], device="cpu", peak_tflops=1.0))
    with pytest.raises(ValueError, match="peak_tflops=0.0"):
        bench_limits(LimitsBench(models=["smoke"], device="cpu"))
