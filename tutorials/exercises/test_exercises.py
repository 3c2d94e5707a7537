"""Checkers for the exercises: hand-worked numbers first, then the reference on random inputs.

``impl`` (conftest.py) is the module under test: the reference solutions by default (CI), the
student's ``exercises.py`` with ``--student``. Hand-worked expected values are written as the
arithmetic that gives them, never computed by the code under test. A wrong answer fails with the
property it breaks and the expected and actual values, side by side.

The reference values on random inputs come from ``solutions.py`` (the library's functions). A
handout built by ``make handout`` has no ``solutions.py``: the same values, recorded when the
handout was built, are read from ``reference_values.pt`` beside this file instead.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import math
import os
from pathlib import Path

import pytest
import torch

from . import exercises

try:
    from . import solutions
except ImportError:  # a student handout (make handout): no solutions, recorded reference values
    solutions = None

F64 = torch.float64
NAMES = ["grpo_advantages", "token_clip_loss", "seq_log_ratio", "gspo_loss", "discounted_step_returns",
         "step_groups", "step_advantages", "aggregate", "k3_kl"]
RECORDED = Path(__file__).with_name("reference_values.pt")
RECORD_TO = os.environ.get("SAMPO_REF_RECORD_REFERENCE")  # set by `make handout`: where to record them
recording: dict[str, object] = {}


def _t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def _show(x) -> str:
    """A value as a student reads it: rounded, flattened, at most 12 numbers."""
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(_show(v) for v in x) + ")"
    if not isinstance(x, torch.Tensor):
        return repr(x)
    values = x.detach().to(F64).flatten()
    text = ", ".join(f"{v:.4g}" for v in values[:12].tolist())
    more = f", … ({values.numel()} values)" if values.numel() > 12 else ""
    return f"[{text}{more}]" + (f" shape {tuple(x.shape)}" if x.dim() > 1 else "")


def check(actual, expected, prop: str, **tolerances) -> None:
    """``assert_close`` that names the property a mismatch breaks and shows expected vs actual."""
    def message(generated: str) -> str:
        return f"{prop}\n  expected: {_show(expected)}\n  actual:   {_show(actual)}\n  ({generated.splitlines()[0]})"

    if not isinstance(actual, (torch.Tensor, tuple, list)):
        pytest.fail(f"{prop}\n  expected a tensor, got {actual!r}", pytrace=False)
    torch.testing.assert_close(actual, expected, msg=message, **tolerances)


@pytest.fixture
def ref(request):
    """``ref(lambda m: m.fn(...))``: the reference value, computed from ``solutions`` or read from the handout."""
    return reference_for(request.node.name)


def reference_for(test_name: str):
    counter = itertools.count()

    def reference(compute):
        key = f"{test_name}:{next(counter)}"
        if solutions is None:
            return _recorded()[key]
        value = compute(solutions)
        if RECORD_TO:
            recording[key] = value
        return value

    return reference


def _recorded() -> dict:
    if not RECORDED.exists():
        pytest.fail(f"{RECORDED} is missing: rebuild the handout with `make handout`", pytrace=False)
    return torch.load(RECORDED)


def _grad(fn, logp: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """(value, d sum(value) / d logp) of fn(logp, *args)."""
    logp = logp.detach().clone().requires_grad_(True)
    out = fn(logp, *args)
    (grad,) = torch.autograd.grad(out.sum(), logp)
    return out.detach(), grad


def _partition(ids: torch.Tensor) -> set[frozenset[int]]:
    blocks: dict[int, set[int]] = {}
    for row, i in enumerate(ids.tolist()):
        blocks.setdefault(i, set()).add(row)
    return {frozenset(b) for b in blocks.values()}


def _random_rows(gen: torch.Generator, B: int = 12, T: int = 6):
    """Random log-probs, ratios within e^{+-1}, advantages of both signs and ragged masks."""
    logp_old = -torch.rand(B, T, generator=gen, dtype=F64) * 3
    logp = logp_old + (torch.rand(B, T, generator=gen, dtype=F64) * 2 - 1)
    adv = torch.randn(B, generator=gen, dtype=F64)
    lengths = torch.randint(0, T + 1, (B,), generator=gen)
    mask = (torch.arange(T) < lengths[:, None]).to(F64)
    return logp, logp_old, adv, mask


# ----------------------------------------------------------------------------- the handout itself


@pytest.mark.parametrize("name", NAMES)
def test_exercise_signature_matches_the_solution(name):
    """The handout and the reference agree on every parameter name and default."""
    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    if solutions is None:
        pytest.skip("a handout has no solutions.py to compare with")
    assert params(getattr(exercises, name)) == params(getattr(solutions, name))


def test_the_handout_is_blank(request):
    """Committed exercises.py keeps only docstrings and ``raise NotImplementedError`` (skipped with --student)."""
    if request.config.getoption("--student"):
        pytest.skip("your file is meant to be filled in")
    tree = ast.parse(Path(exercises.__file__).read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert sorted(functions) == sorted(NAMES)
    for name, node in functions.items():
        body = [n for n in node.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{name}: the handout must not contain a solution"


# ----------------------------------------------------------------------------- 1. GRPO (S2)


def test_grpo_worked_example(impl):
    """docs/algorithms/gigpo.md#key-equations: scores (10, 10, 0, -0.1, 0) in one group; mu = 3.98, sigma = 5.4956."""
    scores = _t([10.0, 10.0, 0.0, -0.1, 0.0])
    mu = (10 + 10 + 0 - 0.1 + 0) / 5
    sigma = math.sqrt(sum((s - mu) ** 2 for s in (10, 10, 0, -0.1, 0)) / 4)
    expected = _t([(s - mu) / (sigma + 1e-6) for s in (10, 10, 0, -0.1, 0)])
    got = impl.grpo_advantages(scores, torch.zeros(5, dtype=torch.long))
    check(got, expected, "(S2) group z-score: (q - mean) / (unbiased std + eps) over the rows of the group")


def test_grpo_singleton_constant_and_separate_groups(impl):
    scores = _t([2.0, 0.1, 0.1, 0.1, 1.0, 3.0])
    groups = torch.tensor([7, 3, 3, 3, 9, 9])  # a singleton, a constant group, a pair (ids in any order)
    got = impl.grpo_advantages(scores, groups)
    check(got[:1], _t([2.0 / (1 + 1e-6)]), "singleton group convention: mu = 0, sigma = 1, so A = q / (1 + eps)")
    check(got[1:4], _t([0.0, 0.0, 0.0]), "a group whose scores are all equal gives A = 0", atol=1e-9, rtol=0)
    sigma = math.sqrt(2 * 1.0**2 / 1)  # pair (1, 3): mean 2, unbiased std sqrt(2)
    check(got[4:], _t([-1 / (sigma + 1e-6), 1 / (sigma + 1e-6)]),
          "groups are separate (ids in any order); the std is the unbiased one (divide by |Q_g| - 1)")


def test_grpo_matches_reference_on_random_groups(impl, ref):
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(40, generator=gen, dtype=F64)
    groups = torch.randint(0, 12, (40,), generator=gen) * 101  # sizes 0..n, ids not 0..n-1
    check(impl.grpo_advantages(scores, groups), ref(lambda m: m.grpo_advantages(scores, groups)),
          "(S2) on 40 random rows in groups of every size (the reference implementation)")


# ----------------------------------------------------------------------------- 2. token clip (S10)


def test_token_clip_hand_worked(impl):
    """One real token per row (w given), one padding token with a wild ratio; eps 0.2, c 3."""
    cases = [  # (A, w, loss, d loss / d logp)
        (+1.0, 0.5, -0.5, -0.5),  # max(-0.5, -0.8): unclipped, kappa = w
        (+1.0, 1.1, -1.1, -1.1),
        (+1.0, 1.5, -1.2, 0.0),  # max(-1.5, -1.2): clipped at 1 + eps_h
        (-1.0, 0.5, 0.8, 0.0),  # max(0.5, 0.8): clipped at 1 - eps_l
        (-1.0, 2.0, 2.0, 2.0),  # max(2, 1.2) = 2 < 3: kappa = w, gradient -kappa A = 2
        (-1.0, 4.0, 3.0, 0.0),  # max(4, 1.2) = 4, dual clip min(4, 3) = 3
    ]
    adv = _t([c[0] for c in cases])
    logp_old = torch.full((len(cases), 2), math.log(0.5), dtype=F64)
    logp = logp_old + _t([[math.log(c[1]), 7.0] for c in cases])
    mask = _t([[1.0, 0.0]] * len(cases))
    loss, grad = _grad(lambda lp: impl.token_clip_loss(lp, logp_old, adv, mask, 0.2, 0.2, 3.0), logp)
    check(loss[:, 0], _t([c[2] for c in cases]), "(S10) loss value per case (A, w) = (+1, .5) (+1, 1.1) (+1, 1.5) "
          "(-1, .5) (-1, 2) (-1, 4): max of the plain and clipped terms, then the dual clip -c A for A < 0")
    check(grad[:, 0], _t([c[3] for c in cases]), "(S10) gradient d loss / d logp = -w A inside the trust region, exactly 0 "
          "where clipped (A > 0, w > 1 + eps_h), (A < 0, w < 1 - eps_l) or dual-clipped (A < 0, w > c)")
    check(torch.cat([loss[:, 1], grad[:, 1]]), torch.zeros(2 * len(cases), dtype=F64),
          "padding (mask 0) gets exactly zero loss and zero gradient, even with a wild ratio", atol=0, rtol=0)


def test_token_clip_matches_reference_on_random_rows(impl, ref):
    logp, logp_old, adv, mask = _random_rows(torch.Generator().manual_seed(1))
    for params in ((0.2, 0.2, 3.0), (0.1, 0.28, 2.0)):
        mine = _grad(lambda lp: impl.token_clip_loss(lp, logp_old, adv, mask, *params), logp)
        expected = ref(lambda m: _grad(lambda lp: m.token_clip_loss(lp, logp_old, adv, mask, *params), logp))
        check(mine, expected, f"(S10) (loss, gradient) on random rows, (clip_low, clip_high, dual_clip) = {params}")


# ----------------------------------------------------------------------------- 3-4. GSPO (S11, S12)


def test_seq_log_ratio_hand_worked(impl):
    logp_old = torch.zeros(3, 3, dtype=F64)
    logp = _t([[0.1, 0.3, 9.0], [0.4, -0.2, 0.1], [5.0, 5.0, 5.0]])
    mask = _t([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    got = impl.seq_log_ratio(logp, logp_old, mask)
    check(got, _t([(0.1 + 0.3) / 2, (0.4 - 0.2 + 0.1) / 3, 0.0]), "(S11) log s_j = masked mean of the token "
          "log-ratios over the row's own L_j tokens; padding ignored; an empty row gives 0")


def test_seq_log_ratio_matches_reference(impl, ref):
    logp, logp_old, _, mask = _random_rows(torch.Generator().manual_seed(2))
    mine = _grad(lambda lp: impl.seq_log_ratio(lp, logp_old, mask), logp)
    check(mine, ref(lambda m: _grad(lambda lp: m.seq_log_ratio(lp, logp_old, mask), logp)),
          "(S11) (value, gradient) on random ragged rows: d log s_j / d logp_{j,t} = m_{j,t} / L_j")


def test_gspo_hand_worked(impl):
    """Two tokens per row, eps 3e-2 / 4e-2: the band for s is [0.97, 1.04]."""
    cases = [  # (A, token log-ratios, mask, loss per real token, d loss_t / d logp_t per real token)
        (+1.0, (0.01, -0.01), (1, 1), -1.0, -1.0),  # log s = 0: s = 1, kappa = 1
        (+1.0, (0.2, 0.0), (1, 1), -1.04, 0.0),  # s = e^0.1 = 1.105 > 1.04: the whole turn is clipped
        (-1.0, (-0.02, 0.0), (1, 1), math.exp(-0.01), math.exp(-0.01)),  # s = e^-0.01 = 0.990, inside
        (-1.0, (-0.1, -0.1), (1, 1), 0.97, 0.0),  # s = e^-0.1 = 0.905 < 0.97: clipped
        (+1.0, (0.03, 5.0), (1, 0), -math.exp(0.03), -math.exp(0.03)),  # padding ignored: s = e^0.03
    ]
    adv = _t([c[0] for c in cases])
    logp_old = torch.full((len(cases), 2), math.log(0.25), dtype=F64)
    logp = logp_old + _t([c[1] for c in cases])
    mask = _t([c[2] for c in cases])
    loss, grad = _grad(lambda lp: impl.gspo_loss(lp, logp_old, adv, mask, 3e-2, 4e-2), logp)
    real = mask.bool()
    check(loss[real], _t([c[3] for c in cases for m in c[2] if m]), "(S12) every token of a turn has the VALUE "
          "-A s_j (or the clipped -A (1 +- eps)): one ratio per turn, the geometric mean of its token ratios")
    check(grad[real], _t([c[4] for c in cases for m in c[2] if m]), "(S12) gradient -A s_j on every token of an "
          "unclipped turn, exactly 0 on every token of a clipped one (A > 0, s > 1 + eps_h or A < 0, s < 1 - eps_l)")
    check(torch.stack([loss[4, 1], grad[4, 1]]), torch.zeros(2, dtype=F64),
          "padding (mask 0) gets exactly zero loss and zero gradient", atol=0, rtol=0)


def test_gspo_matches_reference_on_random_rows(impl, ref):
    logp, logp_old, adv, mask = _random_rows(torch.Generator().manual_seed(3))
    logp = logp_old + 0.05 * (logp - logp_old)  # turn ratios near 1, so some turns clip and some do not
    for params in ((3e-3, 4e-3), (3e-2, 4e-2)):
        mine = _grad(lambda lp: impl.gspo_loss(lp, logp_old, adv, mask, *params), logp)
        expected = ref(lambda m: _grad(lambda lp: m.gspo_loss(lp, logp_old, adv, mask, *params), logp))
        check(mine, expected, f"(S12) (loss, gradient) on random rows, (clip_low, clip_high) = {params}")


def test_gspo_each_token_has_only_its_own_gradient(impl, ref):
    """The stop-gradient of (S12): d loss_{j,t} / d logp_{j,t'} = 0 for t' != t.

    A plain sequence-level ratio (s_j without sg) gives every token's loss the gradient of the whole
    turn; summed over a turn the two agree, so only per-token weights tell them apart.
    """
    gen = torch.Generator().manual_seed(10)
    logp, logp_old, adv, mask = _random_rows(gen)
    logp = logp_old + 0.01 * (logp - logp_old)  # inside the band: no turn clipped at eps 3e-2 / 4e-2
    weights = torch.rand(logp.shape, generator=gen, dtype=F64)
    mine = _grad(lambda lp: impl.gspo_loss(lp, logp_old, adv, mask, 3e-2, 4e-2) * weights, logp)[1]
    expected = ref(lambda m: _grad(lambda lp: m.gspo_loss(lp, logp_old, adv, mask, 3e-2, 4e-2) * weights, logp)[1])
    check(mine, expected, "(S12) per-token gradient: each token's loss has the gradient -A s_j of its OWN log-prob "
          "only (s_hat = exp(logp - sg[logp] + sg[log s_j])); a plain sequence-level ratio without the "
          "stop-gradient spreads it over the whole turn")


# ----------------------------------------------------------------------------- 5-7. GiGPO (S4-S6)


def test_discounted_step_returns_hand_worked(impl):
    # docs/algorithms/gigpo.md#key-equations, rows shuffled: tau1 r = (0, 10) -> G = (0.95 * 10, 10); tau2 r = (0, 0, 0) -> 0
    order = [3, 0, 4, 1, 2]
    reward, traj, turn = _t([0.0, 10.0, 0.0, 0.0, 0.0]), torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1, 0, 1, 2])
    got = impl.discounted_step_returns(reward[order], traj[order], turn[order], 0.95)
    check(got, _t([9.5, 10.0, 0.0, 0.0, 0.0])[order], "(S4) G_k = sum over the trajectory's turns k' >= k of "
          "gamma^(k' - k) r_k', rows in any order (worked example, gamma 0.95)")
    # gamma 0.5, r = (1, 0, 2): G = (1 + 0.5 * 0 + 0.25 * 2, 0 + 0.5 * 2, 2); a gap in the turns discounts twice
    got = impl.discounted_step_returns(_t([1.0, 0.0, 2.0, 0.0, 1.0]), torch.tensor([5, 5, 5, 9, 9]),
                                       torch.tensor([0, 1, 2, 0, 2]), 0.5)
    check(got, _t([1.5, 1.0, 2.0, 0.25, 1.0]), "(S4) the exponent is the difference of turn indices: a gap "
          "(turns 0, 2) discounts twice; trajectories are separate")


def test_discounted_step_returns_match_reference(impl, ref):
    gen = torch.Generator().manual_seed(4)
    traj = torch.repeat_interleave(torch.arange(6), torch.tensor([1, 3, 5, 2, 4, 6]))
    turn = torch.cat([torch.arange(n) for n in (1, 3, 5, 2, 4, 6)])
    reward = torch.randn(len(traj), generator=gen, dtype=F64)
    perm = torch.randperm(len(traj), generator=gen)
    args = (reward[perm], traj[perm], turn[perm], 0.9)
    check(impl.discounted_step_returns(*args), ref(lambda m: m.discounted_step_returns(*args)),
          "(S4) on six shuffled trajectories of 1 to 6 turns, gamma 0.9")


def test_step_groups_hand_worked(impl):
    got = impl.step_groups(["a", "b", "a", "a", "a", "b", "a "], torch.tensor([0, 0, 0, 1, 1, 0, 0]))
    expected = {frozenset({0, 2}), frozenset({1, 5}), frozenset({3, 4}), frozenset({6})}
    assert _partition(got) == expected, (
        "step groups: same group id AND exactly the same anchor string ('a ' is not 'a')\n"
        f"  expected: {sorted(sorted(b) for b in expected)}\n  actual:   {sorted(sorted(b) for b in _partition(got))}")


def test_step_groups_match_reference(impl, ref):
    gen = torch.Generator().manual_seed(5)
    groups = torch.randint(0, 3, (30,), generator=gen)
    anchors = [f"room {int(i)}" for i in torch.randint(0, 4, (30,), generator=gen)]
    got, expected = _partition(impl.step_groups(anchors, groups)), _partition(ref(lambda m: m.step_groups(anchors, groups)))
    assert got == expected, ("step groups on 30 random rows: a step group never spans two groups\n"
                             f"  expected: {sorted(sorted(b) for b in expected)}\n  actual:   {sorted(sorted(b) for b in got)}")


def test_step_advantages_hand_worked(impl):
    # docs/algorithms/gigpo.md#key-equations: G~ = (9.5, 10, 0, -0.1, 0); rows 0 and 2 share the intro state, the rest are alone
    step_return, step_group = _t([9.5, 10.0, 0.0, -0.1, 0.0]), torch.tensor([0, 1, 0, 2, 3])
    sigma = math.sqrt(2 * 4.75**2 / 1)  # pair (9.5, 0): mean 4.75, unbiased std
    got = impl.step_advantages(step_return, step_group, "mean_std_norm")
    check(got[[1, 3, 4]], torch.zeros(3, dtype=F64), "(S6) a singleton step group gets exactly 0 (not GRPO's "
          "mu = 0, sigma = 1 convention)", atol=0, rtol=0)
    check(got, _t([4.75 / (sigma + 1e-6), 0.0, -4.75 / (sigma + 1e-6), 0.0, 0.0]),
          "(S6) mean_std_norm: (G~ - mean) / (unbiased std + eps) inside the step group")
    check(impl.step_advantages(step_return, step_group, "mean_norm"), _t([4.75, 0, -4.75, 0, 0]),
          "(S6) mean_norm: G~ - mean inside the step group, no division")
    with pytest.raises(ValueError, match="mean_std"):
        impl.step_advantages(step_return, step_group, "mean_std")


def test_step_advantages_match_reference(impl, ref):
    gen = torch.Generator().manual_seed(6)
    step_return = torch.randn(30, generator=gen, dtype=F64)
    step_group = torch.randint(0, 9, (30,), generator=gen)
    for mode in ("mean_norm", "mean_std_norm"):
        check(impl.step_advantages(step_return, step_group, mode),
              ref(lambda m: m.step_advantages(step_return, step_group, mode)), f"(S6) {mode} on 30 random rows")


# ----------------------------------------------------------------------------- 8. aggregation (docs/dimensions.md#loss-aggregation)


def test_aggregate_hand_worked(impl):
    loss = _t([[1.0, 2.0, 3.0], [4.0, 5.0, float("nan")], [7.0, 8.0, 9.0]])
    mask = _t([[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    expected = {
        "token-mean": (1 + 2 + 3 + 4) / 4,
        "seq-mean-token-mean": ((1 + 2 + 3) / 3 + 4 / 1) / 2,  # the empty row is not counted
        "seq-mean-token-sum": (1 + 2 + 3 + 4) / 3,  # the empty row is counted
        "seq-mean-token-sum-norm": (1 + 2 + 3 + 4) / 5,  # max_len = 5
    }
    for mode, value in expected.items():
        check(impl.aggregate(loss, mask, mode, max_len=5), _t(value), f"{mode}: its formula on a 3 x 3 example "
              "with an empty row and a NaN under the mask (masked values must not leak in)", atol=1e-12, rtol=0)
        check(impl.aggregate(loss, torch.zeros_like(mask), mode, max_len=5), _t(0.0),
              f"{mode}: an empty selection gives 0, not NaN", atol=0, rtol=0)
    with pytest.raises(ValueError, match="token-max"):
        impl.aggregate(loss, mask, "token-max")
    with pytest.raises(ValueError):
        impl.aggregate(loss, mask, "seq-mean-token-sum-norm")


def test_aggregate_matches_reference(impl, ref):
    _, _, _, mask = _random_rows(torch.Generator().manual_seed(7))
    loss = torch.randn(mask.shape, generator=torch.Generator().manual_seed(8), dtype=F64)
    for mode in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"):
        mine = _grad(lambda x: impl.aggregate(x, mask, mode, max_len=6), loss)
        check(mine, ref(lambda m: _grad(lambda x: m.aggregate(x, mask, mode, max_len=6), loss)),
              f"{mode}: (value, gradient) on random ragged rows")


# ----------------------------------------------------------------------------- 9. k3 KL (S18)


def test_k3_hand_worked(impl):
    logp = _t([[math.log(0.5), math.log(0.25), -1.3, -30.0, -1000.0]])
    logp_ref = _t([[math.log(0.25), math.log(0.5), -1.3, 0.0, 0.0]])
    value, grad = _grad(lambda lp: impl.k3_kl(lp, logp_ref), logp)
    # u = log(pi_ref / pi): -log 2, +log 2, 0, and 30 and 1000 clamped to 20 (then k3 clamped to 10)
    check(value, _t([[0.5 + math.log(2) - 1, 2 - math.log(2) - 1, 0.0, 10.0, 10.0]]),
          "(S18) k3 = e^u - u - 1 with u = clamp(logp_ref - logp, -20, 20), then k3 clamped to [-10, 10]")
    # 1 - pi_ref / pi; 0 where clamped (without the clamp on u, e^1000 = inf would make the gradient NaN)
    check(grad, _t([[1 - 0.5, 1 - 2.0, 0.0, 0.0, 0.0]]),
          "(S18) gradient d k3 / d logp = 1 - pi_ref / pi, and exactly 0 where a clamp acts (no NaN from e^1000)")


def test_k3_matches_reference(impl, ref):
    gen = torch.Generator().manual_seed(9)
    logp = -torch.rand(5, 7, generator=gen, dtype=F64) * 5
    logp_ref = -torch.rand(5, 7, generator=gen, dtype=F64) * 5
    mine = _grad(lambda lp: impl.k3_kl(lp, logp_ref), logp)
    check(mine, ref(lambda m: _grad(lambda lp: m.k3_kl(lp, logp_ref), logp)), "(S18) (value, gradient) on random log-probs")
