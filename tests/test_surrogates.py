"""Cross-surrogate maths tests (docs/dimensions.md#which-tokens-get-exactly-zero-gradient,
docs/dimensions.md#loss-aggregation): on-policy every surrogate gives the REINFORCE gradient under
its aggregation, and each one zeroes exactly the tokens that the zero-gradient table lists.
"""

import math

import pytest
import torch

from sampo_ref.algos import cispo, gspo, sapo, seq_mask, soft_sapo
from sampo_ref.algos.common import AGG_MODES, aggregate
from sampo_ref.algos.grpo import token_clip_loss

F64 = torch.float64


def _sapo_base(logp, logp_old, adv, mask):
    """Search-Agent SAPO's base: the token clip with symmetric eps and no dual clip (docs/algorithms/sapo.md#key-equations)."""
    return token_clip_loss(logp, logp_old, adv, mask, 0.2, 0.2, dual_clip=None)


def _sapo(logp, logp_old, adv, mask):
    """Search-Agent SAPO's two terms added per token: L = agg(clip) + w_kl agg(ckl over P's tokens)
    weighs them by positive constants, so the sum has L's zero pattern; on-policy with t_kl = 0.8 < 1
    the KL term is 0 and the sum is the clip term."""
    clip, ckl, stats = sapo.sapo_loss(logp, logp_old, adv, mask)
    return clip + 0.1 * ckl, stats


# per-token loss functions with their defaults; own aggregation in the comment (docs/dimensions.md#loss-aggregation), and
# every mode of AGG_MODES is tested, the own one included
SURROGATES = {
    "token_clip": token_clip_loss,  # token-mean
    "gspo": gspo.gspo_loss,  # gspo.PG_AGG = seq-mean-token-mean
    "soft_sapo": soft_sapo.soft_sapo_loss,  # token-mean
    "cispo": cispo.cispo_loss,  # token-mean
    "sapo_base": _sapo_base,  # sapo.PG_AGG = token-mean
    "sapo": _sapo,  # token-mean; t_kl = 0.8 < 1, so the KL term is off on-policy
}

LENGTHS = [4, 2, 0, 1, 3]  # ragged rows, one fully masked


def _reinforce_weight(mode, n, B, max_len):
    """The aggregation weight of one valid token of a row with n tokens, worked out from the formulas."""
    n_tokens, n_nonempty = sum(LENGTHS), sum(1 for k in LENGTHS if k)
    return {
        "token-mean": 1 / n_tokens,
        "seq-mean-token-mean": 1 / (n_nonempty * n) if n else 0.0,
        "seq-mean-token-sum": 1 / B,
        "seq-mean-token-sum-norm": 1 / max_len,
    }[mode]


@pytest.mark.equation("S10", "S12", "S14", "S15", "S16")
@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("name", list(SURROGATES))
def test_on_policy_gradient_is_reinforce(name, mode):
    """Checks docs/dimensions.md#which-tokens-get-exactly-zero-gradient conventions with (S10), (S12), (S14), (S15), (S16): with logp_old a detached
    copy of logp (w = 1), kappa = 1, so every valid token's gradient is -A_j times its aggregation
    aggregation weight (own mode and every other mode); masked tokens get exactly 0."""
    loss_fn = SURROGATES[name]
    gen = torch.Generator().manual_seed(3)
    B, T, max_len = len(LENGTHS), 4, 8
    mask = torch.tensor([[1.0 if t < n else 0.0 for t in range(T)] for n in LENGTHS], dtype=F64)
    adv = torch.randn(B, generator=gen, dtype=F64)
    logp = (-torch.rand(B, T, generator=gen, dtype=F64)).requires_grad_(True)
    logp_old = logp.detach().clone()
    loss, _ = loss_fn(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(aggregate(loss, mask, mode, max_len=max_len), logp)

    expected = torch.zeros(B, T, dtype=F64)
    for b, n in enumerate(LENGTHS):
        expected[b, :n] = -adv[b] * _reinforce_weight(mode, n, B, max_len)
    assert torch.allclose(grad, expected, atol=1e-12, rtol=1e-12)
    assert torch.equal(grad[mask == 0], torch.zeros(int((mask == 0).sum()), dtype=F64))


def _with_seq_mask(loss_fn):
    """Eq. (S17) then the base loss on the post-mask policy mask, delta = 0.223."""

    def masked_loss(logp, logp_old, adv, mask):
        keep, _ = seq_mask.sequence_mask(logp, logp_old, adv, mask, delta=0.223)
        pg_mask = seq_mask.apply_sequence_mask(mask, keep)
        return loss_fn(logp, logp_old, adv, pg_mask)[0], pg_mask

    return masked_loss


def _plain(loss_fn):
    return lambda logp, logp_old, adv, mask: (loss_fn(logp, logp_old, adv, mask)[0], mask)


Z, G = True, False  # expected: exactly zero gradient / some gradient
# one token per row: (A, [w], [zero?]); eps = 0.2 (token clip, c = 3), no exact boundaries
TOKEN_ROWS = [
    (1.0, [1.5], [Z]),  # A > 0, w > 1 + eps_h
    (-1.0, [0.5], [Z]),  # A < 0, w < 1 - eps_l
    (-1.0, [4.0], [Z]),  # A < 0, w > c (dual clip)
    (0.0, [1.1], [Z]),  # A = 0
    (1.0, [0.5], [G]),
    (-1.0, [2.0], [G]),
    (1.0, [1.1], [G]),
    (-1.0, [0.9], [G]),
]
# tolerant surrogates: only A = 0 is zero
TOLERANT_ROWS = [
    (1.0, [1.5], [G]),
    (-1.0, [0.5], [G]),
    (-1.0, [4.0], [G]),
    (0.0, [1.1], [Z]),
    (1.0, [10.0], [G]),
    (-1.0, [0.05], [G]),
]
# eps_l / eps_h = 3e-3 / 4e-3; tokens as (A, [w1, w2]): s = sqrt(w1 w2)
E = math.exp
GSPO_ROWS = [
    (1.0, [E(0.02), E(-0.01)], [Z, Z]),  # A > 0, s = e^0.005 > 1.004: whole turn
    (-1.0, [E(-0.02), E(0.01)], [Z, Z]),  # A < 0, s = e^-0.005 < 0.997: whole turn
    (1.0, [E(-0.02), E(0.01)], [G, G]),
    (-1.0, [E(0.02), E(-0.01)], [G, G]),  # no dual clip, no upper clip for A < 0
    (0.0, [E(0.001), 1.0], [Z, Z]),
    (1.0, [E(0.001), E(0.002)], [G, G]),
]
# Search-Agent SAPO, t_kl = 0.8 (ln 0.8 = -0.223), eps = 0.2, no dual clip
SAPO_ROWS = [
    (1.0, [1.5], [Z]),  # clipped, lambda > ln t_kl: not selected
    (-1.0, [0.5], [Z]),  # clipped, not in P
    (0.0, [0.5], [G]),  # A = 0 (no clip gradient) but in P and selected: KL gradient
    (0.0, [1.1], [Z]),  # in P, not selected
    (1.0, [0.5], [G]),
    (-1.0, [4.0], [G]),  # no dual clip
    (-1.0, [0.9], [G]),
]
# with the sequence mask (delta = 0.223): a masked turn is zero on every token
SEQ_MASK_ROWS = [
    (-1.0, [0.9, 0.7], [Z, Z]),  # s = 0.794 < e^-0.223 = 0.800: masked; w = 0.9 had kappa 0.9
    (-1.0, [1.1, 0.95], [G, G]),  # kept
    (1.0, [0.5, 0.6], [G, G]),  # A > 0: kept, whatever s
    (0.0, [1.0, 1.0], [Z, Z]),
]

ZERO_CASES = {
    "token_clip": (_plain(token_clip_loss), TOKEN_ROWS),
    "gspo": (_plain(gspo.gspo_loss), GSPO_ROWS),
    "soft_sapo": (_plain(soft_sapo.soft_sapo_loss), TOLERANT_ROWS),
    "cispo": (_plain(cispo.cispo_loss), TOLERANT_ROWS),
    "sapo": (_plain(_sapo), SAPO_ROWS),
    "seq_mask+token_clip": (_with_seq_mask(token_clip_loss), SEQ_MASK_ROWS),
    "seq_mask+soft_sapo": (_with_seq_mask(soft_sapo.soft_sapo_loss), SEQ_MASK_ROWS),
    "seq_mask+cispo": (_with_seq_mask(cispo.cispo_loss), SEQ_MASK_ROWS),
}


@pytest.mark.equation("S10", "S12", "S14", "S15", "S16", "S17")
@pytest.mark.parametrize("name", list(ZERO_CASES))
def test_zero_gradient_table(name):
    """Checks docs/dimensions.md#which-tokens-get-exactly-zero-gradient for (S10), (S12), (S14), (S15), (S16), (S17): exactly the listed tokens
    have zero gradient, and so does every padding token (response mask, row "all"). Each row has
    one padding token whose ratio (w = 1.05, A != 0) would otherwise get a gradient."""
    loss_fn, rows = ZERO_CASES[name]
    T = max(len(ws) for _, ws, _ in rows) + 1
    logp_old = -1.0 - 0.05 * torch.arange(len(rows) * T, dtype=F64).reshape(len(rows), T)
    log_w = torch.full((len(rows), T), math.log(1.05), dtype=F64)
    mask = torch.zeros(len(rows), T, dtype=F64)
    expected_zero = torch.ones(len(rows), T, dtype=torch.bool)
    for b, (_, ws, zeros) in enumerate(rows):
        log_w[b, : len(ws)] = torch.tensor([math.log(w) for w in ws], dtype=F64)
        mask[b, : len(ws)] = 1.0
        expected_zero[b, : len(ws)] = torch.tensor(zeros)
    adv = torch.tensor([a for a, _, _ in rows], dtype=F64)
    logp = (logp_old + log_w).requires_grad_(True)
    loss, pg_mask = loss_fn(logp, logp_old, adv, mask)
    (grad,) = torch.autograd.grad(aggregate(loss, pg_mask, "token-mean"), logp)
    assert torch.equal(grad == 0, expected_zero), f"{name}: zero pattern\n{grad}"
