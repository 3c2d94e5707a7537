"""The GPU check: what one full-size ALFWorld iteration costs on this machine, its parts against the
hardware's limits, and an estimate of the paper's 200-step run (docs/alfworld.md, docs/scaling.md).

Two parts, one command, everything written under $OUT:

1. ``limits.json``: decode tokens/s of ``generate`` (dynamic KV cache) and of the vLLM engine on
   Qwen3-4B shapes against the memory-bandwidth bound, and the update's MFU
   (``sampo_ref.bench_limits``); ``--no-limits`` skips it;
2. ``alfworld_gpu.json``: one ALFWorld-shaped iteration (two, the first being warm-up) with
   ``--engine`` (default vllm): peak memory, time per phase, generated tokens/s, the estimate.

No weights are downloaded: the policy is a randomly initialised model of Qwen3-4B's architecture
(``QWEN3_4B`` below, from its published config.json), the games are synthetic ALFWorld games
(``sampo_ref.envs.alfworld_synth``), and the settings are the ``alfworld-sampo`` preset's (16 tasks ×
8 copies, 512-token answers, bf16 autocast, gradient checkpointing, mini-batch 256). A random
policy never closes ``</action>``, so every answer runs to ``max_new_tokens`` and every episode to
the turn limit: the measured per-turn costs are worst-case per turn. ``--turns`` caps the episodes
so that an iteration fits in a few minutes; the estimate scales the measured costs per turn-row.

    python benchmarks/alfworld_gpu.py                       # full size (one H200: about 8 min)
    python benchmarks/alfworld_gpu.py --arch tiny --device cpu --engine hf --limits-model smoke \
        --tasks 1 --copies 2 --turns 2 --max-new-tokens 8   # the code path on a CPU

Writes ``limits.json`` and ``alfworld_gpu.json`` under $OUT (or ``--out``) and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch

QWEN3_4B = dict(  # Qwen/Qwen3-4B config.json
    vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
    num_key_value_heads=8, head_dim=128, max_position_embeddings=40960, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            head_dim=32, max_position_embeddings=4096, tie_word_embeddings=True)
PAPER_STEPS = 200


def build_policy(arch: dict, corpus: list[str], device: torch.device):
    """A random-init Qwen3 model of ``arch`` and a BPE tokenizer (chat template included) padded with
    filler tokens to the model's vocabulary, so any sampled id decodes."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from sampo_ref.policy import Policy
    from sampo_ref.tiny import train_tokenizer

    tok = train_tokenizer(corpus, vocab_size=1000)
    vocab = arch.get("vocab_size", len(tok))
    tok.add_tokens([f"<filler{i}>" for i in range(vocab - len(tok))])
    config = Qwen3Config(**{**arch, "vocab_size": len(tok)}, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    with device:  # initialised where it runs (4B parameters initialise slowly on a CPU)
        model = Qwen3ForCausalLM(config)
    return Policy(model, tok, device)


def device_used_gib(device: torch.device) -> float | None:
    """GiB in use on the whole GPU now (every allocator of this process and any other), None on a CPU."""
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return (total - free) / 2**30


def limits(args) -> dict:
    """Decode (generate vs the vLLM engine) against the bandwidth bound and the update's MFU."""
    from sampo_ref.bench_limits import LimitsBench, bench_limits

    caches = ["dynamic", "vllm"] if args.engine == "vllm" else ["dynamic"]
    small = args.limits_model == "smoke"  # the code path on a CPU
    return bench_limits(LimitsBench(models=[args.limits_model], caches=caches, device=args.device,
                                    dtype=args.dtype, peak_tflops=1.0 if args.device == "cpu" else 0.0,
                                    **(dict(batch=2, prompt_len=16, new_tokens=4, train_batch=2, repeats=1, copy_mib=8)
                                       if small else {})))


def measure(args) -> dict:
    from sampo_ref.algos import ALGORITHMS
    from sampo_ref.envs.alfworld import AlfworldTask
    from sampo_ref.envs.alfworld_synth import write_games
    from sampo_ref.presets import preset_config
    from sampo_ref.rollout import RolloutConfig, TurnBatch, collect
    from sampo_ref.task import PromptInput
    from sampo_ref.setup import make_reference, precision
    from sampo_ref.trainer import fill_old_logprobs, update

    device = torch.device(args.device)
    data = Path(args.alfworld_data or tempfile.mkdtemp(prefix="alfworld-synth-"))
    if not (data / "json_2.1.1").exists():
        write_games(data, max(1, -(-args.tasks // 5)))  # every task type, enough training games
    full = preset_config("alfworld-sampo")
    rows = args.tasks * args.copies * args.turns  # a mini-batch may not exceed the most rows a rollout can hold
    cfg = preset_config("alfworld-sampo", alfworld_data=str(data), tasks_per_iter=args.tasks, group_size=args.copies,
                        max_turns=args.turns, max_new_tokens=args.max_new_tokens, dtype=args.dtype,
                        gradient_checkpointing=args.dtype == "bfloat16", train_games=0, eval_games=0,
                        mini_batch_size=min(full.mini_batch_size, rows),
                        micro_batch_size=min(full.micro_batch_size, full.mini_batch_size, rows))
    cfg.validate()
    task = AlfworldTask(data, max_turns=cfg.max_turns, win_reward=cfg.win_reward, history=cfg.history)
    rng = random.Random(0)
    corpus = []  # the tokenizer's training text: the first-turn prompt of one game
    for env in task.envs(task.train_pool[:1], 1).envs:
        obs, info = env.reset()
        corpus.append(task.prompt(PromptInput(obs, obs, info, [], 0), rng) + "<think></think><action></action>")
    policy = build_policy(QWEN3_4B if args.arch == "qwen3-4b" else TINY, corpus, device)
    if cfg.gradient_checkpointing:
        policy.model.gradient_checkpointing_enable()
    if args.engine == "vllm":  # as the trainer does (sampo_ref.trainer.train)
        policy.use_engine(cfg.engine_memory, 0, torch.bfloat16 if cfg.dtype == "bfloat16" else None)
    ref = make_reference(cfg, policy)
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    algo, gen = ALGORITHMS[cfg.algo], torch.Generator().manual_seed(0)
    rollout_cfg = RolloutConfig(max_turns=cfg.max_turns, max_new_tokens=cfg.max_new_tokens,
                                temperature=cfg.temperature, think="required")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    iterations = []
    for _ in range(args.iterations):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        games = rng.sample(task.train_pool, cfg.tasks_per_iter)
        t0 = sync()
        with precision(cfg, device):
            trajs = collect(policy, task.envs(games, cfg.group_size), [str(g) for g in games], cfg.group_size,
                            task.prompt, rollout_cfg, rng)
        batch = TurnBatch.from_trajectories(trajs, policy.pad_id)
        t1 = sync()
        fill_old_logprobs(policy, ref, batch, cfg)
        t2 = sync()
        batch.adv = algo.advantages(batch, cfg)
        with policy.updating():
            upd = update(policy, algo, optimizer, batch, cfg, gen)
        t3 = sync()
        tokens = int(batch.response_mask.sum())
        iterations.append({
            "rows": len(batch), "generated_tokens": tokens, "prompt_tokens_mean": float(batch.prompt_mask.sum(1).float().mean()),
            "time_rollout_s": t1 - t0, "time_logprobs_s": t2 - t1, "time_update_s": t3 - t2,
            "generated_tokens_per_s": tokens / (t1 - t0), "optimizer_steps": upd["actor/optimizer_steps"],
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
            # the whole device, the engine's own pool included (torch's peak above does not see it)
            "device_memory_used_gib": device_used_gib(device),
        })
    last = iterations[-1]  # the first iteration includes warm-up (kernels, allocator)
    per_row = (last["time_rollout_s"] + last["time_logprobs_s"] + last["time_update_s"]) / last["rows"]
    # the paper's batch: 128 trajectories; rows = 128 × mean turns. Upper bound: every episode 50 turns,
    # every answer 512 tokens (a random policy). Per-row cost assumes the same batch shapes per turn.
    paper_rows = {turns: 16 * 8 * turns for turns in (50, 20, 10)}
    return {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "arch": args.arch, "engine": args.engine, "parameters": sum(p.numel() for p in policy.model.parameters()),
        "settings": {k: getattr(cfg, k) for k in ("tasks_per_iter", "group_size", "max_turns", "max_new_tokens",
                                                   "mini_batch_size", "micro_batch_size", "dtype", "gradient_checkpointing")},
        "iterations": iterations,
        "seconds_per_row": per_row,
        "estimate_200_steps_hours": {f"{turns}_turns_per_episode": PAPER_STEPS * rows * per_row / 3600
                                     for turns, rows in paper_rows.items()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=["qwen3-4b", "tiny"], default="qwen3-4b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--tasks", type=int, default=16, help="tasks per iteration (paper: 16)")
    parser.add_argument("--copies", type=int, default=8, help="group size (paper: 8)")
    parser.add_argument("--turns", type=int, default=3, help="turn cap per episode for the measurement (paper: 50)")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--alfworld-data", default="", help="game data; default: synthetic games in a temp folder")
    parser.add_argument("--engine", choices=["hf", "vllm"], default="vllm", help="rollout generation (--engine of train)")
    parser.add_argument("--limits-model", default="4b", help="model of the limits part (sampo_ref.bench_limits.QWEN)")
    parser.add_argument("--no-limits", action="store_true", help="skip the limits part")
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for alfworld_gpu.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_limits:
        (out / "limits.json").write_text(json.dumps(limits(args), indent=2))
    result = measure(args)
    (out / "alfworld_gpu.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
