"""Maths tests for sampo_ref.algos.common: group statistics (S2), row scores (S1), the four loss
aggregation modes of docs/dimensions.md#loss-aggregation and their micro-batch split, k3 (S18) and the entropy of (S19).

Expected numbers are worked by hand (or by plain Python loops in the test), never by the code
under test.
"""

import math

import pytest
import torch

from sampo_ref.algos.common import (
    AGG_MODES,
    agg_denominator,
    aggregate,
    entropy_from_logits,
    group_stats,
    k3_kl,
    masked_mean,
    row_scores,
)


# ----------------------------------------------------------------------------- masked mean, S1, S2


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert masked_mean(x, mask).item() == pytest.approx(2.0)  # (1 + 2 + 3) / 3
    assert torch.allclose(masked_mean(x, mask, dim=-1), torch.tensor([1.5, 3.0]))
    assert masked_mean(x, torch.zeros_like(mask)).item() == 0.0  # empty -> 0, not NaN


@pytest.mark.equation("S1")
def test_row_scores_worked_example():
    """Checks (S1) on docs/algorithms/gigpo.md#key-equations: the penalty hits only the invalid row."""
    episode_return = torch.tensor([10.0, 10.0, 0.0, 0.0, 0.0])
    valid = torch.tensor([True, True, True, False, True])
    scores = row_scores(episode_return, valid, invalid_penalty=0.1)
    assert torch.allclose(scores, torch.tensor([10.0, 10.0, 0.0, -0.1, 0.0]))


@pytest.mark.equation("S2")
def test_group_stats_worked_example():
    """Checks (S2): mu = 3.98, sigma = 5.4956 over the 5 rows of docs/algorithms/gigpo.md#key-equations."""
    scores = torch.tensor([10.0, 10.0, 0.0, -0.1, 0.0], dtype=torch.float64)
    mean, std = group_stats(scores, torch.zeros(5, dtype=torch.long))
    assert torch.allclose(mean, torch.full((5,), 3.98, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(std, torch.full((5,), 5.4956, dtype=torch.float64), atol=1e-4)


@pytest.mark.equation("S2")
def test_group_stats_unbiased_singleton_and_arbitrary_ids():
    """Checks (S2): Bessel's correction, singleton convention, ids in any order."""
    # group 7 = {1, 2, 3}: mean 2, unbiased std 1 (biased would be 0.8165);
    # group -4 = {10}: singleton -> mean 0, std 1; group 3 = {0, 2}: mean 1, std sqrt(2)
    values = torch.tensor([1.0, 10.0, 0.0, 2.0, 2.0, 3.0])
    groups = torch.tensor([7, -4, 3, 7, 3, 7])
    mean, std = group_stats(values, groups)
    assert torch.allclose(mean, torch.tensor([2.0, 0.0, 1.0, 2.0, 1.0, 2.0]))
    assert torch.allclose(std, torch.tensor([1.0, 1.0, math.sqrt(2), 1.0, math.sqrt(2), 1.0]))


@pytest.mark.equation("S2")
def test_group_stats_constant_group_is_exact():
    """Checks (S2) "constant scores": mean equals the value bit for bit, std is exactly 0."""
    values = torch.full((7,), 0.1)  # float32: sum / 7 misses 0.1 by an ulp
    assert (values.sum() / 7).item() != values[0].item()  # the case this test is about
    mean, std = group_stats(values, torch.zeros(7, dtype=torch.long))
    assert torch.equal(values - mean, torch.zeros(7))
    assert torch.equal(std, torch.zeros(7))


# ----------------------------------------------------------------------------- aggregation, docs/dimensions.md#loss-aggregation

# 5 rows, T = 4; row lengths 4, 2, 0, 1, 3 (row 2 fully masked)
LENGTHS = [4, 2, 0, 1, 3]
T = 4


def _ragged():
    mask = torch.tensor([[1.0 if t < n else 0.0 for t in range(T)] for n in LENGTHS])
    loss = torch.tensor([[10.0 * b + t + 1 for t in range(T)] for b in range(len(LENGTHS))])
    loss[mask == 0] = 1e6  # padding values must never count
    return loss, mask


def _by_hand(mode, max_len=8):
    """The aggregation formulas with plain Python over the ragged rows."""
    rows = [[10.0 * b + t + 1 for t in range(n)] for b, n in enumerate(LENGTHS)]
    if mode == "token-mean":
        return sum(sum(r) for r in rows) / sum(LENGTHS)
    if mode == "seq-mean-token-mean":
        nonempty = [r for r in rows if r]
        return sum(sum(r) / len(r) for r in nonempty) / len(nonempty)
    if mode == "seq-mean-token-sum":
        return sum(sum(r) for r in rows) / len(rows)
    return sum(sum(r) for r in rows) / max_len


def test_aggregate_hand_numbers():
    """Checks the aggregation on literal numbers: token sums 10 + 23 + 0 + 31 + 126 = 190 over 10 tokens."""
    loss, mask = _ragged()
    assert aggregate(loss, mask, "token-mean").item() == pytest.approx(19.0)
    # row means 2.5, 11.5, 31, 42 over the 4 non-empty rows
    assert aggregate(loss, mask, "seq-mean-token-mean").item() == pytest.approx(87.0 / 4)
    assert aggregate(loss, mask, "seq-mean-token-sum").item() == pytest.approx(190.0 / 5)
    norm = aggregate(loss, mask, "seq-mean-token-sum-norm", max_len=8)
    assert norm.item() == pytest.approx(190.0 / 8)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregate_matches_formula(mode):
    """Checks the aggregation: each mode equals its formula on a ragged mask with a fully masked row."""
    loss, mask = _ragged()
    assert aggregate(loss, mask, mode, max_len=8).item() == pytest.approx(_by_hand(mode), rel=1e-6)


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("micro_rows", [1, 2, 3, 5])
def test_micro_batch_split_equals_full_batch(mode, micro_rows):
    """Checks the aggregation (project choice): summed micro-batch shares equal the mini-batch formula,
    values and gradients."""
    loss, mask = _ragged()
    loss = torch.where(mask.bool(), loss, torch.zeros_like(loss)).requires_grad_(True)
    full = aggregate(loss, mask, mode, max_len=8)
    (grad_full,) = torch.autograd.grad(full, loss)

    denominator = agg_denominator(mask, mode, max_len=8)  # once, on the whole mini-batch
    total = sum(
        aggregate(loss[i : i + micro_rows], mask[i : i + micro_rows], mode, denominator)
        for i in range(0, len(LENGTHS), micro_rows)
    )
    (grad_split,) = torch.autograd.grad(total, loss)
    assert total.item() == pytest.approx(full.item(), abs=1e-6)
    assert torch.allclose(grad_split, grad_full, atol=1e-6)
    assert torch.equal(grad_split[mask == 0], torch.zeros(int((mask == 0).sum())))


def test_mean_of_micro_means_differs():
    """Checks the aggregation: the reference's mean of micro-batch token-means is NOT the mini-batch mean here,
    which is why the denominator is taken once."""
    loss, mask = _ragged()
    first = aggregate(loss[:2], mask[:2], "token-mean")
    second = aggregate(loss[2:], mask[2:], "token-mean")
    mean_of_means = (first + second) / 2  # (33/6 + 157/4) / 2
    assert mean_of_means.item() == pytest.approx((33 / 6 + 157 / 4) / 2)
    assert abs(mean_of_means.item() - 19.0) > 1.0


def test_zero_token_rows_and_empty_batch():
    """Checks the aggregation: fully masked rows count in seq-mean-token-sum only; an empty batch gives 0."""
    loss, mask = _ragged()
    assert agg_denominator(mask, "token-mean") == 10.0
    assert agg_denominator(mask, "seq-mean-token-mean") == 4.0  # row 2 has no token
    assert agg_denominator(mask, "seq-mean-token-sum") == 5.0  # row 2 still counts
    assert agg_denominator(mask, "seq-mean-token-sum-norm", max_len=512) == 512.0
    empty = torch.zeros_like(mask)
    for mode in AGG_MODES:
        assert aggregate(loss, empty, mode, max_len=8).item() == 0.0


def test_aggregate_validation_names_bad_value():
    loss, mask = _ragged()
    with pytest.raises(ValueError, match="'token_mean'.*seq-mean-token-mean"):
        aggregate(loss, mask, "token_mean")
    with pytest.raises(ValueError, match="'seq-mean'"):
        agg_denominator(mask, "seq-mean")
    with pytest.raises(ValueError, match="max_len"):
        agg_denominator(mask, "seq-mean-token-sum-norm")


# ----------------------------------------------------------------------------- k3 (S18), entropy


@pytest.mark.equation("S18")
def test_k3_values_on_hand_numbers():
    """Checks (S18): k3 = e^u - u - 1 with u = logp_ref - logp, and k3 >= 0."""
    logp = torch.zeros(4)
    logp_ref = torch.tensor([1.0, -1.0, 0.0, 0.5])  # u = logp_ref - 0
    expected = torch.tensor([0.7182818, 0.3678794, 0.0, 0.1487213])  # e - 2, 1/e, 0, e^.5 - 1.5
    assert torch.allclose(k3_kl(logp, logp_ref), expected, atol=1e-6)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, generator=gen) * 3, torch.randn(1000, generator=gen) * 3
    assert (k3_kl(a, b) >= 0).all()


@pytest.mark.equation("S18")
def test_k3_gradient_and_clamps():
    """Checks (S18): d k3 / d logp = 1 - pi_ref / pi_theta; zero where |u| > 20 or k3 > 10."""
    u = torch.tensor([1.0, -1.0, 0.5, -9.0, 3.0, -12.0, 25.0, -25.0], dtype=torch.float64)
    logp = torch.full_like(u, -2.0).requires_grad_(True)
    logp_ref = logp.detach() + u
    k3 = k3_kl(logp, logp_ref)
    (grad,) = torch.autograd.grad(k3.sum(), logp)
    # first four: inside both clamps; grad = 1 - pi_ref/pi_theta = 1 - e^u
    inside = torch.tensor([1 - math.e, 1 - math.exp(-1), 1 - math.exp(0.5), 1 - math.exp(-9)])
    assert torch.allclose(grad[:4], inside.double(), atol=1e-9)
    # u = 3: k3 = e^3 - 4 = 16.09 > 10; u = -12: k3 = 11 > 10; |u| = 25 > 20
    assert torch.equal(grad[4:], torch.zeros(4, dtype=torch.float64))
    assert torch.equal(k3[4:], torch.full((4,), 10.0, dtype=torch.float64))


def test_entropy_from_logits():
    """Checks the entropy of (S19): -sum p log p; log V if uniform; stable for large logits."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=gen, dtype=torch.float64)
    p = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)  # direct softmax
    direct = -(p * torch.log(p)).sum(-1)
    assert torch.allclose(entropy_from_logits(logits), direct, atol=1e-12)
    assert torch.allclose(entropy_from_logits(torch.zeros(2, 50)), torch.full((2,), math.log(50)))
    big = torch.tensor([[1e4, 1e4, -1e4]])  # naive exp overflows; two equal winners -> log 2
    assert torch.allclose(entropy_from_logits(big), torch.tensor([math.log(2)]))
