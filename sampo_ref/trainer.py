"""The training loop, read top to bottom (docs/architecture.md, docs/rollout.md#where-it-sits-in-an-iteration):

    0. set-up: games, policy, reference policy, optimiser, run directory
    for each iteration:
        1. rollout      N tasks × G copies → trajectories → one row per turn (TurnBatch)
        2. old log-probs and entropy under π_old, reference log-probs (no grad)
        3. advantages   one scalar per row (the algorithm's estimator)
        4. update       for each mini-batch: micro-batched loss (S19) → backward → clip → step
        5. log          metrics.jsonl (flushed), held-out evaluation every ``eval_every``
    6. final evaluation, learning-curve plot, sample trajectories, final policy

A run directory is self-describing (its ``config.json`` names every field) and ``--resume`` always
does what it says: it continues from the last checkpoint, starts the run again from iteration 0 when
none was written yet, and does nothing for a run that already finished its iterations.

Everything the algorithm decides sits behind two calls, ``algo.advantages`` and
``algo.policy_loss``; the rest is shared by every variant.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sampo_ref import checkpoint
from sampo_ref.algos import ALGORITHMS
from sampo_ref.algos.common import Counts, Stat, Term, aggregate, k3_kl, pool, penalise_invalid_advantage
from sampo_ref.algos.dynamic_sampling import dynamic_sample, filter_active
from sampo_ref.algos.seq_mask import apply_sequence_mask, sequence_mask
from sampo_ref.config import ConfigError, TrainConfig
from sampo_ref.diagnostics import CollapseWatch, batch_diagnostics, kl_split, over_steps
from sampo_ref.distributed import DataParallel, full_value
from sampo_ref.plots import plot_runs
from sampo_ref.policy import Policy, pick_device, sequence_logprobs
from sampo_ref.rollout import RolloutConfig, Trajectory, TurnBatch, collect
from sampo_ref.runlog import RunLog
from sampo_ref.setup import evaluate, make_policy, make_reference, make_task, precision, rollout_metrics, task_label


def _forward(model, device: torch.device, micro: TurnBatch, cfg: TrainConfig, with_entropy: bool):
    """log π (and entropy) of a micro-batch's response tokens under ``model``, returned on ``device``
    (the reference model may live on another device, ``ref_device``)."""
    mask = micro.response_mask.to(device)  # (b, T)
    at = next(model.parameters()).device
    args = [t.to(at) for t in (micro.prompt_ids, micro.prompt_mask, micro.response_ids, mask.long())]
    with precision(cfg, at):
        logp, ent = sequence_logprobs(model, *args, temperature=cfg.temperature, with_entropy=with_entropy)
    return logp.to(device), None if ent is None else ent.to(device), mask


def micro_batches(rows: int, size: int, dp: DataParallel | None) -> list[tuple[torch.Tensor, bool]]:
    """(row index, is a zero-weight filler) per micro-batch: all ``rows`` here, or with ``dp`` this
    rank's share, in as many micro-batches as every other rank (sampo_ref.distributed)."""
    index = torch.arange(rows)
    return dp.micro_batches(index, size) if dp else [(idx, False) for idx in index.split(size)]


@torch.no_grad()
def fill_old_logprobs(policy: Policy, ref_model, batch: TurnBatch, cfg: TrainConfig,
                      dp: DataParallel | None = None) -> None:
    """Phase 2: log π_old and its entropy (EMPG's turn entropy, diagnostics), and log π_ref
    (with ``dp``: each rank its rows, gathered to every rank)."""
    index, values = [], {"logp_old": [], "entropy_old": [], "logp_ref": []}
    for idx, filler in micro_batches(len(batch), cfg.micro_batch_size, dp):
        micro = batch.select(idx)
        lp, ent, _ = _forward(policy.model, policy.device, micro, cfg, with_entropy=True)
        if filler:
            continue
        index.append(idx)
        values["logp_old"].append(lp.cpu())
        values["entropy_old"].append(ent.cpu())
        if ref_model is not None:
            values["logp_ref"].append(_forward(ref_model, policy.device, micro, cfg, with_entropy=False)[0].cpu())
    index = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
    for name, parts in values.items():
        if name == "logp_ref" and ref_model is None:
            batch.logp_ref = None
            continue
        mine = torch.cat(parts) if parts else torch.zeros(0, batch.response_ids.shape[1])  # (b, T)
        setattr(batch, name, dp.gather_rows(mine, index, len(batch)) if dp else mine)  # (B, T)


def policy_mask(policy: Policy, rows: TurnBatch, cfg: TrainConfig, dp: DataParallel | None = None) -> torch.Tensor:
    """The policy term's mask over the mini-batch (B_mb, T): the response mask, minus masked turns (S17).

    The sequence mask depends on the current policy, and its token count is the token-mean
    denominator of the whole mini-batch; so with ``seq_mask`` one no-grad pass over the
    micro-batches decides every row first (the price of exact micro-batching; with ``dp`` each
    rank decides its rows and the decisions are gathered to every rank).
    """
    if not cfg.seq_mask:
        return rows.response_mask
    index, keep = [], []
    with torch.no_grad():
        for idx, filler in micro_batches(len(rows), cfg.micro_batch_size, dp):
            micro = rows.select(idx)
            logp, _, mask = _forward(policy.model, policy.device, micro, cfg, with_entropy=False)
            if not filler:
                index.append(idx)
                keep.append(sequence_mask(logp, micro.logp_old.to(logp.device), micro.adv.to(logp.device), mask,
                                          cfg.seq_mask_delta)[0].cpu())
    index = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
    keep = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.bool)  # (b,)
    return apply_sequence_mask(rows.response_mask, dp.gather_rows(keep, index, len(rows)) if dp else keep)


@dataclass
class MiniBatch:
    """A mini-batch and what its loss needs mini-batch-wide, prepared once before the micro-batches."""

    rows: TurnBatch
    masks: dict[str, torch.Tensor]  # (B_mb, T) the masks the terms aggregate over
    counts: dict[str, Counts]  # per mask, over the whole mini-batch: every aggregation denominator
    max_len: int  # T_max of seq-mean-token-sum-norm
    diagnostics: dict[str, Stat]  # what preparing found: the rows the sequence mask removed

    def micro_batches(self, size: int, device: torch.device, dp: DataParallel | None = None):
        """(micro-batch rows, their slices of the masks on ``device``), ``size`` rows at a time; with
        ``dp`` this rank's rows only, a zero-weight filler row where its share runs out first."""
        for idx, filler in micro_batches(len(self.rows), size, dp):
            yield self.rows.select(idx), {name: m[idx].to(device) * (not filler) for name, m in self.masks.items()}

    def aggregate(self, term: Term, masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """A micro-batch's share of ``term``'s aggregate: its sum over the mini-batch denominator."""
        denominator = self.counts[term.mask].denominator(term.mode, self.max_len)
        return aggregate(term.values, masks[term.mask], term.mode, denominator)


def prepare_minibatch(policy: Policy, algo, rows: TurnBatch, cfg: TrainConfig, dp: DataParallel | None = None
                      ) -> MiniBatch:
    """Everything mini-batch-wide, in one place: the terms' masks (the response mask; the policy
    term's, minus masked turns; a method's own, e.g. Search-Agent SAPO's tokens of P) and their
    counts, from which come every aggregation denominator (N_P included) and the masked-turn count.
    The counts are sums; with ``dp`` every rank holds the whole mini-batch and the sequence mask's
    keep flags are gathered, so they are the global counts on every rank (docs/scaling.md)."""
    masks = {"response": rows.response_mask, "policy": policy_mask(policy, rows, cfg, dp)}
    if algo.minibatch_masks is not None:
        masks |= algo.minibatch_masks(rows, masks["policy"], cfg)
    counts = {name: Counts.of(mask) for name, mask in masks.items()}
    # rows the sequence mask removed: the rows with a token that the policy term's mask no longer has
    masked = counts["response"].rows_with_tokens - counts["policy"].rows_with_tokens
    return MiniBatch(rows, masks, counts, cfg.max_new_tokens,
                     {"actor/seq_masked_rows": Stat(masked, pool="sum")} if cfg.seq_mask else {})


def regularisers(logp: torch.Tensor, entropy: torch.Tensor | None, micro: TurnBatch, cfg: TrainConfig) -> dict[str, Term]:
    """The terms every method shares (S19): −c_H × entropy of π_θ and +β × k3 KL to π_ref (S18),
    over the full response mask (the sequence mask never touches them)."""
    terms = {}
    if cfg.entropy_coef > 0:
        terms["entropy"] = Term(entropy, "response", cfg.loss_agg, -cfg.entropy_coef)
    if cfg.kl_coef > 0:
        terms["kl"] = Term(k3_kl(logp, micro.logp_ref.to(logp.device)), "response", cfg.loss_agg, cfg.kl_coef)
    return terms


def minibatch_loss(policy: Policy, algo, rows: TurnBatch, cfg: TrainConfig, dp: DataParallel | None = None
                   ) -> dict[str, Stat]:
    """Phase 4, one mini-batch: accumulate the gradient of (S19) over micro-batches -> its diagnostics.

    L = Σ_terms coef × agg(term): the method's terms (its surrogate; Search-Agent SAPO's KL too)
    and the regularisers. Every aggregate divides by a count of the whole mini-batch, so the loss
    and its gradient do not depend on ``micro_batch_size`` (project choice; [ARL] averages
    micro-batch means instead, docs/architecture.md#project-choices-and-deviations-from-the-reference-code).
    With ``dp`` each rank backpropagates its rows' share through DDP/FSDP (which average the
    ranks' gradients: hence the factor W) and the micro-batches' diagnostics of all ranks are pooled.
    """
    # --8<-- [start:minibatch_loss]
    mb = prepare_minibatch(policy, algo, rows, cfg, dp)  # masks and their counts, once
    model, scale = (dp.wrapped, dp.world) if dp else (policy.model, 1)
    chunks, logged = list(mb.micro_batches(cfg.micro_batch_size, policy.device, dp)), []
    for j, (micro, masks) in enumerate(chunks):
        with dp.no_sync(last=j == len(chunks) - 1) if dp else nullcontext():  # one gradient all-reduce
            logp, ent, _ = _forward(model, policy.device, micro, cfg, with_entropy=cfg.entropy_coef > 0)  # (b, T)
            terms, stats = algo.policy_loss(logp, micro, masks, cfg)  # the method's terms: "pg", …
            terms |= regularisers(logp, ent, micro, cfg)  # "entropy", "kl"
            parts = {name: mb.aggregate(term, masks) for name, term in terms.items()}  # each its own mask and mode
            loss = sum(terms[name].coef * part for name, part in parts.items())  # Eq. (S19)
            (loss * scale).backward()
        logged.append(micro_diagnostics(parts, loss, stats, logp, micro, masks))  # apart from the loss
    # --8<-- [end:minibatch_loss]
    logged = [mb.diagnostics, *(dp.gather(logged) if dp else logged)]  # mb's own: the same on every rank
    return {key: pool([d[key] for d in logged if key in d]) for key in dict.fromkeys(k for d in logged for k in d)}


def micro_diagnostics(parts: dict, loss: torch.Tensor, stats: dict, logp: torch.Tensor, micro: TurnBatch,
                      masks: dict) -> dict[str, Stat]:
    """What one micro-batch logs: the terms' and the total's values (their parts add up to the
    mini-batch's), the method's stats, and Finding 2's KL split when there is a reference policy."""
    out = {**{f"loss/{k}": Stat(v.item(), pool="sum") for k, v in parts.items()},
           "loss/total": Stat(loss.item(), pool="sum"), **{f"actor/{k}": v for k, v in stats.items()}}
    if micro.logp_ref is not None:
        out |= kl_split(logp, micro.logp_old.to(logp.device), micro.logp_ref.to(logp.device),
                        micro.adv.to(logp.device), masks["response"])
    return out


def update(policy: Policy, algo, optimizer, batch: TurnBatch, cfg: TrainConfig, gen: torch.Generator,
           dp: DataParallel | None = None) -> dict:
    """Phase 4: ``ppo_epochs`` passes of shuffled mini-batches, one optimiser step each (the same
    order on every rank of ``dp``: the same generator state, the same batch)."""
    skipped, grad_norms, steps = 0, [], []
    policy.model.train()
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(len(batch), generator=gen)
        for idx in order.split(cfg.mini_batch_size):
            optimizer.zero_grad(set_to_none=True)
            stats = minibatch_loss(policy, algo, batch.select(idx), cfg, dp)
            norm = full_value(torch.nn.utils.clip_grad_norm_(policy.model.parameters(), cfg.max_grad_norm))
            # a non-finite loss or gradient never reaches the weights (a NaN loss can hide behind a
            # finite gradient: max/min route the gradient around a NaN branch)
            if np.isfinite(norm) and np.isfinite(stats["loss/total"].value):
                optimizer.step()
                grad_norms.append(norm)
            else:
                skipped += 1
            steps.append(stats)
    optimizer.zero_grad(set_to_none=True)  # the gradients' memory is free until the next update
    policy.model.eval()
    return {**over_steps(steps),
            "actor/grad_norm": float(np.mean(grad_norms)) if grad_norms else float("nan"),
            "actor/grad_norm_max": max(grad_norms, default=float("nan")),
            "actor/optimizer_steps": len(steps), "actor/skipped_steps": skipped,
            "actor/off_policy_steps": len(steps) - 1}


def format_trajectory(tau: Trajectory) -> str:
    lines = [f"=== {Path(tau.task).name}  won={tau.won}  return={tau.episode_return:g}  turns={len(tau.turns)}"]
    for t in tau.turns:
        lines += [f"--- turn {t.turn_index}", t.prompt, f">>> {t.response!r}  (valid={t.valid}, reward={t.env_reward:g})",
                  f"<<< {t.observation}"]
    return "\n".join(lines) + "\n"


SAMPLE_PARTS = {"first": "##### the first rollout (iteration 1)\n", "final": "##### the final held-out evaluation\n"}


def write_samples(path: Path, part: str, trajs: list[Trajectory]) -> None:
    """Write one part of ``samples.txt`` (the first rollout, then the final evaluation), replacing that
    part if a resumed run writes it again: each part appears once."""
    text = path.read_text() if part == "final" and path.exists() else ""
    text = text.split(SAMPLE_PARTS["final"])[0] + SAMPLE_PARTS[part] + "".join(format_trajectory(t) for t in trajs)
    path.write_text(text)


def save_final_policy(policy: Policy, run_dir: Path, state_dict: dict | None = None) -> None:
    """Write ``run_dir/policy`` as a whole: it appears complete or not at all (it marks a finished run).
    ``state_dict``: the full weights of a sharded (FSDP) model."""
    tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=".tmp-policy-"))
    policy.save(tmp, state_dict)
    final = run_dir / "policy"
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=run_dir, prefix=".old-policy-"))
        os.replace(final, old / "policy")
        shutil.rmtree(old)
    os.replace(tmp, final)


def default_run_dir(cfg: TrainConfig) -> Path:
    """``runs/<algo>-<task>-s<seed>-<time>``."""
    return Path(f"runs/{cfg.algo}-{task_label(cfg)}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}")


def finished_metrics(run_dir: Path, iterations: int) -> list[dict] | None:
    """The metrics of a run that finished exactly ``iterations`` iterations (final policy written), else None."""
    if not (run_dir / "policy").is_dir():
        return None
    metrics = checkpoint.read_metrics(run_dir / "metrics.jsonl")
    finals = [m for m in metrics if m.get("final") and "train_games/success" in m]
    return metrics if finals and finals[-1]["iteration"] == iterations else None


def check_answer_budget(cfg: TrainConfig, policy: Policy, task) -> None:
    """``max_new_tokens`` must fit the shortest well-formed answer in this model's tokens."""
    shortest = ("<think></think>" if task.think == "required" else "") + "<action>look</action>"
    need = len(policy.tokenizer.encode(shortest, add_special_tokens=False))
    if cfg.max_new_tokens < need:
        raise ConfigError(f"max_new_tokens={cfg.max_new_tokens} is not allowed: expected ≥ {need}, the tokens of the "
                          f"shortest well-formed answer {shortest!r} for model={cfg.model!r}")


@dataclass
class RunResult:
    run_dir: Path
    metrics: list[dict]

    def _at(self, prefix: str, final: bool) -> dict:
        """The first (before training) or final record holding ``prefix/success``, keys as ``eval/…``."""
        rows = [m for m in self.metrics if f"{prefix}/success" in m and bool(m.get("final")) == final]
        return {k.replace(f"{prefix}/", "eval/"): v for k, v in rows[-1 if final else 0].items()}

    @property
    def eval_before(self) -> dict:
        return self._at("eval", final=False)

    @property
    def eval_after(self) -> dict:
        return self._at("eval", final=True)

    @property
    def train_before(self) -> dict:
        return self._at("train_games", final=False)

    @property
    def train_after(self) -> dict:
        return self._at("train_games", final=True)


def train(cfg: TrainConfig, resume: bool = False) -> RunResult:
    """Run ``cfg``; with ``resume``, continue the run in ``cfg.run_dir`` from its last checkpoint (from
    iteration 0 if it has none; a run that already finished ``cfg.iterations`` is returned as it is)."""
    cfg.validate()
    algo = ALGORITHMS[cfg.algo]
    # 0. set-up ------------------------------------------------------------------------------
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng, gen = random.Random(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    dp = DataParallel.from_env(cfg.device, cfg.fsdp)  # under torchrun: this rank (sampo_ref/distributed.py)
    if dp and cfg.tasks_per_iter % dp.world:
        raise ConfigError(f"tasks_per_iter={cfg.tasks_per_iter} is not allowed with {dp.world} ranks: "
                          "expected a multiple of the number of ranks (each rank plays whole task groups)")
    main = dp is None or dp.main  # the process that writes the run directory
    device = dp.device if dp else pick_device(cfg.device)
    run_dir = Path(cfg.run_dir or default_run_dir(cfg))
    ckpt = None
    if resume:
        done = finished_metrics(run_dir, cfg.iterations)
        if done is not None:
            tqdm.write(f"{run_dir} already finished its {cfg.iterations} iterations: nothing to do "
                       f"(--iterations N with a larger N continues it)")
            return RunResult(run_dir, done)
        if main:
            checkpoint.remove_leftovers(run_dir)
        ckpt = checkpoint.latest(run_dir)
        if ckpt is None and main:
            tqdm.write(f"{run_dir} has no checkpoint yet: starting it again from iteration 0")
    elif (run_dir / "metrics.jsonl").exists():
        raise ConfigError(f"run_dir={str(run_dir)!r} already holds a run (metrics.jsonl); continue it with "
                          f"sampo-ref train --resume {run_dir}, or choose another directory")
    if dp:
        dp.barrier()  # every rank has read run_dir before rank 0 writes into it
    task = make_task(cfg)
    if dp and not main:  # rank 0 builds the tiny policy's cache alone (only rank 0 writes weights), then all load it
        dp.barrier()
    policy = make_policy(cfg, task, device)  # the initial policy, which is also the reference
    if dp and main:
        dp.barrier()
    check_answer_budget(cfg, policy, task)
    ref_model = make_reference(cfg, policy)
    if cfg.env_workers:  # after make_policy: the tiny policy's warm-start plays in this process
        task.start_workers(cfg.env_workers)
    if ckpt is not None:
        try:
            policy = make_policy(cfg, task, device, ckpt / "policy")
        except ConfigError as err:
            raise ConfigError(f"{err}; the checkpoint is damaged: {checkpoint.RESTART}") from None
    if cfg.engine == "vllm":  # rollouts on vLLM; its weights follow every update (policy.updating)
        policy.use_engine(cfg.engine_memory, cfg.seed, torch.bfloat16 if cfg.dtype == "bfloat16" else None)
    if dp:
        dp.wrap(policy.model)  # DDP, or FSDP2 sharding in place (before the optimiser sees the parameters)
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = checkpoint.restore(ckpt, dp.optimizer_io(policy.model, optimizer) if dp else optimizer, rng, gen
                               ) if ckpt is not None else 0
    if start > cfg.iterations:
        raise ConfigError(f"iterations={cfg.iterations} is not allowed: expected ≥ {start}, the iteration of "
                          f"the run's last checkpoint ({ckpt})")
    rollout_cfg = RolloutConfig(max_turns=task.max_turns, max_new_tokens=cfg.max_new_tokens,
                                temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                think=task.think)
    if not start:
        metrics = []
    elif main:
        metrics = checkpoint.trim_metrics(run_dir / "metrics.jsonl", start)
    else:  # the records up to the checkpoint, as rank 0 keeps them
        metrics = checkpoint.read_metrics(run_dir / "metrics.jsonl", start)
    if main and not start:  # a new run, or one killed before its first checkpoint: begin with a clean directory
        for stale in ("metrics.jsonl", "samples.txt", "learning_curve.png"):
            (run_dir / stale).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)  # only now: a run that fails its set-up leaves no directory
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    log = RunLog(run_dir, cfg.to_dict(), start, cfg.tensorboard, cfg.wandb_project) if main else None
    watch = CollapseWatch()
    for m in metrics:  # a resumed run's watch knows the iterations before the checkpoint
        if "rollout/success" in m:
            watch.update(m)

    def write(record: dict) -> None:
        metrics.append(record)
        if log:
            log.write(record)

    def full_state():
        """With FSDP every rank gathers the full weights and optimiser state (rank 0 writes them)."""
        return dp.full_state(policy.model, optimizer) if dp and dp.fsdp else None

    title = f"{cfg.algo} on {task_label(cfg)}, seed {cfg.seed}"

    def held_out(iteration: int, **extra) -> tuple[dict, list[Trajectory]]:
        ev, trajs = evaluate(policy, task, task.eval_pool, cfg, seed=cfg.seed)
        write({"iteration": iteration, **extra, **ev})
        if main:
            plot_runs([run_dir], run_dir / "learning_curve.png", title)  # kept current: a killed run still has it
        return ev, trajs

    def on_training_games() -> dict:
        return {k.replace("eval/", "train_games/"): v for k, v in
                evaluate(policy, task, task.train_panel, cfg, seed=cfg.seed)[0].items()}

    if start == 0:
        write({"iteration": 0, **on_training_games()})
        held_out(0)
    bar = tqdm(range(start + 1, cfg.iterations + 1), desc=f"{cfg.algo} on {task_label(cfg)}", unit="it",
               initial=start, total=cfg.iterations, disable=not (cfg.progress and main))
    for it in bar:
        t0 = time.perf_counter()
        # 1. rollout (with dynamic sampling: drop all-equal groups and roll out again, docs/algorithms/dynamic_sampling.md#the-rule) -----
        generated: list[Trajectory] = []  # every trajectory of every try, kept or not

        def rollout_groups() -> list[list[Trajectory]]:
            games, play_rng = rng.sample(task.train_pool, cfg.tasks_per_iter), rng
            if dp:  # whole groups per rank, each rank its own streams; every rank gets every trajectory
                games, seed = dp.mine(games), rng.getrandbits(62)
                torch.manual_seed(seed + dp.rank)
                play_rng = random.Random(seed + dp.rank)
            with precision(cfg, policy.device):
                trajs = collect(policy, task.envs(games, cfg.group_size), [str(g) for g in games], cfg.group_size,
                                task.prompt, rollout_cfg, play_rng)
            trajs = dp.gather(trajs) if dp else trajs
            generated.extend(trajs)
            return [trajs[i : i + cfg.group_size] for i in range(0, len(trajs), cfg.group_size)]

        resample = algo.filter or (dynamic_sample if cfg.filter_groups else None)
        if resample and filter_active(it, cfg.cold_start_steps, enabled=True, training=True):
            groups, filter_info = resample(rollout_groups, cfg.tasks_per_iter * cfg.group_size, cfg.group_size,
                                           cfg.max_num_gen_batches, returns_of=lambda g: [t.episode_return for t in g])
        else:
            groups, filter_info = rollout_groups(), {}
        trajs = [t for g in groups for t in g]
        batch = TurnBatch.from_trajectories(trajs, policy.pad_id)
        if it == 1 and main:
            write_samples(run_dir / "samples.txt", "first", trajs[: cfg.samples])
        t1 = time.perf_counter()
        # 2. old and reference log-probs --------------------------------------------------------
        fill_old_logprobs(policy, ref_model, batch, cfg, dp)
        t2 = time.perf_counter()
        # 3. advantages -------------------------------------------------------------------------
        batch.adv = algo.advantages(batch, cfg)  # (B,)
        if cfg.invalid_adv_penalty:  # the invalid turn's own cost, outside the group normalisation
            batch.adv = penalise_invalid_advantage(batch.adv, batch.valid, cfg.invalid_adv_penalty)  # (B,)
        # 4. update -----------------------------------------------------------------------------
        with policy.updating():  # the engine (if any) sleeps through the update, then gets the new weights
            upd = update(policy, algo, optimizer, batch, cfg, gen, dp)
        t3 = time.perf_counter()
        # 5. log, evaluate, checkpoint ----------------------------------------------------------
        record = {"iteration": it, **rollout_metrics(trajs, batch, "rollout"), **upd,
                  # the policy's success: over all generated trajectories (rollout/success is over the
                  # kept ones, which the filter biases towards mixed groups)
                  "rollout/success_all": float(np.mean([t.won for t in generated])),
                  **{f"filter/{k}": v for k, v in filter_info.items()},
                  **batch_diagnostics(trajs, batch), "time/rollout": t1 - t0, "time/logprobs": t2 - t1,
                  "time/update": t3 - t2, "time/iteration": t3 - t0}
        for kind, message in watch.update(record).items():
            if main and not any(f"warn/{kind}" in m for m in metrics):  # say it once; count it every time
                tqdm.write(f"warning (iteration {it}): {message}")
            record[f"warn/{kind}"] = 1
        write(record)
        if not any(m.get("actor/optimizer_steps", 0) > m.get("actor/skipped_steps", 0) for m in metrics):
            raise ConfigError(f"every optimiser step so far was skipped (iteration {it}: loss/total="
                              f"{upd.get('loss/total', float('nan')):.3g}, actor/grad_norm_max={upd['actor/grad_norm_max']:.3g}): "
                              "the loss or its gradient is not finite, so the weights never changed; "
                              f"check the reward and loss coefficients in {run_dir / 'config.json'}")
        postfix = {"success": f"{record['rollout/success']:.2f}"}
        if cfg.eval_every and it % cfg.eval_every == 0 and it != cfg.iterations:
            postfix["held-out"] = f"{held_out(it)[0]['eval/success']:.2f}"
        if cfg.save_every and (it % cfg.save_every == 0 or it == cfg.iterations):  # the last: a run can be continued
            full = full_state()
            if main:
                checkpoint.save(run_dir, it, policy, optimizer, rng, gen, full)
        bar.set_postfix(postfix)
    # 6. final evaluation and artefacts ---------------------------------------------------------
    eval_after, final_trajs = held_out(cfg.iterations, final=True)
    write({"iteration": cfg.iterations, "final": True, **on_training_games()})
    full = full_state()
    if main:
        log.close()
        write_samples(run_dir / "samples.txt", "final", final_trajs[: cfg.samples])
        save_final_policy(policy, run_dir, full and full[0])  # last: a run with policy/ and final records has finished
    if task.workers is not None:
        task.workers.close()
    if dp:
        dp.barrier()  # rank 0 has written everything
        dp.close()
    return RunResult(run_dir, metrics)

