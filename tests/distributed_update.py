"""One mini-batch update on every rank of ``torchrun`` (gloo, CPU), for tests/test_distributed.py.

    torchrun --standalone --nproc-per-node 2 tests/distributed_update.py OUT_DIR

For each case of ``CASES`` it builds the same policy and batch on every rank (``case``), runs
``minibatch_loss`` with the ranks splitting the rows (DDP, or FSDP2), clips, steps, and rank 0
writes the loss, the gradients and the weights after the step to OUT_DIR/<case>.pt. The test runs
the same ``case`` in one process and compares. ``local`` is the naive variant: each rank takes its
rows as if they were the whole mini-batch (its own denominators), and the gradients are averaged.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # scripted.py, conftest.py

from conftest import CORPUS  # noqa: E402
from scripted import ScriptedEnv  # noqa: E402
from sampo_ref.algos import ALGORITHMS  # noqa: E402
from sampo_ref.config import TrainConfig  # noqa: E402
from sampo_ref.policy import Policy  # noqa: E402
from sampo_ref.rollout import RolloutConfig, TurnBatch, collect  # noqa: E402
from sampo_ref.tiny import TinyConfig, new_model, train_tokenizer  # noqa: E402
from sampo_ref.trainer import fill_old_logprobs  # noqa: E402
from sampo_ref.task import BatchEnv  # noqa: E402

# name: (config overrides, how the ranks split the work)
CASES = {
    "grpo": (dict(algo="grpo"), "ddp"),
    "grpo-seq-mean-token-mean": (dict(algo="grpo", loss_agg="seq-mean-token-mean"), "ddp"),
    "grpo-seq-mask": (dict(algo="grpo", seq_mask=True, seq_mask_delta=0.0), "ddp"),
    "sapo": (dict(algo="sapo"), "ddp"),  # Search-Agent SAPO's N and N_P
    "grpo-micro-1": (dict(algo="grpo", micro_batch_size=1), "ddp"),  # uneven shards: one rank gets a filler
    "grpo-fsdp": (dict(algo="grpo"), "fsdp"),
    "grpo-local": (dict(algo="grpo"), "local"),
}
ROWS = 31  # odd: the ranks' shards differ in size


def case(overrides: dict) -> tuple[Policy, TurnBatch, TrainConfig]:
    """The same policy, batch and config in every process: a random small Llama, a scripted rollout
    with ragged response lengths, π_old and π_ref perturbed so that ratios, clipping and KL matter."""
    cfg = TrainConfig(**{"micro_batch_size": 4, "mini_batch_size": ROWS, "kl_coef": 0.05, "entropy_coef": 0.01,
                         **overrides})
    tok = train_tokenizer(CORPUS, vocab_size=300)
    policy = Policy(new_model(TinyConfig(hidden_size=32, layers=2, heads=2, intermediate_size=64, seed=0), tok).eval(),
                    tok, torch.device("cpu"))
    torch.manual_seed(0)
    trajs = collect(policy, BatchEnv([ScriptedEnv(max_turns=4) for _ in range(16)]), list("abcdefgh"), 2,
                    lambda p, rng: f"room: {p.info['room']}", RolloutConfig(max_turns=4, max_new_tokens=8),
                    random.Random(0))
    batch = TurnBatch.from_trajectories(trajs, policy.pad_id)
    batch = batch.select(torch.arange(ROWS))
    lengths = 1 + torch.arange(ROWS) % 8  # (B,)  ragged rows: token counts differ between the ranks
    batch.response_mask = (torch.arange(batch.response_mask.shape[1]) < lengths[:, None]).float()  # (B, T)
    ref = new_model(TinyConfig(hidden_size=32, layers=2, heads=2, intermediate_size=64, seed=1), tok).eval()
    fill_old_logprobs(policy, ref, batch, cfg)
    gen = torch.Generator().manual_seed(1)
    batch.logp_old = batch.logp_old + 0.2 * torch.randn(batch.logp_old.shape, generator=gen)
    batch.adv = torch.randn(ROWS, generator=gen)
    return policy, batch, cfg


def step(policy: Policy, optimizer, batch: TurnBatch, cfg: TrainConfig, dp=None) -> dict:
    """minibatch_loss → clip → step, as ``trainer.update`` does for one mini-batch."""
    from sampo_ref.distributed import full_value
    from sampo_ref.trainer import minibatch_loss

    optimizer.zero_grad(set_to_none=True)
    policy.model.train()
    stats = minibatch_loss(policy, ALGORITHMS[cfg.algo], batch, cfg, dp)
    return {k: float(v.value) for k, v in stats.items()}, full_value(torch.nn.utils.clip_grad_norm_(policy.model.parameters(), cfg.max_grad_norm))


def full(tensor: torch.Tensor) -> torch.Tensor:
    return (tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor).detach().clone()


def main(out: Path) -> None:
    import torch.distributed as dist

    from sampo_ref.distributed import DataParallel
    from sampo_ref.trainer import minibatch_loss

    out.mkdir(parents=True, exist_ok=True)
    dp = DataParallel.from_env("cpu")
    for name, (overrides, mode) in CASES.items():
        policy, batch, cfg = case(overrides)
        dp.fsdp = mode == "fsdp"
        if mode == "local":  # each rank's rows as a whole mini-batch, gradients averaged over the ranks
            optimizer = torch.optim.AdamW(policy.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            optimizer.zero_grad(set_to_none=True)
            policy.model.train()
            stats = {k: float(v.value) for k, v in minibatch_loss(
                policy, ALGORITHMS[cfg.algo], batch.select(torch.arange(ROWS)[dp.rank :: dp.world]), cfg).items()}
            for p in policy.model.parameters():
                dist.all_reduce(p.grad)
                p.grad /= dp.world
            norm = float(torch.nn.utils.clip_grad_norm_(policy.model.parameters(), cfg.max_grad_norm))
        else:
            dp.wrap(policy.model)
            optimizer = torch.optim.AdamW(policy.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            stats, norm = step(policy, optimizer, batch, cfg, dp)
        grads = {n: full(p.grad) for n, p in policy.model.named_parameters()}
        optimizer.step()
        weights = {n: full(p) for n, p in policy.model.named_parameters()}
        if dp.main:
            torch.save({"stats": stats, "norm": norm, "grads": grads, "weights": weights}, out / f"{name}.pt")
    dp.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
