"""Shared maths for every variant: masked means, group statistics, row scores, loss aggregation
(the mini-batch counts it divides by, and the named terms a loss is made of), the diagnostics a
loss logs, the k3 KL estimate and the entropy of a softmax.

Pure functions on tensors; nothing here knows about models or environments. Equation tags (S1),
(S2), ... are the tags of the docs pages (docs/notation.md).

Shape legend: ``B`` rows (one row = one agent turn), ``T`` response tokens, ``V`` vocabulary,
``n`` distinct groups (or trajectories) among the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (over everything, or along ``dim``).

    An empty selection gives 0, not NaN.
    """
    mask = mask.to(x.dtype)
    total = (x * mask).sum() if dim is None else (x * mask).sum(dim)
    count = mask.sum() if dim is None else mask.sum(dim)
    return total / count.clamp(min=1)


# ----------------------------------------------------------------------------- group statistics


def dense_index(index: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Map arbitrary ids (random group ids, say) to 0..n-1; returns (dense index (B,), n)."""
    uniq, inverse = torch.unique(index, return_inverse=True)
    return inverse, len(uniq)


def segment_mean(values: torch.Tensor, inverse: torch.Tensor, n: int):
    """Per-segment (mean (n,), count (n,)). A constant segment's mean is exactly its value."""
    count = torch.bincount(inverse, minlength=n).to(values.dtype)  # (n,)
    total = values.new_zeros(n).index_add_(0, inverse, values)  # (n,)
    lo = values.new_full((n,), float("inf")).scatter_reduce_(0, inverse, values, "amin")  # (n,)
    hi = values.new_full((n,), -float("inf")).scatter_reduce_(0, inverse, values, "amax")  # (n,)
    # sum/n of equal floats can miss the value by one ulp (3 x 0.1); pin it so that a constant
    # group gives s - mu == 0 exactly, hence A == 0 exactly (S2, "Constant scores")
    mean = torch.where(lo == hi, lo, total / count)  # (n,)
    return mean, count


# --8<-- [start:group_stats]
def group_stats(values: torch.Tensor, group_index: torch.Tensor):
    """Per-row mean and unbiased std of the row's group, Eq. (S2).

    values (B,), group_index (B,) long (any ids, any order) -> (mean (B,), std (B,)).
    Singleton group: mean 0, std 1 (a convention of the reference code, (S2)).
    Constant group: mean equals the value exactly and std is exactly 0.
    """
    inverse, n = dense_index(group_index)  # (B,)
    mean, count = segment_mean(values, inverse, n)  # (n,), (n,)
    sq_dev = (values - mean[inverse]) ** 2  # (B,)
    # Eq. (S2): Bessel's correction, 1 / (|Q_g| - 1)
    var = values.new_zeros(n).index_add_(0, inverse, sq_dev) / (count - 1).clamp(min=1)  # (n,)
    std = var.sqrt()  # (n,)
    single = count == 1  # (n,)
    mean = torch.where(single, torch.zeros_like(mean), mean)  # (n,)
    std = torch.where(single, torch.ones_like(std), std)  # (n,)
    return mean[inverse], std[inverse]
# --8<-- [end:group_stats]


# --8<-- [start:row_scores]
def row_scores(episode_return: torch.Tensor, valid: torch.Tensor, invalid_penalty: float = 0.1):
    """Eq. (S1): q_j = R_tau(j) - c_inv * (1 - v_j). All (B,).

    The penalty touches only the invalid row's own score, never R (docs/rollout.md#from-trajectories-to-rows).
    Default c_inv = 0.1 from [ARL] ``apply_invalid_action_penalty``.
    """
    return episode_return - invalid_penalty * (1.0 - valid.to(episode_return.dtype))
# --8<-- [end:row_scores]


# --8<-- [start:invalid_advantage]
def penalise_invalid_advantage(adv: torch.Tensor, valid: torch.Tensor, penalty: float) -> torch.Tensor:
    """min(A_j, 0) - c_adv on an invalid turn, A_j unchanged on a valid one, **after** the group
    normalisation (project option; docs/results.md "Invalid actions"). All (B,).

    An invalid command changes nothing but the turn count, so it cannot have helped its episode:
    it earns no share of a win's credit (the clamp), and it costs c_adv. Unlike c_inv inside the
    score (S1), the cost is not rescaled by a group's σ: it cannot outweigh the win signal in a
    group whose episodes all fail alike.
    """
    invalid = valid.to(adv.dtype) < 0.5
    return torch.where(invalid, adv.clamp(max=0.0) - penalty, adv)
# --8<-- [end:invalid_advantage]


# ----------------------------------------------------------------------------- loss aggregation


def _check_mode(mode: str) -> None:
    if mode not in AGG_MODES:
        raise ValueError(f"unknown loss aggregation mode {mode!r}; expected one of {AGG_MODES}")


@dataclass(frozen=True)
class Counts:
    """What the aggregation modes divide by, counted on one (B, T) mask of a whole MINI-batch.

    Counted once, before the micro-batches (``trainer.prepare_minibatch``). They are sums, so the
    counts of several data-parallel shards add up to the counts of the mini-batch they share.
    """

    tokens: float  # unmasked tokens
    rows_with_tokens: float  # rows with at least one unmasked token (|V|)
    rows: float  # all rows B, fully masked ones included

    @classmethod
    def of(cls, mask: torch.Tensor) -> "Counts":
        return cls(float(mask.sum()), float((mask.sum(-1) > 0).sum()), float(mask.shape[0]))

    def denominator(self, mode: str, max_len: int | None = None) -> float:
        """The divisor of the aggregation formula (docs/dimensions.md#loss-aggregation) in ``mode``:

        token-mean              -> number of unmasked tokens
        seq-mean-token-mean     -> number of rows with at least one unmasked token (|V|)
        seq-mean-token-sum      -> all rows B, fully masked ones included (as in [ARL])
        seq-mean-token-sum-norm -> max_len, a constant (project: ``max_response_length``)

        A count of 0 becomes 1, so an all-masked mini-batch has loss 0 rather than NaN.
        """
        _check_mode(mode)
        if mode == "token-mean":
            return max(self.tokens, 1.0)
        if mode == "seq-mean-token-mean":
            return max(self.rows_with_tokens, 1.0)
        if mode == "seq-mean-token-sum":
            return self.rows
        if max_len is None:  # seq-mean-token-sum-norm
            raise ValueError(
                "loss aggregation mode 'seq-mean-token-sum-norm' needs max_len "
                "(the constant max_response_length), got None"
            )
        return float(max_len)


def agg_denominator(mask: torch.Tensor, mode: str, max_len: int | None = None) -> float:
    """The divisor of ``mode``'s formula for the whole MINI-batch mask (B, T) (``Counts.denominator``)."""
    return Counts.of(mask).denominator(mode, max_len)


@dataclass
class Term:
    """One named part of a mini-batch loss, aggregated on its own: the loss is
    sum over terms of ``coef * aggregate(values, masks[mask], mode, <mini-batch denominator>)`` (S19)."""

    values: torch.Tensor  # (B, T) per-token values, exactly 0 off their mask
    mask: str  # the mask it is aggregated over: "policy" (response minus masked turns), "response", or a method's own
    mode: str  # aggregation mode, one of AGG_MODES
    coef: float = 1.0  # weight in the total loss (the entropy bonus: -c_H)


def aggregate(
    loss: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    denominator: float | None = None,
    max_len: int | None = None,
) -> torch.Tensor:
    """This micro-batch's share of the aggregated loss: its partial sum / the mini-batch ``denominator``.

    loss (B, T), mask (B, T) -> scalar. Summed over any split of a mini-batch's rows into
    micro-batches, with ``denominator = agg_denominator(minibatch_mask, mode)``, it equals the
    formula on the whole mini-batch (project choice, docs/dimensions.md#loss-aggregation; the reference instead averages
    per-micro-batch means, which differs when micro-batches have unequal token counts).
    ``denominator=None``: treat (loss, mask) as the whole mini-batch (one micro-batch).
    """
    # --8<-- [start:aggregate]
    _check_mode(mode)
    if denominator is None:
        denominator = agg_denominator(mask, mode, max_len)
    # where(), not loss * mask: a non-finite loss on a padding token must not leak into the sum
    token_loss = torch.where(mask.bool(), loss, torch.zeros_like(loss))  # (B, T)
    if mode == "seq-mean-token-mean":
        row_len = mask.to(loss.dtype).sum(-1)  # (B,)
        row_mean = token_loss.sum(-1) / row_len.clamp(min=1)  # (B,)  rows with 0 tokens give 0
        return row_mean.sum() / denominator
    # token-mean, seq-mean-token-sum and -norm share the partial sum; only the divisor differs
    return token_loss.sum() / denominator
    # --8<-- [end:aggregate]


# ----------------------------------------------------------------------------- surrogate diagnostics


class Stat(NamedTuple):
    """A logged diagnostic, kept as a total and a count so that the parts of a batch pool exactly."""

    total: float | torch.Tensor  # a sum (pool "mean" or "sum"), or an extreme (pool "min" or "max")
    count: float = 1.0  # how many tokens (rows, …) ``total`` is over; 0 = none seen
    pool: str = "mean"  # how parts combine: "mean" (sum of totals / sum of counts), "sum", "min", "max"
    over: str = "step"  # "step": one value per optimiser step, the iteration averages them;
    # "iteration": pooled over every step of the iteration

    @property
    def value(self) -> float:
        total = float(self.total)
        return total / self.count if self.pool == "mean" and self.count else total

    def item(self) -> float:
        return self.value


def pool(parts: list[Stat]) -> Stat:
    """The same diagnostic over several parts (micro-batches, or steps) as one ``Stat``."""
    first, count = parts[0], sum(p.count for p in parts)
    if first.pool in ("mean", "sum"):
        return first._replace(total=sum(float(p.total) for p in parts), count=count)
    seen = [p for p in parts if p.count] or [first]  # an extreme over nothing keeps the first default
    return first._replace(total=(min if first.pool == "min" else max)(float(p.total) for p in seen), count=count)


def clip_stats(clipped: torch.Tensor, logp: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor,
               clipped_lower: torch.Tensor | None = None) -> dict[str, Stat]:
    """The diagnostics every surrogate logs (docs/metrics.md), token means over the valid tokens.

    clipped (B, T): where this surrogate's clip acted (its own definition, docs/dimensions.md#which-tokens-get-exactly-zero-gradient); clipped_lower
    (B, T): where the dual clip acted (token clip only; else 0); ppo_kl: k1 estimate of
    KL(π_old ‖ π_θ), the token mean of logp_old - logp.
    """
    with torch.no_grad():
        m = mask.to(logp.dtype)  # (B, T)
        tokens = float(m.sum())
        lower = torch.zeros_like(logp) if clipped_lower is None else clipped_lower.to(logp.dtype)
        return {
            "clipfrac": Stat((clipped.to(logp.dtype) * m).sum(), tokens),
            "clipfrac_lower": Stat((lower * m).sum(), tokens),  # over ALL valid tokens (docs/algorithms/grpo.md#key-equations)
            "ppo_kl": Stat(((logp_old - logp) * m).sum(), tokens),
        }


# ----------------------------------------------------------------------------- KL and entropy


def k3_kl(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Eq. (S18): per-token k3 ("low_var_kl") estimate of KL(pi_theta || pi_ref), (B, T).

    u = clamp(logp_ref - logp, -20, 20); k3 = clamp(e^u - u - 1, -10, 10).
    d k3 / d logp = 1 - pi_ref / pi_theta; zero where |u| > 20 or k3 > 10 (the clamps).
    """
    # --8<-- [start:k3_kl]
    u = torch.clamp(logp_ref - logp, -20.0, 20.0)  # (B, T)
    return torch.clamp(torch.exp(u) - u - 1.0, -10.0, 10.0)  # (B, T)
    # --8<-- [end:k3_kl]


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary entropy -sum_v p log p at each position: logits (..., V) -> (...).

    Uses log_softmax, so large logits do not overflow; logits must be finite.
    Computed in the input dtype: cast bf16 logits up first if precision matters.
    """
    logp_all = torch.log_softmax(logits, dim=-1)  # (..., V)
    return -(logp_all.exp() * logp_all).sum(-1)  # (...)
